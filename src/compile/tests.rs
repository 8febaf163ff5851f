//! Compiler tests on in-memory inventories and playbooks.

use std::sync::Arc;

use indexmap::IndexMap;

use super::*;
use crate::diag::{Location, SourceFile};
use crate::inventory::{Connection, ConnectionKind, Group, Host, Inventory};

fn inventory(hosts: &[(&str, &[&str])]) -> Inventory {
    let file = SourceFile::new("inv.yml");
    let mut inv = Inventory::default();
    for (name, groups) in hosts {
        let mut all_groups = vec!["all".to_string()];
        all_groups.extend(groups.iter().map(|g| g.to_string()));
        for g in &all_groups {
            inv.groups
                .entry(g.clone())
                .or_insert_with(|| Group {
                    name: g.clone(),
                    hosts: Vec::new(),
                    children: Vec::new(),
                    vars: IndexMap::new(),
                    defined_at: None,
                })
                .hosts
                .push(name.to_string());
        }
        inv.hosts.insert(
            name.to_string(),
            Host {
                name: name.to_string(),
                vars: IndexMap::new(),
                groups: all_groups,
                connection: Connection {
                    kind: ConnectionKind::Ssh,
                    address: name.to_string(),
                    port: None,
                    user: None,
                    private_key_file: None,
                    known_hosts_file: None,
                    become_: false,
                    become_user: None,
                    escalation: Default::default(),
                    ssh: Default::default(),
                },
                defined_at: Location::file(&file),
            },
        );
    }
    inv
}

fn compile_str(yaml: &str, inv: Inventory) -> Result<Compiled, Diagnostics> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.yml");
    std::fs::write(&path, yaml).unwrap();
    let pb = crate::playbook::load(&path)?;
    compile(
        &pb,
        Arc::new(inv),
        CompileOptions {
            limit: None,
            facts: None,
        },
    )
}

#[test]
fn per_host_order_and_play_barrier() {
    let inv = inventory(&[
        ("pg1", &["postgres"]),
        ("pg2", &["postgres"]),
        ("lb1", &["lb"]),
    ]);
    let c = compile_str(
        "- hosts: postgres\n  tasks:\n    - name: a\n      directory: {path: /a}\n    - name: b\n      directory: {path: /b}\n- hosts: lb\n  tasks:\n    - name: c\n      directory: {path: /c}\n",
        inv,
    )
    .unwrap();
    insta::assert_snapshot!(to_text(&c), @r"
    6 steps, 5 edges
    `a` on `pg1`
    `a` on `pg2`
    `b` on `pg1`
      after `a` on `pg1` (host order)
    `b` on `pg2`
      after `a` on `pg2` (host order)
    end of play `postgres`
      after `b` on `pg1` (play boundary)
      after `b` on `pg2` (play boundary)
    `c` on `lb1`
      after end of play `postgres` (play boundary)
    ");
}

#[test]
fn wait_for_forward_reference_is_a_cycle() {
    let inv = inventory(&[("pg1", &["postgres"])]);
    let err = compile_str(
        "- hosts: postgres\n  tasks:\n    - name: a\n      directory: {path: /a}\n      wait_for: b\n    - name: b\n      directory: {path: /b}\n",
        inv,
    )
    .err()
    .unwrap();
    let text = err.to_string();
    assert!(text.contains("dependency cycle"), "{text}");
    assert!(text.contains("pb.yml:5:17"), "{text}");
}

#[test]
fn throttle_limits_steps() {
    let inv = inventory(&[("pg1", &["postgres"]), ("pg2", &["postgres"])]);
    let c = compile_str(
        "- hosts: postgres\n  throttle: 1\n  tasks:\n    - directory: {path: /a}\n",
        inv,
    )
    .unwrap();
    assert!(c.graph.node_weights().all(|s| s.limit == Some(1)));
}

#[test]
fn handlers_follow_the_play_tasks() {
    let inv = inventory(&[("pg1", &["postgres"])]);
    let c = compile_str(
        "- hosts: postgres\n  tasks:\n    - copy: {dest: /x, content: a}\n      notify: h\n  handlers:\n    - name: h\n      service: {name: ssh, state: restarted}\n",
        inv,
    )
    .unwrap();
    let text = to_text(&c);
    assert!(
        text.contains("handler `h` on `pg1`\n  after `copy` on `pg1` (handler)"),
        "{text}"
    );
}

#[test]
fn templates_render_per_host_and_undefined_is_an_error() {
    let inv = inventory(&[("pg1", &["postgres"]), ("pg2", &["postgres"])]);
    let ok = compile_str(
        "- hosts: postgres\n  tasks:\n    - directory: {path: \"/srv/{{ inventory_hostname }}\"}\n",
        inventory(&[("pg1", &["postgres"])]),
    );
    assert!(ok.is_ok());
    let err = compile_str(
        "- hosts: postgres\n  tasks:\n    - directory: {path: \"/srv/{{ nope }}\"}\n",
        inv,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("undefined variable `nope` for host `pg1`"),
        "{err}"
    );
    assert!(err.contains("also fails for 1 other host"), "{err}");
}

#[test]
fn facts_are_deferred_until_gathered() {
    let inv = inventory(&[("pg1", &["postgres"])]);
    let c = compile_str(
        "- hosts: postgres\n  tasks:\n    - directory: {path: \"/srv/{{ ansible_hostname }}\"}\n",
        inv,
    )
    .unwrap();
    let deferred = c
        .graph
        .node_weights()
        .any(|s| matches!(&s.kind, StepKind::Task { action: None, .. }));
    assert!(deferred);
}
