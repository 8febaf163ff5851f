//! Runs the machine's tools (`ip`, `mount`, `ssh-keygen` …) with checked exit status, so every
//! failure names the command line and carries its stderr

use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context};

/// The command line as a person would type it, for error messages
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit is an error with stderr
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed with {}: {}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` to completion without judging its exit status
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", display(cmd)))
}
