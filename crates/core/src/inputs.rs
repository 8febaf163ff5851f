//! The local files a run read (inventory files, `group_vars`/`host_vars`, the playbook, a
//! facts file, `copy`/`template` sources), each with the SHA-256 of its bytes, and the
//! environment variables templates read (`lookup('env', …)`), by the SHA-256 of their value.
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

/// Environment variables read, by name: the SHA-256 of their value (of [`UNSET`] if unset).
static ENV: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// What an unset variable's digest is made of (no value has a NUL byte).
const UNSET: &[u8] = b"\0unset";

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
    env_lock().clear();
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

/// Notes that the environment variable `name` was read (`lookup('env', NAME)`): its value is
/// an input like a file's content, and usually a secret, so only its digest is kept.
pub fn record_env(name: &str, value: Option<&str>) {
    if !ON.load(Ordering::SeqCst) {
        return;
    }
    env_lock()
        .entry(name.to_string())
        .or_insert_with(|| env_digest(value));
}

/// The digest of an environment variable's value, as [`record_env`] keeps it.
pub fn env_digest(value: Option<&str>) -> String {
    sha256_hex(value.map_or(UNSET, str::as_bytes))
}

/// Every environment variable recorded since [`start`]: name and digest, by name.
pub fn recorded_env() -> Vec<(String, String)> {
    env_lock()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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

fn env_lock() -> std::sync::MutexGuard<'static, BTreeMap<String, String>> {
    ENV.lock().unwrap_or_else(|e| e.into_inner())
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
        assert_ne!(env_digest(None), env_digest(Some("")));
    }
}
