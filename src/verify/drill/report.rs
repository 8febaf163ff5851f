//! A drill's figures from what the load and the watcher recorded (pure, unit-tested) and
//! their output: a table, or one JSON document (the last line of `--json`'s events).
//!
//! - RTO: the longest gap between two acknowledged commits, the drill's end counting as one
//!   (writes that never came back are a gap to the end, flagged).
//! - RPO: the acknowledged sequence numbers missing from the new leader's table.
//! - Two writable primaries: any watcher round where more than one member answered
//!   `pg_is_in_recovery() = false`.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use super::load::Ack;
use super::watch::Round;
use crate::verify::Finding;

/// The longest gap between acknowledged commits, as (gap, from, to) in seconds since the
/// drill's start; `end` (when the load stopped) closes the last gap. `None` without commits.
pub(crate) fn rto(acks: &[Ack], end: Duration) -> Option<(f64, f64, f64)> {
    let first = acks.first()?;
    let mut best = (0.0, first.at.as_secs_f64(), first.at.as_secs_f64());
    let times: Vec<f64> = acks
        .iter()
        .map(|a| a.at.as_secs_f64())
        .chain([end.as_secs_f64()])
        .collect();
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        if gap > best.0 {
            best = (gap, w[0], w[1]);
        }
    }
    Some(best)
}

/// The acknowledged sequence numbers not in `present`, in order.
pub(crate) fn missing(acks: &[Ack], present: &[i64]) -> Vec<i64> {
    let present: HashSet<i64> = present.iter().copied().collect();
    acks.iter()
        .map(|a| a.seq)
        .filter(|s| !present.contains(s))
        .collect()
}

/// The most members writable in one round, and the rounds (their times) with more than one.
pub(crate) fn primaries(rounds: &[Round]) -> (usize, Vec<f64>) {
    let mut most = 0;
    let mut twice = Vec::new();
    for r in rounds {
        let n = r.writable.iter().filter(|w| **w == Some(true)).count();
        most = most.max(n);
        if n > 1 {
            twice.push(r.at.as_secs_f64());
        }
    }
    (most, twice)
}

/// Per member, the rounds in which it could not be asked.
pub(crate) fn unobserved(rounds: &[Round], members: &[String]) -> Vec<(String, usize)> {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                m.clone(),
                rounds
                    .iter()
                    .filter(|r| r.writable.get(i).is_some_and(|w| w.is_none()))
                    .count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Everything a drill reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figures {
    pub drill: &'static str,
    /// How the event was caused (`SIGKILL of patroni on pg1`, `lab kill pg1`, …).
    pub event: String,
    /// The leader (or the VIP's balancer) the event hit.
    pub victim: String,
    pub new_leader: Option<String>,
    /// When the event was asked for, and when it was done (a switchover: the cluster settled),
    /// seconds since the load started.
    pub event_at_s: f64,
    pub event_done_s: f64,
    pub attempts: i64,
    pub commits: usize,
    pub connections: u32,
    pub rto_s: Option<f64>,
    /// The gap's bounds (seconds since the load started).
    pub gap_from_s: Option<f64>,
    pub gap_to_s: Option<f64>,
    /// Writes came back after the event (an acknowledged commit after it).
    pub writes_resumed: bool,
    pub rpo_commits: usize,
    /// The first missing sequence numbers.
    pub missing: Vec<i64>,
    pub watch_rounds: usize,
    pub max_writable: usize,
    pub two_primaries: bool,
    pub two_primaries_at_s: Vec<f64>,
    pub unobserved_rounds: Vec<(String, usize)>,
    /// Seconds from the outage's start (the last commit before the longest gap) until the
    /// victim was back (a streaming replica, or for a
    /// balancer `verify` passing again); `None`: it was not.
    pub back_after_s: Option<f64>,
    pub back_as: String,
    pub verify_exit: u8,
    pub verify_failed: Vec<Finding>,
    /// What went wrong on the way (an event or a return that failed).
    pub problems: Vec<String>,
    /// The load's first errors, for the curious (`[seconds, message]`).
    pub load_errors: Vec<(f64, String)>,
}

impl Figures {
    /// Passed: nothing acknowledged was lost, never two writable primaries, writes came
    /// back, the victim too, and `verify` passes.
    pub(crate) fn passed(&self) -> bool {
        self.rpo_commits == 0
            && !self.two_primaries
            && self.writes_resumed
            && self.back_after_s.is_some()
            && self.verify_exit == 0
            && self.problems.is_empty()
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "-".into())
}

pub(crate) fn to_text(f: &Figures) -> String {
    let yes_no = |b: bool| if b { "YES" } else { "no" };
    let rows: Vec<(&str, String)> = vec![
        ("drill", f.drill.to_string()),
        (
            "event",
            format!(
                "{} (asked at {:.2} s, done at {:.2} s)",
                f.event, f.event_at_s, f.event_done_s
            ),
        ),
        (
            "new leader",
            f.new_leader.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "commits",
            format!(
                "{} acknowledged of {} tried, {} connection(s)",
                f.commits, f.attempts, f.connections
            ),
        ),
        (
            "RTO",
            format!(
                "{} (longest gap between acknowledged commits, {} → {}){}",
                secs(f.rto_s),
                secs(f.gap_from_s),
                secs(f.gap_to_s),
                if f.writes_resumed {
                    ""
                } else {
                    ": WRITES NEVER CAME BACK"
                }
            ),
        ),
        (
            "RPO",
            if f.rpo_commits == 0 {
                "0 acknowledged commits lost".into()
            } else {
                format!(
                    "{} ACKNOWLEDGED COMMITS LOST (first: {:?})",
                    f.rpo_commits, f.missing
                )
            },
        ),
        (
            "two primaries",
            format!(
                "{} (most writable at once: {}, {} rounds{})",
                yes_no(f.two_primaries),
                f.max_writable,
                f.watch_rounds,
                if f.unobserved_rounds.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; not reached: {}",
                        f.unobserved_rounds
                            .iter()
                            .map(|(m, n)| format!("`{m}` {n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        ),
        (
            "victim back",
            match f.back_after_s {
                Some(s) => format!(
                    "`{}` {} {s:.1} s after the outage began",
                    f.victim, f.back_as
                ),
                None => format!("`{}` NOT BACK as {}", f.victim, f.back_as),
            },
        ),
        (
            "verify",
            if f.verify_exit == 0 {
                "exit 0".into()
            } else {
                format!(
                    "exit {}: {}",
                    f.verify_exit,
                    f.verify_failed
                        .iter()
                        .map(|x| format!("{} {}: {}", x.check, x.subject, x.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
        ),
    ];
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<14} {v}\n"));
    }
    for p in &f.problems {
        out.push_str(&format!("{:<14} {p}\n", "PROBLEM"));
    }
    out.push_str(if f.passed() {
        "\ndrill passed\n"
    } else {
        "\ndrill FAILED\n"
    });
    out
}

pub(crate) fn to_json(f: &Figures, exit: u8) -> Value {
    let mut v = json!(f);
    if let Some(o) = v.as_object_mut() {
        o.insert("event".into(), json!("drill"));
        o.insert("how".into(), json!(f.event));
        o.insert("passed".into(), json!(f.passed()));
        o.insert("exit".into(), json!(exit));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: i64, ms: u64) -> Ack {
        Ack {
            seq,
            at: Duration::from_millis(ms),
        }
    }

    #[test]
    fn rto_is_the_longest_gap_and_the_end_closes_the_last() {
        let acks = [ack(1, 100), ack(2, 120), ack(5, 3120), ack(6, 3140)];
        let (gap, from, to) = rto(&acks, Duration::from_millis(3200)).unwrap();
        assert!((gap - 3.0).abs() < 1e-9 && from == 0.12 && to == 3.12);
        // writes that never came back: the gap runs to the end
        let (gap, from, _) = rto(&acks[..2], Duration::from_millis(10_120)).unwrap();
        assert!((gap - 10.0).abs() < 1e-9 && from == 0.12);
        assert_eq!(rto(&[], Duration::from_secs(1)), None);
    }

    #[test]
    fn rpo_counts_acknowledged_rows_missing_only() {
        let acks = [ack(1, 0), ack(2, 1), ack(4, 2)];
        // 3 was tried and not acknowledged: its absence (or presence) is not a loss
        assert_eq!(missing(&acks, &[1, 2, 3, 4]), Vec::<i64>::new());
        assert_eq!(missing(&acks, &[1, 3]), vec![2, 4]);
    }

    #[test]
    fn two_writable_in_one_round_is_flagged_unreached_is_not_writable() {
        let r = |ms, w: Vec<Option<bool>>| Round {
            at: Duration::from_millis(ms),
            writable: w,
        };
        let rounds = [
            r(0, vec![Some(true), Some(false), Some(false)]),
            r(200, vec![None, Some(true), Some(false)]),
            r(400, vec![Some(true), Some(true), None]),
        ];
        assert_eq!(primaries(&rounds), (2, vec![0.4]));
        assert_eq!(primaries(&rounds[..2]), (1, vec![]));
        let names = ["pg1".to_string(), "pg2".into(), "pg3".into()];
        assert_eq!(
            unobserved(&rounds, &names),
            vec![("pg1".to_string(), 1), ("pg3".to_string(), 1)]
        );
    }
}
