//! The SSH transport, on russh: one connection per host, one channel per operation.
//!
//! Why one connection: a handshake with host key check and authentication costs several round
//! trips and CPU on both ends, while a channel on an open session costs one round trip. The
//! engine connects once per host and every command, read and write afterwards is a new channel
//! on that session, concurrently if it likes (bounded by [`SshTarget::max_sessions`], because
//! sshd refuses more than `MaxSessions`, 10 by default, open sessions per connection).

// Everything on stderr goes through `pgdeploy_core::output` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

mod config;
mod connect;
mod exec;
mod known_hosts;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use russh::client::Handle;
use tokio::sync::Semaphore;

pub use self::config::{SshConfigError, SshConfigFile, SshParams};
pub use self::known_hosts::host_pattern;

use self::connect::{Client, Hop, HopError, Policy};
use pgdeploy_core::transport::{
    shell, Become, Escalation, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

/// A jump host of a `ProxyJump` chain, resolved (ssh config applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Key files to try after ssh-agent; empty means OpenSSH's defaults.
    pub identity_files: Vec<PathBuf>,
}

/// Everything needed to reach one inventory host over SSH, resolved from the inventory and
/// `~/.ssh/config` by [`SshTarget::resolve`] (or built directly with [`SshTarget::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The inventory host name, used in every message about this host.
    pub host: String,
    /// The address to connect to (`ansible_host`, ssh config `HostName`, or the name).
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Key files to try after ssh-agent; empty means `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub identity_files: Vec<PathBuf>,
    /// The known_hosts file host keys are checked against (and new ones recorded in).
    pub known_hosts: PathBuf,
    /// Record the key of a host missing from known_hosts (OpenSSH `accept-new`) instead of
    /// refusing it. A changed key is refused regardless.
    pub accept_new_host_keys: bool,
    /// Limit for TCP connect, then again for the handshake and for authentication, per hop.
    pub connect_timeout: Duration,
    /// Default limit for one command; [`ExecRequest::timeout`] overrides it.
    pub command_timeout: Duration,
    /// Send a keepalive after this long without traffic; the connection is dropped after 3
    /// unanswered ones, so a dead host fails its commands instead of hanging them.
    pub keepalive_interval: Option<Duration>,
    /// Jump hosts, nearest first (OpenSSH `ProxyJump`).
    pub proxy_jump: Vec<JumpHost>,
    /// The inventory's default become (`ansible_become`/`ansible_become_user`), for the engine
    /// to put in requests. The transport takes each request's `become_` literally and never
    /// applies this on its own: `Become::No` in a request cannot mean "unspecified".
    pub become_: Become,
    /// How privileges are raised (`ansible_become_method`, `ansible_become_password`).
    pub escalation: Escalation,
    /// Most channels open at once on the connection; more requests wait their turn.
    pub max_sessions: usize,
}

impl SshTarget {
    /// A target with OpenSSH's defaults: port 22, the current user, `~/.ssh/known_hosts`,
    /// no new host keys accepted, 10 s connect timeout, 600 s command timeout, 30 s keepalive.
    pub fn new(host: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            address: address.into(),
            port: 22,
            user: pgdeploy_core::transport::local::current_user_name(),
            identity_files: Vec::new(),
            known_hosts: dirs::home_dir()
                .unwrap_or_default()
                .join(".ssh")
                .join("known_hosts"),
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(600),
            keepalive_interval: Some(Duration::from_secs(30)),
            proxy_jump: Vec::new(),
            become_: Become::No,
            escalation: Escalation::default(),
            max_sessions: 8,
        }
    }
}

/// An open, authenticated SSH connection to one host.
pub struct SshTransport {
    host: String,
    user: String,
    command_timeout: Duration,
    session: Handle<Client>,
    /// Jump host sessions carrying the tunnel, nearest first; kept so they stay open.
    jumps: Vec<Handle<Client>>,
    sessions: Semaphore,
    escalation: Escalation,
}

impl SshTransport {
    /// Connects to `target` (through its jump hosts, each verified and authenticated like the
    /// target itself).
    ///
    /// Errors: [`TransportError::HostKey`] when a host key is refused,
    /// [`TransportError::Unreachable`] naming the host and the cause for everything else.
    pub async fn connect(target: &SshTarget) -> Result<SshTransport, TransportError> {
        let policy = Policy {
            known_hosts: connect::expand_tilde(&target.known_hosts),
            accept_new_host_keys: target.accept_new_host_keys,
            connect_timeout: target.connect_timeout,
            keepalive_interval: target.keepalive_interval,
        };
        let mut hops: Vec<Hop> = target
            .proxy_jump
            .iter()
            .map(|j| Hop {
                address: j.address.clone(),
                port: j.port,
                user: j.user.clone(),
                identity_files: j.identity_files.clone(),
            })
            .collect();
        hops.push(Hop {
            address: target.address.clone(),
            port: target.port,
            user: target.user.clone(),
            identity_files: target.identity_files.clone(),
        });
        let last = hops.len() - 1;
        let mut opened: Vec<Handle<Client>> = Vec::with_capacity(hops.len());
        for (index, hop) in hops.iter().enumerate() {
            tracing::debug!(host = %target.host, hop = %hop.label(), "ssh connect");
            let result = connect::open_hop(hop, opened.last(), &policy).await;
            let session = result.map_err(|e| {
                let via = if index == last {
                    String::new()
                } else {
                    format!("jump host `{}`: ", hop.label())
                };
                match e {
                    HopError::HostKey(reason) => {
                        TransportError::HostKey(format!("host `{}`: {via}{reason}", target.host))
                    }
                    HopError::Unreachable(reason) => TransportError::Unreachable {
                        host: target.host.clone(),
                        reason: format!("{via}{reason}"),
                    },
                }
            })?;
            opened.push(session);
        }
        let session = opened.pop().ok_or_else(|| TransportError::Unreachable {
            host: target.host.clone(),
            reason: "no hop to connect to".into(),
        })?;
        Ok(SshTransport {
            host: target.host.clone(),
            user: target.user.clone(),
            command_timeout: target.command_timeout,
            session,
            jumps: opened,
            sessions: Semaphore::new(target.max_sessions.max(1)),
            escalation: target.escalation.clone(),
        })
    }

    /// The user this connection is logged in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// One command line on a new channel, within the session limit.
    async fn run(
        &self,
        line: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<ExecOutput, exec::ExecError> {
        let _permit = self
            .sessions
            .acquire()
            .await
            .map_err(|_| exec::ExecError::Failed("connection is closed".into()))?;
        exec::run(&self.session, &self.host, line, stdin, limit).await
    }

    /// Kills what is left of a timed-out command (see [`shell::kill_script`]), as the same
    /// user it ran as. Best effort: the timeout is reported either way.
    async fn kill_tagged(&self, tag: &str, become_: &Become) {
        let Ok(script) = shell::kill_script(tag) else {
            return;
        };
        let prepared = shell::escalated(&script, become_, &self.user, &self.escalation, None);
        let line = shell::join(&prepared.argv);
        let stdin = prepared.stdin(None);
        match self
            .run(&line, stdin.as_deref(), Duration::from_secs(10))
            .await
        {
            Ok(out) if out.status == 0 => {}
            Ok(out) => tracing::warn!(
                host = %self.host,
                "cannot kill a timed-out command: {}",
                shell::stderr_text(&out.stderr)
            ),
            Err(e) => tracing::warn!(host = %self.host, "cannot kill a timed-out command: {e:?}"),
        }
    }

    fn remote_error(&self, message: String) -> TransportError {
        TransportError::Remote {
            host: self.host.clone(),
            message,
        }
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        let tag = shell::new_tag();
        let prepared = shell::escalated(
            &req.command,
            &req.become_,
            &self.user,
            &self.escalation,
            Some(&tag),
        );
        let line = shell::join(&prepared.argv);
        let stdin = prepared.stdin(req.stdin.as_deref());
        let limit = req.timeout.unwrap_or(self.command_timeout);
        tracing::debug!(host = %self.host, command = %line, "ssh exec");
        let result = self.run(&line, stdin.as_deref(), limit).await;
        match result {
            Ok(out) => {
                if matches!(prepared.argv[0].as_str(), "sudo" | "su") {
                    if let Some(message) = shell::become_refused(&out, &self.escalation) {
                        return Err(self.remote_error(message));
                    }
                }
                Ok(out)
            }
            Err(exec::ExecError::Timeout) => {
                self.kill_tagged(&tag, &req.become_).await;
                Err(TransportError::Timeout {
                    host: self.host.clone(),
                    command: req.command.clone(),
                    secs: limit.as_secs(),
                })
            }
            Err(exec::ExecError::Failed(reason)) if self.session.is_closed() => {
                Err(TransportError::Unreachable {
                    host: self.host.clone(),
                    reason: format!("connection lost: {reason}"),
                })
            }
            Err(exec::ExecError::Failed(reason)) => Err(self.remote_error(reason)),
        }
    }

    async fn read_file(
        &self,
        path: &str,
        become_: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        pgdeploy_core::transport::read_file_by_exec(self, path, become_).await
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: &Become,
    ) -> Result<(), TransportError> {
        pgdeploy_core::transport::write_file_by_exec(self, path, content, attrs, become_).await
    }

    async fn close(&self) {
        let sessions = std::iter::once(&self.session).chain(self.jumps.iter().rev());
        for session in sessions {
            let _ = session
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }
}
