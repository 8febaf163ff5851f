//! Where a lab lives on disk and what it remembers between commands (`state.json`).
//!
//! Layout under the lab root (`/var/lib/pgdeploy`, or `PGDEPLOY_LAB_ROOT`):
//! - `images/HASH/rootfs` the cached image, see [`super::image`]
//! - `lab/NAME/state.json` this file's [`LabState`]
//! - `lab/NAME/id_ed25519{,.pub}` the lab's SSH key, `lab/NAME/known_hosts` the hosts' keys
//! - `mirrors/HASH/www` the cached package mirror, see [`super::mirror`]
//! - `lab/NAME/hosts/HOST/{upper,work,merged}` the host's overlay, `console.log` its boot output
//! - `lab/NAME/mirror/` the configuration, PID file and logs of the lab's mirror server

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::subnet::Role;

/// Default lab root
pub const DEFAULT_ROOT: &str = "/var/lib/pgdeploy";

/// The lab root: `PGDEPLOY_LAB_ROOT` or [`DEFAULT_ROOT`]
pub fn root() -> PathBuf {
    std::env::var_os("PGDEPLOY_LAB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
}

/// A lab name that is not usable in interface and machine names
#[derive(Debug, thiserror::Error)]
#[error("lab name `{0}` must be 1 to 7 characters of `a-z` and `0-9`, starting with a letter (it becomes part of interface names, which the kernel limits to 15 characters)")]
pub struct BadName(pub String);

/// Checks a lab name: short enough that `vb-NAME-lb49` fits in an interface name
pub fn check_name(name: &str) -> Result<(), BadName> {
    let ok = (1..=7).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(BadName(name.to_string()))
    }
}

/// Paths of one lab
#[derive(Debug, Clone)]
pub struct LabPaths {
    pub name: String,
    pub dir: PathBuf,
}

impl LabPaths {
    pub fn new(name: &str) -> Self {
        LabPaths {
            name: name.to_string(),
            dir: labs_dir().join(name),
        }
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.dir.join("hosts").join(host)
    }
    pub fn bridge(&self) -> String {
        format!("pgdbr-{}", self.name)
    }
    /// nspawn's machine name, unique on the machine so that two labs never clash
    pub fn machine(&self, host: &str) -> String {
        format!("{}-{}", self.name, host)
    }
    /// The host side of the host's veth, as nspawn names it
    pub fn veth(&self, host: &str) -> String {
        format!("vb-{}", self.machine(host))
    }
}

/// Where all labs' directories are
pub fn labs_dir() -> PathBuf {
    root().join("lab")
}

/// Paths of one host's overlay
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub dir: PathBuf,
}

impl HostPaths {
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
}

/// What `lab up` recorded about one host
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostState {
    pub name: String,
    pub role: Role,
    pub ip: Ipv4Addr,
    /// PID of `systemd-nspawn` at the last start
    pub nspawn_pid: Option<i32>,
    /// PID (on the machine) of the container's init at the last start
    pub init_pid: Option<i32>,
    /// Inode of the container's PID namespace, which identifies its processes
    pub pid_ns: Option<u64>,
}

/// What a lab remembers between commands
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub name: String,
    pub subnet: String,
    pub bridge: String,
    /// The image root filesystem every host's overlay stacks on
    pub image: PathBuf,
    pub hosts: Vec<HostState>,
    /// The inventory the last `lab up` wrote
    pub inventory: Option<PathBuf>,
    /// The package mirror the lab serves (`www/` of a cached mirror)
    #[serde(default)]
    pub mirror: Option<PathBuf>,
}

impl LabState {
    pub fn host(&self, name: &str) -> Option<&HostState> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn host_mut(&mut self, name: &str) -> Option<&mut HostState> {
        self.hosts.iter_mut().find(|h| h.name == name)
    }
}

/// Reads `state.json`; `None` when the lab does not exist
pub fn load(paths: &LabPaths) -> anyhow::Result<Option<LabState>> {
    let path = paths.state();
    match std::fs::read(&path) {
        Ok(raw) => serde_json::from_slice(&raw)
            .with_context(|| format!("cannot parse `{}`", path.display()))
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Reads `state.json` of a lab that must exist
pub fn load_existing(paths: &LabPaths) -> anyhow::Result<LabState> {
    load(paths)?.with_context(|| {
        format!(
            "lab `{}` does not exist (no `{}`); start it with `pgdeploy lab up --name {}`",
            paths.name,
            paths.state().display(),
            paths.name
        )
    })
}

/// Writes `state.json` atomically
pub fn save(paths: &LabPaths, state: &LabState) -> anyhow::Result<()> {
    let raw = serde_json::to_vec_pretty(state)?;
    write_atomic(&paths.state(), &raw, 0o644)
}

/// Writes a file atomically with `mode` ([`pgdeploy_core::atomic_file`]), its directory
/// created first
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().context("path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    Ok(pgdeploy_core::atomic_file::write(path, contents, mode)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("pgd").is_ok());
        assert!(check_name("t1").is_ok());
        assert!(check_name("toolong1").is_err());
        assert!(check_name("1ab").is_err());
        assert!(check_name("a-b").is_err());
        let p = LabPaths::new("pgdtest");
        assert!(p.veth("lb49").len() <= 15);
        assert!(p.bridge().len() <= 15);
    }
}
