//! An exclusive `flock` on a directory, so two `pgdeploy lab` commands (or two test binaries)
//! never build the image or change the same lab at once

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::Context;

/// Held lock; released when dropped (the file descriptor closes)
pub(crate) struct DirLock {
    _file: File,
}

/// Blocks until the exclusive lock on `dir` is held
pub(crate) fn lock_dir(dir: &Path) -> anyhow::Result<DirLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let file = File::open(dir).with_context(|| format!("cannot open `{}`", dir.display()))?;
    loop {
        // SAFETY: flock(2) on a descriptor we own
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(DirLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("cannot lock `{}`", dir.display()));
        }
    }
}
