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
#[derive(Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// The module's typed description of the work, for its own `apply`.
    work: Option<Box<dyn Any + Send + Sync>>,
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
            work: Some(Box::new(work)),
        }
    }
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
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
    }
}
