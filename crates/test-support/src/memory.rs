//! The one fake host, for unit tests of the engine and of modules only.
//!
//! Modules only ever see `&dyn Transport`, so their diff/apply logic can be tested without SSH:
//! files live in a map, and commands are answered by rules the test gives. A command no rule
//! answers panics, naming the command and the rules: a fake that answered anything with
//! success and no output would let a test pass on reads it never thought about, so the rules
//! of a test are the list of commands its module really runs. Every command and write is
//! recorded so a test can assert what a module did (or that it did nothing on a converged
//! host). It never touches the real machine; do not use it outside tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

/// A file held by [`MemoryTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryFile {
    pub content: Vec<u8>,
    pub attrs: FileAttrs,
}

/// Which commands a rule answers.
#[derive(Debug, Clone)]
enum Matcher {
    /// Commands containing this text.
    Contains(String),
    /// Exactly this command line.
    Exact(String),
}

impl Matcher {
    fn matches(&self, command: &str) -> bool {
        match self {
            Matcher::Contains(needle) => command.contains(needle.as_str()),
            Matcher::Exact(line) => command == line,
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Contains(needle) => write!(f, "contains `{needle}`"),
            Matcher::Exact(line) => write!(f, "is `{line}`"),
        }
    }
}

/// Test-only fake [`Transport`]: a map of files and answering rules. See the module docs.
pub struct MemoryTransport {
    host: String,
    /// Tried in order; the first match answers.
    rules: Vec<(Matcher, ExecOutput)>,
    /// The answer to commands no rule matches, when the test opted in with
    /// [`MemoryTransport::answer_rest`]; `None` panics on them.
    rest: Option<ExecOutput>,
    files: Mutex<BTreeMap<String, MemoryFile>>,
    log: Mutex<Vec<ExecRequest>>,
    writes: Mutex<Vec<String>>,
    /// Every command and every write, in order, for transcripts.
    transcript: Mutex<Vec<String>>,
}

impl Default for MemoryTransport {
    /// A fake host `h1` that answers no command yet.
    fn default() -> Self {
        Self::new("h1")
    }
}

impl MemoryTransport {
    /// A fake host that answers no command yet: add rules with [`MemoryTransport::answer`].
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            rules: Vec::new(),
            rest: None,
            files: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            writes: Mutex::new(Vec::new()),
            transcript: Mutex::new(Vec::new()),
        }
    }

    /// Answers commands containing `needle` with `out` (rules are tried in the order given).
    pub fn answer(mut self, needle: &str, out: ExecOutput) -> Self {
        self.rules.push((Matcher::Contains(needle.to_owned()), out));
        self
    }

    /// Answers exactly the command line `command` with `out`.
    pub fn answer_exact(mut self, command: &str, out: ExecOutput) -> Self {
        self.rules.push((Matcher::Exact(command.to_owned()), out));
        self
    }

    /// Answers every command no rule matches with `out`. Only for a test that truly does not
    /// care what is run: it loses the check that the rules list every command.
    pub fn answer_rest(mut self, out: ExecOutput) -> Self {
        self.rest = Some(out);
        self
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

    /// Every command line run so far, in order.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.log).iter().map(|r| r.command.clone()).collect()
    }

    /// Every request run so far, in order (with its privilege, stdin and environment).
    pub fn requests(&self) -> Vec<ExecRequest> {
        lock(&self.log).clone()
    }

    /// Every path written through [`Transport::write_file`] so far, in order.
    pub fn writes(&self) -> Vec<String> {
        lock(&self.writes).clone()
    }

    /// The files written through [`Transport::write_file`] (last content of each), by path.
    pub fn written(&self) -> HashMap<String, (Vec<u8>, FileAttrs)> {
        let files = lock(&self.files);
        lock(&self.writes)
            .iter()
            .filter_map(|p| {
                let f = files.get(p)?;
                Some((p.clone(), (f.content.clone(), f.attrs.clone())))
            })
            .collect()
    }

    /// What the host was asked, in order: `$ COMMAND` lines, and `> PATH (owner:group
    /// mode)` followed by the content for writes.
    pub fn transcript(&self) -> String {
        lock(&self.transcript).join("\n")
    }

    /// Adds a line of the test's own to [`MemoryTransport::commands`] (a wrapper marking
    /// where something happened among the commands, e.g. a write).
    pub fn note(&self, line: impl Into<String>) {
        lock(&self.log).push(ExecRequest {
            command: line.into(),
            ..Default::default()
        });
    }

    /// The answer to `command`; panics when no rule answers it (see the module docs).
    fn answer_to(&self, command: &str) -> ExecOutput {
        if let Some((_, out)) = self.rules.iter().find(|(m, _)| m.matches(command)) {
            return out.clone();
        }
        if let Some(out) = &self.rest {
            return out.clone();
        }
        let rules: Vec<String> = self.rules.iter().map(|(m, _)| format!("  {m}")).collect();
        panic!(
            "fake host `{}` has no answer for `{command}`; its rules:\n{}",
            self.host,
            if rules.is_empty() {
                "  (none)".to_owned()
            } else {
                rules.join("\n")
            }
        )
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
        lock(&self.transcript).push(format!("$ {}", req.command));
        Ok(self.answer_to(&req.command))
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
        lock(&self.transcript).push(format!(
            "> {path} ({}:{} {:04o})\n{}",
            attrs.owner.as_deref().unwrap_or("-"),
            attrs.group.as_deref().unwrap_or("-"),
            attrs.mode.unwrap_or(0),
            String::from_utf8_lossy(content).trim_end()
        ));
        self.put_file(path, content, attrs.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stdout: &str) -> ExecOutput {
        ExecOutput {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    fn request(command: &str) -> ExecRequest {
        ExecRequest {
            command: command.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn files_round_trip_and_commands_are_logged() {
        let t = MemoryTransport::new("db1")
            .answer_exact("hostname", out(0, "db1\n"))
            .answer("systemctl", out(3, "inactive\n"));
        assert_eq!(t.read_file("/etc/x", &Become::No).await.unwrap(), None);
        t.write_file("/etc/x", b"hello", &FileAttrs::default(), &Become::Root)
            .await
            .unwrap();
        assert_eq!(
            t.read_file("/etc/x", &Become::No).await.unwrap().as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(t.exec(&request("hostname")).await.unwrap().stdout, b"db1\n");
        let status = t.exec(&request("systemctl is-active x")).await.unwrap();
        assert_eq!(status.status, 3);
        assert_eq!(t.commands(), ["hostname", "systemctl is-active x"]);
        assert_eq!(t.writes(), vec!["/etc/x".to_owned()]);
        assert_eq!(t.written()["/etc/x"].0, b"hello");
    }

    #[tokio::test]
    #[should_panic(
        expected = "fake host `db1` has no answer for `hostname -f`; its rules:\n  is `hostname`"
    )]
    async fn a_command_no_rule_answers_panics_with_the_rules() {
        let t = MemoryTransport::new("db1").answer_exact("hostname", out(0, "db1\n"));
        let _ = t.exec(&request("hostname -f")).await;
    }

    #[tokio::test]
    async fn answer_rest_is_an_explicit_opt_in() {
        let t = MemoryTransport::new("db1").answer_rest(out(0, ""));
        assert_eq!(t.exec(&request("anything")).await.unwrap().status, 0);
    }
}
