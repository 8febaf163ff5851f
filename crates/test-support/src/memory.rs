//! An in-memory fake host, for unit tests of the engine and of modules only.
//!
//! Modules only ever see `&dyn Transport`, so their diff/apply logic can be tested without SSH:
//! files live in a map, and commands are answered by a closure the test provides. Every command
//! and write is recorded so a test can assert what a module did (or that it did nothing on a
//! converged host). It never touches the real machine; do not use it outside tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

/// How the fake answers a command: given the request, the output (or an error to simulate).
pub type CommandHandler =
    Arc<dyn Fn(&ExecRequest) -> Result<ExecOutput, TransportError> + Send + Sync>;

/// A file held by [`MemoryTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryFile {
    pub content: Vec<u8>,
    pub attrs: FileAttrs,
}

/// Test-only fake [`Transport`]: a map of files and a command handler. See the module docs.
pub struct MemoryTransport {
    host: String,
    files: Mutex<BTreeMap<String, MemoryFile>>,
    handler: CommandHandler,
    log: Mutex<Vec<ExecRequest>>,
    writes: Mutex<Vec<String>>,
}

impl MemoryTransport {
    /// A fake host where every command succeeds with empty output.
    pub fn new(host: impl Into<String>) -> Self {
        Self::with_handler(
            host,
            Arc::new(|_| {
                Ok(ExecOutput {
                    status: 0,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                })
            }),
        )
    }

    /// A fake host whose commands are answered by `handler`.
    pub fn with_handler(host: impl Into<String>, handler: CommandHandler) -> Self {
        Self {
            host: host.into(),
            files: Mutex::new(BTreeMap::new()),
            handler,
            log: Mutex::new(Vec::new()),
            writes: Mutex::new(Vec::new()),
        }
    }

    /// A fake host answering from a table: exact command line → (status, stdout). Commands not
    /// in the table exit 127 with "command not found" on stderr, like a shell.
    pub fn with_table<I, C, O>(host: impl Into<String>, table: I) -> Self
    where
        I: IntoIterator<Item = (C, (i32, O))>,
        C: Into<String>,
        O: Into<Vec<u8>>,
    {
        let table: BTreeMap<String, (i32, Vec<u8>)> = table
            .into_iter()
            .map(|(c, (s, o))| (c.into(), (s, o.into())))
            .collect();
        Self::with_handler(
            host,
            Arc::new(move |req| {
                Ok(match table.get(&req.command) {
                    Some((status, stdout)) => ExecOutput {
                        status: *status,
                        stdout: stdout.clone(),
                        stderr: Vec::new(),
                    },
                    None => ExecOutput {
                        status: 127,
                        stdout: Vec::new(),
                        stderr: format!("sh: {}: command not found", req.command).into_bytes(),
                    },
                })
            }),
        )
    }

    /// Puts a file on the fake host (test setup; not recorded as a write).
    pub fn put_file(&self, path: impl Into<String>, content: impl Into<Vec<u8>>, attrs: FileAttrs) {
        lock(&self.files).insert(
            path.into(),
            MemoryFile {
                content: content.into(),
                attrs,
            },
        );
    }

    /// The file at `path`, if any.
    pub fn file(&self, path: &str) -> Option<MemoryFile> {
        lock(&self.files).get(path).cloned()
    }

    /// Every command run so far, in order.
    pub fn commands(&self) -> Vec<ExecRequest> {
        lock(&self.log).clone()
    }

    /// Every path written through [`Transport::write_file`] so far, in order.
    pub fn writes(&self) -> Vec<String> {
        lock(&self.writes).clone()
    }
}

/// Locks a mutex, recovering from poisoning: a panicking test thread must not hide the state.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Transport for MemoryTransport {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        lock(&self.log).push(req.clone());
        (self.handler)(req)
    }

    async fn read_file(
        &self,
        path: &str,
        _become: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(lock(&self.files).get(path).map(|f| f.content.clone()))
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        _become: &Become,
    ) -> Result<(), TransportError> {
        lock(&self.writes).push(path.to_owned());
        self.put_file(path, content, attrs.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_round_trip_and_commands_are_logged() {
        let t = MemoryTransport::with_table("db1", [("hostname", (0, "db1\n"))]);
        assert_eq!(t.read_file("/etc/x", &Become::No).await.unwrap(), None);
        t.write_file("/etc/x", b"hello", &FileAttrs::default(), &Become::Root)
            .await
            .unwrap();
        assert_eq!(
            t.read_file("/etc/x", &Become::No).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        let out = t
            .exec(&ExecRequest {
                command: "hostname".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(out.stdout, b"db1\n");
        let out = t
            .exec(&ExecRequest {
                command: "nope".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(out.status, 127);
        assert_eq!(t.commands().len(), 2);
        assert_eq!(t.writes(), vec!["/etc/x".to_owned()]);
    }
}
