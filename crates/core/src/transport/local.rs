//! The transport for `ansible_connection: local`: commands run on this machine.
//!
//! Same semantics as SSH (`/bin/sh -c`, become, atomic writes) because it uses the same shell
//! helpers; only the way bytes reach the shell differs (a child process instead of a channel).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{
    shell, Become, Escalation, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

/// Default limit for one command, as for SSH.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs commands on the local machine on behalf of inventory host `host`.
pub struct LocalTransport {
    host: String,
    user: String,
    command_timeout: Duration,
    escalation: Escalation,
}

impl LocalTransport {
    /// A local transport for inventory host `host`, running as the current user.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            user: current_user_name(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            escalation: Escalation::default(),
        }
    }

    /// Raises privileges with this method and password (`ansible_become_method`, …).
    pub fn with_escalation(mut self, escalation: Escalation) -> Self {
        self.escalation = escalation;
        self
    }

    fn remote_error(&self, message: String) -> TransportError {
        TransportError::Remote {
            host: self.host.clone(),
            message,
        }
    }
}

/// The name of the user this process runs as.
///
/// `$USER` when set (what a shell would say), else the passwd entry of our uid (found without
/// libc through the owner of `/proc/self`), else `root`.
pub fn current_user_name() -> String {
    if let Ok(user) = std::env::var("USER") {
        if !user.is_empty() {
            return user;
        }
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if let (Some(uid), Ok(passwd)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 2 && fields[2].parse::<u32>().ok() == Some(uid) {
                return fields[0].to_owned();
            }
        }
    }
    "root".to_owned()
}

/// An exit status as a shell reports it: the code, or 128 + signal number.
fn status_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        let prepared = shell::escalated(
            &req.command,
            &req.become_,
            &self.user,
            &self.escalation,
            None,
        );
        let argv = &prepared.argv;
        let stdin = prepared.stdin(req.stdin.as_deref());
        tracing::debug!(host = %self.host, command = %shell::join(argv), "local exec");
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout can kill the whole pipeline, not just `sh`.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| self.remote_error(format!("cannot start `{}`: {e}", argv[0])))?;
        let pid = child.id();
        let feeder = match (child.stdin.take(), stdin) {
            (Some(mut stdin), Some(data)) => Some(tokio::spawn(async move {
                // A command that exits without reading its input is not an error: ignore EPIPE.
                let _ = stdin.write_all(&data).await;
                let _ = stdin.shutdown().await;
            })),
            _ => None,
        };
        let limit = req.timeout.unwrap_or(self.command_timeout);
        let waited = tokio::time::timeout(limit, child.wait_with_output()).await;
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        match waited {
            Ok(Ok(out)) => {
                let out = ExecOutput {
                    status: status_code(out.status),
                    stdout: out.stdout,
                    stderr: out.stderr,
                };
                if matches!(argv[0].as_str(), "sudo" | "su") {
                    if let Some(message) = shell::become_refused(&out, &self.escalation) {
                        return Err(self.remote_error(message));
                    }
                }
                Ok(out)
            }
            Ok(Err(e)) => Err(self.remote_error(format!("waiting for `{}`: {e}", req.command))),
            Err(_) => {
                if let Some(pid) = pid {
                    // The child itself is killed on drop; this reaps the rest of its group.
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", "--", &format!("-{pid}")])
                        .stderr(Stdio::null())
                        .status();
                }
                Err(TransportError::Timeout {
                    host: self.host.clone(),
                    command: req.command.clone(),
                    secs: limit.as_secs(),
                })
            }
        }
    }

    async fn read_file(
        &self,
        path: &str,
        become_: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        super::read_file_by_exec(self, path, become_).await
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: &Become,
    ) -> Result<(), TransportError> {
        super::write_file_by_exec(self, path, content, attrs, become_).await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn req(command: &str) -> ExecRequest {
        ExecRequest {
            command: command.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn exec_collects_output_status_and_stdin() {
        let t = LocalTransport::new("localhost");
        let out = t
            .exec(&req("echo out; echo err >&2; exit 3"))
            .await
            .unwrap();
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        let out = t
            .exec(&ExecRequest {
                command: "tr a-z A-Z".into(),
                stdin: Some(b"hello".to_vec()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(out.stdout, b"HELLO");
    }

    #[tokio::test]
    async fn exec_times_out() {
        let t = LocalTransport::new("localhost");
        let err = t
            .exec(&ExecRequest {
                command: "sleep 5".into(),
                timeout: Some(Duration::from_millis(200)),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn files_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf").to_string_lossy().into_owned();
        let t = LocalTransport::new("localhost");
        assert_eq!(t.read_file(&path, &Become::No).await.unwrap(), None);
        let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let attrs = FileAttrs {
            mode: Some(0o640),
            ..Default::default()
        };
        t.write_file(&path, &content, &attrs, &Become::No)
            .await
            .unwrap();
        assert_eq!(
            t.read_file(&path, &Become::No).await.unwrap(),
            Some(content)
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
        let missing_dir = dir.path().join("nope/conf").to_string_lossy().into_owned();
        let err = t
            .write_file(&missing_dir, b"x", &FileAttrs::default(), &Become::No)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
