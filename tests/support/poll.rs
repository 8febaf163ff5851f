//! Waiting on a condition with a deadline instead of sleeping a fixed time and hoping: a poll
//! returns as soon as the condition holds, and on timeout fails saying what it last saw.
//!
//! Include it with `#[path = "support/poll.rs"] mod poll;`.
#![allow(dead_code)]

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Reads `probe` every `pause` until `done` holds for what it read; returns that and the time
/// it took. Panics after `deadline` naming `what` and the last value read.
pub(crate) fn until<T: Debug>(
    what: &str,
    deadline: Duration,
    pause: Duration,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        let seen = probe();
        if done(&seen) {
            return (seen, started.elapsed());
        }
        assert!(
            started.elapsed() < deadline,
            "after {deadline:?}, still not {what}: last saw {seen:?}"
        );
        std::thread::sleep(pause);
    }
}

/// Reads `probe` every `pause` for all of `span` and panics as soon as `bad` holds for what
/// it read, naming `what` must not happen and the value: a negative check over a time span,
/// failing at once rather than after a fixed sleep.
pub(crate) fn never<T: Debug>(
    what: &str,
    span: Duration,
    pause: Duration,
    mut probe: impl FnMut() -> T,
    bad: impl Fn(&T) -> bool,
) {
    let started = Instant::now();
    while started.elapsed() < span {
        let seen = probe();
        assert!(
            !bad(&seen),
            "after {:?}, {what}: saw {seen:?}",
            started.elapsed()
        );
        std::thread::sleep(pause);
    }
}
