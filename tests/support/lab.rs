//! Test support for tests that need a lab of real hosts (`pgdeploy lab`).
//!
//! Include it with `#[path = "support/lab.rs"] mod lab_support;`. A lab needs root, the tools of
//! `scripts/install-lab-prereqs` and the image (built on first use, about 2 minutes). When
//! `CI=true` a missing prerequisite fails the test; elsewhere the test is skipped with a reason.
//! Give every test binary its own lab name and subnet so binaries never collide with each other
//! or with a user's lab; `PGDEPLOY_TEST_LAB_NAME` and `PGDEPLOY_TEST_LAB_SUBNET` override both
//! (for a second checkout running the same test).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use pgdeploy_lab::{self as lab, LabInfo, UpOptions};

#[path = "skip.rs"]
pub(crate) mod skip;

/// True when lab tests can run here; in CI a missing prerequisite panics instead
pub(crate) fn lab_available() -> bool {
    let problem = lab::prereq::check_runtime()
        .and_then(|_| lab::prereq::check_build())
        .err();
    match problem {
        None => true,
        Some(problem) => skip::require(
            false,
            "lab test",
            &format!("lab prerequisite missing: {problem}"),
        ),
    }
}

/// A lab brought up for a test; `down` when dropped, even when the test panics
pub(crate) struct LabFixture {
    pub info: LabInfo,
    /// Holds the inventory (kept out of the source tree)
    pub dir: tempfile::TempDir,
    down: bool,
}

impl LabFixture {
    /// Brings up lab `name` on `subnet` after removing any leftover of an earlier run; `None` when
    /// the lab cannot run here (outside CI)
    pub(crate) fn up(name: &str, subnet: &str, nodes: u32, balancers: u32) -> Option<LabFixture> {
        if !lab_available() {
            return None;
        }
        // Two checkouts running the same test binary at once (worktrees) each set their own
        // lab name and subnet, so their labs never collide.
        let name_override = std::env::var("PGDEPLOY_TEST_LAB_NAME").ok();
        let subnet_override = std::env::var("PGDEPLOY_TEST_LAB_SUBNET").ok();
        let name = name_override.as_deref().unwrap_or(name);
        let subnet = subnet_override.as_deref().unwrap_or(subnet);
        lab::down(name).expect("cannot remove a leftover lab");
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = UpOptions {
            name: name.to_string(),
            nodes,
            balancers,
            subnet: subnet.parse().expect("test subnet"),
            inventory: dir.path().join("lab.yml"),
        };
        let info = match lab::up(&opts) {
            Ok(info) => info,
            Err(e) => {
                let _ = lab::down(name);
                panic!("lab up `{name}` failed: {e:#}");
            }
        };
        Some(LabFixture {
            info,
            dir,
            down: false,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.info.name
    }

    pub(crate) fn inventory(&self) -> PathBuf {
        self.info.inventory.clone()
    }

    /// The address of host `name`
    pub(crate) fn ip(&self, name: &str) -> Ipv4Addr {
        self.info
            .hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host `{name}`"))
            .ip
    }

    /// OpenSSH `root@ip` with the lab key, verifying the host key against the lab known_hosts
    pub(crate) fn ssh(&self, ip: Ipv4Addr, command: &str) -> Output {
        Command::new("ssh")
            .arg("-i")
            .arg(&self.info.key)
            .arg(format!(
                "-oUserKnownHostsFile={}",
                self.info.known_hosts.display()
            ))
            .args([
                "-oStrictHostKeyChecking=yes",
                "-oBatchMode=yes",
                "-oConnectTimeout=5",
                "-oLogLevel=ERROR",
            ])
            .arg(format!("root@{ip}"))
            .arg(command)
            .output()
            .expect("cannot run ssh")
    }

    /// Like [`Self::ssh`] but asserts success and returns trimmed stdout
    pub(crate) fn ssh_ok(&self, ip: Ipv4Addr, command: &str) -> String {
        let out = self.ssh(ip, command);
        assert!(
            out.status.success(),
            "ssh root@{ip} `{command}` failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Brings the lab down now (asserting success) instead of at drop
    pub(crate) fn down(&mut self) {
        self.down = true;
        lab::down(self.name()).expect("lab down");
    }
}

impl Drop for LabFixture {
    fn drop(&mut self) {
        if !self.down {
            if let Err(e) = lab::down(&self.info.name) {
                eprintln!("lab down `{}` failed: {e:#}", self.info.name);
            }
        }
    }
}

/// True when a TCP connection to `ip:22` succeeds within `timeout`
pub(crate) fn port22_open(ip: Ipv4Addr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((ip, 22)), timeout).is_ok()
}
