//! Test support: a one-host [`HostContext`] around the fake host ([`MemoryTransport`], which
//! fails on any command its rules do not answer), and canned outputs of the probes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::stat::Ownership;
use pgdeploy_core::diag::{Location, SourceFile};
use pgdeploy_core::inventory::{Connection, ConnectionKind, Host, Inventory};
use pgdeploy_core::module::HostContext;
use pgdeploy_core::template::{Facts, Scope, ScopeShared};
use pgdeploy_core::transport::{Become, ExecOutput, Transport};
pub(crate) use pgdeploy_test_support::memory::MemoryTransport;

pub(crate) fn ownership(owner: &str, group: &str, mode: u32) -> Ownership {
    Ownership {
        owner: owner.into(),
        group: group.into(),
        uid: "65534".into(),
        gid: "65534".into(),
        mode,
    }
}

pub(crate) fn output(status: i32, stdout: &str) -> ExecOutput {
    ExecOutput {
        status,
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
    }
}

/// An output with stderr too, for answers that fail the way a real tool does.
pub(crate) fn output_err(status: i32, stdout: &str, stderr: &str) -> ExecOutput {
    ExecOutput {
        status,
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

/// Everything a [`HostContext`] borrows, for host `h1`.
pub(crate) struct Harness {
    pub transport: MemoryTransport,
    pub facts: Facts,
    pub scope: Arc<Scope>,
    pub playbook_dir: PathBuf,
}

impl Harness {
    pub(crate) fn new(transport: MemoryTransport, facts: Facts) -> Self {
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

    pub(crate) fn cx(&self) -> HostContext<'_> {
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
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

/// A scope over an inventory of several hosts (name, `ansible_host`, groups), with facts for
/// some of them, as seen by `host` in a play over `play_hosts`.
pub(crate) fn cluster_scope(
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
pub(crate) fn host0_facts(ip: &str) -> Facts {
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

/// What the `stat` probe prints for a regular file owned by root with `mode` and `content`.
pub(crate) fn probe_file(mode: &str, content: &str) -> String {
    format!("regular file\troot\troot\t0\t0\t{mode}\nnolink\n{content}")
}

/// What the service probe prints for a unit.
pub(crate) fn probe_unit(active: &str, enabled: &str) -> String {
    format!("active={active}\nenabled={enabled}\nLoadState=loaded\nNeedDaemonReload=no\n")
}

/// A [`HostContext`] over any transport, for `host` with `scope`.
pub(crate) fn context<'a>(
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
