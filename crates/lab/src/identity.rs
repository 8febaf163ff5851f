//! Each host's identity, written into its overlay before its first boot: host name, `/etc/hosts`,
//! static address, machine id, SSH host keys and the lab's public key for root.
//!
//! Host keys are generated here, per host, rather than at boot, because Debian's sshd does not
//! create missing keys by itself; they live in the host's upper layer, so a host keeps them
//! across `lab kill` / `lab start` like a real machine keeps its disk

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::cmd;
use super::state::write_atomic;
use super::subnet::Subnet;

/// Name and address of every lab host, for `/etc/hosts`
pub(crate) type HostsTable<'a> = &'a [(String, Ipv4Addr)];

/// Writes everything a host needs to boot as itself into `root` (the mounted overlay)
pub(crate) fn provision(
    root: &Path,
    name: &str,
    ip: Ipv4Addr,
    subnet: &Subnet,
    hosts: HostsTable<'_>,
    public_key: &str,
) -> anyhow::Result<()> {
    write_atomic(
        &root.join("etc/hostname"),
        format!("{name}\n").as_bytes(),
        0o644,
    )?;
    write_hosts(root, hosts)?;
    let network = format!(
        "# written by pgdeploy lab: sorts before 80-container-host0.network\n\
         [Match]\nName=host0\n\n[Network]\nAddress={ip}/{prefix}\n\
         LinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n\
         IgnoreCarrierLoss=yes\n",
        prefix = subnet.prefix_len()
    );
    write_atomic(
        &root.join("etc/systemd/network/10-pgdeploy-host0.network"),
        network.as_bytes(),
        0o644,
    )?;
    write_atomic(
        &root.join("etc/machine-id"),
        format!("{}\n", machine_id()?).as_bytes(),
        0o444,
    )?;
    let ssh = root.join("root/.ssh");
    std::fs::create_dir_all(&ssh).with_context(|| format!("cannot create `{}`", ssh.display()))?;
    set_mode(&ssh, 0o700)?;
    write_atomic(
        &ssh.join("authorized_keys"),
        format!("{}\n", public_key.trim()).as_bytes(),
        0o600,
    )?;
    // `-A -f ROOT` creates every missing host key type under ROOT/etc/ssh
    cmd::run(Command::new("ssh-keygen").arg("-A").arg("-f").arg(root))?;
    Ok(())
}

/// `/etc/hosts` with every lab host; rewritten when the lab grows
pub(crate) fn write_hosts(root: &Path, hosts: HostsTable<'_>) -> anyhow::Result<()> {
    let mut text = String::from(
        "# written by pgdeploy lab\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for (name, ip) in hosts {
        let _ = writeln!(text, "{ip}\t{name}");
    }
    write_atomic(&root.join("etc/hosts"), text.as_bytes(), 0o644)
}

/// The host's ed25519 public host key (`ssh-ed25519 AAAA…`), as sshd serves it
pub(crate) fn host_key(root: &Path, kind: &str) -> anyhow::Result<String> {
    let path = root.join(format!("etc/ssh/ssh_host_{kind}_key.pub"));
    let raw = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read host key `{}`", path.display()))?;
    let mut parts = raw.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(t), Some(k)) => Ok(format!("{t} {k}")),
        _ => anyhow::bail!("host key `{}` is malformed", path.display()),
    }
}

fn machine_id() -> anyhow::Result<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("cannot read `/proc/sys/kernel/random/uuid`")?;
    Ok(raw.trim().replace('-', ""))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod `{}`", path.display()))
}

/// Creates the lab's SSH key pair once; returns the public key line
pub(crate) fn ensure_lab_key(key: &Path) -> anyhow::Result<String> {
    let public = key.with_extension("pub");
    if !key.exists() || !public.exists() {
        let _ = std::fs::remove_file(key);
        let _ = std::fs::remove_file(&public);
        cmd::run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "pgdeploy-lab", "-f"])
                .arg(key),
        )?;
    }
    std::fs::read_to_string(&public).with_context(|| format!("cannot read `{}`", public.display()))
}
