//! The inventory: hosts, groups and their variables, loaded from Ansible-compatible files.
//!
//! Loaders (YAML, INI, `group_vars/`, `host_vars/`) produce an [`Inventory`] whose hosts carry
//! their variables already merged by Ansible's precedence (all < parent group < child group <
//! host) and their typed [`Connection`]. Nothing else in the engine reads inventory files.
//!
//! The pieces, in the order a load runs them:
//! - `load`: the entry point; finds the inventory files of a path and picks YAML or INI;
//! - `yaml`, `ini`: read one file into a `Builder` (`build`), with `names` for host ranges
//!   and name checks and `literal` for INI values;
//! - `structure`: the implicit `all`/`ungrouped`, cycles, each host's groups;
//! - `vars_dirs`: `group_vars/` and `host_vars/`;
//! - `merge` and `connection`: variable precedence and the typed connection variables.

use indexmap::IndexMap;
use serde_json::Value;

use crate::diag::Location;

mod build;
mod connection;
pub mod extra_vars;
mod ini;
pub mod list;
mod literal;
mod load;
mod merge;
mod names;
pub mod pattern;
pub mod ssh_args;
mod structure;
mod vars_dirs;
mod yaml;

pub use connection::{connection_from_vars, BECOME_PASSWORD_VARS, CONNECTION_KINDS};
pub use load::{add_vars_dirs, load, load_with_warnings};

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
    /// `ansible_become_method` (`sudo`, the default, or `su`) and
    /// `ansible_become_password` (its aliases `ansible_become_pass`, `ansible_sudo_pass`,
    /// `ansible_su_pass`): sent on the command's stdin, never on a command line.
    pub escalation: crate::transport::Escalation,
    /// `ansible_ssh_common_args` then `ansible_ssh_extra_args`, mapped
    /// ([`ssh_args`]); `ansible_timeout` as the connect timeout.
    pub ssh: ssh_args::SshOptions,
}

impl Connection {
    /// The connection of a host that sets no connection variable: ssh to its inventory name.
    pub fn default_for(host: &str) -> Self {
        Connection {
            kind: ConnectionKind::Ssh,
            address: host.to_string(),
            port: None,
            user: None,
            private_key_file: None,
            known_hosts_file: None,
            become_: false,
            become_user: None,
            escalation: crate::transport::Escalation::default(),
            ssh: ssh_args::SshOptions::default(),
        }
    }
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
    /// Hosts listed directly in this group. `all` lists every host, as in Ansible.
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    /// The group's own variables from inventory files (not merged; `group_vars/` files are in
    /// [`VarSources::group_files`]).
    pub vars: Vars,
    pub defined_at: Option<Location>,
}

/// The resolved inventory. Host and group maps keep inventory order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    /// Includes the implicit `all` and `ungrouped`.
    pub groups: IndexMap<String, Group>,
    /// The variables before merging, kept so that `group_vars/` and `host_vars/` found later
    /// (beside the playbook) can be layered in and the hosts re-resolved.
    pub sources: VarSources,
}

/// Unmerged variables other than the groups' own inventory variables ([`Group::vars`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarSources {
    /// Variables set on a host in inventory files, by host name.
    pub host_vars: IndexMap<String, Vars>,
    /// `host_vars/` files, by host name; they override `host_vars`.
    pub host_files: IndexMap<String, Vars>,
    /// `group_vars/` files, by group name; they override every group's inventory variables.
    pub group_files: IndexMap<String, Vars>,
    /// `-e/--extra-vars`: above everything, on every host (and above play vars and facts,
    /// which the template scope checks).
    pub extra_vars: Vars,
}

impl Inventory {
    /// Layers `-e` variables over every host and reads the connection variables again (an
    /// `-e ansible_user=…` wins, as in Ansible). Returns the errors of bad values.
    pub fn set_extra_vars(&mut self, vars: Vars) -> crate::diag::Diagnostics {
        self.sources.extra_vars = vars;
        // A bad `-e` value is the same error on every host: shown once.
        let mut unique = crate::diag::Diagnostics::new();
        let mut seen = Vec::new();
        for d in merge::resolve(self) {
            if !seen.contains(&d) {
                seen.push(d.clone());
                unique.push(d);
            }
        }
        unique
    }

    /// The hosts of `group`, directly or through its descendants, in inventory order.
    pub fn hosts_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Host> + 'a {
        self.hosts
            .values()
            .filter(move |h| h.groups.iter().any(|g| g == group))
    }
}

#[cfg(test)]
mod tests;
