use super::*;
use crate::common::fake::{block_on, output, Harness};
use crate::common::patroni_state::fixture::LIST;
use pgdeploy_core::template::Facts;
use pgdeploy_test_support::memory::MemoryTransport;

fn rule(yaml: &str) -> PostgresqlPgHba {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn problems(yaml: &str) -> Vec<String> {
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("."),
        inventory: None,
    };
    rule(yaml)
        .check(&cx)
        .into_iter()
        .map(|p| p.message)
        .collect()
}

fn site() -> Vec<String> {
    [
        "local all postgres peer",
        "hostssl replication replicator 10.0.0.0/24 scram-sha-256",
        "hostssl all all 127.0.0.1/32 scram-sha-256",
        "hostssl all all 0.0.0.0/0 scram-sha-256",
    ]
    .map(str::to_string)
    .to_vec()
}

const BOB: &str = "{databases: db1, users: bob, source: 0.0.0.0/0}";

#[test]
fn a_new_rule_goes_before_the_catch_alls_and_then_converges() {
    let r = rule(BOB);
    assert_eq!(
        r.line(),
        "hostssl db1 bob 0.0.0.0/0 scram-sha-256 # pgdeploy: postgresql_pg_hba"
    );
    let out = r.converge(&site()).unwrap();
    assert_eq!(
        out.summary,
        "add pg_hba rule `hostssl db1 bob 0.0.0.0/0 scram-sha-256` (before `hostssl all all 127.0.0.1/32 scram-sha-256`)"
    );
    assert_eq!(out.lines[2], r.line());
    assert_eq!(out.lines.len(), 5);
    assert_eq!(r.converge(&out.lines), None, "a second run changes nothing");
}

#[test]
fn another_method_replaces_the_rule_where_it_is_and_absent_removes_it() {
    let first = rule("{databases: db1, users: bob, source: 0.0.0.0/0}");
    let other = rule(
        "{databases: db2, users: alice, source: 10.0.0.0/8, method: cert, options: clientcert=verify-full}",
    );
    let lines = other
        .converge(&first.converge(&site()).unwrap().lines)
        .unwrap()
        .lines;
    assert_eq!(lines[2], first.line());
    assert_eq!(
        lines[3],
        "hostssl db2 alice 10.0.0.0/8 cert clientcert=verify-full # pgdeploy: postgresql_pg_hba"
    );
    let reject = rule("{databases: db1, users: bob, source: 0.0.0.0/0, method: reject}");
    let out = reject.converge(&lines).unwrap();
    assert_eq!(
        out.summary,
        "pg_hba rule `hostssl db1 bob 0.0.0.0/0 scram-sha-256` becomes `hostssl db1 bob 0.0.0.0/0 reject`"
    );
    assert_eq!(out.lines[2], reject.line(), "in place, still first");
    assert_eq!(out.lines.len(), 6);
    let gone =
        rule("{databases: db1, users: bob, source: 0.0.0.0/0, method: reject, state: absent}")
            .converge(&out.lines)
            .unwrap();
    assert_eq!(
        gone.summary,
        "remove pg_hba rule `hostssl db1 bob 0.0.0.0/0 reject`"
    );
    assert_eq!(gone.lines.len(), 5);
    assert!(!gone.lines.iter().any(|l| l.contains("db1 bob")));
    assert_eq!(
        rule("{databases: db1, users: bob, source: 0.0.0.0/0, state: absent}").converge(&site()),
        None
    );
}

#[test]
fn a_site_line_is_never_touched_even_for_the_same_connections() {
    let mut lines = site();
    lines.insert(2, "hostssl db1 bob 0.0.0.0/0 scram-sha-256".into());
    let r = rule("{databases: db1, users: bob, source: 0.0.0.0/0, state: absent}");
    assert_eq!(r.converge(&lines), None);
    let notes = r.notes(&lines);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("the first line that matches decides"),
        "{notes:?}"
    );
}

#[test]
fn the_plan_is_the_whole_list_as_a_diff_and_a_cluster_without_one_is_refused() {
    let config = json!({"loop_wait": 10, "postgresql": {"pg_hba": site()}});
    let plan = rule(BOB).plan_for(&config).unwrap();
    let diff = plan.changes[0].diff.as_ref().unwrap().unified();
    assert!(
        diff.contains("+hostssl db1 bob 0.0.0.0/0 scram-sha-256 # pgdeploy: postgresql_pg_hba"),
        "{diff}"
    );
    assert!(diff.contains(" local all postgres peer"), "{diff}");
    let err = rule(BOB).plan_for(&json!({"loop_wait": 10})).unwrap_err();
    assert!(
        err.to_string().contains("has no `postgresql.pg_hba`"),
        "{err}"
    );
}

#[test]
fn bad_rules_are_refused_at_load() {
    assert!(problems(BOB).is_empty());
    assert!(problems("{contype: local, users: bob, method: peer}").is_empty());
    assert_eq!(
        problems("{databases: db1, users: bob}"),
        ["a `hostssl` rule needs the client address (`10.0.0.0/24`, `samenet`, …)"]
    );
    assert_eq!(
        problems("{contype: local, source: 10.0.0.0/8}"),
        ["a `local` rule has no address"]
    );
    assert_eq!(
        problems("{users: 'bob all', source: x}"),
        ["`bob all` holds a blank or a control character"]
    );
    assert_eq!(
        problems("{users: 'bob#x', source: x}"),
        ["`bob#x` holds `#` or `\"`"]
    );
    assert!(problems("{source: x, method: md5}")[0].contains("uses `md5`"));
    assert!(problems("{contype: hostnossl, source: x}")[0].contains("use `hostssl`"));
    assert!(problems("{source: x, method: scram}")[0].contains("unknown method `scram`"));
    assert_eq!(
        problems("{source: x, options: \"a\\nb\"}"),
        ["holds `#` or a line break"]
    );
}

#[test]
fn community_names_read() {
    let r = rule("{contype: host, databases: all, users: all, src: samenet, method: cert}");
    assert_eq!(r.source.as_deref(), Some("samenet"));
    assert_eq!(r.contype, ConType::Host);
}

/// `patronictl show-config` with `lines` as `postgresql.pg_hba`, after the fixture's list.
fn state_with(lines: &[String]) -> String {
    let head = LIST.split("==config").next().unwrap();
    let yaml = serde_yaml_ng::to_string(&json!({"loop_wait": 1, "postgresql": {"pg_hba": lines}}))
        .unwrap();
    format!("{head}==config\n{yaml}")
}

#[test]
fn apply_writes_the_list_through_patronictl_and_waits_for_the_reload() {
    let r = rule(BOB);
    let after = r.converge(&site()).unwrap().lines;
    let file = format!(
        "t\n# Do not edit this file manually!\n# It will be overwritten by Patroni!\n{}\n",
        after.join("\n")
    );
    let transport = MemoryTransport::new("h1")
        .answer("ctl list -e -f json", output(0, &state_with(&site())))
        .answer("ctl edit-config --force --quiet --apply -", output(0, ""))
        .answer("psql -X -q -A -t", output(0, &file));
    let h = Harness::new(transport, Facts::default());
    let r = rule("{databases: db1, users: bob, source: 0.0.0.0/0, member: pg1}");
    let plan = block_on(r.plan(&h.cx())).unwrap();
    assert!(plan.is_changed());
    block_on(r.apply(&h.cx(), &plan)).unwrap();
    let reqs = h.transport.requests();
    let edit = reqs
        .iter()
        .find(|q| q.command.contains("edit-config"))
        .expect("edit-config ran");
    let body: Value = serde_json::from_slice(edit.stdin.as_ref().unwrap()).unwrap();
    assert_eq!(body, json!({"postgresql": {"pg_hba": after}}));
}

#[test]
fn on_a_replica_nothing_is_planned() {
    let transport =
        MemoryTransport::new("h1").answer("ctl list -e -f json", output(0, &state_with(&site())));
    let h = Harness::new(transport, Facts::default());
    let plan = block_on(rule("{databases: db1, users: bob, source: x, member: pg2}").plan(&h.cx()))
        .unwrap();
    assert!(!plan.is_changed());
    assert!(
        plan.notes[0].contains("on the leader `pg1`"),
        "{:?}",
        plan.notes
    );
}

#[test]
fn the_wait_fails_clearly_when_patroni_never_writes_the_list() {
    let transport = MemoryTransport::new("h1").answer(
        "psql -X -q -A -t",
        output(0, &format!("t\n{}\n", site().join("\n"))),
    );
    let h = Harness::new(transport, Facts::default());
    let after = rule(BOB).converge(&site()).unwrap().lines;
    let err = block_on(wait_loaded(&h.cx(), &after, Duration::from_millis(600)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("did not apply the new `pg_hba` within 0.6 s")
            && err.contains("overrides the DCS's"),
        "{err}"
    );
    // the list is in the file but not loaded yet
    let transport = MemoryTransport::new("h1").answer(
        "psql -X -q -A -t",
        output(0, &format!("f\n{}\n", after.join("\n"))),
    );
    let h = Harness::new(transport, Facts::default());
    let err = block_on(wait_loaded(&h.cx(), &after, Duration::from_millis(10)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("has not reloaded it"), "{err}");
}
