//! Standard error that survives its reader, like [`super::stdout`]: `eprintln!` panics when
//! stderr is a closed pipe (`pgdeploy validate … 2>&1 | head -1`), which turned one lost
//! message into a crash with exit 101. Here the first failed write is remembered and later
//! writes are dropped. A closed stderr loses only messages: the exit code is still the
//! command's own (1 when it found errors), since scripts read the result from it, and a
//! run goes on (unlike a closed stdout, stderr carries no results that nobody reads).
//!
//! Every writer to stderr goes through here: diagnostics (`eoutln!`), the log formatter
//! ([`Writer`]) and top-level errors. The progress bar (indicatif) ignores its own write
//! errors and is only drawn on a terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stderr failed (closed pipe, or anything else): later writes are
/// dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Whether diagnostics on stderr are coloured, decided once by `main` from the flags.
static COLOR: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stderr and flushes it; after a failure, does nothing. Never panics.
pub fn write_err(text: &str) {
    let _ = write_bytes(text.as_bytes());
}

fn write_bytes(bytes: &[u8]) -> std::io::Result<()> {
    if CLOSED.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut err = std::io::stderr().lock();
    let result = err.write_all(bytes).and_then(|()| err.flush());
    if result.is_err() {
        CLOSED.store(true, Ordering::SeqCst);
    }
    // The error is not passed on: every caller would drop it, and some (the log formatter)
    // would report it with `eprintln!`, which panics on the same closed stream.
    Ok(())
}

/// Whether a write to stderr failed: what follows is not shown.
pub fn stderr_closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Sets whether diagnostics on stderr are coloured (see [`super::color`]).
pub fn set_stderr_color(on: bool) {
    COLOR.store(on, Ordering::SeqCst);
}

/// Whether diagnostics on stderr are coloured.
pub fn stderr_color() -> bool {
    COLOR.load(Ordering::SeqCst)
}

/// An `io::Write` to stderr through [`write_err`], for the log formatter: it never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_bytes(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_never_fails() {
        let mut w = Writer;
        assert!(w.write_all(b"").is_ok());
        assert!(w.flush().is_ok());
    }
}
