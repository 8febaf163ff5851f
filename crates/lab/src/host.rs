//! One container: boot it with systemd-nspawn on its overlay, find its init, wait for its sshd,
//! and cut its power.
//!
//! nspawn is started through `setsid --fork` so it belongs to no terminal or caller: it outlives
//! `pgdeploy lab up`, and a long-lived caller (a test binary) never holds it as a zombie child.
//! Its PID is found afterwards by its unique machine name (`-M LAB-HOST`)

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::recipe::tail;
use super::state::HostPaths;
use super::{cmd, mounts, procs};

/// How long a host may take from nspawn's start to sshd answering
pub(crate) const SSH_TIMEOUT: Duration = Duration::from_secs(90);

/// A running container
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Running {
    pub nspawn_pid: i32,
    /// The container's systemd, as a PID of this machine
    pub init_pid: i32,
    pub pid_ns: u64,
}

/// The running container of `machine`, if any
pub(crate) fn running(machine: &str) -> Option<Running> {
    let nspawn_pid = procs::find_nspawn(machine)?;
    let init_pid = procs::container_init(nspawn_pid)?;
    let pid_ns = procs::pid_ns(init_pid)?;
    Some(Running {
        nspawn_pid,
        init_pid,
        pid_ns,
    })
}

/// Mounts the host's overlay of `image` unless it is mounted already
pub(crate) fn ensure_overlay(paths: &HostPaths, image: &Path) -> anyhow::Result<()> {
    if mounts::is_mounted(&paths.merged())? {
        return Ok(());
    }
    if !image.is_dir() {
        bail!(
            "image `{}` is missing; run `pgdeploy lab down` and `pgdeploy lab up` to rebuild",
            image.display()
        );
    }
    mounts::mount_overlay(image, &paths.upper(), &paths.work(), &paths.merged())
}

/// Starts nspawn on the mounted overlay and returns once the container's init exists
pub(crate) fn boot(
    paths: &HostPaths,
    machine: &str,
    hostname: &str,
    bridge: &str,
) -> anyhow::Result<Running> {
    if let Some(r) = running(machine) {
        return Ok(r);
    }
    let log_path = paths.log();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open `{}`", log_path.display()))?;
    let mut nspawn = Command::new("setsid");
    nspawn
        .arg("--fork")
        .arg("systemd-nspawn")
        .arg("--quiet")
        .arg("-D")
        .arg(paths.merged())
        .args(["--boot", "--register=no", "--keep-unit"])
        .args(["-M", machine])
        .arg(format!("--hostname={hostname}"))
        .arg(format!("--network-bridge={bridge}"))
        // keepalived adds the VIP and sends VRRP
        .arg("--capability=CAP_NET_ADMIN,CAP_NET_RAW")
        .args([
            "--console=read-only",
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let what = cmd::display(&nspawn);
    let status = nspawn
        .status()
        .with_context(|| format!("cannot run `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed with {status}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(r) = running(machine) {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!(
                "container `{machine}` did not start; last lines of `{}`:\n{}",
                log_path.display(),
                tail(&log_path, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when something at `ip:22` answers with an SSH banner within `timeout`
pub(crate) fn ssh_answers(ip: Ipv4Addr, timeout: Duration) -> bool {
    let addr = SocketAddr::from((ip, 22));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

/// Waits until the host's sshd answers; fails early when the container dies
pub(crate) fn wait_ssh(
    ip: Ipv4Addr,
    machine: &str,
    r: &Running,
    log: &Path,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if ssh_answers(ip, Duration::from_millis(500)) {
            return Ok(started.elapsed());
        }
        // cheaper than `running`, which scans all of /proc
        if procs::pid_ns(r.init_pid) != Some(r.pid_ns) {
            bail!(
                "container `{machine}` stopped while booting; last lines of `{}`:\n{}",
                log.display(),
                tail(log, 20)
            );
        }
        if started.elapsed() > SSH_TIMEOUT {
            bail!(
                "sshd of `{machine}` at `{ip}:22` did not answer within {} s; last lines of `{}`:\n{}",
                SSH_TIMEOUT.as_secs(),
                log.display(),
                tail(log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Power loss: SIGKILL of the container's init, which makes the kernel kill every process of its
/// PID namespace (a SIGKILL of nspawn would leave them running). Returns once nothing is left
pub(crate) fn power_off(r: &Running) -> anyhow::Result<()> {
    if procs::pid_ns(r.init_pid) == Some(r.pid_ns) {
        procs::signal(r.init_pid, libc::SIGKILL)
            .with_context(|| format!("cannot SIGKILL container init `{}`", r.init_pid))?;
    }
    wait_gone(r, Duration::from_secs(10))
}

/// Waits until nspawn has exited and the PID namespace is empty, SIGKILLing stragglers
pub(crate) fn wait_gone(r: &Running, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = procs::pids_in_ns(r.pid_ns);
        let nspawn_alive = procs::alive(r.nspawn_pid)
            && procs::cmdline(r.nspawn_pid)
                .is_some_and(|a| a.first().is_some_and(|p| p.ends_with("systemd-nspawn")));
        if left.is_empty() && !nspawn_alive {
            return Ok(());
        }
        if Instant::now() > deadline {
            for pid in &left {
                let _ = procs::signal(*pid, libc::SIGKILL);
            }
            if nspawn_alive {
                let _ = procs::signal(r.nspawn_pid, libc::SIGKILL);
            }
            if Instant::now() > deadline + Duration::from_secs(5) {
                bail!(
                    "container processes {left:?} (nspawn `{}` alive: {nspawn_alive}) survive SIGKILL",
                    r.nspawn_pid
                );
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Memory of the container in KiB: the sum of its processes' proportional set sizes
pub(crate) fn memory_kib(r: &Running) -> u64 {
    procs::pids_in_ns(r.pid_ns)
        .into_iter()
        .filter_map(procs::pss_kib)
        .sum()
}
