//! `pgdeploy lab`: a local lab of real Debian 12 machines, each a systemd-nspawn container with
//! its own systemd (PID 1), sshd, host name, address and process tree, reached over real SSH.
//!
//! The image is built once with debootstrap ([`image`]) and never modified: every host runs on
//! its own overlay of it. Hosts sit on a bridge the lab creates; see [`subnet`] for the address
//! layout. [`ops`] is the library API (used by the CLI in [`cli`] and by tests)

pub mod cli;
mod cmd;
mod host;
mod identity;
pub mod image;
mod inventory;
mod lock;
mod mounts;
pub mod network;
pub mod ops;
pub mod prereq;
mod procs;
pub mod state;
pub mod subnet;

pub use cli::{run, LabCommand};
pub use ops::{
    down, exec, exec_output, kill, partition, start, status, up, HostInfo, HostRunState,
    HostStatus, LabInfo, UpOptions,
};
pub use subnet::{Role, Subnet};
