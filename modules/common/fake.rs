//! Test support: a transport answering commands from canned outputs, and a one-host
//! [`HostContext`] around it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::stat::Ownership;
use pgdeploy_core::diag::{Location, SourceFile};
use pgdeploy_core::inventory::{Connection, ConnectionKind, Host, Inventory};
use pgdeploy_core::module::HostContext;
use pgdeploy_core::template::{Facts, Scope, ScopeShared};
use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

pub fn ownership(owner: &str, group: &str, mode: u32) -> Ownership {
    Ownership {
        owner: owner.into(),
        group: group.into(),
        uid: "65534".into(),
        gid: "65534".into(),
        mode,
    }
}

pub fn output(status: i32, stdout: &str) -> ExecOutput {
    ExecOutput {
        status,
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
    }
}

/// Answers each command with the output of the first rule whose needle it contains (exit 0
/// and no output when none matches), and records every command and written file.
#[derive(Default)]
pub struct FakeTransport {
    rules: Vec<(String, ExecOutput)>,
    pub commands: Mutex<Vec<String>>,
    pub written: Mutex<HashMap<String, (Vec<u8>, FileAttrs)>>,
    /// Every command and every write, in order, for transcripts.
    pub log: Mutex<Vec<String>>,
}

impl FakeTransport {
    pub fn answer(mut self, needle: &str, out: ExecOutput) -> Self {
        self.rules.push((needle.to_string(), out));
        self
    }
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().map(|c| c.clone()).unwrap_or_default()
    }
    /// What the host was asked, in order: `$ COMMAND` lines, and `> PATH (owner:group
    /// mode)` followed by the content for writes.
    pub fn transcript(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

#[async_trait]
impl Transport for FakeTransport {
    fn host(&self) -> &str {
        "h1"
    }
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        if let Ok(mut c) = self.commands.lock() {
            c.push(req.command.clone());
        }
        if let Ok(mut l) = self.log.lock() {
            l.push(format!("$ {}", req.command));
        }
        Ok(self
            .rules
            .iter()
            .find(|(needle, _)| req.command.contains(needle.as_str()))
            .map(|(_, out)| out.clone())
            .unwrap_or_else(|| output(0, "")))
    }
    async fn read_file(&self, path: &str, _: &Become) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self
            .written
            .lock()
            .ok()
            .and_then(|w| w.get(path).map(|(c, _)| c.clone())))
    }
    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        _: &Become,
    ) -> Result<(), TransportError> {
        if let Ok(mut w) = self.written.lock() {
            w.insert(path.to_string(), (content.to_vec(), attrs.clone()));
        }
        if let Ok(mut l) = self.log.lock() {
            l.push(format!(
                "> {path} ({}:{} {:04o})\n{}",
                attrs.owner.as_deref().unwrap_or("-"),
                attrs.group.as_deref().unwrap_or("-"),
                attrs.mode.unwrap_or(0),
                String::from_utf8_lossy(content).trim_end()
            ));
        }
        Ok(())
    }
}

/// Everything a [`HostContext`] borrows, for host `h1`.
pub struct Harness {
    pub transport: FakeTransport,
    pub facts: Facts,
    pub scope: Arc<Scope>,
    pub playbook_dir: PathBuf,
}

impl Harness {
    pub fn new(transport: FakeTransport, facts: Facts) -> Self {
        let mut inventory = Inventory::default();
        let origin = Location::file(&SourceFile::new("inventory.yml"));
        inventory.hosts.insert(
            "h1".into(),
            Host {
                name: "h1".into(),
                vars: Default::default(),
                groups: vec!["all".into()],
                connection: Connection {
                    kind: ConnectionKind::Local,
                    address: "h1".into(),
                    port: None,
                    user: None,
                    private_key_file: None,
                    known_hosts_file: None,
                    become_: false,
                    become_user: None,
                    escalation: Default::default(),
                    ssh: Default::default(),
                },
                defined_at: origin,
            },
        );
        let all_facts = HashMap::from([("h1".to_string(), facts.clone())]);
        let shared = ScopeShared::new(
            Arc::new(pgdeploy_core::template::environment()),
            Arc::new(inventory),
            Some(all_facts),
        );
        let scope = Scope::new(&shared, "h1", Arc::default(), Arc::default());
        Harness {
            transport,
            facts,
            scope,
            playbook_dir: PathBuf::from("/nonexistent"),
        }
    }

    pub fn cx(&self) -> HostContext<'_> {
        HostContext {
            host: "h1",
            transport: &self.transport,
            facts: &self.facts,
            scope: &self.scope,
            become_: Become::No,
            playbook_dir: &self.playbook_dir,
            allow_removal: false,
        }
    }
}

/// Runs a future to completion on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// A scope over an inventory of several hosts (name, `ansible_host`, groups), with facts for
/// some of them, as seen by `host` in a play over `play_hosts`.
pub fn cluster_scope(
    hosts: &[(&str, &str, &[&str])],
    facts: HashMap<String, Facts>,
    host: &str,
    play_hosts: &[&str],
) -> Arc<Scope> {
    let mut inventory = Inventory::default();
    let origin = Location::file(&SourceFile::new("inventory.yml"));
    for (name, address, groups) in hosts {
        let mut all = vec!["all".to_string()];
        all.extend(groups.iter().map(|g| g.to_string()));
        for g in &all {
            inventory
                .groups
                .entry(g.clone())
                .or_insert_with(|| pgdeploy_core::inventory::Group {
                    name: g.clone(),
                    hosts: Vec::new(),
                    children: Vec::new(),
                    vars: Default::default(),
                    defined_at: None,
                })
                .hosts
                .push(name.to_string());
        }
        inventory.hosts.insert(
            name.to_string(),
            Host {
                name: name.to_string(),
                vars: Default::default(),
                groups: all,
                connection: Connection {
                    kind: ConnectionKind::Ssh,
                    address: address.to_string(),
                    port: None,
                    user: None,
                    private_key_file: None,
                    known_hosts_file: None,
                    become_: false,
                    become_user: None,
                    escalation: Default::default(),
                    ssh: Default::default(),
                },
                defined_at: origin.clone(),
            },
        );
    }
    let shared = ScopeShared::new(
        Arc::new(pgdeploy_core::template::environment()),
        Arc::new(inventory),
        Some(facts),
    );
    let play: Vec<String> = play_hosts.iter().map(|h| h.to_string()).collect();
    Scope::new(&shared, host, Arc::default(), Arc::new(play))
}

/// The facts of a lab-like host: one interface `host0` with `ip/24`, the default IPv4.
pub fn host0_facts(ip: &str) -> Facts {
    let mut f = Facts::new();
    let net = ip
        .rsplit_once('.')
        .map(|(n, _)| format!("{n}.0"))
        .unwrap_or_default();
    let v4 = serde_json::json!({"address": ip, "prefix": "24", "netmask": "255.255.255.0",
                                "network": net});
    f.insert(
        "ansible_host0".into(),
        serde_json::json!({"device": "host0", "ipv4": v4.clone(),
                                                       "ipv4_secondaries": []}),
    );
    let mut d = v4;
    d["interface"] = serde_json::json!("host0");
    f.insert("ansible_default_ipv4".into(), d);
    f
}

/// A command handler for [`pgdeploy_test_support::memory::MemoryTransport`]: the first rule whose
/// needle the command contains gives (status, stdout, stderr); else exit 0, no output.
pub fn rules_handler(
    rules: Vec<(String, i32, String, String)>,
) -> pgdeploy_test_support::memory::CommandHandler {
    Arc::new(move |req: &ExecRequest| {
        Ok(rules
            .iter()
            .find(|(needle, ..)| req.command.contains(needle.as_str()))
            .map(|(_, status, out, err)| ExecOutput {
                status: *status,
                stdout: out.clone().into_bytes(),
                stderr: err.clone().into_bytes(),
            })
            .unwrap_or_else(|| output(0, "")))
    })
}

/// What the `stat` probe prints for a regular file owned by root with `mode` and `content`.
pub fn probe_file(mode: &str, content: &str) -> String {
    format!("regular file\troot\troot\t0\t0\t{mode}\nnolink\n{content}")
}

/// What the service probe prints for a unit.
pub fn probe_unit(active: &str, enabled: &str) -> String {
    format!("active={active}\nenabled={enabled}\nLoadState=loaded\nNeedDaemonReload=no\n")
}

/// A [`HostContext`] over any transport, for `host` with `scope`.
pub fn context<'a>(
    host: &'a str,
    transport: &'a dyn Transport,
    facts: &'a Facts,
    scope: &'a Arc<Scope>,
) -> HostContext<'a> {
    HostContext {
        host,
        transport,
        facts,
        scope,
        become_: Become::No,
        playbook_dir: std::path::Path::new("/nonexistent"),
        allow_removal: false,
    }
}
