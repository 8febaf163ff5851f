use serde_json::json;

use super::super::common::fake;
use super::*;
use pgdeploy_core::diag::{FieldPath, SourceFile};
use pgdeploy_core::transport::ExecOutput;
use pgdeploy_core::yaml::{from_node, load_str};

fn params(yaml: &str) -> Result<PgliftInstance, String> {
    let file = SourceFile::new("playbook.yml");
    let node = load_str(yaml, &file).expect("YAML");
    from_node(&node, &FieldPath::root().key("dalibo.pglift.instance")).map_err(|e| e.to_string())
}

/// Seed 000's task, as written there.
const SEED: &str = r#"
name: main
state: started
version: 15
port: 5432
surole_password: Passw0rd-su
replrole_password: Passw0rd-repl
pgbackrest:
  password: Passw0rd-bk
  stanza: main-stz
patroni:
  cluster: maincluster
  node: srv-pg1
  restapi:
    connect_address: "10.0.0.1:8008"
    listen: "10.0.0.1:8008"
  postgresql:
    connect_host: 10.0.0.1
"#;

/// `pglift instance get main -o json` of pglift 3.3.0 on the lab (trimmed).
fn got() -> Value {
    json!({
        "name": "main", "version": "15", "port": 5432, "state": "started",
        "pending_restart": false,
        "settings": {"work_mem": "8MB", "shared_buffers": "6 GB", "archive_mode": true},
        "patroni": {"cluster": "maincluster", "node": "srv-pg1",
            "restapi": {"connect_address": "10.0.0.1:8008", "listen": "10.0.0.1:8008"},
            "postgresql": {"connect_host": "10.0.0.1"}},
        "pgbackrest": {"stanza": "main-stz"}
    })
}

#[test]
fn seed_000_task_loads_and_its_manifest_has_the_collection_names() {
    let p = params(SEED).unwrap();
    let m = p.manifest();
    assert_eq!(m["version"], "15");
    assert_eq!(m["port"], 5432);
    assert_eq!(m["state"], "started");
    assert_eq!(m["pgbackrest"]["stanza"], "main-stz");
    assert_eq!(m["pgbackrest"]["password"], "Passw0rd-bk");
    assert_eq!(m["patroni"]["restapi"]["listen"], "10.0.0.1:8008");
    assert_eq!(m["patroni"]["postgresql"]["connect_host"], "10.0.0.1");
    // secrets never in Debug (what a log line would show)
    let dbg = format!("{p:?}");
    assert!(!dbg.contains("Passw0rd"), "{dbg}");
}

#[test]
fn a_typo_is_an_error_naming_the_field() {
    let e = params("name: main\npatroni: {cluster: c, nodes: x}").unwrap_err();
    assert!(e.contains("nodes"), "{e}");
}

#[test]
fn converged_instance_has_no_diff() {
    let p = params(SEED).unwrap();
    assert!(p.diff(&got()).is_empty(), "{:?}", p.diff(&got()));
    // the same setting written another way
    let p = params(&format!(
        "{SEED}settings: {{work_mem: 8 MB, archive_mode: 'on', listen_addresses: '*'}}"
    ))
    .unwrap();
    assert!(p.diff(&got()).is_empty(), "{:?}", p.diff(&got()));
}

#[test]
fn settings_and_state_differences() {
    let p = params(&format!("{SEED}settings: {{work_mem: 16MB}}")).unwrap();
    let d = p.diff(&got());
    assert_eq!(
        d,
        vec![("set `work_mem` to `16MB` (was `8MB`)".to_string(), true)]
    );
    let mut stopped = got();
    stopped["state"] = json!("stopped");
    let d = p.diff(&stopped);
    assert_eq!(
        d.last().unwrap(),
        &("start the instance".to_string(), false)
    );
    let p = params(&SEED.replace("state: started", "state: stopped")).unwrap();
    assert_eq!(
        p.diff(&got()),
        vec![("stop the instance".to_string(), false)]
    );
    let p = params(&SEED.replace("state: started", "state: present")).unwrap();
    assert!(p.diff(&stopped).is_empty());
}

#[test]
fn commands_run_as_the_system_user() {
    let p = params(SEED).unwrap();
    let s = p.read_script();
    assert!(
        s.starts_with("if [ -x /opt/pglift/bin/pglift ]; then cd / &&"),
        "{s}"
    );
    assert!(s.contains("runuser -u postgres"), "{s}");
    assert!(!s.contains("Passw0rd"), "{s}");
}

#[test]
fn bad_names_are_refused() {
    let p = params("name: a/b\nversion: x15").unwrap();
    assert_eq!(check(&p).len(), 2);
}

#[test]
fn dcs_only_settings_go_through_patroni() {
    let p = params(&format!(
        "{SEED}settings: {{work_mem: 8MB, max_connections: 150}}"
    ))
    .unwrap();
    // pglift's own record of max_connections is not what Patroni runs with
    assert!(p.diff(&got()).is_empty(), "{:?}", p.diff(&got()));
    let dcs = json!({"loop_wait": 10, "postgresql": {"parameters": {"max_connections": 100}}});
    assert_eq!(
        p.dcs_diff(&dcs),
        vec![(
            "max_connections".to_string(),
            "150".to_string(),
            Some("100".to_string())
        )]
    );
    let dcs = json!({"postgresql": {"parameters": {"max_connections": 150}}});
    assert!(p.dcs_diff(&dcs).is_empty());
    assert_eq!(p.patronictl(), "/opt/pglift/bin/patronictl");
}

/// The plan's read: `instance get` (or its error), then the locator part.
fn read_output(got: &str, locator_part: &str) -> String {
    format!("{got}\n\n{}\n{locator_part}", locator::MARK)
}

fn plan_and_apply(read: ExecOutput) -> (Vec<String>, fake::MemoryTransport) {
    let t = fake::MemoryTransport::default()
        .answer("instance get", read)
        .answer(
            "instance env",
            fake::output(0, "/etc/patroni/15-main.yaml\n"),
        )
        // apply: the creation (pglift reports what it did), the locator's directory
        .answer(
            "instance apply -f - -o json",
            fake::output(0, "{\"change_state\": \"created\"}\n"),
        )
        .answer_exact("mkdir -p -- /var/lib/pgdeploy", fake::output(0, ""));
    let h = fake::Harness::new(t, fake::host0_facts("10.0.0.1"));
    let p = params(SEED).unwrap();
    let plan = fake::block_on(p.plan(&h.cx())).unwrap();
    let lines = plan.changes.iter().map(|c| c.summary.clone()).collect();
    fake::block_on(p.apply(&h.cx(), &plan)).unwrap();
    (lines, h.transport)
}

#[test]
fn a_missing_locator_is_written_with_the_file_pglift_names() {
    let (lines, t) = plan_and_apply(fake::output(0, &read_output(&got().to_string(), "")));
    assert_eq!(
        lines,
        vec!["write `/var/lib/pgdeploy/patroni.env` (where `pgdeploy status` finds this instance's Patroni)"]
    );
    let written = t.written();
    let (text, attrs) = &written["/var/lib/pgdeploy/patroni.env"];
    assert_eq!(
        String::from_utf8_lossy(text),
        locator::render("/etc/patroni/15-main.yaml", "/opt/pglift/bin/patronictl")
    );
    assert_eq!(attrs.mode, Some(0o644));
    // pglift was not asked to apply anything: only the locator was missing
    assert!(!t.commands().iter().any(|c| c.contains("instance apply")));
}

#[test]
fn a_current_locator_leaves_a_converged_instance_unchanged() {
    let text = locator::render("/etc/patroni/15-main.yaml", "/opt/pglift/bin/patronictl");
    let part = format!("{text}{}\n", locator::READABLE);
    let (lines, t) = plan_and_apply(fake::output(0, &read_output(&got().to_string(), &part)));
    assert!(lines.is_empty(), "{lines:?}");
    assert!(t.written().is_empty());
    assert!(!t.commands().iter().any(|c| c.contains("instance env")));
}

#[test]
fn an_instance_pglift_does_not_find_is_created_then_located() {
    let mut not_found = fake::output(2, &read_output("", ""));
    not_found.stderr = b"Error: instance '15/main' not found\n".to_vec();
    let (lines, t) = plan_and_apply(not_found);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "create instance `15/main` (port 5432, Patroni cluster `maincluster` node `srv-pg1`"
        ),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("write `/var/lib/pgdeploy/patroni.env`"),
        "{lines:?}"
    );
    let commands = t.commands();
    let apply = commands
        .iter()
        .position(|c| c.contains("instance apply"))
        .unwrap();
    let env = commands
        .iter()
        .position(|c| c.contains("instance env"))
        .unwrap();
    assert!(apply < env, "the locator after the creation: {commands:#?}");
    assert!(t.written().contains_key("/var/lib/pgdeploy/patroni.env"));
}

#[test]
fn another_failure_of_pglift_is_an_error() {
    let mut failed = fake::output(1, &read_output("", ""));
    failed.stderr = b"Error: settings.yaml: invalid\n".to_vec();
    let t = fake::MemoryTransport::default().answer("instance get", failed);
    let h = fake::Harness::new(t, fake::host0_facts("10.0.0.1"));
    let e = fake::block_on(params(SEED).unwrap().plan(&h.cx())).unwrap_err();
    assert!(e.to_string().contains("settings.yaml: invalid"), "{e}");
}
