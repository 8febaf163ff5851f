//! `pgdeploy lab`: a local lab of real Debian 12 machines, each a systemd-nspawn container with
//! its own systemd (PID 1), sshd, host name, address and process tree, reached over real SSH.
//!
//! The image is built once with debootstrap ([`image`]) and never modified: every host runs on
//! its own overlay of it. It is bare, like a freshly provisioned server: the playbooks install
//! the software from the lab's package mirror ([`mirror`]: a signed APT repository and Python
//! wheels, built once and cached), which each lab serves on its bridge address ([`http`]). Hosts sit on a bridge the lab creates; see [`subnet`] for the address
//! layout. [`ops`] is the library API (used by the CLI in [`cli`] and by tests); tests that need
//! hosts use `tests/support/lab.rs` (`LabFixture::up(name, subnet, nodes, balancers)`).
//!
//! Prerequisites: root, `scripts/install-lab-prereqs` (debootstrap, systemd-container,
//! iproute2, openssh-client, util-linux, python3 with pip). Measured on a 2-core machine: image
//! build about 100 s cold (778 MB tree) and instant when cached; 3 hosts ready for SSH in about
//! 2 s and 6 in about 4–5 s from the cached image; an idle host about 14 MiB (PSS)

// Everything on stderr goes through `pgdeploy_core::output` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

pub mod cli;
mod cmd;
mod host;
pub mod http;
mod identity;
pub mod image;
mod inventory;
mod lock;
pub mod mirror;
mod mounts;
pub mod network;
pub mod ops;
pub mod prereq;
mod procs;
mod recipe;
pub mod state;
pub mod subnet;

pub use cli::{run, LabCommand};
pub use ops::{
    down, exec, exec_output, kill, mirror_status, partition, start, status, up, HostInfo,
    HostRunState, HostStatus, LabInfo, UpOptions,
};
pub use subnet::{Role, Subnet};
