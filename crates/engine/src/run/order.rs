//! The order of the text report: by play, then the play's tasks before its handlers, then
//! task, then the host's place in the inventory. Hosts finish steps in any order; results
//! are held back until every step before them in this order has finished (or was passed
//! over: its host went down, its handler was not notified), so the report is the same from
//! run to run while still appearing as the run goes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compile::{Compiled, StepKind};

/// Where a step's result stands in the report; ordered as the module documentation says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StepKey {
    pub play: usize,
    pub handler: bool,
    /// The task's (or handler's) index in its play.
    pub index: usize,
    /// The host's index in the run's hosts (inventory order).
    pub host: usize,
}

/// Each step's key, by node index of the step graph; `None` for barriers.
pub fn step_keys(compiled: &Compiled) -> Vec<Option<StepKey>> {
    let hosts: std::collections::HashMap<&str, usize> = compiled
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let host_index = |h: &str| hosts.get(h).copied().unwrap_or(usize::MAX);
    compiled
        .graph
        .node_indices()
        .map(|n| match &compiled.graph[n].kind {
            StepKind::Task {
                play, task, host, ..
            } => Some(StepKey {
                play: *play,
                handler: false,
                index: *task,
                host: host_index(host),
            }),
            StepKind::Handler {
                play,
                handler,
                host,
                ..
            } => Some(StepKey {
                play: *play,
                handler: true,
                index: *handler,
                host: host_index(host),
            }),
            StepKind::Barrier { .. } => None,
        })
        .collect()
}

/// Results held until their turn.
#[derive(Debug)]
pub struct InOrder<T> {
    order: Vec<StepKey>,
    next: usize,
    /// Arrived ahead of their turn; `None` for a step passed over.
    waiting: BTreeMap<StepKey, Option<T>>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder::new(Vec::new())
    }
}

impl<T> InOrder<T> {
    /// Every step of the run, in any order.
    pub fn new(mut order: Vec<StepKey>) -> Self {
        order.sort();
        order.dedup();
        InOrder {
            order,
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// A step's result; returns the results whose turn has now come, in order.
    pub fn finished(&mut self, key: StepKey, item: T) -> Vec<T> {
        self.waiting.insert(key, Some(item));
        self.release()
    }

    /// A step that ended without a result; returns the results whose turn has now come.
    pub fn passed(&mut self, key: StepKey) -> Vec<T> {
        self.waiting.entry(key).or_insert(None);
        self.release()
    }

    /// The run is over: everything still held, in order.
    pub fn rest(&mut self) -> Vec<T> {
        self.next = self.order.len();
        std::mem::take(&mut self.waiting)
            .into_values()
            .flatten()
            .collect()
    }

    fn release(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(key) = self.order.get(self.next) {
            let Some(item) = self.waiting.remove(key) else {
                break;
            };
            out.extend(item);
            self.next += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(play: usize, handler: bool, index: usize, host: usize) -> StepKey {
        StepKey {
            play,
            handler,
            index,
            host,
        }
    }

    #[test]
    fn results_come_out_in_report_order_whatever_order_they_finish_in() {
        let a = key(0, false, 0, 0);
        let b = key(0, false, 0, 1);
        let c = key(0, false, 1, 0);
        let h = key(0, true, 0, 0);
        let d = key(1, false, 0, 0);
        let mut o = InOrder::new(vec![d, h, c, b, a]);
        assert_eq!(o.finished(c, "c"), Vec::<&str>::new());
        assert_eq!(o.finished(b, "b"), Vec::<&str>::new());
        assert_eq!(o.finished(a, "a"), vec!["a", "b", "c"]);
        assert_eq!(
            o.finished(d, "d"),
            Vec::<&str>::new(),
            "waits for the handler"
        );
        assert_eq!(o.passed(h), vec!["d"]);
        assert!(o.rest().is_empty());
    }

    #[test]
    fn what_never_got_its_turn_comes_out_at_the_end_in_order() {
        let a = key(0, false, 0, 0);
        let b = key(0, false, 0, 1);
        let c = key(0, false, 1, 0);
        let mut o = InOrder::new(vec![a, b, c]);
        assert!(o.finished(c, "c").is_empty());
        assert!(o.finished(b, "b").is_empty());
        assert_eq!(o.rest(), vec!["b", "c"]);
    }
}
