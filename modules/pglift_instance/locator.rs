//! The Patroni locator (`/var/lib/pgdeploy/patroni.env`) of an instance Patroni runs, so that
//! `pgdeploy status` and the day-2 commands find pglift's Patroni as they find the `patroni`
//! module's: `PATRONI_CONFIG` is the file pglift writes (`PATRONICTL_CONFIG_FILE` of `pglift
//! instance env`, from the site's `patroni.configpath`), `PATRONICTL` the one in pglift's venv.
//!
//! The plan reads the locator in the same command as `instance list` (no extra pglift start-up
//! on a no-op run): it is right when it names this module's `patronictl` and a configuration
//! file that exists. Only apply asks pglift for the file's path. The locator is root's, like
//! every locator: under `become_user: postgres` (seed 000) it is written with the escalation to
//! root the play already has.

use super::PgliftInstance;
use crate::common::exec;
use crate::common::shell::quote;
use pgdeploy_core::locator::{DIR, PATRONI as LOCATOR};
use pgdeploy_core::module::{HostContext, ModuleError};
use pgdeploy_core::transport::{Become, ExecRequest, FileAttrs};

/// Before the locator's content in the plan's read.
pub(super) const MARK: &str = "==pgdeploy-locator";
/// After it, when the configuration file it names is readable.
pub(super) const READABLE: &str = "==config-readable";

/// Shell appended to the plan's read: the locator's content and whether its file is readable.
/// The exit status stays that of the read before it.
pub(super) fn read_script() -> String {
    format!(
        "; s=$?; echo; echo '{MARK}'; if [ -r {LOCATOR} ]; then cat {LOCATOR}; \
         if ( PATRONI_CONFIG=; . {LOCATOR}; [ -n \"$PATRONI_CONFIG\" ] && [ -r \"$PATRONI_CONFIG\" ] ); \
         then echo '{READABLE}'; fi; fi; (exit $s)"
    )
}

/// The plan's read split into what came before [`read_script`] and the locator part.
pub(super) fn split(out: &str) -> (&str, Option<&str>) {
    match out.split_once(&format!("\n{MARK}\n")) {
        Some((before, after)) => (before, Some(after)),
        None => (out, None),
    }
}

/// The locator naming `config` and `patronictl`.
pub(super) fn render(config: &str, patronictl: &str) -> String {
    pgdeploy_core::locator::render(
        "pglift_instance",
        "Patroni (the configuration pglift wrote)",
        &[("PATRONI_CONFIG", config), ("PATRONICTL", patronictl)],
    )
}

/// Whether the locator part of the plan's read is this module's, naming `patronictl` and a
/// readable configuration file.
pub(super) fn is_current(part: Option<&str>, patronictl: &str) -> bool {
    let Some(part) = part else { return false };
    let Some(text) = part.strip_suffix(&format!("{READABLE}\n")) else {
        return false;
    };
    let Some(config) = text
        .lines()
        .find_map(|l| l.strip_prefix("PATRONI_CONFIG="))
        .map(unquote)
    else {
        return false;
    };
    text == render(&config, patronictl)
}

/// The reverse of [`quote`] for one word.
fn unquote(word: &str) -> String {
    match word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => word.to_string(),
    }
}

/// Root, with the play's escalation: the task's own privilege when it is root or none.
fn as_root(become_: &Become) -> Become {
    match become_ {
        Become::User(_) => Become::Root,
        other => other.clone(),
    }
}

fn write_error(host: &str, e: impl std::fmt::Display) -> ModuleError {
    ModuleError::Failed(format!(
        "cannot write `{LOCATOR}` on `{host}` (where `pgdeploy status` finds Patroni; root's): {e}"
    ))
}

/// Asks pglift where the instance's Patroni configuration is, and writes the locator.
pub(super) async fn write(
    cx: &HostContext<'_>,
    instance: &PgliftInstance,
    id: &str,
) -> Result<(), ModuleError> {
    let env = instance.pglift_env_command(id, "printf '%s\\n' \"$PATRONICTL_CONFIG_FILE\"");
    let out = exec::check(cx, &env, &format!("pglift instance env {id}")).await?;
    let config = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if config.is_empty() {
        return Err(ModuleError::Failed(format!(
            "`pglift instance env {id}` on `{}` names no `PATRONICTL_CONFIG_FILE`: is the instance run by Patroni?",
            cx.host
        )));
    }
    let root = as_root(&cx.become_);
    let mkdir = ExecRequest {
        command: format!("mkdir -p -- {}", quote(DIR)),
        become_: root.clone(),
        ..ExecRequest::default()
    };
    let out = cx.transport.exec(&mkdir).await?;
    if out.status != 0 {
        return Err(write_error(
            cx.host,
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    let attrs = FileAttrs {
        owner: Some("root".into()),
        group: Some("root".into()),
        mode: Some(0o644),
    };
    let text = render(&config, &instance.patronictl());
    cx.transport
        .write_file(LOCATOR, text.as_bytes(), &attrs, &root)
        .await
        .map_err(|e| write_error(cx.host, e))
}

/// After a drop: removes the locator when the configuration it names is gone (pglift removed
/// the member's file), so that `status` goes on to the other members.
pub(super) async fn remove_if_stale(cx: &HostContext<'_>) -> Result<(), ModuleError> {
    let req = ExecRequest {
        command: format!(
            "if [ -r {LOCATOR} ]; then ( PATRONI_CONFIG=; . {LOCATOR}; [ -n \"$PATRONI_CONFIG\" ] && [ -e \"$PATRONI_CONFIG\" ] ) || rm -f -- {LOCATOR}; fi"
        ),
        become_: as_root(&cx.become_),
        ..ExecRequest::default()
    };
    let out = cx.transport.exec(&req).await?;
    if out.status != 0 {
        return Err(write_error(
            cx.host,
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTL: &str = "/opt/pglift/bin/patronictl";

    #[test]
    fn a_locator_naming_a_readable_file_is_current() {
        let text = render("/etc/patroni/15-main.yaml", CTL);
        assert!(text.contains("PATRONI_CONFIG=/etc/patroni/15-main.yaml\n"));
        let out = format!("[]\n{MARK}\n{text}{READABLE}\n");
        let (list, part) = split(&out);
        assert_eq!(list, "[]");
        assert!(is_current(part, CTL));
        // the file it names is gone, another patronictl, none at all, the patroni module's
        assert!(!is_current(Some(&text), CTL));
        assert!(!is_current(part, "/usr/bin/patronictl"));
        assert!(!is_current(Some(""), CTL));
        let other = crate::patroni::locator("/etc/patroni/15-main.yaml", CTL);
        assert!(!is_current(Some(&format!("{other}{READABLE}\n")), CTL));
    }

    #[test]
    fn quoted_paths_read_back() {
        let text = render("/etc/pat roni/it's.yaml", CTL);
        assert!(is_current(Some(&format!("{text}{READABLE}\n")), CTL));
    }
}
