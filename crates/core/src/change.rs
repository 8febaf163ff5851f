//! What a module found to change on a host, and how it is shown.
//!
//! A module's `plan` returns a [`Plan`]: human-readable [`Change`]s (each with an optional
//! file [`Diff`]) for output, plus the module's own typed description of the work, which
//! only its `apply` reads. `plan`/`check` stop after planning; `apply` executes exactly the
//! planned changes.

use std::any::Any;

/// One change to make on a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// What changes, e.g. "create `/etc/etcd/etcd.env` (owner `etcd`, mode 0640)".
    pub summary: String,
    /// For file contents: before and after, shown as a unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
}

impl Change {
    pub fn new(summary: impl Into<String>) -> Self {
        Change {
            summary: summary.into(),
            diff: None,
        }
    }
    pub fn with_diff(mut self, diff: Diff) -> Self {
        self.diff = Some(diff);
        self
    }
}

/// A text before and after. Masking of secrets happens where it is printed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    pub path: String,
    /// `None` when the file does not exist yet.
    pub before: Option<String>,
    /// `None` when the file is removed.
    pub after: Option<String>,
}

impl Diff {
    /// The unified diff text (`--- before`, `+++ after`, hunks with 3 lines of context).
    pub fn unified(&self) -> String {
        let before = self.before.as_deref().unwrap_or("");
        let after = self.after.as_deref().unwrap_or("");
        let old = if self.before.is_some() {
            format!("{} (current)", self.path)
        } else {
            "/dev/null".to_string()
        };
        let new = if self.after.is_some() {
            format!("{} (wanted)", self.path)
        } else {
            "/dev/null".to_string()
        };
        similar::TextDiff::from_lines(before, after)
            .unified_diff()
            .context_radius(3)
            .header(&old, &new)
            .missing_newline_hint(true)
            .to_string()
    }
}

/// The outcome of planning one task on one host.
///
/// Most plans are either unchanged (nothing to apply) or a list of changes. Two extras serve
/// modules that cannot know everything in advance, such as `command`:
/// - [`Plan::run_unchanged`]: work that `apply` must run although it changes nothing worth
///   reporting (`changed_when: false`), so `plan`/`check` show no drift for it;
/// - [`Plan::report_changed`]: `apply` tells the engine whether it really changed something
///   (`changed_when: EXPR` is only known once the command ran).
#[derive(Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Things the user should know that are not changes (a restart the module may not do,
    /// a cluster member the inventory does not list); shown, never counted as changed.
    pub notes: Vec<String>,
    /// The module's typed description of the work, for its own `apply`.
    work: Option<Box<dyn Any + Send + Sync>>,
    /// What `apply` found, when it decides itself whether it changed something.
    outcome: std::sync::OnceLock<bool>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// Nothing to do: the host is as wanted.
    pub fn unchanged() -> Self {
        Plan::default()
    }
    /// Changes to make, with the module's typed work for `apply`.
    pub fn changes<W: Any + Send + Sync>(changes: Vec<Change>, work: W) -> Self {
        Plan {
            changes,
            notes: Vec::new(),
            work: Some(Box::new(work)),
            outcome: Default::default(),
        }
    }
    /// Work to apply that changes nothing to report: `apply` must be called all the same.
    pub fn run_unchanged<W: Any + Send + Sync>(work: W) -> Self {
        Plan {
            changes: Vec::new(),
            notes: Vec::new(),
            work: Some(Box::new(work)),
            outcome: Default::default(),
        }
    }
    /// Adds a note (builder style).
    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }
    /// Whether the engine must call `apply`: there are changes, or work to run regardless.
    pub fn needs_apply(&self) -> bool {
        self.is_changed() || self.work.is_some()
    }
    /// Called by `apply` when the module itself decides whether it changed the host. The
    /// first report wins.
    pub fn report_changed(&self, changed: bool) {
        let _ = self.outcome.set(changed);
    }
    /// Whether applying this plan changed the host: what `apply` reported, else whether
    /// changes were planned.
    pub fn applied_changed(&self) -> bool {
        self.outcome
            .get()
            .copied()
            .unwrap_or_else(|| self.is_changed())
    }
    /// The typed work stored by `plan`.
    pub fn work<W: Any>(&self) -> Option<&W> {
        self.work.as_ref()?.downcast_ref::<W>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_of_an_edit() {
        let d = Diff {
            path: "/etc/x.conf".into(),
            before: Some("a\nb\nc\n".into()),
            after: Some("a\nB\nc\n".into()),
        };
        assert_eq!(
            d.unified(),
            "--- /etc/x.conf (current)\n+++ /etc/x.conf (wanted)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
    }

    #[test]
    fn plan_keeps_typed_work() {
        let p = Plan::changes(vec![Change::new("x")], 42u32);
        assert_eq!(p.work::<u32>(), Some(&42));
        assert!(p.work::<String>().is_none());
        assert!(!Plan::unchanged().is_changed());
        assert!(!Plan::unchanged().needs_apply());
    }

    #[test]
    fn run_unchanged_and_reported_outcome() {
        let p = Plan::run_unchanged(1u8);
        assert!(!p.is_changed() && p.needs_apply() && !p.applied_changed());
        p.report_changed(true);
        assert!(p.applied_changed());
        let q = Plan::changes(vec![Change::new("run `x`")], 1u8);
        assert!(q.applied_changed());
        q.report_changed(false);
        assert!(!q.applied_changed());
    }
}
