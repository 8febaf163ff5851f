//! Collecting each step's planned changes from the run's events, as they are shown.
//!
//! The executor already reports every step's result (`StepFinished`, with its changes) to a
//! [`Reporter`]; a saved plan listens to the same events rather than asking the executor for
//! more, so planning for a saved plan is exactly planning.

use std::sync::{Arc, Mutex};

use super::format::{SavedChange, SavedStep};
use crate::run::events::{Event, Reporter};
use crate::run::order::StepKey;
use pgdeploy_core::change::Change;
use pgdeploy_core::secrets::Redactor;

/// Keeps every finished step, its changes masked as the text report shows them.
pub struct Capture {
    redactor: Redactor,
    steps: Mutex<Vec<SavedStep>>,
}

impl Capture {
    pub fn new(redactor: Redactor) -> Self {
        Capture {
            redactor,
            steps: Mutex::new(Vec::new()),
        }
    }

    /// The steps collected so far, in the text report's order.
    pub fn steps(&self) -> Vec<SavedStep> {
        let mut steps = self.lock().clone();
        steps.sort_by(|a, b| a.place().cmp(&b.place()));
        steps
    }

    /// `change` as the text report prints it: the summary and the unified diff, masked the
    /// same way (old values of rotated secrets too: [`Redactor::mask_change`]).
    pub fn shown(redactor: &Redactor, change: &Change) -> SavedChange {
        SavedChange {
            summary: redactor.mask(&change.summary),
            diff: redactor
                .mask_change(change)
                .diff
                .map(|d| redactor.mask(&d.unified())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SavedStep>> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reporter for Capture {
    fn event(&self, event: &Event) {
        let Event::StepFinished {
            host,
            task,
            module,
            status,
            changes,
            notes,
            key:
                StepKey {
                    play,
                    handler,
                    index,
                    ..
                },
            ..
        } = event
        else {
            return;
        };
        let step = SavedStep {
            play: *play,
            handler: *handler,
            index: *index,
            task: self.redactor.mask(task),
            module: module.clone(),
            host: host.clone(),
            status: (*status).into(),
            changes: changes
                .iter()
                .map(|c| Capture::shown(&self.redactor, c))
                .collect(),
            notes: notes.iter().map(|n| self.redactor.mask(n)).collect(),
        };
        self.lock().push(step);
    }
}

/// Every event to both reporters: the run's own output and a [`Capture`].
pub struct Tee(pub Arc<dyn Reporter>, pub Arc<dyn Reporter>);

impl Reporter for Tee {
    fn event(&self, event: &Event) {
        self.0.event(event);
        self.1.event(event);
    }

    fn step_passed(&self, key: StepKey) {
        self.0.step_passed(key);
        self.1.step_passed(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::events::Status;
    use pgdeploy_core::change::Diff;

    #[test]
    fn changes_are_kept_as_shown_secrets_masked_in_report_order() {
        let redactor = Redactor::new(vec!["NewSecret2\"x".into()]);
        let capture = Capture::new(redactor);
        let change = Change::new("update `/etc/app.conf`").with_diff(Diff {
            path: "/etc/app.conf".into(),
            before: Some("password = OldSecret1\n".into()),
            after: Some("password = NewSecret2\"x\n".into()),
        });
        for (index, changes) in [(1, vec![change]), (0, vec![])] {
            capture.event(&Event::StepFinished {
                host: "db1".into(),
                task: format!("task {index}"),
                module: "copy".into(),
                status: if changes.is_empty() {
                    Status::Ok
                } else {
                    Status::Changed
                },
                changes,
                notes: vec![],
                error: None,
                duration_ms: 1,
                key: StepKey {
                    play: 0,
                    handler: false,
                    index,
                    host: 0,
                },
            });
        }
        let steps = capture.steps();
        assert_eq!(steps[0].task, "task 0");
        let diff = steps[1].changes[0].diff.as_deref().unwrap();
        assert_eq!(
            diff,
            "--- /etc/app.conf (current)\n+++ /etc/app.conf (wanted)\n@@ -1 +1 @@\n-password = ********\n+password = ******** (secret changed)\n"
        );
    }
}
