//! Saved plans: `plan --out FILE` and `apply FILE` (Terraform's saved plans and its
//! stale-plan rule).
//!
//! `plan --out` runs the plan as `plan` does and writes what it showed to FILE
//! ([`format`]): the inputs it was asked for, the SHA-256 of every local file it read
//! ([`pgdeploy_core::inputs`]), and every step's changes per host as the report shows them. `apply
//! FILE` loads the same inputs again, connects, and makes the whole plan again on every host
//! before it changes anything, exactly as `plan` does (plan never writes); only when every
//! step plans what the file holds does it apply, through the normal apply path. The
//! guarantee is that the hosts and the inputs are in the state the plan was made from, which
//! is what makes the apply do what the plan showed.
//!
//! **Why comparing masked text is enough.** The file must never hold a secret in clear, so
//! it stores changes masked ([`pgdeploy_core::secrets::Redactor`]) and the comparison is on masked
//! text too. What is masked comes from the inputs: a secret's value is an inventory, vars or
//! vault value, and a different value there changes that file's digest, which refuses before
//! any host is contacted. (A value read by `lookup('file', …)` must go through
//! [`pgdeploy_core::inputs::record`] like any input file, and one read by `lookup('env', …)` through
//! [`pgdeploy_core::inputs::record_env`], which keeps only the value's digest.) With the same inputs, the wanted side of every change is the same,
//! and what remains is the hosts' current state: a host's file content shows in the diff
//! (given the wanted text, a unified diff determines the current text), attributes, units
//! and packages in the summaries.
//!
//! **What it cannot detect.** A host-side change that shows the same once masked: a line of a
//! managed file whose old secret value is replaced by another old value (both shown as
//! `********`), or a host value equal to a secret. A difference a module does not show in
//! its change text (its typed work holds more than its summary says). Changes after the
//! check: between the plan made again and the apply of a step, another writer can still
//! change a host (the same race as a plain `apply`). And anything not read by `plan`: state
//! outside the modules' reads (a database's content) is not part of a plan.

pub mod capture;
pub mod compare;
pub mod format;

use std::path::Path;
use std::sync::Arc;

use crate::load::LoadArgs;
use crate::run::events::HostRecap;
use crate::run::{RunMode, RunOptions};
use capture::{Capture, Tee};
use compare::Refused;
use format::{Inputs, SavedPlan};
use pgdeploy_core::exit::Exit;
use pgdeploy_core::module::Catalogue;

/// `plan --out FILE`: the plan, printed as usual, then saved when it is complete (no host
/// unreachable, no step failed: a partial plan would apply as a partial one).
pub async fn plan_and_save(args: &LoadArgs, opts: &RunOptions, out: &Path) -> anyhow::Result<Exit> {
    pgdeploy_core::inputs::start();
    let Some(loaded) = crate::run::load(args, opts.json) else {
        return Ok(Exit::Error);
    };
    let mut session = match crate::run::open(args, opts, loaded).await? {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    let capture = Arc::new(Capture::new(session.redactor.clone()));
    let tee = Arc::new(Tee(session.reporter.clone(), capture.clone()));
    let recap = session.execute(RunMode::Plan, tee).await;
    let exit = session.exit(&recap, opts.detailed_exitcode);
    if let Some(why) = incomplete(&recap, &session.unreachable, session.stopped()) {
        pgdeploy_core::eoutln!("the plan was not saved to `{}`: {why}", out.display());
        return Ok(exit);
    }
    if let Some(n) = inline_secret(&args.extra_vars, &session.redactor) {
        pgdeploy_core::eoutln!(
            "the plan was not saved to `{}`: `-e` argument {n} holds a secret, and a saved plan \
             never holds one in clear; give it with `-e @FILE` (a Vault-encrypted file if you \
             like) or `lookup('env', …)`, whose digests the plan checks instead",
            out.display()
        );
        return Ok(Exit::Error);
    }
    let plan = SavedPlan::new(
        Inputs::from_args(args),
        pgdeploy_core::inputs::recorded(),
        pgdeploy_core::inputs::recorded_env(),
        capture.steps(),
    );
    plan.write(out, &session.redactor)?;
    say(
        opts.json,
        &format!(
            "plan saved to `{}`; apply exactly it with `pgdeploy apply {}`",
            out.display(),
            pgdeploy_core::transport::shell::quote(&out.to_string_lossy())
        ),
    );
    Ok(exit)
}

/// `apply FILE`: refuses unless the inputs and the hosts are as the plan was made from, then
/// applies. Nothing is written on any host before every check passed.
pub async fn apply_saved(
    path: &Path,
    vault_password_file: Option<std::path::PathBuf>,
    catalogue: &'static Catalogue,
    opts: &RunOptions,
) -> anyhow::Result<Exit> {
    let saved = SavedPlan::read(path)?;
    compare::check_inputs(path, &saved.files, &saved.env)?;
    pgdeploy_core::inputs::start();
    let args = saved.inputs.to_args(vault_password_file, catalogue);
    let Some(loaded) = crate::run::load(&args, opts.json) else {
        return Ok(Exit::Error);
    };
    check_reads(path, &saved)?;
    let opts = RunOptions {
        mode: RunMode::Apply,
        ..opts.clone()
    };
    let mut session = match crate::run::open(&args, &opts, loaded).await? {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    if !session.unreachable.is_empty() {
        unreachable(path, session.unreachable.iter());
        return Ok(Exit::Unreachable);
    }
    // The plan made again, every event to the capture only: nothing of it is printed.
    let capture = Arc::new(Capture::new(session.redactor.clone()));
    let recap = session.execute(RunMode::Plan, capture.clone()).await;
    if session.stopped() {
        pgdeploy_core::eoutln!(
            "stopped before applying `{}`: nothing was applied",
            path.display()
        );
        return Ok(Exit::Error);
    }
    let down: Vec<&String> = recap
        .iter()
        .filter(|h| h.unreachable)
        .map(|h| &h.host)
        .collect();
    if !down.is_empty() {
        unreachable(path, down.into_iter());
        return Ok(Exit::Unreachable);
    }
    // Templates and copied files are read while planning: they too must be the saved ones.
    check_reads(path, &saved)?;
    let differences = compare::compare(&saved.steps, &capture.steps());
    if !differences.is_empty() {
        return Err(Refused::Stale {
            plan: path.to_path_buf(),
            differences,
        }
        .into());
    }
    if !saved.has_changes() {
        say(
            opts.json,
            &format!(
                "`{}` plans no change, and the hosts are still as it was made from: nothing to apply",
                path.display()
            ),
        );
        return Ok(Exit::Success);
    }
    say(
        opts.json,
        &format!(
            "`{}`: the inputs and the hosts are in the state the plan was made from; applying it",
            path.display()
        ),
    );
    let reporter = session.reporter.clone();
    let recap = session.execute(RunMode::Apply, reporter).await;
    let exit = session.exit(&recap, false);
    session.release().await;
    Ok(exit)
}

/// What was read since [`pgdeploy_core::inputs::start`] is what the plan read.
fn check_reads(path: &Path, saved: &SavedPlan) -> Result<(), Refused> {
    compare::check_reads(
        path,
        &saved.files,
        &saved.env,
        &pgdeploy_core::inputs::recorded(),
        &pgdeploy_core::inputs::recorded_env(),
    )
}

/// Why a plan may not be saved, if it may not.
fn incomplete(
    recap: &[HostRecap],
    unreachable: &std::collections::HashSet<String>,
    stopped: bool,
) -> Option<String> {
    let failed = recap.iter().filter(|h| h.failed > 0).count();
    let down = recap
        .iter()
        .filter(|h| h.unreachable)
        .count()
        .max(unreachable.len());
    if stopped {
        Some("the run was stopped".into())
    } else if down > 0 {
        Some(format!(
            "{down} host(s) unreachable, the plan is incomplete"
        ))
    } else if failed > 0 {
        Some(format!(
            "steps failed on {failed} host(s), the plan is incomplete"
        ))
    } else {
        None
    }
}

/// The position (from 1) of the first inline `-e` argument whose text holds a secret (masking
/// changes it). `@FILE` arguments are paths: the file is an input, checked by digest.
pub(crate) fn inline_secret(
    extra_vars: &[String],
    redactor: &pgdeploy_core::secrets::Redactor,
) -> Option<usize> {
    extra_vars
        .iter()
        .position(|arg| !arg.starts_with('@') && redactor.mask(arg) != *arg)
        .map(|i| i + 1)
}

fn unreachable<'a>(path: &Path, hosts: impl Iterator<Item = &'a String>) {
    let mut hosts: Vec<String> = hosts.map(|h| format!("`{h}`")).collect();
    hosts.sort();
    pgdeploy_core::eoutln!(
        "error: cannot apply `{}`: unreachable: {}; every host of the plan must be reached, nothing was applied",
        path.display(),
        hosts.join(", ")
    );
}

/// A line about the saved plan: on stdout with the report, on stderr beside JSON events
/// (stdout holds only events then).
fn say(json: bool, line: &str) {
    let line = pgdeploy_core::secrets::mask_logged(line);
    if json {
        pgdeploy_core::eoutln!("{line}");
    } else {
        pgdeploy_core::output::write(&format!("{line}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_complete_plan_is_saved() {
        let host = |failed, unreachable| HostRecap {
            host: "db1".into(),
            failed,
            unreachable,
            ..Default::default()
        };
        let none = std::collections::HashSet::new();
        assert_eq!(incomplete(&[host(0, false)], &none, false), None);
        assert!(incomplete(&[host(1, false)], &none, false)
            .unwrap()
            .starts_with("steps failed on 1 host(s)"));
        assert!(incomplete(&[host(0, true)], &none, false)
            .unwrap()
            .starts_with("1 host(s) unreachable"));
        assert_eq!(
            incomplete(&[host(0, false)], &none, true).as_deref(),
            Some("the run was stopped")
        );
    }

    #[test]
    fn an_inline_secret_in_extra_vars_is_never_saved() {
        let redactor = pgdeploy_core::secrets::Redactor::new(vec!["s3cr\"et-value".into()]);
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            inline_secret(&args(&["pg_version=16", "@vars.yml"]), &redactor),
            None
        );
        assert_eq!(
            inline_secret(
                &args(&["pg_version=16", "{\"db_password\": \"s3cr\\\"et-value\"}"]),
                &redactor
            ),
            Some(2)
        );
        assert_eq!(
            inline_secret(&args(&["db_password=s3cr\"et-value"]), &redactor),
            Some(1)
        );
    }
}
