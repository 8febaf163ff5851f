//! The local files a run read (inventory files, `group_vars`/`host_vars`, the playbook, a
//! facts file, `copy`/`template` sources), each with the SHA-256 of its bytes.
//!
//! A saved plan (`plan --out`, [`crate::run::saved`]) records them, and `apply PLANFILE`
//! refuses when one differs: what a plan shows is a function of its inputs and of the hosts'
//! state, so same inputs plus same hosts give the same plan. Every place that reads an input
//! file calls [`record`]; recording is off (a no-op) unless [`start`] was called, so other
//! commands pay nothing for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Whether reads are recorded (set by [`start`]).
static ON: AtomicBool = AtomicBool::new(false);

/// What was read, by absolute path.
static READ: Mutex<BTreeMap<PathBuf, InputFile>> = Mutex::new(BTreeMap::new());

/// One file read, as the run named it and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The path as it was read (relative paths are relative to the working directory).
    pub path: PathBuf,
    pub absolute: PathBuf,
    /// SHA-256 of the bytes read, lowercase hex.
    pub sha256: String,
}

/// From now on, [`record`] keeps what it is given (and forgets what it kept before).
pub fn start() {
    lock().clear();
    ON.store(true, Ordering::SeqCst);
}

/// Notes that `path` was read and held `bytes`. The first read of a path is kept: a file
/// read again later (a template at plan time) is checked against it by the saved plan.
pub fn record(path: &Path, bytes: &[u8]) {
    if !ON.load(Ordering::SeqCst) {
        return;
    }
    let file = InputFile {
        path: path.to_path_buf(),
        absolute: absolute(path),
        sha256: sha256_hex(bytes),
    };
    lock().entry(file.absolute.clone()).or_insert(file);
}

/// Every file recorded since [`start`], by absolute path.
pub fn recorded() -> Vec<InputFile> {
    lock().values().cloned().collect()
}

/// The absolute form of `path`, without resolving links (`path` when that fails).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, InputFile>> {
    READ.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
