//! Test support: a transport answering commands from canned outputs, and a one-host
//! [`HostContext`] around it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::stat::Ownership;
use crate::diag::{Location, SourceFile};
use crate::inventory::{Connection, ConnectionKind, Host, Inventory};
use crate::module::HostContext;
use crate::template::{Facts, Scope, ScopeShared};
use crate::transport::{Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError};

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
}

impl FakeTransport {
    pub fn answer(mut self, needle: &str, out: ExecOutput) -> Self {
        self.rules.push((needle.to_string(), out));
        self
    }
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().map(|c| c.clone()).unwrap_or_default()
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
                },
                defined_at: origin,
            },
        );
        let all_facts = HashMap::from([("h1".to_string(), facts.clone())]);
        let shared = ScopeShared::new(
            Arc::new(crate::template::environment()),
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
