//! Printing events: plain lines for people, or JSON lines. Every string goes through the
//! [`Redactor`] first, and every result goes to stdout ([`pgdeploy_core::output::write`]).
//!
//! The text report is in a fixed order ([`super::order`]): a step's lines appear once every
//! step before it in that order has finished, so stdout is the same bytes from run to run.
//! JSON events are written as they happen, one per line. The progress bar is on stderr only,
//! drawn only where it can be ([`pgdeploy_core::output::progress_on_stderr`]).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::{Event, HostRecap, Reporter, Status};
use super::order::{InOrder, StepKey};
use pgdeploy_core::secrets::Redactor;

/// One JSON object per line on stdout.
pub struct JsonReporter {
    pub redactor: Redactor,
}

impl Reporter for JsonReporter {
    /// Masked as values before serialization: diffs with [`Redactor::mask_change`] (both
    /// sides, so an unchanged secret line is not a change), every other string field with
    /// [`Redactor::mask_json`]. Escaping then cannot hide a secret from the masking.
    fn event(&self, event: &Event) {
        let masked;
        let event = match event {
            Event::StepFinished { changes, .. } if !changes.is_empty() => {
                let mut e = event.clone();
                if let Event::StepFinished { changes, .. } = &mut e {
                    *changes = changes
                        .iter()
                        .map(|c| self.redactor.mask_change(c))
                        .collect();
                }
                masked = e;
                &masked
            }
            _ => event,
        };
        let Ok(value) = serde_json::to_value(event) else {
            return;
        };
        if let Ok(line) = serde_json::to_string(&self.redactor.mask_json(&value)) {
            pgdeploy_core::output::write(&format!("{line}\n"));
        }
    }
}

/// Lines for people: one per finished step, with changes and (when asked) diffs.
pub struct HumanReporter {
    redactor: Redactor,
    color: bool,
    /// Show unified diffs of file contents (always in plan/check, with `--diff` in apply).
    diff: bool,
    /// Plan mode says "would change".
    planning: bool,
    /// Steps done, on stderr; `None` where it cannot be drawn.
    progress: Option<ProgressBar>,
    /// Finished steps' text waiting for their turn; the lock also keeps the output of
    /// concurrent steps from interleaving inside one block.
    pending: Mutex<InOrder<String>>,
}

impl HumanReporter {
    /// `color`: for stdout; `progress`: whether to draw a progress bar on stderr.
    pub fn new(
        redactor: Redactor,
        color: bool,
        diff: bool,
        planning: bool,
        progress: bool,
    ) -> Self {
        let progress = progress.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos}/{len} steps {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        HumanReporter {
            redactor,
            color,
            diff,
            planning,
            progress,
            pending: Mutex::new(InOrder::default()),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Writes on stdout, the progress bar cleared meanwhile (stdout may be the same terminal).
    fn emit(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        let text = self.redactor.mask(text);
        match &self.progress {
            Some(bar) => bar.suspend(|| pgdeploy_core::output::write(&text)),
            None => pgdeploy_core::output::write(&text),
        }
    }

    fn emit_all(&self, texts: Vec<String>) {
        self.emit(&texts.concat());
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, InOrder<String>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn diff_text(&self, unified: &str) -> String {
        let mut out = String::new();
        for line in unified.lines() {
            let painted = if line.starts_with("+++") || line.starts_with("---") {
                self.paint("1", line)
            } else if line.starts_with('+') {
                self.paint("32", line)
            } else if line.starts_with('-') {
                self.paint("31", line)
            } else if line.starts_with("@@") {
                self.paint("36", line)
            } else {
                line.to_string()
            };
            out.push_str("      ");
            out.push_str(&painted);
            out.push('\n');
        }
        out
    }

    pub fn recap_text(&self, hosts: &[HostRecap]) -> String {
        let width = hosts.iter().map(|h| h.host.len()).max().unwrap_or(4).max(4);
        let mut out = format!("\n{}\n", self.paint("1", "RECAP"));
        for h in hosts {
            let line = format!(
                "{:<width$}  ok={:<4} changed={:<4} failed={:<4} skipped={:<4} unreachable={}",
                h.host,
                h.ok,
                h.changed,
                h.failed,
                h.skipped,
                u8::from(h.unreachable),
            );
            let code = if h.failed > 0 || h.unreachable {
                "31"
            } else if h.changed > 0 {
                "33"
            } else {
                "32"
            };
            out.push_str(&self.paint(code, &line));
            out.push('\n');
        }
        out
    }
}

impl Reporter for HumanReporter {
    fn step_passed(&self, key: StepKey) {
        let mut pending = self.pending();
        let ready = pending.passed(key);
        self.emit_all(ready);
    }

    fn event(&self, event: &Event) {
        let mut pending = self.pending();
        match event {
            Event::RunStarted { order, .. } => {
                if let Some(bar) = &self.progress {
                    bar.set_length(order.len() as u64);
                }
                *pending = InOrder::new(order.clone());
            }
            Event::HostUnreachable { host, error } => {
                let tag = self.paint("31", "unreachable");
                self.emit(&format!("{tag} [{host}] {error}\n"));
            }
            Event::FactsGathered { .. } => {}
            Event::HostBusy { host, held_by } => {
                let tag = self.paint("31", "busy");
                self.emit(&format!(
                    "{tag} [{host}] another pgdeploy run holds this host: {held_by}\n"
                ));
            }
            Event::HostLockFailed { host, error } => {
                let tag = self.paint("31", "failed");
                self.emit(&format!(
                    "{tag} [{host}] cannot take the apply lock: {error}\n"
                ));
            }
            Event::StepStarted { host, task, .. } => {
                if let Some(bar) = &self.progress {
                    bar.set_message(self.redactor.mask(&format!("[{host}] {task}")));
                }
            }
            Event::StepFinished {
                host,
                task,
                status,
                changes,
                notes,
                error,
                key,
                ..
            } => {
                if let Some(bar) = &self.progress {
                    bar.inc(1);
                }
                let tag = match status {
                    Status::Ok => self.paint("32", "ok     "),
                    Status::Changed if self.planning => self.paint("33", "change "),
                    Status::Changed => self.paint("33", "changed"),
                    Status::Skipped => self.paint("36", "skipped"),
                    Status::Failed => self.paint("31", "failed "),
                    Status::Unreachable => self.paint("31", "unreachable"),
                };
                let mut text = format!("{tag} [{host}] {task}");
                if let Some(e) = error {
                    text.push_str(": ");
                    text.push_str(e);
                }
                text.push('\n');
                for c in changes {
                    // Masked before the diff is computed: see `Redactor::mask_change`.
                    let c = self.redactor.mask_change(c);
                    text.push_str(&format!("    {}\n", c.summary));
                    if let (true, Some(d)) = (self.diff, &c.diff) {
                        text.push_str(&self.diff_text(&d.unified()));
                    }
                }
                for n in notes {
                    text.push_str(&format!("    {} {}\n", self.paint("35", "note:"), n));
                }
                let ready = pending.finished(*key, text);
                self.emit_all(ready);
            }
            Event::Recap { hosts } => {
                if let Some(bar) = &self.progress {
                    bar.finish_and_clear();
                }
                self.emit_all(pending.rest());
                // Not masked: host names and counts only, and a secret too short to be masked
                // inside text (`1`) would otherwise hide the counts.
                let recap = self.recap_text(hosts);
                match &self.progress {
                    Some(bar) => bar.suspend(|| pgdeploy_core::output::write(&recap)),
                    None => pgdeploy_core::output::write(&recap),
                }
            }
        }
    }
}
