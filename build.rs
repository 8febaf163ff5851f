//! The version `--version` prints: `pgdeploy 0.1.0 (4090bf1 2026-12-01)` when built from a
//! git checkout (the commit and its date, so a bug report names the exact code), the plain
//! package version otherwise (a crate tarball, a source archive, no `git` installed). It
//! never fails the build: anything missing falls back to the plain version.
//!
//! Cargo runs this again when `HEAD` moves: `.git/HEAD` (a new branch checked out) and the
//! file of the ref it points to (a new commit), found through `.git` whether it is the git
//! directory or, in a worktree or submodule, a file `gitdir: PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    if let Some(git_dir) = git_dir(&dir) {
        for path in watched(&git_dir) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!(
        "cargo:rustc-env=PGDEPLOY_VERSION={}",
        long_version(&version, describe(&dir))
    );
}

/// `0.1.0 (4090bf1 2026-12-01)`, or `0.1.0` without a commit.
pub(crate) fn long_version(version: &str, commit: Option<(String, String)>) -> String {
    match commit {
        Some((hash, date)) => format!("{version} ({hash} {date})"),
        None => version.to_string(),
    }
}

/// The git directory of a checkout whose root is `dir`: `dir/.git` itself, or where the
/// `.git` file of a worktree points. `None` when `dir` is not the root of a checkout (a crate
/// unpacked inside some other repository must not take that repository's commit).
pub(crate) fn git_dir(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let target = text.trim().strip_prefix("gitdir:")?.trim();
    let path = Path::new(target);
    Some(if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    })
}

/// The files whose change moves `HEAD`: `HEAD`, the ref it names (loose, in the common
/// directory for a worktree) and `packed-refs`, those that exist (a missing file would make
/// cargo run this on every build).
pub(crate) fn watched(git_dir: &Path) -> Vec<PathBuf> {
    let head = git_dir.join("HEAD");
    let mut out = vec![head.clone()];
    // A worktree's refs are shared with the main checkout: `commondir` says where.
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| {
            let c = Path::new(c.trim());
            if c.is_absolute() {
                c.to_path_buf()
            } else {
                git_dir.join(c)
            }
        })
        .unwrap_or_else(|| git_dir.to_path_buf());
    if let Some(name) = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.trim().strip_prefix("ref:").map(|r| r.trim().to_string()))
    {
        // A branch's ref is in the common directory; `HEAD`-like refs of the worktree itself
        // would be beside its `HEAD`.
        for base in [&common, &git_dir.to_path_buf()] {
            let file = base.join(&name);
            if file.is_file() && !out.contains(&file) {
                out.push(file);
            }
        }
        let packed = common.join("packed-refs");
        if packed.is_file() {
            out.push(packed);
        }
    }
    out.retain(|p| p.exists());
    out
}

/// The short hash of `HEAD` and its commit date (`YYYY-MM-DD`), asked of `git`; `None`
/// outside a checkout or without `git`.
pub(crate) fn describe(dir: &Path) -> Option<(String, String)> {
    git_dir(dir)?;
    let out = Command::new("git")
        .args(["log", "-1", "--no-show-signature", "--format=%h %cs"])
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let (hash, date) = text.trim().split_once(' ')?;
    let valid = !hash.is_empty()
        && hash.chars().all(|c| c.is_ascii_hexdigit())
        && date.len() == 10
        && date.chars().all(|c| c.is_ascii_digit() || c == '-');
    valid.then(|| (hash.to_string(), date.to_string()))
}
