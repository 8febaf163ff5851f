//! Standard output that survives its reader: the first failed write (a closed pipe, a full
//! disk) is remembered and every later write is dropped, so no command panics in `print!`.
//! `main` turns a closed pipe into exit 141 and another failure into an error, and a run
//! stops starting steps once nobody reads its results (as on Ctrl-C).

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set once a write found the reading end closed (`EPIPE`).
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Set once a write failed for another reason; the message is kept for `main`.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes `text` to stdout and flushes it; after a failure, does nothing.
pub fn write(text: &str) {
    if stopped() {
        return;
    }
    let mut out = std::io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = result {
        if e.kind() == ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::SeqCst);
        } else {
            let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Whether the reader of stdout went away: nothing more is written.
pub fn stdout_closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Why writing to stdout failed, when it failed for another reason than a closed pipe.
pub fn stdout_error() -> Option<String> {
    FAILED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Whether output is being dropped: closed or failed.
pub fn stopped() -> bool {
    stdout_closed() || stdout_error().is_some()
}
