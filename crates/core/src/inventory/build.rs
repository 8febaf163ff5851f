//! The in-progress inventory that the file readers (YAML, INI) add to.
//!
//! Readers only declare things (a group, a host in a group, a child, a variable); turning the
//! declarations into the resolved [`Inventory`] is `structure`'s job, so that several files
//! (an inventory directory) can feed one builder.

use std::collections::HashMap;

use super::{Connection, Group, Host, Inventory, Var};
use crate::diag::{Diagnostic, Diagnostics, Location};

pub(crate) struct Builder {
    pub inv: Inventory,
    /// Where each `parent -> child` edge was declared, for cycle errors.
    pub child_at: HashMap<(String, String), Location>,
    /// Where a host was declared in a group, per file: a second declaration in the same group
    /// of the same file is a mistake, in another file it is a merge.
    declared: HashMap<(String, String), Location>,
    pub diags: Diagnostics,
}

pub(crate) const ALL: &str = "all";
pub(crate) const UNGROUPED: &str = "ungrouped";

impl Builder {
    pub(super) fn new() -> Self {
        let mut inv = Inventory::default();
        for name in [ALL, UNGROUPED] {
            inv.groups.insert(name.to_string(), empty_group(name, None));
        }
        Builder {
            inv,
            child_at: HashMap::new(),
            declared: HashMap::new(),
            diags: Diagnostics::new(),
        }
    }

    /// Declares a group (again: a group may appear in several places, which merges them).
    pub(super) fn group(&mut self, name: &str, at: Option<Location>) {
        match self.inv.groups.get_mut(name) {
            Some(g) => {
                if g.defined_at.is_none() {
                    g.defined_at = at;
                }
            }
            None => {
                self.inv
                    .groups
                    .insert(name.to_string(), empty_group(name, at));
            }
        }
    }

    /// Declares `host` as a member of `group` (declared before).
    pub(super) fn host(&mut self, group: &str, host: &str, at: Location) {
        self.inv
            .hosts
            .entry(host.to_string())
            .or_insert_with(|| Host {
                name: host.to_string(),
                vars: Default::default(),
                groups: Vec::new(),
                connection: Connection::default_for(host),
                defined_at: at.clone(),
            });
        let key = (group.to_string(), host.to_string());
        if let Some(first) = self.declared.get(&key) {
            if first.file == at.file {
                let line = first.mark.map(|m| m.line).unwrap_or_default();
                self.diags.push(
                    Diagnostic::error(
                        Some(at),
                        "",
                        format!("host `{host}` is declared twice in group `{group}`"),
                    )
                    .with_help(format!("first declared at line {line}")),
                );
                return;
            }
        }
        // `declared` doubles as the membership index: scanning the group's list instead
        // would make a group of n hosts cost n² comparisons.
        if self.declared.insert(key, at).is_none() {
            if let Some(g) = self.inv.groups.get_mut(group) {
                g.hosts.push(host.to_string());
            }
        }
    }

    /// Sets a variable on a host; a later setting (later in the file, or a later file) wins.
    pub(super) fn host_var(&mut self, host: &str, name: &str, var: Var) {
        self.inv
            .sources
            .host_vars
            .entry(host.to_string())
            .or_default()
            .insert(name.to_string(), var);
    }

    pub(super) fn group_var(&mut self, group: &str, name: &str, var: Var) {
        if let Some(g) = self.inv.groups.get_mut(group) {
            g.vars.insert(name.to_string(), var);
        }
    }

    /// Makes `child` a child of `parent` (declared before). The child may be declared later
    /// or never (Ansible creates it implicitly). `all` cannot be a child.
    pub(super) fn child(&mut self, parent: &str, child: &str, at: Location) {
        if child == ALL {
            self.diags.push(Diagnostic::error(
                Some(at),
                "",
                format!("group `{ALL}` cannot be a child of `{parent}`: every group is already in `{ALL}`"),
            ));
            return;
        }
        self.group(child, None);
        let edge = (parent.to_string(), child.to_string());
        if let std::collections::hash_map::Entry::Vacant(e) = self.child_at.entry(edge) {
            e.insert(at);
            if let Some(g) = self.inv.groups.get_mut(parent) {
                g.children.push(child.to_string());
            }
        }
    }
}

fn empty_group(name: &str, at: Option<Location>) -> Group {
    Group {
        name: name.to_string(),
        hosts: Vec::new(),
        children: Vec::new(),
        vars: Default::default(),
        defined_at: at,
    }
}
