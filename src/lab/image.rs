//! The lab image: a Debian 12 root filesystem built once by `image-recipe.sh` and cached.
//!
//! The cache key is a hash of the recipe and [`RECIPE_VERSION`], so editing the recipe (or
//! bumping the version) rebuilds, and nothing else does. A build runs in
//! `images/.build-HASH/` and is renamed to `images/HASH/` only when the recipe succeeded: a
//! killed build never leaves a directory that looks complete. Hosts mount the image as the
//! read-only lower layer of their overlays, so it never changes after the rename

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::{lock, mounts, prereq, state};

/// The recipe script, built into the binary so the hash is of what actually runs
pub const RECIPE: &str = include_str!("image-recipe.sh");

/// Bump to force a rebuild when something outside the script changes what it produces
pub const RECIPE_VERSION: &str = "pgdeploy-lab-image-1";

/// Default Debian mirror; `PGDEPLOY_DEBIAN_MIRROR` overrides it (not part of the hash)
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The cache key: the first 16 hex digits of SHA-256 over the version and the recipe
pub fn recipe_hash() -> String {
    let mut h = Sha256::new();
    h.update(RECIPE_VERSION.as_bytes());
    h.update([0]);
    h.update(RECIPE.as_bytes());
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where images are cached
pub fn images_dir() -> PathBuf {
    state::root().join("images")
}

/// The root filesystem of the image of the current recipe (it may not be built yet)
pub fn rootfs_path() -> PathBuf {
    images_dir().join(recipe_hash()).join("rootfs")
}

/// What [`ensure`] did
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub rootfs: PathBuf,
    pub hash: String,
    /// False when the cached image was used
    pub built: bool,
    pub seconds: f64,
}

/// Returns the cached image, building it first when missing or when `rebuild` is set
pub fn ensure(rebuild: bool) -> anyhow::Result<ImageInfo> {
    let started = Instant::now();
    let hash = recipe_hash();
    let dir = images_dir();
    let done = dir.join(&hash);
    let rootfs = done.join("rootfs");
    let _lock = lock::lock_dir(&dir)?;
    if rootfs.is_dir() && !rebuild {
        return Ok(ImageInfo {
            rootfs,
            hash,
            built: false,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    prereq::check_build()?;
    if done.exists() {
        refuse_if_in_use(&rootfs)?;
        mounts::remove_tree(&done)?;
    }
    remove_stale_builds(&dir)?;
    let build = dir.join(format!(".build-{hash}"));
    std::fs::create_dir_all(&build)
        .with_context(|| format!("cannot create `{}`", build.display()))?;
    let script = build.join("recipe.sh");
    std::fs::write(&script, RECIPE)
        .with_context(|| format!("cannot write `{}`", script.display()))?;
    let log_path = build.join("build.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create `{}`", log_path.display()))?;
    let mirror =
        std::env::var("PGDEPLOY_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string());
    eprintln!(
        "lab: building image `{hash}` (a few minutes; log `{}`)",
        log_path.display()
    );
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg(build.join("rootfs"))
        .arg(build.join("work"))
        .arg(&mirror)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `bash {}`", script.display()))?;
    // the recipe unmounts on exit; make sure of it before anything may remove the directory
    mounts::unmount_under(&build)?;
    if !status.success() {
        bail!(
            "image build `bash {}` failed with {status}; last lines of `{}`:\n{}",
            script.display(),
            log_path.display(),
            tail(&log_path, 30)
        );
    }
    mounts::remove_tree(&build.join("work"))?;
    std::fs::rename(&build, &done).with_context(|| {
        format!(
            "cannot rename `{}` to `{}`",
            build.display(),
            done.display()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("lab: image `{hash}` built in {seconds:.0} s");
    Ok(ImageInfo {
        rootfs,
        hash,
        built: true,
        seconds,
    })
}

/// A rebuild must not pull the lower layer from under running hosts
fn refuse_if_in_use(rootfs: &Path) -> anyhow::Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let needle = format!("lowerdir={}", rootfs.display());
    if info.contains(&needle) {
        bail!(
            "image `{}` is in use by a running lab; run `pgdeploy lab down` first",
            rootfs.display()
        );
    }
    Ok(())
}

/// Removes what killed builds left (their mounts first)
fn remove_stale_builds(dir: &Path) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".build-") {
            mounts::remove_tree(&e.path())?;
        }
    }
    Ok(())
}

/// The last `n` lines of a file, for error messages
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_short() {
        assert_eq!(recipe_hash(), recipe_hash());
        assert_eq!(recipe_hash().len(), 16);
    }

    #[test]
    fn recipe_names_the_required_packages() {
        for p in [
            "postgresql-15",
            "etcd-server",
            "etcd-client",
            "haproxy",
            "keepalived",
            "pgbackrest",
            "python3-venv",
            "pglift-cli",
            "patroni[etcd3,psycopg3]",
        ] {
            assert!(RECIPE.contains(p), "recipe lacks `{p}`");
        }
    }
}
