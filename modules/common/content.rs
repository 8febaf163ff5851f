//! A file with given content (the shared core of `copy` and `template`): plan compares the
//! host's bytes and attributes with the wanted ones in one round trip; apply writes atomically
//! (after an optional `validate` of the new version) or only fixes the attributes.

use super::attrs::Wanted;
use super::exec;
use super::shell::quote;
use super::stat::{self, Kind, PathState};
use pgdeploy_core::module::{Change, Diff, HostContext, ModuleError, Plan};
use pgdeploy_core::transport::FileAttrs;

/// What a task wants at `dest`.
#[derive(Debug, Clone)]
pub(crate) struct Desired<'a> {
    pub dest: &'a str,
    pub content: Vec<u8>,
    pub wanted: Wanted<'a>,
    /// A command checking the new version before it replaces `dest`; `%s` is its path.
    pub validate: Option<&'a str>,
}

/// What `apply` does, decided by `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContentWork {
    /// Write new content (creating the file or replacing it).
    Write {
        dest: String,
        content: Vec<u8>,
        attrs: FileAttrs,
        validate: Option<String>,
    },
    /// The content is right: only owner/group/mode change, by this command.
    FixAttrs { command: String },
}

/// What [`plan`] reads on the host for a file at `dest` (see [`pgdeploy_core::module::Action::probes`]).
pub(crate) fn probes(dest: &str) -> Vec<pgdeploy_core::module::Probe> {
    vec![stat::probe_of(dest, true)]
}

/// Plans `desired` against the host.
pub(crate) async fn plan(cx: &HostContext<'_>, desired: &Desired<'_>) -> Result<Plan, ModuleError> {
    let state = stat::probe(cx, desired.dest, true).await?;
    Ok(match decide(desired, &state)? {
        Some((changes, work)) => Plan::changes(changes, work),
        None => Plan::unchanged(),
    })
}

/// The changes and work that bring `state` to `desired`; `None` when there are none.
pub(crate) fn decide(
    desired: &Desired<'_>,
    state: &PathState,
) -> Result<Option<(Vec<Change>, ContentWork)>, ModuleError> {
    let dest = desired.dest;
    let write = |attrs: FileAttrs| ContentWork::Write {
        dest: dest.to_string(),
        content: desired.content.clone(),
        attrs,
        validate: desired.validate.map(str::to_string),
    };
    match state.kind {
        Kind::Missing => {
            let summary = format!("create `{dest}`{}", desired.wanted.describe());
            let change = with_content_diff(summary, dest, None, &desired.content);
            Ok(Some((vec![change], write(desired.wanted.for_write(None)))))
        }
        Kind::File => {
            let current = state.ownership.clone().unwrap_or_default();
            let fix = desired.wanted.diff(&current);
            let before = state.content.as_deref().unwrap_or_default();
            if before != desired.content.as_slice() {
                let mut summary = format!("update `{dest}`");
                if !fix.is_empty() {
                    summary.push_str(&format!(" ({})", fix.describe()));
                }
                let change = with_content_diff(summary, dest, Some(before), &desired.content);
                let attrs = desired.wanted.for_write(Some(&current));
                Ok(Some((vec![change], write(attrs))))
            } else if let Some(command) = fix.command(dest, false) {
                let change = Change::new(format!("`{dest}`: {}", fix.describe()));
                Ok(Some((vec![change], ContentWork::FixAttrs { command })))
            } else {
                Ok(None)
            }
        }
        ref other => Err(ModuleError::Failed(format!(
            "`{dest}` is {}, not a file",
            other.describe()
        ))),
    }
}

/// A change with a text diff, or a note that binary content differs.
fn with_content_diff(summary: String, dest: &str, before: Option<&[u8]>, after: &[u8]) -> Change {
    let before_text = before.map(std::str::from_utf8);
    match (before_text, std::str::from_utf8(after)) {
        (None, Ok(a)) => Change::new(summary).with_diff(Diff {
            path: dest.to_string(),
            before: None,
            after: Some(a.to_string()),
        }),
        (Some(Ok(b)), Ok(a)) => Change::new(summary).with_diff(Diff {
            path: dest.to_string(),
            before: Some(b.to_string()),
            after: Some(a.to_string()),
        }),
        _ => Change::new(format!("{summary}: binary content differs")),
    }
}

/// Applies what [`plan`] decided.
pub(crate) async fn apply(cx: &HostContext<'_>, work: &ContentWork) -> Result<(), ModuleError> {
    match work {
        ContentWork::FixAttrs { command } => {
            exec::check(cx, command, command).await?;
        }
        ContentWork::Write {
            dest,
            content,
            attrs,
            validate: None,
        } => {
            cx.transport
                .write_file(dest, content, attrs, &cx.become_)
                .await?;
        }
        ContentWork::Write {
            dest,
            content,
            attrs,
            validate: Some(validate),
        } => {
            // The candidate lives beside `dest` so that the final `mv` is an atomic rename.
            let temp = temp_path(dest);
            cx.transport
                .write_file(&temp, content, attrs, &cx.become_)
                .await?;
            let check = validate.replace("%s", &quote(&temp));
            let out = exec::run(cx, &validate_and_rename(&check, &temp, dest)).await?;
            if out.status != 0 {
                return Err(match exec::failure(&check, &out) {
                    ModuleError::Command { output, .. } => ModuleError::Failed(format!(
                        "`{dest}` not replaced: validation `{check}` failed with exit status {}: {output}",
                        out.status
                    )),
                    other => other,
                });
            }
        }
    }
    Ok(())
}

/// One command that validates the candidate `temp` (written and synced by the transport) and
/// renames it over `dest`, then syncs the directory, or removes it: validation and rename in separate commands left the candidate behind when the run was
/// killed between them. Candidates of earlier runs killed between the write and this command
/// (`dest` then still holds its old content, so this run writes it again) are removed too.
fn validate_and_rename(check: &str, temp: &str, dest: &str) -> String {
    format!(
        "( {check} ); rc=$?; if [ $rc -eq 0 ]; then mv -f -- {t} {d} || rc=$?; fi; \
         [ $rc -eq 0 ] && {{ sync -- {dir} 2>/dev/null || true; }}; \
         rm -f -- {t} {leftovers}*; exit $rc",
        t = quote(temp),
        d = quote(dest),
        dir = quote(
            dest.rsplit_once('/')
                .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d })
        ),
        leftovers = quote(&temp_prefix(dest)),
    )
}

/// The start of every candidate's name for `dest`: hidden, beside it.
fn temp_prefix(dest: &str) -> String {
    let (dir, name) = dest.rsplit_once('/').unwrap_or(("", dest));
    format!("{dir}/.{name}.pgdeploy-")
}

/// A unique hidden name in `dest`'s directory.
fn temp_path(dest: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}{}-{nanos}", temp_prefix(dest), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fake::*;
    use pgdeploy_core::params::Mode;

    fn desired(content: &str) -> Desired<'static> {
        Desired {
            dest: "/etc/x.conf",
            content: content.as_bytes().to_vec(),
            wanted: Wanted {
                owner: Some("nobody"),
                group: None,
                mode: Some(Mode(0o640)),
            },
            validate: None,
        }
    }

    fn file(content: &[u8], mode: u32) -> PathState {
        PathState {
            kind: Kind::File,
            ownership: Some(ownership("nobody", "nogroup", mode)),
            link: None,
            content: Some(content.to_vec()),
        }
    }

    #[test]
    fn creates_a_missing_file_with_a_diff() {
        let missing = PathState {
            kind: Kind::Missing,
            ownership: None,
            link: None,
            content: None,
        };
        let (changes, work) = decide(&desired("a\n"), &missing).unwrap().unwrap();
        assert_eq!(
            changes[0].summary,
            "create `/etc/x.conf` (owner `nobody`, mode `0640`)"
        );
        assert_eq!(
            changes[0].diff.as_ref().unwrap().after.as_deref(),
            Some("a\n")
        );
        match work {
            ContentWork::Write { attrs, .. } => assert_eq!(attrs.mode, Some(0o640)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn same_content_and_attributes_is_unchanged() {
        assert!(decide(&desired("a\n"), &file(b"a\n", 0o640))
            .unwrap()
            .is_none());
    }

    #[test]
    fn mode_only_change_has_no_diff() {
        let (changes, work) = decide(&desired("a\n"), &file(b"a\n", 0o644))
            .unwrap()
            .unwrap();
        assert_eq!(changes[0].summary, "`/etc/x.conf`: mode `0644` → `0640`");
        assert!(changes[0].diff.is_none());
        assert_eq!(
            work,
            ContentWork::FixAttrs {
                command: "chmod 0640 -- /etc/x.conf".into()
            }
        );
    }

    #[test]
    fn edited_content_shows_the_diff_and_binary_does_not() {
        let (changes, _) = decide(&desired("a\n"), &file(b"b\n", 0o640))
            .unwrap()
            .unwrap();
        let diff = changes[0].diff.as_ref().unwrap();
        assert_eq!(
            (diff.before.as_deref(), diff.after.as_deref()),
            (Some("b\n"), Some("a\n"))
        );
        let (changes, _) = decide(&desired("a\n"), &file(&[0xff, 0], 0o640))
            .unwrap()
            .unwrap();
        assert_eq!(
            changes[0].summary,
            "update `/etc/x.conf`: binary content differs"
        );
        assert!(changes[0].diff.is_none());
    }

    #[test]
    fn a_directory_at_dest_is_an_error() {
        let mut s = file(b"", 0o755);
        s.kind = Kind::Directory;
        let e = decide(&desired("a"), &s).unwrap_err().to_string();
        assert_eq!(e, "`/etc/x.conf` is a directory, not a file");
    }

    #[test]
    fn temp_path_is_beside_dest() {
        assert!(temp_path("/etc/haproxy/haproxy.cfg")
            .starts_with("/etc/haproxy/.haproxy.cfg.pgdeploy-"));
    }

    /// The files of `dir`, sorted
    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn validate_and_rename_leaves_no_candidate_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("haproxy.cfg");
        let dest = dest.to_str().unwrap();
        let run = |check: &str, temp: &str| {
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(validate_and_rename(check, temp, dest))
                .status()
                .unwrap()
                .success()
        };
        std::fs::write(dest, "old\n").unwrap();
        // a candidate of a run killed before its validation, and this run's own
        let leftover = format!("{}1234-5678", temp_prefix(dest));
        std::fs::write(&leftover, "older candidate\n").unwrap();
        let temp = temp_path(dest);
        std::fs::write(&temp, "refused\n").unwrap();
        assert!(!run("false", &temp), "a failed validation fails");
        assert_eq!(std::fs::read_to_string(dest).unwrap(), "old\n");
        assert_eq!(names(dir.path()), ["haproxy.cfg"]);
        std::fs::write(&leftover, "older candidate\n").unwrap();
        std::fs::write(&temp, "new\n").unwrap();
        assert!(run(&format!("grep -q new {}", quote(&temp)), &temp));
        assert_eq!(std::fs::read_to_string(dest).unwrap(), "new\n");
        assert_eq!(names(dir.path()), ["haproxy.cfg"]);
    }
}
