//! Telling whether the plan made again now is the saved one: input files by digest, steps by
//! their shown changes; and saying what differs when it is not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::format::{EnvDigest, FileDigest, SavedStep};
use pgdeploy_core::inputs::InputFile;

/// At most this many lines of one step's difference are shown.
const MAX_DIFF_LINES: usize = 40;
/// At most this many differing steps are shown.
const MAX_SHOWN: usize = 10;

/// Why `apply PLANFILE` refused. Nothing was changed on any host when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "cannot apply `{plan}`: `{file}` changed since the plan was made; make the plan again"
    )]
    InputChanged { plan: PathBuf, file: PathBuf },
    #[error(
        "cannot apply `{plan}`: `{file}` cannot be read any more ({reason}); make the plan again"
    )]
    InputGone {
        plan: PathBuf,
        file: PathBuf,
        reason: String,
    },
    #[error(
        "cannot apply `{plan}`: `{file}` is read now and was not when the plan was made; make the plan again"
    )]
    InputNew { plan: PathBuf, file: PathBuf },
    #[error("cannot apply `{plan}`: environment variable `{name}` changed since the plan was made; make the plan again")]
    EnvChanged { plan: PathBuf, name: String },
    #[error("cannot apply `{plan}`: environment variable `{name}` is read now and was not when the plan was made; make the plan again")]
    EnvNew { plan: PathBuf, name: String },
    #[error("{}", stale_message(plan, differences))]
    Stale {
        plan: PathBuf,
        differences: Vec<Difference>,
    },
}

/// One step whose plan now is not the saved one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub host: String,
    pub task: String,
    /// What differs, in a few words.
    pub what: String,
    /// A unified diff of the step as saved and as planned now (one side empty when the step
    /// is missing there).
    pub diff: String,
}

/// Each saved file read again, each saved environment variable looked up again: their
/// digests must be the same.
pub fn check_inputs(plan: &Path, saved: &[FileDigest], env: &[EnvDigest]) -> Result<(), Refused> {
    for e in env {
        let now = std::env::var(&e.name).ok();
        if pgdeploy_core::inputs::env_digest(now.as_deref()) != e.sha256 {
            return Err(Refused::EnvChanged {
                plan: plan.to_path_buf(),
                name: e.name.clone(),
            });
        }
    }
    for f in saved {
        match std::fs::read(&f.absolute) {
            Ok(bytes) if pgdeploy_core::inputs::sha256_hex(&bytes) == f.sha256 => {}
            Ok(_) => {
                return Err(Refused::InputChanged {
                    plan: plan.to_path_buf(),
                    file: f.path.clone(),
                })
            }
            Err(e) => {
                return Err(Refused::InputGone {
                    plan: plan.to_path_buf(),
                    file: f.path.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// The files and variables read by loading (and planning) again: each must be a saved one,
/// unchanged. A new `host_vars` file, or a file that changed after [`check_inputs`] read it,
/// refuses.
pub fn check_reads(
    plan: &Path,
    saved: &[FileDigest],
    env: &[EnvDigest],
    read: &[InputFile],
    read_env: &[(String, String)],
) -> Result<(), Refused> {
    let env: BTreeMap<&str, &str> = env
        .iter()
        .map(|e| (e.name.as_str(), e.sha256.as_str()))
        .collect();
    for (name, digest) in read_env {
        match env.get(name.as_str()) {
            Some(d) if d == digest => {}
            Some(_) => {
                return Err(Refused::EnvChanged {
                    plan: plan.to_path_buf(),
                    name: name.clone(),
                })
            }
            None => {
                return Err(Refused::EnvNew {
                    plan: plan.to_path_buf(),
                    name: name.clone(),
                })
            }
        }
    }
    let saved: BTreeMap<&Path, &FileDigest> =
        saved.iter().map(|f| (f.absolute.as_path(), f)).collect();
    for r in read {
        match saved.get(r.absolute.as_path()) {
            Some(f) if f.sha256 == r.sha256 => {}
            Some(f) => {
                return Err(Refused::InputChanged {
                    plan: plan.to_path_buf(),
                    file: f.path.clone(),
                })
            }
            None => {
                return Err(Refused::InputNew {
                    plan: plan.to_path_buf(),
                    file: r.path.clone(),
                })
            }
        }
    }
    Ok(())
}

/// The steps whose status or shown changes differ between the saved plan and `now`, in the
/// report's order. Notes are not compared: they are advice, not work.
pub fn compare(saved: &[SavedStep], now: &[SavedStep]) -> Vec<Difference> {
    let saved: BTreeMap<_, &SavedStep> = saved.iter().map(|s| (s.place(), s)).collect();
    let now: BTreeMap<_, &SavedStep> = now.iter().map(|s| (s.place(), s)).collect();
    let mut places: Vec<_> = saved.keys().chain(now.keys()).copied().collect();
    places.sort();
    places.dedup();
    let mut out = Vec::new();
    for place in places {
        let (before, after) = (saved.get(&place), now.get(&place));
        let what = match (before, after) {
            (Some(b), Some(a)) if b.status == a.status && b.changes == a.changes => continue,
            (Some(b), Some(a)) if b.changes == a.changes => format!(
                "`{}` in the plan, `{}` now",
                b.status.word(),
                a.status.word()
            ),
            (Some(_), Some(_)) => "the planned changes differ".to_string(),
            (Some(_), None) => "in the plan, not planned now".to_string(),
            (None, Some(_)) => "planned now, not in the plan".to_string(),
            (None, None) => continue,
        };
        let step = after.or(before).copied().expect("one of them is there");
        let text = |s: Option<&&SavedStep>| s.map(|s| step_text(s)).unwrap_or_default();
        out.push(Difference {
            host: step.host.clone(),
            task: step.task.clone(),
            what,
            diff: short_diff(&text(before), &text(after)),
        });
    }
    out
}

/// A step as the text report shows it: status, then each change and its diff.
fn step_text(s: &SavedStep) -> String {
    let mut out = format!("{}\n", s.status.word());
    for c in &s.changes {
        let _ = writeln!(out, "  {}", c.summary);
        for line in c.diff.as_deref().unwrap_or("").lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// The unified diff of two step texts, at most [`MAX_DIFF_LINES`] lines.
fn short_diff(saved: &str, now: &str) -> String {
    let text = similar::TextDiff::from_lines(saved, now)
        .unified_diff()
        .context_radius(2)
        .header("in the plan", "planned now")
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out: String = lines
        .iter()
        .take(MAX_DIFF_LINES)
        .map(|l| format!("{l}\n"))
        .collect();
    if lines.len() > MAX_DIFF_LINES {
        let _ = writeln!(out, "… {} more lines", lines.len() - MAX_DIFF_LINES);
    }
    out
}

/// The refusal of a stale plan: which host, which task, what differs.
fn stale_message(plan: &Path, differences: &[Difference]) -> String {
    let hosts: std::collections::BTreeSet<&str> =
        differences.iter().map(|d| d.host.as_str()).collect();
    let hosts: Vec<String> = hosts.iter().map(|h| format!("`{h}`")).collect();
    let noun = if hosts.len() == 1 { "host" } else { "hosts" };
    let mut out = format!(
        "cannot apply `{}`: {noun} {} changed since the plan was made, nothing was applied",
        plan.display(),
        hosts.join(", ")
    );
    for d in differences.iter().take(MAX_SHOWN) {
        let _ = write!(out, "\n  [{}] {}: {}", d.host, d.task, d.what);
        for line in d.diff.lines() {
            let _ = write!(out, "\n      {line}");
        }
    }
    if differences.len() > MAX_SHOWN {
        let _ = write!(
            out,
            "\n  and {} other steps differ",
            differences.len() - MAX_SHOWN
        );
    }
    let _ = write!(
        out,
        "\n  a saved plan is applied only while the hosts are in the state it was made from: make the plan again and review it"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::format::{SavedChange, StepStatus};
    use super::*;

    fn step(index: usize, host: &str, changes: &[(&str, Option<&str>)]) -> SavedStep {
        SavedStep {
            play: 0,
            handler: false,
            index,
            task: format!("task {index}"),
            module: "copy".into(),
            host: host.into(),
            status: if changes.is_empty() {
                StepStatus::Ok
            } else {
                StepStatus::Changed
            },
            changes: changes
                .iter()
                .map(|(s, d)| SavedChange {
                    summary: s.to_string(),
                    diff: d.map(str::to_string),
                })
                .collect(),
            notes: vec![],
        }
    }

    #[test]
    fn same_steps_match_whatever_their_notes() {
        let a = vec![
            step(0, "db1", &[]),
            step(1, "db1", &[("update `/x`", None)]),
        ];
        let mut b = a.clone();
        b[0].notes.push("not installed yet".into());
        assert!(compare(&a, &b).is_empty());
    }

    #[test]
    fn a_stale_plan_names_host_task_and_difference() {
        let saved = vec![
            step(0, "db1", &[]),
            step(
                1,
                "db1",
                &[(
                    "update `/srv/app.conf` content",
                    Some("--- /srv/app.conf (current)\n+++ /srv/app.conf (wanted)\n@@ -1,2 +1,2 @@\n port = 5432\n-max = 500\n+max = 100\n"),
                )],
            ),
            step(1, "db2", &[]),
        ];
        let now = vec![
            step(0, "db1", &[]),
            step(
                1,
                "db1",
                &[(
                    "update `/srv/app.conf` content",
                    Some("--- /srv/app.conf (current)\n+++ /srv/app.conf (wanted)\n@@ -1,2 +1,2 @@\n port = 5432\n-max = 600\n+max = 100\n"),
                )],
            ),
            step(1, "db2", &[("create `/srv/new`", None)]),
            step(2, "db2", &[("restart `app`", None)]),
        ];
        let differences = compare(&saved, &now);
        assert_eq!(differences.len(), 3);
        let refused = Refused::Stale {
            plan: "plan.json".into(),
            differences,
        };
        insta::assert_snapshot!("stale_plan_refusal", refused.to_string());
    }

    #[test]
    fn changed_and_new_input_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("inv.yml");
        std::fs::write(&inv, "all: {}\n").unwrap();
        let saved = vec![FileDigest {
            path: "inventories/inv.yml".into(),
            absolute: inv.clone(),
            sha256: pgdeploy_core::inputs::sha256_hex(b"all: {}\n"),
        }];
        let plan = Path::new("p.json");
        check_inputs(plan, &saved, &[]).unwrap();
        std::fs::write(&inv, "all: {hosts: {x: {}}}\n").unwrap();
        assert_eq!(
            check_inputs(plan, &saved, &[]).unwrap_err().to_string(),
            "cannot apply `p.json`: `inventories/inv.yml` changed since the plan was made; make the plan again"
        );
        let new = InputFile {
            path: "inventories/host_vars/x.yml".into(),
            absolute: dir.path().join("host_vars/x.yml"),
            sha256: "00".into(),
        };
        assert_eq!(
            check_reads(plan, &saved, &[], &[new], &[]).unwrap_err().to_string(),
            "cannot apply `p.json`: `inventories/host_vars/x.yml` is read now and was not when the plan was made; make the plan again"
        );
        let env = [EnvDigest {
            name: "PGDEPLOY_TEST_SURELY_UNSET".into(),
            sha256: pgdeploy_core::inputs::env_digest(Some("old")),
        }];
        assert_eq!(
            check_inputs(plan, &[], &env).unwrap_err().to_string(),
            "cannot apply `p.json`: environment variable `PGDEPLOY_TEST_SURELY_UNSET` changed since the plan was made; make the plan again"
        );
        let read_env = [("HOME".to_string(), "00".to_string())];
        assert!(matches!(
            check_reads(plan, &saved, &env, &[], &read_env),
            Err(Refused::EnvNew { .. })
        ));
        std::fs::remove_file(&inv).unwrap();
        assert!(matches!(
            check_inputs(plan, &saved, &[]),
            Err(Refused::InputGone { .. })
        ));
    }
}
