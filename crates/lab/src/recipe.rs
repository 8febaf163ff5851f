//! A cached build by a shell recipe: what the lab image and the lab's package mirror share.
//!
//! The cache key is a hash of the recipe text and of whatever else the build depends on (a
//! version string, the image the mirror is resolved against). A build runs in
//! `DIR/.build-HASH/` and is renamed to `DIR/HASH/` only when the recipe succeeded, so a killed
//! build never leaves a directory that looks complete; what is under `DIR/HASH/` never changes
//! after the rename (hosts mount the image read-only, the mirror is served as is)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::{lock, mounts};

/// The first 16 hex digits of SHA-256 over `parts`, each followed by a NUL
pub(crate) fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash of a cached product, from its path (`DIR/HASH/PRODUCT`)
pub(crate) fn hash_of(product: &Path) -> String {
    product
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One cached product of a recipe
pub(crate) struct Recipe<'a> {
    /// What it is, for messages (`image`, `mirror`)
    pub what: &'a str,
    /// The cache directory (`images/`, `mirrors/`)
    pub dir: PathBuf,
    pub hash: String,
    /// The script, run with `bash SCRIPT OUT WORK ARGS…`
    pub script: &'a str,
    /// The first argument before `OUT` (the image for the mirror), if any
    pub input: Option<PathBuf>,
    pub args: Vec<String>,
    /// The product's directory name inside `DIR/HASH/` (`rootfs`, `www`)
    pub product: &'a str,
}

/// What [`Recipe::ensure`] did
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub path: PathBuf,
    pub hash: String,
    /// False when the cached product was used
    pub built: bool,
    pub seconds: f64,
}

impl Recipe<'_> {
    /// The product of the current recipe (it may not be built yet)
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(&self.hash).join(self.product)
    }

    /// Returns the cached product, building it first when missing or when `rebuild` is set.
    /// `before_replace` runs before a cached product is removed for a rebuild (to refuse when
    /// it is in use)
    pub(crate) fn ensure(
        &self,
        rebuild: bool,
        before_replace: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<Built> {
        let started = Instant::now();
        let done = self.dir.join(&self.hash);
        let product = done.join(self.product);
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create `{}`", self.dir.display()))?;
        let _lock = lock::lock_dir(&self.dir)?;
        if product.is_dir() && !rebuild {
            return Ok(Built {
                path: product,
                hash: self.hash.clone(),
                built: false,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if done.exists() {
            before_replace(&product)?;
            mounts::remove_tree(&done)?;
        }
        remove_stale_builds(&self.dir)?;
        let build = self.dir.join(format!(".build-{}", self.hash));
        std::fs::create_dir_all(&build)
            .with_context(|| format!("cannot create `{}`", build.display()))?;
        let script = build.join("recipe.sh");
        std::fs::write(&script, self.script)
            .with_context(|| format!("cannot write `{}`", script.display()))?;
        let log_path = build.join("build.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create `{}`", log_path.display()))?;
        pgdeploy_core::eoutln!(
            "lab: building {} `{}` (a few minutes; log `{}`)",
            self.what,
            self.hash,
            log_path.display()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(&script);
        if let Some(input) = &self.input {
            cmd.arg(input);
        }
        cmd.arg(build.join(self.product))
            .arg(build.join("work"))
            .args(&self.args)
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
                "{} build `bash {}` failed with {status}; last lines of `{}`:\n{}",
                self.what,
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
        pgdeploy_core::eoutln!("lab: {} `{}` built in {seconds:.0} s", self.what, self.hash);
        Ok(Built {
            path: product,
            hash: self.hash.clone(),
            built: true,
            seconds,
        })
    }
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
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_short_and_separates_parts() {
        assert_eq!(hash(&["a", "b"]), hash(&["a", "b"]));
        assert_eq!(hash(&["a"]).len(), 16);
        assert_ne!(hash(&["ab", ""]), hash(&["a", "b"]));
    }
}
