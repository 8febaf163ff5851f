//! Variable precedence: each host's variables merged from its groups and itself, like Ansible.
//!
//! From lowest to highest (Ansible's default `VARIABLE_PRECEDENCE`):
//! 1. the inventory files' group variables, `all` first, then the host's groups ordered by
//!    depth (parents before children), then `ansible_group_priority` (higher wins, default 1),
//!    then name (alphabetical, later wins);
//! 2. `group_vars/all`;
//! 3. the other `group_vars/` files, in the same group order;
//! 4. the host's variables from the inventory files;
//! 5. its `host_vars/` file;
//! 6. `-e/--extra-vars`, which also win over play vars and facts (in the template scope).
//!
//! So a `group_vars/` file overrides the inventory's variables of the same group *and* of
//! every other group, as in Ansible. Values replace each other whole: nested mappings are
//! not merged (Ansible's default `hash_behaviour=replace`).

use serde_json::Value;

use super::build::ALL;
use super::connection::{connection_from_vars, no_effect_warnings};
use super::structure::depths;
use super::{Connection, Inventory, Var, Vars};
use crate::diag::{Diagnostic, Diagnostics};

/// The variable that orders groups of the same depth; it is read, not merged into hosts.
pub(crate) const GROUP_PRIORITY: &str = "ansible_group_priority";

/// Merges every host's variables and reads its connection; returns the errors found.
pub(crate) fn resolve(inv: &mut Inventory) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let depth = depths(inv);
    let priority: Vec<i64> = inv
        .groups
        .values()
        .map(|g| group_priority(inv.sources.group_files.get(&g.name), &g.vars, &mut diags))
        .collect();
    let all = inv.groups.get_index_of(ALL);
    let mut resolved = Vec::with_capacity(inv.hosts.len());
    let mut warned = Vec::new();
    for host in inv.hosts.values() {
        let mut order: Vec<usize> = host
            .groups
            .iter()
            .filter_map(|g| inv.groups.get_index_of(g))
            .filter(|&g| Some(g) != all)
            .collect();
        order.sort_by(|&a, &b| {
            (depth[a], priority[a], &inv.groups[a].name).cmp(&(
                depth[b],
                priority[b],
                &inv.groups[b].name,
            ))
        });
        let group_files = |g: usize| inv.sources.group_files.get(&inv.groups[g].name);
        let mut layers: Vec<&Vars> = Vec::with_capacity(2 * order.len() + 4);
        layers.extend(all.map(|a| &inv.groups[a].vars));
        layers.extend(order.iter().map(|&g| &inv.groups[g].vars));
        layers.extend(all.and_then(group_files));
        layers.extend(order.iter().filter_map(|&g| group_files(g)));
        layers.extend(inv.sources.host_vars.get(&host.name));
        layers.extend(inv.sources.host_files.get(&host.name));
        layers.push(&inv.sources.extra_vars);
        let mut vars = Vars::with_capacity(layers.iter().map(|l| l.len()).max().unwrap_or(0));
        for layer in layers {
            for (k, v) in layer {
                if k != GROUP_PRIORITY {
                    vars.insert(k.clone(), v.clone());
                }
            }
        }
        // Set once for a group, the same warning for each of its hosts: shown once.
        for w in no_effect_warnings(&vars) {
            if !warned.contains(&w) {
                warned.push(w.clone());
                diags.push(w);
            }
        }
        let connection = match connection_from_vars(&host.name, &vars) {
            Ok(c) => c,
            Err(e) => {
                diags.extend(e);
                Connection::default_for(&host.name)
            }
        };
        resolved.push((vars, connection));
    }
    for (host, (vars, connection)) in inv.hosts.values_mut().zip(resolved) {
        host.vars = vars;
        host.connection = connection;
    }
    diags
}

/// `ansible_group_priority` of a group: from its `group_vars/` file, else its inventory
/// variables, else 1.
fn group_priority(files: Option<&Vars>, vars: &Vars, diags: &mut Diagnostics) -> i64 {
    let Some(var) = files
        .and_then(|f| f.get(GROUP_PRIORITY))
        .or_else(|| vars.get(GROUP_PRIORITY))
    else {
        return 1;
    };
    let value = match &var.value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    value.unwrap_or_else(|| {
        diags.push(bad_priority(var));
        1
    })
}

fn bad_priority(var: &Var) -> Diagnostic {
    Diagnostic::error(
        Some(var.origin.clone()),
        GROUP_PRIORITY,
        format!(
            "`{GROUP_PRIORITY}` must be an integer, found `{}`",
            match &var.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::build::Builder;
    use super::super::structure::finish;
    use super::*;
    use crate::diag::SourceFile;
    use serde_json::json;

    fn resolved(ini: &str) -> (Inventory, Diagnostics) {
        let mut b = Builder::new();
        super::super::ini::parse(&SourceFile::new("hosts"), ini, &mut b);
        let (mut inv, mut diags) = finish(b);
        diags.extend(resolve(&mut inv));
        (inv, diags)
    }

    fn value(inv: &Inventory, host: &str, var: &str) -> Value {
        inv.hosts[host].vars[var].value.clone()
    }

    #[test]
    fn all_then_parent_then_child_then_host() {
        let (inv, diags) = resolve_ok(
            "[child]\nh1 v=host\nh2\n[parent:children]\nchild\n[all:vars]\nv=all\na=all\n[parent:vars]\nv=parent\n\
             p=parent\n[child:vars]\nv=child\n",
        );
        assert!(diags.is_empty());
        assert_eq!(value(&inv, "h1", "v"), json!("host"));
        assert_eq!(value(&inv, "h2", "v"), json!("child"));
        assert_eq!(value(&inv, "h2", "p"), json!("parent"));
        assert_eq!(value(&inv, "h2", "a"), json!("all"));
    }

    fn resolve_ok(ini: &str) -> (Inventory, Diagnostics) {
        let (inv, diags) = resolved(ini);
        assert!(!diags.has_errors(), "{diags}");
        (inv, diags)
    }

    #[test]
    fn same_depth_alphabetical_unless_priority() {
        let (inv, _) =
            resolve_ok("[zeta]\nh\n[alpha]\nh\n[zeta:vars]\nv=zeta\n[alpha:vars]\nv=alpha\n");
        assert_eq!(value(&inv, "h", "v"), json!("zeta"));
        let (inv, _) = resolve_ok(
            "[zeta]\nh\n[alpha]\nh\n[zeta:vars]\nv=zeta\n[alpha:vars]\nv=alpha\nansible_group_priority=10\n",
        );
        assert_eq!(value(&inv, "h", "v"), json!("alpha"));
        assert!(!inv.hosts["h"].vars.contains_key(GROUP_PRIORITY));
    }

    #[test]
    fn deeper_groups_win_over_priority() {
        let (inv, _) = resolve_ok(
            "[a:children]\nb\n[b]\nh\n[a:vars]\nv=a\nansible_group_priority=99\n[b:vars]\nv=b\n",
        );
        assert_eq!(value(&inv, "h", "v"), json!("b"));
    }

    #[test]
    fn nested_values_replace() {
        let (inv, _) = resolve_ok("[g]\nh d=\"{'x': 1}\"\n[all:vars]\nd={'y': 2}\n");
        assert_eq!(value(&inv, "h", "d"), json!({"x": 1}));
    }

    #[test]
    fn connection_errors_point_at_the_winning_value() {
        let (inv, diags) = resolved("[g]\nh1 ansible_port=99999\nh2\n[g:vars]\nansible_port=22\n");
        assert_eq!(
            diags.to_string(),
            "error: hosts:2:4: ansible_port: `ansible_port` must be a port number from 1 to 65535, found `99999`\n"
        );
        assert_eq!(inv.hosts["h2"].connection.port, Some(22));
    }

    #[test]
    fn bad_group_priority() {
        let (_, diags) = resolved("[g]\nh\n[g:vars]\nansible_group_priority=high\n");
        assert_eq!(
            diags.to_string(),
            "error: hosts:4:1: ansible_group_priority: `ansible_group_priority` must be an integer, found `high`\n"
        );
    }
}
