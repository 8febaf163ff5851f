//! Printing events: plain lines for people (progress bars on a terminal), or JSON lines.
//! Every string goes through the [`Redactor`] first.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::{Event, HostRecap, Reporter, Status};
use crate::secrets::Redactor;

/// One JSON object per line on stdout.
pub struct JsonReporter {
    pub redactor: Redactor,
}

impl Reporter for JsonReporter {
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
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.redactor.mask(&line));
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
    progress: Option<Progress>,
    /// Keeps the output of concurrent steps from interleaving inside one block.
    lock: Mutex<()>,
}

struct Progress {
    multi: MultiProgress,
    total: ProgressBar,
}

impl HumanReporter {
    pub fn new(redactor: Redactor, color: bool, diff: bool, planning: bool) -> Self {
        let progress = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = multi.add(ProgressBar::new(0));
            total.set_style(
                ProgressStyle::with_template("{spinner} {pos}/{len} steps {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Progress { multi, total }
        });
        HumanReporter {
            redactor,
            color,
            diff,
            planning,
            progress,
            lock: Mutex::new(()),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn emit(&self, text: &str) {
        let text = self.redactor.mask(text);
        match &self.progress {
            Some(p) => {
                for line in text.lines() {
                    let _ = p.multi.println(line);
                }
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{text}");
            }
        }
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
    fn event(&self, event: &Event) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStarted { steps, .. } => {
                if let Some(p) = &self.progress {
                    p.total.set_length(*steps as u64);
                }
            }
            Event::HostUnreachable { host, error } => {
                let tag = self.paint("31", "unreachable");
                self.emit(&format!("{tag} [{host}] {error}\n"));
            }
            Event::FactsGathered { .. } => {}
            Event::StepStarted { host, task, .. } => {
                if let Some(p) = &self.progress {
                    p.total.set_message(format!("[{host}] {task}"));
                }
            }
            Event::StepFinished {
                host,
                task,
                status,
                changes,
                notes,
                error,
                ..
            } => {
                if let Some(p) = &self.progress {
                    p.total.inc(1);
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
                    text.push_str(&format!("    {}\n", c.summary));
                    if let (true, Some(d)) = (self.diff, &self.redactor.mask_change(c).diff) {
                        text.push_str(&self.diff_text(&d.unified()));
                    }
                }
                for n in notes {
                    text.push_str(&format!("    {} {}\n", self.paint("35", "note:"), n));
                }
                self.emit(&text);
            }
            Event::Recap { hosts } => {
                if let Some(p) = &self.progress {
                    p.total.finish_and_clear();
                }
                self.emit(&self.recap_text(hosts));
            }
        }
    }
}
