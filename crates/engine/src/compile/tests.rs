//! Compiler tests on in-memory inventories and playbooks.

use std::sync::Arc;

use indexmap::IndexMap;

use super::*;
use pgdeploy_core::diag::{Location, SourceFile};
use pgdeploy_core::inventory::{Connection, ConnectionKind, Group, Host, Inventory};

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
    let pb = crate::playbook::load(&path, &pgdeploy_modules::CATALOGUE)?;
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
        err.contains("undefined variable `nope` for hosts `pg1`, `pg2`\n"),
        "{err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "{err}");
}

fn errors_of(playbook: &str, hosts: &[&str]) -> Vec<pgdeploy_core::diag::Diagnostic> {
    let inv: Vec<(&str, &[&str])> = hosts.iter().map(|h| (*h, &["postgres"][..])).collect();
    compile_str(playbook, inventory(&inv))
        .err()
        .expect("refused")
        .into_iter()
        .collect()
}

#[test]
fn a_static_error_of_a_templated_task_is_reported_once_with_its_suggestion() {
    let errors = errors_of(
        "- hosts: postgres\n  tasks:\n    - copy: {dest: /x, content: \"{{ inventory_hostname }}\", mdoe: \"0600\"}\n",
        &["pg1", "pg2", "pg3"],
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.message, "unknown field `mdoe`");
    assert!(e.hosts.is_empty(), "{e:?}");
    assert!(
        e.help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `mode`?"),
        "{e:?}"
    );
    // A literal of the wrong type beside a template: also the playbook's, not the hosts'.
    let errors = errors_of(
        "- hosts: postgres\n  tasks:\n    - service: {name: \"{{ inventory_hostname }}\", enabled: sometimes}\n",
        &["pg1", "pg2"],
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].hosts.is_empty(), "{:?}", errors[0]);
    // A template that does not parse fails alike everywhere.
    let errors = errors_of(
        "- hosts: postgres\n  tasks:\n    - copy: {dest: /x, content: \"{{ a }\"}\n",
        &["pg1", "pg2"],
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].hosts.is_empty(), "{:?}", errors[0]);
}

#[test]
fn a_host_dependent_error_names_the_hosts_that_have_it() {
    // pg3 renders `true`; pg1 and pg2 render `never`: one error, naming both.
    let errors = errors_of(
        "- hosts: postgres\n  tasks:\n    - service: {name: ssh, enabled: \"{{ inventory_hostname == 'pg3' or 'never' }}\"}\n",
        &["pg1", "pg2", "pg3"],
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].hosts, ["pg1", "pg2"]);
    assert!(
        errors[0]
            .to_string()
            .contains("found string `never` for hosts `pg1`, `pg2`"),
        "{}",
        errors[0]
    );
}

#[test]
fn many_hosts_make_one_line_and_many_values_a_note() {
    let hosts: Vec<String> = (1..=8).map(|i| format!("pg{i}")).collect();
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let errors = errors_of(
        "- hosts: postgres\n  tasks:\n    - copy: {dest: /x, content: \"{{ nope }}\"}\n",
        &names,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].hosts.len(), 8);
    assert!(
        errors[0]
            .to_string()
            .contains("for hosts `pg1`, `pg2`, `pg3` and 5 other hosts"),
        "{}",
        errors[0]
    );
    // A value that differs on every host: three messages, the others counted.
    let errors = errors_of(
        "- hosts: postgres\n  tasks:\n    - service: {name: ssh, enabled: \"{{ inventory_hostname }}\"}\n",
        &names,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(
        errors[2].note.as_deref(),
        Some("the same field also fails for 5 other hosts, with other values")
    );
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

/// Secrets only known once rendered for a host reach the redactor: templated variables with
/// secret names at any depth, and module parameters with secret names.
#[test]
fn rendered_secrets_are_recorded_for_each_host() {
    let inv = inventory(&[("h1", &["lb"]), ("h2", &["lb"])]);
    compile_str(
        r#"- hosts: lb
  vars:
    nested:
      deep_password: "{{ inventory_hostname }}-Deep-Recorded"
    word: "Kp{{ inventory_hostname }}"
  tasks:
    - keepalived:
        mode: haproxy
        vip: 10.0.0.100
        virtual_router_id: 51
        auth_pass: "{{ word }}X"
        group: lb
"#,
        inv,
    )
    .unwrap();
    let recorded = pgdeploy_core::secrets::recorded();
    for v in ["h1-Deep-Recorded", "h2-Deep-Recorded", "Kph1X", "Kph2X"] {
        assert!(recorded.iter().any(|r| r == v), "{v} in {recorded:?}");
    }
    // A variable without a secret name is not a secret.
    assert!(!recorded.iter().any(|r| r == "Kph1"), "{recorded:?}");
}

#[test]
fn no_log_takes_ansible_booleans() {
    let inv = || inventory(&[("h1", &[])]);
    for (spelling, expected) in [
        ("yes", true),
        ("\"yes\"", true),
        ("True", true),
        ("'true'", true),
        ("on", true),
        ("no", false),
        ("False", false),
        ("\"off\"", false),
    ] {
        let yaml = format!(
            "- hosts: all\n  tasks:\n    - directory: {{path: /srv/x}}\n      no_log: {spelling}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pb.yml");
        std::fs::write(&path, &yaml).unwrap();
        let pb = crate::playbook::load(&path, &pgdeploy_modules::CATALOGUE).unwrap();
        assert_eq!(pb.plays[0].tasks[0].no_log, expected, "{spelling}");
    }
    let err = compile_str(
        "- hosts: all\n  tasks:\n    - directory: {path: /srv/x}\n      no_log: maybe\n",
        inv(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("tasks[0].no_log: invalid value string `maybe`, expected a boolean"),
        "{err}"
    );
}

/// A playbook's own secrets are known as soon as it loads, before any of its errors is shown.
#[test]
fn playbook_secrets_are_recorded_as_it_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.yml");
    std::fs::write(
        &path,
        "- hosts: all\n  vars:\n    app: {db_pw: Load-Time-Play-Var}\n  tasks:\n    - keepalived: {auth_pass: LoadTmP, bogus: 1}\n",
    )
    .unwrap();
    assert!(crate::playbook::load(&path, &pgdeploy_modules::CATALOGUE).is_err());
    let recorded = pgdeploy_core::secrets::recorded();
    for v in ["Load-Time-Play-Var", "LoadTmP"] {
        assert!(recorded.iter().any(|r| r == v), "{v} in {recorded:?}");
    }
}

/// Hosts whose parameters render the same share one action (read once); hosts whose
/// parameters differ each have their own, with their own values.
#[test]
fn identical_rendered_parameters_share_one_action() {
    let inv = inventory(&[("pg1", &["postgres"]), ("pg2", &["postgres"])]);
    let c = compile_str(
        "- hosts: postgres\n  gather_facts: false\n  vars: { base: /srv }\n  tasks:\n    - name: same\n      directory: {path: \"{{ base }}/x\"}\n    - name: own\n      copy: {dest: /etc/x, content: \"{{ inventory_hostname }} {% if true %}y{% endif %}\\n\"}\n",
        inv,
    )
    .unwrap();
    let actions = |task: usize| -> Vec<Arc<dyn pgdeploy_core::module::Action>> {
        c.graph
            .node_weights()
            .filter_map(|s| match &s.kind {
                StepKind::Task {
                    task: t, action, ..
                } if *t == task => action.clone(),
                _ => None,
            })
            .collect()
    };
    let same = actions(0);
    assert_eq!(same.len(), 2);
    assert!(Arc::ptr_eq(&same[0], &same[1]));
    let own = actions(1);
    assert_eq!(own.len(), 2);
    assert!(!Arc::ptr_eq(&own[0], &own[1]));
    let (a, b) = (format!("{:?}", own[0]), format!("{:?}", own[1]));
    assert!(a.contains("pg1 y") && b.contains("pg2 y"), "{a} / {b}");
}
