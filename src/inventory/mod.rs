//! The inventory: hosts, groups and their variables, loaded from Ansible-compatible files.
//!
//! Loaders (YAML, INI, `group_vars/`, `host_vars/`) produce an [`Inventory`] whose hosts carry
//! their variables already merged by Ansible's precedence (all < parent group < child group <
//! host) and their typed [`Connection`]. Nothing else in the engine reads inventory files.

pub mod pattern;
mod pending;
pub use pending::{list, load};

use indexmap::IndexMap;
use serde_json::Value;

use crate::diag::Location;

/// A variable's value and where it was set (for error messages about it).
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub value: Value,
    pub origin: Location,
}

pub type Vars = IndexMap<String, Var>;

/// How to reach a host, from Ansible's connection variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub kind: ConnectionKind,
    /// `ansible_host`, else the inventory name.
    pub address: String,
    /// `ansible_port`; `None` lets ssh config or the default (22) decide.
    pub port: Option<u16>,
    /// `ansible_user`.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`.
    pub private_key_file: Option<String>,
    /// `pgdeploy_known_hosts_file`: the known_hosts file to verify this host's key against.
    pub known_hosts_file: Option<String>,
    /// `ansible_become`.
    pub become_: bool,
    /// `ansible_become_user` (default root).
    pub become_user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Ssh,
    Local,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    /// Variables merged by precedence.
    pub vars: Vars,
    /// Every group the host belongs to, directly or through a child group, `all` included,
    /// in inventory order.
    pub groups: Vec<String>,
    pub connection: Connection,
    /// Where the host was first declared.
    pub defined_at: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// Hosts listed directly in this group.
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    /// The group's own variables (not merged).
    pub vars: Vars,
    pub defined_at: Option<Location>,
}

/// The resolved inventory. Host and group maps keep inventory order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    /// Includes the implicit `all` and `ungrouped`.
    pub groups: IndexMap<String, Group>,
}
