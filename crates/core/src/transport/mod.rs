//! How the engine reaches a host: a trait over command execution and file transfer.
//!
//! Invariant: modules never touch SSH directly. They receive a `&dyn Transport` and only
//! call the methods below, so the same module code runs over SSH, locally, or against the
//! in-memory transport used by unit tests.
//!
//! Where the implementations live: `local` and `shell` (every command line: quoting, become,
//! read and atomic-write scripts) here; SSH in the `pgdeploy-ssh` crate, which only the engine
//! depends on (so a module cannot name it); the fake for unit tests in `pgdeploy-test-support`.
//! The engine resolves each host into a connection target and opens one transport per host
//! (`pgdeploy_engine::run::connect`). [`TransportError::Unreachable`] and
//! [`TransportError::HostKey`] mean the host is unreachable (exit code 4).

use std::time::Duration;

use async_trait::async_trait;

pub mod local;
pub mod shell;

pub use local::LocalTransport;

/// Who a command or file operation runs as on the host (Ansible's `become`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Become {
    /// The connecting user, no privilege change.
    #[default]
    No,
    /// `sudo -n` to root.
    Root,
    /// `sudo -n -u USER`.
    User(String),
}

/// How a host raises privileges when the login user is not the one a command runs as
/// (Ansible's `become_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BecomeMethod {
    /// `sudo`: `-n` without a password, `-S` with one (the login user's).
    #[default]
    Sudo,
    /// `su` (util-linux): the target user's password on stdin.
    Su,
}

impl BecomeMethod {
    pub fn name(self) -> &'static str {
        match self {
            BecomeMethod::Sudo => "sudo",
            BecomeMethod::Su => "su",
        }
    }
}

/// The method and password a host's transport raises privileges with
/// (`ansible_become_method`, `ansible_become_password`). The password only ever travels on
/// the command's stdin: never on a command line, never in a log line (`Debug` hides it).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Escalation {
    pub method: BecomeMethod,
    pub password: Option<String>,
}

impl std::fmt::Debug for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escalation")
            .field("method", &self.method)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .finish()
    }
}

/// One command to run on a host. `command` is a shell command line run by `/bin/sh -c`.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: String,
    /// Bytes written to the command's standard input, then closed.
    pub stdin: Option<Vec<u8>>,
    pub become_: Become,
    /// Overrides the transport's default command timeout.
    pub timeout: Option<Duration>,
}

/// What a finished command gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Owner, group and mode a written file ends up with. `None` keeps what the write gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttrs {
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Octal permission bits, e.g. `0o640`.
    pub mode: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host cannot be reached at all (connect, handshake, authentication, lost link).
    /// The executor reports these hosts as unreachable (exit code 4).
    #[error("host `{host}` is unreachable: {reason}")]
    Unreachable { host: String, reason: String },
    /// The host's key is not the one recorded in known_hosts, or is unknown.
    #[error("{0}")]
    HostKey(String),
    #[error("command on `{host}` timed out after {secs} s: `{command}`")]
    Timeout {
        host: String,
        command: String,
        secs: u64,
    },
    #[error("on `{host}`: {message}")]
    Remote { host: String, message: String },
}

/// A connection to one host, reused for every operation of a run.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The inventory name of the host this transport reaches.
    fn host(&self) -> &str;

    /// Runs a command and waits for it to finish.
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError>;

    /// Reads a whole file; `Ok(None)` when it does not exist.
    async fn read_file(
        &self,
        path: &str,
        become_: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError>;

    /// Writes a whole file atomically: a temporary file in the same directory, owner/group/mode
    /// set on it, then `rename` over the target, so readers never see a half-written file.
    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: &Become,
    ) -> Result<(), TransportError>;

    /// Ends the connection politely (SSH disconnect). Dropping the transport also ends it;
    /// this only lets the server log a clean logout. Operations after `close` fail.
    async fn close(&self) {}
}

/// [`Transport::read_file`] for transports that move bytes only as commands do (SSH, local):
/// [`shell::read_script`] run through [`Transport::exec`].
pub async fn read_file_by_exec(
    t: &dyn Transport,
    path: &str,
    become_: &Become,
) -> Result<Option<Vec<u8>>, TransportError> {
    let script = shell::read_script(path).map_err(|message| TransportError::Remote {
        host: t.host().to_string(),
        message,
    })?;
    let out = t
        .exec(&ExecRequest {
            command: script,
            become_: become_.clone(),
            ..Default::default()
        })
        .await?;
    shell::read_result(t.host(), path, out)
}

/// [`Transport::write_file`] for the same transports: [`shell::write_script`] (temporary
/// file, size checked, renamed) with the content on the command's stdin.
pub async fn write_file_by_exec(
    t: &dyn Transport,
    path: &str,
    content: &[u8],
    attrs: &FileAttrs,
    become_: &Become,
) -> Result<(), TransportError> {
    let script = shell::write_script(path, attrs, content.len()).map_err(|message| {
        TransportError::Remote {
            host: t.host().to_string(),
            message,
        }
    })?;
    let out = t
        .exec(&ExecRequest {
            command: script,
            stdin: Some(content.to_vec()),
            become_: become_.clone(),
            ..Default::default()
        })
        .await?;
    shell::write_result(t.host(), path, out)
}
