//! Turns the declarations of the files into the inventory's structure: the implicit `all`
//! and `ungrouped`, the group graph checked for cycles, and each host's groups.
//!
//! Ancestries are computed once per group (memoised over the graph) and each host only
//! unions the ancestries of its direct groups, so the work grows with hosts × groups of a
//! host, not with hosts × all groups.

use std::collections::HashMap;

use super::build::{Builder, ALL, UNGROUPED};
use super::names::{group_name_problem, GroupNameProblem};
use super::Inventory;
use crate::diag::{Diagnostic, Diagnostics, Location};

/// Finishes the inventory built from the files (variables are merged later).
pub(crate) fn finish(b: Builder) -> (Inventory, Diagnostics) {
    let Builder {
        mut inv,
        child_at,
        mut diags,
        ..
    } = b;
    check_group_names(&inv, &child_at, &mut diags);
    check_vars_only_groups(&inv, &mut diags);
    break_cycles(&mut inv, &child_at, &mut diags);
    attach_top_level_groups(&mut inv);
    assign_hosts(&mut inv);
    (inv, diags)
}

/// A group that only has variables (`[postgress:vars]`, no hosts, no children) is most often
/// a misspelt group: its variables reach no host. A warning, with the nearest group's name.
fn check_vars_only_groups(inv: &Inventory, diags: &mut Diagnostics) {
    let populated = |g: &super::Group| !g.hosts.is_empty() || !g.children.is_empty();
    let is_child: std::collections::HashSet<&str> = inv
        .groups
        .values()
        .flat_map(|g| g.children.iter().map(String::as_str))
        .collect();
    for g in inv.groups.values() {
        if g.name == ALL || g.name == UNGROUPED || populated(g) || g.vars.is_empty() {
            continue;
        }
        if is_child.contains(g.name.as_str()) {
            continue;
        }
        let at = g
            .defined_at
            .clone()
            .or_else(|| g.vars.values().next().map(|v| v.origin.clone()));
        let mut d = Diagnostic::warning(
            at,
            "",
            format!(
                "group `{}` has variables but no hosts and no children: they reach no host",
                g.name
            ),
        );
        let others = inv
            .groups
            .values()
            .filter(|o| o.name != g.name && populated(o))
            .map(|o| o.name.as_str());
        if let Some(best) = crate::diag::did_you_mean(&g.name, others) {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        diags.push(d);
    }
}

fn check_group_names(
    inv: &Inventory,
    child_at: &HashMap<(String, String), Location>,
    diags: &mut Diagnostics,
) {
    let mut first_reference: HashMap<&str, &Location> = HashMap::new();
    for ((_, child), at) in child_at {
        let e = first_reference.entry(child.as_str()).or_insert(at);
        if at < *e {
            *e = at;
        }
    }
    for g in inv.groups.values() {
        let at = g
            .defined_at
            .as_ref()
            .or_else(|| first_reference.get(g.name.as_str()).copied())
            .cloned();
        match group_name_problem(&g.name) {
            None => {}
            Some(GroupNameProblem::Error(message)) => {
                diags.push(Diagnostic::error(at, "", message))
            }
            Some(GroupNameProblem::Warning { message, help }) => {
                diags.push(Diagnostic::warning(at, "", message).with_help(help))
            }
        }
    }
}

/// Children lists as group indices.
fn child_indices(inv: &Inventory) -> Vec<Vec<usize>> {
    inv.groups
        .values()
        .map(|g| {
            g.children
                .iter()
                .filter_map(|c| inv.groups.get_index_of(c))
                .collect()
        })
        .collect()
}

/// Reports every group that is its own ancestor and removes the edge that closes the cycle,
/// so that everything after can rely on an acyclic graph.
fn break_cycles(
    inv: &mut Inventory,
    child_at: &HashMap<(String, String), Location>,
    diags: &mut Diagnostics,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        New,
        Open,
        Done,
    }
    struct Walk<'a> {
        children: &'a [Vec<usize>],
        color: Vec<Color>,
        stack: Vec<usize>,
        back_edges: Vec<(usize, usize, Vec<usize>)>,
    }
    fn visit(w: &mut Walk<'_>, g: usize) {
        w.color[g] = Color::Open;
        w.stack.push(g);
        for &c in &w.children[g] {
            match w.color[c] {
                Color::New => visit(w, c),
                Color::Open => {
                    let from = w.stack.iter().rposition(|&s| s == c).unwrap_or(0);
                    w.back_edges.push((g, c, w.stack[from..].to_vec()));
                }
                Color::Done => {}
            }
        }
        w.stack.pop();
        w.color[g] = Color::Done;
    }
    let children = child_indices(inv);
    let mut w = Walk {
        children: &children,
        color: vec![Color::New; children.len()],
        stack: Vec::new(),
        back_edges: Vec::new(),
    };
    for g in 0..children.len() {
        if w.color[g] == Color::New {
            visit(&mut w, g);
        }
    }
    for (parent, child, cycle) in w.back_edges {
        let name = |i: usize| {
            inv.groups
                .get_index(i)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        };
        let (parent, child) = (name(parent), name(child));
        let mut chain: Vec<String> = cycle
            .into_iter()
            .map(|i| format!("`{}`", name(i)))
            .collect();
        chain.push(format!("`{child}`"));
        let at = child_at.get(&(parent.clone(), child.clone())).cloned();
        diags.push(
            Diagnostic::error(
                at,
                "",
                format!(
                    "group `{child}` is its own ancestor: {}",
                    chain.join(" -> ")
                ),
            )
            .with_help(format!("remove `{child}` from the children of `{parent}`")),
        );
        if let Some(g) = inv.groups.get_mut(&parent) {
            g.children.retain(|c| *c != child);
        }
    }
}

/// Groups without a parent are children of `all`, after `ungrouped` (Ansible's order).
fn attach_top_level_groups(inv: &mut Inventory) {
    let mut has_parent = vec![false; inv.groups.len()];
    for g in inv.groups.values() {
        for c in &g.children {
            if let Some(i) = inv.groups.get_index_of(c) {
                has_parent[i] = true;
            }
        }
    }
    let mut top = vec![UNGROUPED.to_string()];
    if let Some(all) = inv.groups.get(ALL) {
        top.extend(all.children.iter().filter(|c| *c != UNGROUPED).cloned());
    }
    for (i, name) in inv.groups.keys().enumerate() {
        if !has_parent[i] && name != ALL && name != UNGROUPED {
            top.push(name.clone());
        }
    }
    if let Some(all) = inv.groups.get_mut(ALL) {
        all.children = top;
    }
}

/// Fills `ungrouped` (hosts in no group but `all`), makes `all` list every host, and sets each
/// host's groups: its direct groups and all their ancestors, in inventory order.
fn assign_hosts(inv: &mut Inventory) {
    let n = inv.groups.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (p, children) in child_indices(inv).into_iter().enumerate() {
        for c in children {
            parents[c].push(p);
        }
    }
    let mut ancestry: Vec<Option<Vec<usize>>> = vec![None; n];
    fn ancestors(g: usize, parents: &[Vec<usize>], memo: &mut [Option<Vec<usize>>]) -> Vec<usize> {
        if let Some(a) = &memo[g] {
            return a.clone();
        }
        let mut set = vec![g];
        for &p in &parents[g] {
            set.extend(ancestors(p, parents, memo));
        }
        set.sort_unstable();
        set.dedup();
        memo[g] = Some(set.clone());
        set
    }
    let mut direct: Vec<Vec<usize>> = vec![Vec::new(); inv.hosts.len()];
    for (gi, g) in inv.groups.values().enumerate() {
        for h in &g.hosts {
            if let Some(hi) = inv.hosts.get_index_of(h) {
                direct[hi].push(gi);
            }
        }
    }
    let all = inv.groups.get_index_of(ALL).unwrap_or(0);
    let ungrouped = inv.groups.get_index_of(UNGROUPED).unwrap_or(1);
    let mut ungrouped_hosts = Vec::new();
    for (hi, host) in inv.hosts.values_mut().enumerate() {
        let mut groups: Vec<usize> = vec![all];
        if direct[hi].iter().all(|&g| g == all || g == ungrouped) {
            ungrouped_hosts.push(host.name.clone());
            groups.push(ungrouped);
        }
        for &g in &direct[hi] {
            if g != ungrouped {
                groups.extend(ancestors(g, &parents, &mut ancestry));
            }
        }
        groups.sort_unstable();
        groups.dedup();
        host.groups = groups
            .into_iter()
            .filter_map(|g| inv.groups.get_index(g).map(|(name, _)| name.clone()))
            .collect();
    }
    let every_host: Vec<String> = inv.hosts.keys().cloned().collect();
    if let Some(g) = inv.groups.get_mut(UNGROUPED) {
        g.hosts = ungrouped_hosts;
    }
    if let Some(g) = inv.groups.get_mut(ALL) {
        g.hosts = every_host;
    }
}

/// Each group's depth, by group index: the longest path from `all` (0), as Ansible counts it.
/// Deeper groups' variables override shallower ones.
pub(crate) fn depths(inv: &Inventory) -> Vec<u32> {
    let n = inv.groups.len();
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (p, children) in child_indices(inv).into_iter().enumerate() {
        for c in children {
            parents[c].push(p);
        }
    }
    fn depth(g: usize, parents: &[Vec<usize>], memo: &mut [Option<u32>]) -> u32 {
        if let Some(d) = memo[g] {
            return d;
        }
        // Marked before recursing, so that a cycle (already reported) cannot loop.
        memo[g] = Some(0);
        let d = parents[g]
            .iter()
            .map(|&p| depth(p, parents, memo) + 1)
            .max()
            .unwrap_or(0);
        memo[g] = Some(d);
        d
    }
    let mut memo = vec![None; n];
    (0..n).map(|g| depth(g, &parents, &mut memo)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceFile;

    fn build(text: &str) -> (Inventory, Diagnostics) {
        let mut b = Builder::new();
        super::super::ini::parse(&SourceFile::new("hosts"), text, &mut b);
        finish(b)
    }

    #[test]
    fn implicit_all_and_ungrouped() {
        let (inv, diags) = build("solo\n[pg]\npg1\n[etcd]\npg1\ne1\n");
        assert!(diags.is_empty(), "{diags}");
        assert_eq!(inv.groups["all"].children, ["ungrouped", "pg", "etcd"]);
        assert_eq!(inv.groups["all"].hosts, ["solo", "pg1", "e1"]);
        assert_eq!(inv.groups["ungrouped"].hosts, ["solo"]);
        assert_eq!(inv.hosts["solo"].groups, ["all", "ungrouped"]);
        assert_eq!(inv.hosts["pg1"].groups, ["all", "pg", "etcd"]);
    }

    #[test]
    fn a_host_listed_first_ungrouped_then_in_a_group_is_not_ungrouped() {
        let (inv, _) = build("pg1\n[pg]\npg1\n");
        assert!(inv.groups["ungrouped"].hosts.is_empty());
        assert_eq!(inv.hosts["pg1"].groups, ["all", "pg"]);
    }

    #[test]
    fn groups_through_children_and_depths() {
        let (inv, _) = build("[a:children]\nb\n[b:children]\nc\n[c]\nh\n[x:children]\nc\n");
        assert_eq!(inv.hosts["h"].groups, ["all", "a", "b", "c", "x"]);
        assert_eq!(inv.groups["all"].children, ["ungrouped", "a", "x"]);
        let d = depths(&inv);
        let at = |g: &str| d[inv.groups.get_index_of(g).unwrap()];
        assert_eq!(
            (at("all"), at("a"), at("b"), at("c"), at("x")),
            (0, 1, 2, 3, 1)
        );
    }

    #[test]
    fn cycles_are_errors_naming_the_cycle() {
        let (inv, diags) = build("[a:children]\nb\n[b:children]\nc\n[c:children]\na\n[c]\nh\n");
        assert_eq!(
            diags.to_string(),
            "error: hosts:6:1: group `a` is its own ancestor: `a` -> `b` -> `c` -> `a`\n  \
             help: remove `a` from the children of `c`\n"
        );
        assert!(inv.groups["c"].children.is_empty());
        let (_, diags) = build("[a:children]\na\n");
        assert!(diags
            .to_string()
            .contains("group `a` is its own ancestor: `a` -> `a`"));
    }

    #[test]
    fn group_names_with_dashes_warn() {
        let (_, diags) = build("[web-servers]\nw1\n");
        assert_eq!(
            diags.to_string(),
            "warning: hosts:1:2: group name `web-servers` is not a valid identifier (letters, digits and `_`, \
             not starting with a digit)\n  help: Ansible warns about it too; rename it to `web_servers`\n"
        );
    }
}
