//! The lab image: a bare Debian 12 root filesystem built once by `image-recipe.sh` and cached
//! (see [`super::recipe`]). Hosts mount it as the read-only lower layer of their overlays, so
//! it never changes once built; editing the recipe (or bumping [`RECIPE_VERSION`]) rebuilds

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::recipe::{self, Recipe};
use super::{prereq, state};

/// The recipe script, built into the binary so the hash is of what actually runs
pub const RECIPE: &str = include_str!("image-recipe.sh");

/// Bump to force a rebuild when something outside the script changes what it produces
pub const RECIPE_VERSION: &str = "pgdeploy-lab-image-2";

/// Default Debian mirror; `PGDEPLOY_DEBIAN_MIRROR` overrides it (not part of the hash)
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The Debian mirror the image and the lab's package mirror are built from
pub fn debian_mirror() -> String {
    std::env::var("PGDEPLOY_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string())
}

/// The cache key: a hash of the version and the recipe
pub fn recipe_hash() -> String {
    recipe::hash(&[RECIPE_VERSION, RECIPE])
}

/// Where images are cached
pub fn images_dir() -> PathBuf {
    state::root().join("images")
}

fn recipe() -> Recipe<'static> {
    Recipe {
        what: "image",
        dir: images_dir(),
        hash: recipe_hash(),
        script: RECIPE,
        input: None,
        args: vec![debian_mirror()],
        product: "rootfs",
    }
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
    let r = recipe();
    if !r.path().is_dir() || rebuild {
        prereq::check_build()?;
    }
    let built = r.ensure(rebuild, refuse_if_in_use)?;
    Ok(ImageInfo {
        rootfs: built.path,
        hash: built.hash,
        built: built.built,
        seconds: built.seconds,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_short() {
        assert_eq!(recipe_hash(), recipe_hash());
        assert_eq!(recipe_hash().len(), 16);
    }

    #[test]
    fn the_image_is_bare() {
        let base = RECIPE
            .lines()
            .find(|l| l.starts_with("BASE_PACKAGES="))
            .expect("BASE_PACKAGES line");
        for p in [
            "systemd",
            "openssh-server",
            "python3",
            "ca-certificates",
            "curl",
        ] {
            assert!(base.split([',', '=']).any(|x| x == p), "image lacks `{p}`");
        }
        for p in [
            "postgresql",
            "etcd",
            "haproxy",
            "keepalived",
            "pgbackrest",
            "patroni",
            "pglift",
            "venv",
        ] {
            assert!(!base.contains(p), "the bare image installs `{p}`");
            assert!(
                !RECIPE.contains("apt-get install"),
                "the image installs packages"
            );
        }
    }
}
