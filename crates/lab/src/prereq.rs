//! Checks that the lab can run here before it changes anything: root, and the tools it calls

use std::path::{Path, PathBuf};

/// Something the lab needs that this machine lacks
#[derive(Debug, thiserror::Error)]
pub enum PrereqError {
    #[error("the lab needs root (it creates bridges, mounts and containers); run `pgdeploy lab` as root")]
    NotRoot,
    #[error("`{command}` not found (Debian package `{package}`); run `scripts/install-lab-prereqs` as root")]
    Missing {
        command: &'static str,
        package: &'static str,
    },
    #[error("the kernel has no overlay filesystem (`overlay` is missing from `/proc/filesystems`); try `modprobe overlay`")]
    NoOverlay,
}

/// Tools every lab command uses, with the package that provides each
const RUNTIME: &[(&str, &str)] = &[
    ("systemd-nspawn", "systemd-container"),
    ("ip", "iproute2"),
    ("ssh-keygen", "openssh-client"),
    ("nsenter", "util-linux"),
    ("setsid", "util-linux"),
    ("mount", "mount"),
    ("umount", "mount"),
];

/// Tools only the image build uses
const BUILD: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("python3", "python3"),
    ("chroot", "coreutils"),
];

/// Tools only the package mirror's build uses
const MIRROR_BUILD: &[(&str, &str)] = &[
    ("reprepro", "reprepro"),
    ("gpg", "gnupg"),
    ("gpgv", "gpgv"),
    ("python3", "python3"),
    ("chroot", "coreutils"),
];

/// What serves the mirror to the hosts
const MIRROR_SERVER: &[(&str, &str)] = &[("nginx", "nginx-light")];

/// Root, the runtime tools and overlayfs
pub fn check_runtime() -> Result<(), PrereqError> {
    // SAFETY: geteuid(2) cannot fail
    if unsafe { libc::geteuid() } != 0 {
        return Err(PrereqError::NotRoot);
    }
    check_tools(RUNTIME)?;
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        return Err(PrereqError::NoOverlay);
    }
    Ok(())
}

/// What the image build needs on top of the runtime
pub fn check_build() -> Result<(), PrereqError> {
    check_tools(BUILD)
}

/// What the package mirror's build needs on top of the runtime
pub fn check_mirror_build() -> Result<(), PrereqError> {
    check_tools(MIRROR_BUILD)
}

/// What `lab up` needs to serve the mirror
pub fn check_mirror_server() -> Result<(), PrereqError> {
    check_tools(MIRROR_SERVER)
}

fn check_tools(tools: &[(&'static str, &'static str)]) -> Result<(), PrereqError> {
    for &(command, package) in tools {
        if which(command).is_none() {
            return Err(PrereqError::Missing { command, package });
        }
    }
    Ok(())
}

/// Finds `command` on `PATH` or in the sbin directories a non-login root shell may lack
pub fn which(command: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| p.is_file());
    found
}
