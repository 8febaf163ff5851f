//! What happens during a run, as events: printed for people, or as JSON lines for CI.

use serde::Serialize;

use super::order::StepKey;
use pgdeploy_core::change::Change;

/// How one step ended on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to change.
    Ok,
    /// Changed (apply) or would change (plan/check).
    Changed,
    /// Its `when` was false.
    Skipped,
    Failed,
    /// The host could not be reached while running it.
    Unreachable,
}

/// One event of a run. Serialized with an `event` tag, one JSON object per line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        mode: &'static str,
        hosts: usize,
        steps: usize,
        /// Every step of the run, for the text report's order (not in the JSON event).
        #[serde(skip)]
        order: Vec<StepKey>,
    },
    HostUnreachable {
        host: String,
        error: String,
    },
    FactsGathered {
        host: String,
    },
    /// Another pgdeploy run (an apply, a day-2 command) holds the host's lock: this apply
    /// changes nothing.
    HostBusy {
        host: String,
        held_by: String,
    },
    /// The host's apply lock could not be taken: this apply changes nothing.
    HostLockFailed {
        host: String,
        error: String,
    },
    StepStarted {
        host: String,
        task: String,
        module: String,
    },
    StepFinished {
        host: String,
        task: String,
        module: String,
        status: Status,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        changes: Vec<Change>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        duration_ms: u64,
        /// Where the result stands in the text report (not in the JSON event).
        #[serde(skip)]
        key: StepKey,
    },
    Recap {
        hosts: Vec<HostRecap>,
    },
}

/// Counts of one host's step results.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HostRecap {
    pub host: String,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub unreachable: bool,
}

/// Receives the events of a run (printing them, collecting them in tests).
pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event);
    /// A step ended without running (its host went down, its handler was not notified, the
    /// run was stopped): the text report need not wait for its result.
    fn step_passed(&self, _key: StepKey) {}
}
