//! `--tags`/`--skip-tags`: which tasks of a playbook run, decided as Ansible decides it.
//!
//! A task's tags are its own plus its play's. The special tags are Ansible's: `always` runs
//! unless skipped by name (`--skip-tags always`, or another of its tags); `never` runs only when another of its tags (or `never`) is asked
//! for; `all` (the default of `--tags`) is every task but `never` ones; `tagged` and
//! `untagged` select tasks with and without tags. Handlers ignore tags (Ansible's documented
//! rule): they run when a selected task notifies them.
//!
//! The selection is applied to the loaded playbook before it is compiled, so a filtered-out
//! task is in no graph, plan or apply.

use super::{Playbook, Task};
use pgdeploy_core::diag::{Diagnostic, Diagnostics};

/// Ansible's special tags, which no `--tags` warning is about.
const SPECIAL: &[&str] = &["all", "always", "never", "tagged", "untagged"];

/// What `--tags` and `--skip-tags` asked for (each comma-separated, repeatable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSelection {
    /// Empty means Ansible's default, `all`.
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagSelection {
    /// From the flags' values; `a,b` is split, blanks are dropped.
    pub fn new(only: &[String], skip: &[String]) -> Self {
        let split = |values: &[String]| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for v in values.iter().flat_map(|v| v.split(',')) {
                let v = v.trim();
                if !v.is_empty() && !out.iter().any(|o| o == v) {
                    out.push(v.to_string());
                }
            }
            out
        };
        TagSelection {
            only: split(only),
            skip: split(skip),
        }
    }

    /// Whether a task with these (own and inherited) tags runs: Ansible's
    /// `Taggable.evaluate_tags`.
    pub fn runs(&self, tags: &[&str]) -> bool {
        let untagged = ["untagged"];
        let tags: &[&str] = if tags.is_empty() { &untagged } else { tags };
        let has = |t: &str| tags.contains(&t);
        let is_untagged = tags == untagged;
        let only: Vec<&str> = if self.only.is_empty() {
            vec!["all"]
        } else {
            self.only.iter().map(String::as_str).collect()
        };
        let skip: Vec<&str> = self.skip.iter().map(String::as_str).collect();
        let asked = |set: &[&str]| tags.iter().any(|t| set.contains(t));
        let selected = has("always")
            || (only.contains(&"all") && !has("never"))
            || asked(&only)
            || (only.contains(&"tagged") && !is_untagged && !has("never"));
        if !selected {
            return false;
        }
        if skip.contains(&"all") {
            return has("always") && !skip.contains(&"always");
        }
        !(asked(&skip) || (skip.contains(&"tagged") && !is_untagged))
    }
}

/// Removes the tasks the selection does not run, and the handlers only such tasks notified
/// (they can no longer run; a handler nothing notifies stays, for the compiler's warning).
/// Warns about a `--tags`/`--skip-tags` name that no play or task has.
pub fn select(playbook: &mut Playbook, selection: &TagSelection) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let known: Vec<&str> = playbook
        .plays
        .iter()
        .flat_map(|p| {
            p.tags
                .iter()
                .chain(p.tasks.iter().flat_map(|t| t.tags.iter()))
        })
        .map(String::as_str)
        .collect();
    for (flag, names) in [
        ("--tags", &selection.only),
        ("--skip-tags", &selection.skip),
    ] {
        for name in names {
            if SPECIAL.contains(&name.as_str()) || known.contains(&name.as_str()) {
                continue;
            }
            let mut listed: Vec<&str> = known
                .iter()
                .copied()
                .filter(|t| !SPECIAL.contains(t))
                .collect();
            listed.sort_unstable();
            listed.dedup();
            let mut help = if listed.is_empty() {
                "the playbook has no tags".to_string()
            } else {
                let names: Vec<String> = listed.iter().map(|t| format!("`{t}`")).collect();
                format!("the playbook's tags are {}", names.join(", "))
            };
            if let Some(best) = pgdeploy_core::diag::did_you_mean(name, listed.iter().copied()) {
                help = format!("did you mean `{best}`? ({help})");
            }
            diags.push(
                Diagnostic::warning(None, flag, format!("no play or task has the tag `{name}`"))
                    .with_help(help),
            );
        }
    }
    // Even the default selection filters: `never` tasks do not run unless asked for.
    for play in &mut playbook.plays {
        let play_tags = play.tags.clone();
        let runs = |t: &Task| {
            let all: Vec<&str> = t
                .tags
                .iter()
                .chain(&play_tags)
                .map(String::as_str)
                .collect();
            selection.runs(&all)
        };
        let (kept, dropped): (Vec<Task>, Vec<Task>) =
            std::mem::take(&mut play.tasks).into_iter().partition(runs);
        play.tasks = kept;
        let names = |tasks: &[Task]| -> Vec<String> {
            tasks.iter().filter_map(|t| t.name.clone()).collect()
        };
        let (kept_names, dropped_names) = (names(&play.tasks), names(&dropped));
        for task in &mut play.tasks {
            // A `wait_for` on a task that does not run waits for nothing.
            task.wait_for
                .retain(|w| kept_names.contains(&w.value) || !dropped_names.contains(&w.value));
        }
        let notified_by = |tasks: &[Task], h: &Task| {
            tasks
                .iter()
                .any(|t| t.notify.iter().any(|n| h.answers(&n.value)))
        };
        let tasks = &play.tasks;
        play.handlers
            .retain(|h| notified_by(tasks, h) || !notified_by(&dropped, h));
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(only: &str, skip: &str) -> TagSelection {
        let list = |s: &str| {
            if s.is_empty() {
                vec![]
            } else {
                vec![s.to_string()]
            }
        };
        TagSelection::new(&list(only), &list(skip))
    }

    /// The table of Ansible's behaviour for an untagged, a `normal`, a `never, run-never` and
    /// an `always, exclude-always` task (as `ansible-playbook` 2.x prints them).
    #[test]
    fn ansible_special_tags() {
        let untagged: &[&str] = &[];
        let normal: &[&str] = &["normal"];
        let never: &[&str] = &["never", "run-never"];
        let always: &[&str] = &["always", "exclude-always"];
        let cases = [
            ("", "", [true, true, false, true]),
            ("run-never", "", [false, false, true, true]),
            ("untagged", "", [true, false, false, true]),
            ("all", "", [true, true, false, true]),
            ("untagged,run-never", "", [true, false, true, true]),
            ("all,run-never", "", [true, true, true, true]),
            ("", "always", [true, true, false, false]),
            ("all,run-never", "always", [true, true, true, false]),
            ("tagged", "", [false, true, false, true]),
            ("", "tagged", [true, false, false, false]),
            ("", "untagged", [false, true, false, true]),
            ("", "all", [false, false, false, true]),
            ("", "all,always", [false, false, false, false]),
            ("never", "", [false, false, true, true]),
            ("normal", "exclude-always", [false, true, false, false]),
        ];
        for (only, skip, expected) in cases {
            let s = sel(only, skip);
            let got = [untagged, normal, never, always].map(|t| s.runs(t));
            assert_eq!(got, expected, "--tags {only:?} --skip-tags {skip:?}");
        }
    }

    #[test]
    fn flags_split_on_commas() {
        let s = TagSelection::new(&["a, b".into(), "c".into()], &["d,,a".into()]);
        assert_eq!(s.only, ["a", "b", "c"]);
        assert_eq!(s.skip, ["d", "a"]);
    }
}
