//! Named checks inside one long test (one lab, many claims): each reports by name, all run
//! even when one fails, and the test fails at the end listing every failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Runs named checks, keeps going after a failure, and fails at the end with every failure
pub(crate) struct Checks {
    pub failed: Vec<String>,
}

impl Checks {
    pub(crate) fn new() -> Self {
        Checks { failed: Vec::new() }
    }

    /// Fails the test with every failed check.
    pub(crate) fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "failed checks:\n{}",
            self.failed.join("\n")
        );
    }

    /// Runs check `name`, unless `PGDEPLOY_CHECKS` (comma-separated parts of names, for working
    /// on a few checks of a long test) is set and names none of it.
    pub(crate) fn run(&mut self, name: &str, f: impl FnOnce()) {
        if let Ok(only) = std::env::var("PGDEPLOY_CHECKS") {
            if !only
                .split(',')
                .any(|part| !part.is_empty() && name.contains(part))
            {
                eprintln!("check {name} ... skipped (PGDEPLOY_CHECKS)");
                return;
            }
        }
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(()) => eprintln!(
                "check {name} ... ok ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("check {name} ... FAILED: {msg}");
                self.failed.push(format!("{name}: {msg}"));
            }
        }
    }
}
