//! The lab's package mirror, as an air-gapped site has one: a signed APT repository built from
//! Debian's packages (standing in for a PGDG mirror) and a Python find-links directory with the
//! wheels of Patroni 4 and pglift, built once by `mirror-recipe.sh` and cached.
//!
//! The mirror is resolved against the image (the packages a bare lab host lacks), so its cache
//! key is the hash of its recipe and of the image's hash: a new image or a changed package list
//! rebuilds it, nothing else does. Each lab serves it on its bridge address ([`super::http`])

use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::image::{self, ImageInfo};
use super::recipe::{self, Recipe};
use super::{prereq, state};

/// The recipe script, built into the binary so the hash is of what actually runs
pub const RECIPE: &str = include_str!("mirror-recipe.sh");

/// Bump to force a rebuild when something outside the script changes what it produces
pub const RECIPE_VERSION: &str = "pgdeploy-lab-mirror-1";

/// The TCP port the mirror is served on, on the lab bridge's address
pub const PORT: u16 = 8480;

/// The APT suite of the repository (PGDG's naming: `CODENAME-pgdg`)
pub const SUITE: &str = "bookworm-pgdg";

/// Where mirrors are cached
pub fn mirrors_dir() -> PathBuf {
    state::root().join("mirrors")
}

fn recipe(image: &ImageInfo) -> Recipe<'static> {
    Recipe {
        what: "package mirror",
        dir: mirrors_dir(),
        hash: recipe::hash(&[RECIPE_VERSION, RECIPE, &image.hash]),
        script: RECIPE,
        input: Some(image.rootfs.clone()),
        args: vec![image::debian_mirror()],
        product: "www",
    }
}

/// What [`ensure`] did
#[derive(Debug, Clone)]
pub struct MirrorInfo {
    /// The directory served: `apt/` and `python/`
    pub root: PathBuf,
    pub hash: String,
    /// False when the cached mirror was used
    pub built: bool,
    pub seconds: f64,
}

/// Returns the cached mirror of `image`, building it first when missing or when `rebuild` is
/// set (a rebuild while a lab serves it is fine: the server then serves the new files)
pub fn ensure(image: &ImageInfo, rebuild: bool) -> anyhow::Result<MirrorInfo> {
    let r = recipe(image);
    if !r.path().is_dir() || rebuild {
        prereq::check_mirror_build()?;
    }
    let built = r.ensure(rebuild, |_| Ok(()))?;
    Ok(MirrorInfo {
        root: built.path,
        hash: built.hash,
        built: built.built,
        seconds: built.seconds,
    })
}

/// The URLs of a mirror served on `address`, as the lab inventory gives them to playbooks
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUrls {
    /// `http://ADDRESS:PORT`
    pub base: String,
    /// The APT repository (`pgdg_repo`'s `mirror`)
    pub apt: String,
    /// The armored public key its `InRelease` is signed with (`pgdg_repo`'s `key_url`)
    pub apt_key: String,
    /// The wheels, for `pip --find-links`
    pub python: String,
}

impl MirrorUrls {
    pub fn new(address: Ipv4Addr) -> Self {
        let base = format!("http://{address}:{PORT}");
        MirrorUrls {
            apt: format!("{base}/apt"),
            apt_key: format!("{base}/apt/pgdeploy-lab.asc"),
            python: format!("{base}/python/"),
            base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = MirrorUrls::new(Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(u.apt, "http://10.213.7.1:8480/apt");
        assert_eq!(u.apt_key, "http://10.213.7.1:8480/apt/pgdeploy-lab.asc");
        assert_eq!(u.python, "http://10.213.7.1:8480/python/");
    }

    #[test]
    fn the_mirror_holds_what_the_playbooks_install() {
        for p in [
            "postgresql-15",
            "etcd-server",
            "etcd-client",
            "haproxy",
            "keepalived",
            "pgbackrest",
            "patroni",
            "python3-venv",
            "patroni[etcd3,psycopg3]>=4,<5",
            "pglift-cli",
            "reprepro",
            "SignWith",
        ] {
            assert!(RECIPE.contains(p), "mirror recipe lacks `{p}`");
        }
        assert!(RECIPE.contains(&format!("SUITE={SUITE}")));
    }
}
