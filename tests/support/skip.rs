//! Skipping a test whose prerequisite is missing on this machine: a printed reason locally, a
//! failure under `CI=true`, so CI can never pass a test that silently did nothing.
//!
//! Include it with `#[path = "support/skip.rs"] mod skip;` (or through `support/lab.rs`).
#![allow(dead_code)]

/// True when the tests run in CI (`CI=true`), where every prerequisite must be present.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether `test` may go on: true when `met`; otherwise panics under `CI=true` with
/// `missing` (what is not there), else prints why `test` is skipped and returns false.
pub(crate) fn require(met: bool, test: &str, missing: &str) -> bool {
    if met {
        return true;
    }
    if in_ci() {
        panic!("`{test}` cannot run in CI: {missing}");
    }
    eprintln!("skipping `{test}`: {missing}");
    false
}

/// True when this process runs as root (`id -u` prints 0).
pub(crate) fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// True when `program --version` runs here.
pub(crate) fn has_program(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
}
