//! Running commands on the host with the task's privilege, and turning failures into
//! [`ModuleError`]s that name the command but never its input.

use pgdeploy_core::module::{HostContext, ModuleError};
use pgdeploy_core::transport::{ExecOutput, ExecRequest};

/// At most this much of a failed command's output goes into an error message.
const MAX_OUTPUT: usize = 2000;

/// Runs `command` as the task's user and returns its output, whatever its exit status.
pub(crate) async fn run(cx: &HostContext<'_>, command: &str) -> Result<ExecOutput, ModuleError> {
    let req = ExecRequest {
        command: command.to_string(),
        become_: cx.become_.clone(),
        ..ExecRequest::default()
    };
    Ok(cx.transport.exec(&req).await?)
}

/// An executable a step needs that the host lacked when the step planned: a dry run on a bare
/// host plans before the task that installs it has run, so the plan only notes it, and
/// `apply` checks again before it changes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Required {
    pub path: String,
    /// The error when it is still missing at apply time.
    pub error: String,
}

impl Required {
    /// Fails with the error unless `path` is an executable on the host now.
    pub(crate) async fn check(&self, cx: &HostContext<'_>) -> Result<(), ModuleError> {
        let test = format!(
            "test -x {}",
            pgdeploy_core::transport::shell::quote(&self.path)
        );
        if run(cx, &test).await?.status == 0 {
            Ok(())
        } else {
            Err(ModuleError::Failed(self.error.clone()))
        }
    }
}

/// Runs `command` and fails unless it exits 0. `shown` is how the command is named in the
/// error (the whole script is often too long to be useful).
pub(crate) async fn check(
    cx: &HostContext<'_>,
    command: &str,
    shown: &str,
) -> Result<ExecOutput, ModuleError> {
    let out = run(cx, command).await?;
    if out.status == 0 {
        Ok(out)
    } else {
        Err(failure(shown, &out))
    }
}

/// The error for a command that exited with a non-zero status: its stderr, else its stdout.
pub(crate) fn failure(shown: &str, out: &ExecOutput) -> ModuleError {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    let mut output = text.trim().to_string();
    if output.is_empty() {
        output = "no output".to_string();
    }
    if output.len() > MAX_OUTPUT {
        let mut end = MAX_OUTPUT;
        while !output.is_char_boundary(end) {
            end -= 1;
        }
        output.truncate(end);
        output.push('…');
    }
    ModuleError::Command {
        command: shown.to_string(),
        status: out.status,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_prefers_stderr_and_truncates() {
        let out = ExecOutput {
            status: 2,
            stdout: b"out".to_vec(),
            stderr: b" bad \n".to_vec(),
        };
        let e = failure("x", &out).to_string();
        assert_eq!(e, "`x` failed with exit status 2: bad");
        let out = ExecOutput {
            status: 1,
            stdout: "é".repeat(3000).into_bytes(),
            stderr: Vec::new(),
        };
        match failure("x", &out) {
            ModuleError::Command { output, .. } => assert!(output.len() <= MAX_OUTPUT + 3),
            other => panic!("{other}"),
        }
    }
}
