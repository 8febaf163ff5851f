//! Mount points: the hosts' overlays, and the bind mounts of an image build. Directories are only
//! ever removed after everything mounted below them is unmounted, and with
//! `rm --one-file-system`, so a stale bind mount of `/dev` can never be deleted through

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::cmd;

/// Decodes the octal escapes (`\040` for a space) of `/proc/self/mountinfo`
fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount point of this mount namespace
pub(crate) fn mount_points() -> anyhow::Result<Vec<PathBuf>> {
    let raw = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read `/proc/self/mountinfo`")?;
    Ok(raw
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect())
}

/// True when `path` is a mount point
pub(crate) fn is_mounted(path: &Path) -> anyhow::Result<bool> {
    Ok(mount_points()?.iter().any(|m| m == path))
}

/// Mount points at or below `dir`, deepest first
pub(crate) fn mounts_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Unmounts `path`, lazily if it is busy
pub(crate) fn unmount(path: &Path) -> anyhow::Result<()> {
    let out = cmd::output(Command::new("umount").arg(path))?;
    if out.status.success() {
        return Ok(());
    }
    cmd::run(Command::new("umount").arg("-l").arg(path))?;
    Ok(())
}

/// Unmounts everything at or below `dir`
pub(crate) fn unmount_under(dir: &Path) -> anyhow::Result<()> {
    // a mount can be stacked several times on one path: loop until nothing is left
    for _ in 0..8 {
        let found = mounts_under(dir)?;
        if found.is_empty() {
            return Ok(());
        }
        for m in found {
            unmount(&m)?;
        }
    }
    bail!("mounts below `{}` remain after unmounting", dir.display())
}

/// Removes `dir` and everything in it, after unmounting what is mounted below it
pub(crate) fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    unmount_under(dir)?;
    cmd::run(
        Command::new("rm")
            .args(["-rf", "--one-file-system", "--"])
            .arg(dir),
    )?;
    Ok(())
}

/// Mounts an overlay of `lower` (read-only) with `upper` and `work` on `merged`
pub(crate) fn mount_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> anyhow::Result<()> {
    for p in [lower, upper, work, merged] {
        let s = p.to_string_lossy();
        if s.contains([',', ':', ' ']) {
            bail!(
                "overlay path `{s}` contains `,`, `:` or a space, which mount options cannot carry"
            );
        }
    }
    for d in [upper, work, merged] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create `{}`", d.display()))?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    cmd::run(
        Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(merged),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\"), "/end\\");
    }
}
