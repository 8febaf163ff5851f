use std::collections::HashMap;

use super::*;
use crate::common::fake::*;

/// Seed 003: three PostgreSQL + etcd + Patroni hosts and HAProxy hosts in front of them.
const SEED_003: &[(&str, &str, &[&str])] = &[
    ("haproxy-01", "192.168.0.200", &["balancers"]),
    ("haproxy-02", "192.168.0.201", &["balancers"]),
    ("postgres-01", "192.168.0.203", &["postgres"]),
    ("postgres-02", "192.168.0.204", &["postgres"]),
    ("postgres-03", "192.168.0.205", &["postgres"]),
];

fn params(yaml: &str) -> Haproxy {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn seed_003_tls() -> Haproxy {
    params(
        "group: postgres\n\
         rest_api_tls: {ca_file: /etc/patroni/certs/ca.pem}\n\
         stats: {port: 7000}\n\
         stats_socket: /run/haproxy/admin.sock\n",
    )
}

fn servers(h: &Haproxy, facts: HashMap<String, pgdeploy_core::template::Facts>) -> Vec<Server> {
    let scope = cluster_scope(SEED_003, facts, "haproxy-01", &["haproxy-01", "haproxy-02"]);
    let t = MemoryTransport::new("haproxy-01");
    let f = Default::default();
    let cx = context("haproxy-01", &t, &f, &scope);
    h.servers(&cx).unwrap()
}

#[test]
fn seed_003_config_with_tls_checks() {
    let h = seed_003_tls();
    let s = servers(&h, HashMap::new());
    insta::assert_snapshot!("seed_003_tls", h.render(&s));
}

#[test]
fn plain_http_checks_without_readers_and_with_client_cert() {
    let mut h = params("group: postgres\nreader_port: null\nwriter_port: 6432\n");
    let s = servers(&h, HashMap::new());
    let text = h.render(&s);
    assert!(!text.contains("check-ssl") && !text.contains("postgres_readers"));
    assert!(text.contains("bind *:6432"));
    h.rest_api_tls = Some(RestApiTls {
        ca_file: "/etc/ssl/ca.pem".into(),
        crt: Some("/etc/haproxy/client.pem".into()),
    });
    assert!(h.render(&s).contains(
        "check-ssl verify required ca-file /etc/ssl/ca.pem crt /etc/haproxy/client.pem\n"
    ));
}

#[test]
fn addresses_come_from_ansible_host_else_facts() {
    let hosts: &[(&str, &str, &[&str])] = &[
        ("pg1", "10.0.0.1", &["postgres"]),
        ("pg2", "pg2.example", &["postgres"]),
        ("pg3", "pg3.example", &["postgres"]),
    ];
    let facts = HashMap::from([("pg2".to_string(), host0_facts("10.0.0.2"))]);
    let scope = cluster_scope(hosts, facts, "pg1", &["pg1"]);
    let t = MemoryTransport::new("pg1");
    let f = Default::default();
    let cx = context("pg1", &t, &f, &scope);
    let h = params("group: postgres");
    let addrs: Vec<String> = h
        .servers(&cx)
        .unwrap()
        .into_iter()
        .map(|s| s.address)
        .collect();
    assert_eq!(addrs, ["10.0.0.1", "10.0.0.2", "pg3.example"]);
    let e = params("group: nope").servers(&cx).unwrap_err().to_string();
    assert_eq!(
        e,
        "group `nope` is not in the inventory (groups: `all`, `postgres`)"
    );
}

/// Plans and applies on a fake host whose probes answer from `rules`.
fn run(
    h: &Haproxy,
    rules: Vec<(&str, i32, String, &str)>,
) -> (Plan, Result<(), ModuleError>, MemoryTransport) {
    let t = rules
        .into_iter()
        .fold(MemoryTransport::new("haproxy-01"), |t, (n, s, o, e)| {
            t.answer(n, output_err(s, &o, e))
        });
    let scope = cluster_scope(SEED_003, HashMap::new(), "haproxy-01", &["haproxy-01"]);
    let f = Default::default();
    let cx = context("haproxy-01", &t, &f, &scope);
    let plan = block_on(h.plan(&cx)).unwrap();
    let applied = block_on(h.apply(&cx, &plan));
    (plan, applied, t)
}

fn summaries(p: &Plan) -> Vec<&str> {
    p.changes.iter().map(|c| c.summary.as_str()).collect()
}

#[test]
fn fresh_host_gets_a_validated_file_then_haproxy_enabled_and_started() {
    let h = seed_003_tls();
    let (plan, applied, t) = run(
        &h,
        vec![
            ("is-active", 0, probe_unit("inactive", "disabled"), ""),
            ("stat -L", 0, "missing\nnolink\n".into(), ""),
            ("haproxy -c -q -f", 0, String::new(), ""),
            (
                "systemctl enable -- haproxy && systemctl start -- haproxy",
                0,
                String::new(),
                "",
            ),
        ],
    );
    applied.unwrap();
    assert_eq!(
        summaries(&plan),
        [
            "create `/etc/haproxy/haproxy.cfg` (owner `root`, group `root`, mode `0644`)",
            "enable `haproxy`",
            "start `haproxy` (not running, so not reloaded)"
        ]
    );
    let cmds: Vec<String> = t.commands();
    assert!(cmds[2].contains("haproxy -c -q -f /etc/haproxy/.haproxy.cfg.pgdeploy-"));
    // validated and renamed in one command
    assert!(cmds[2].contains("then mv -f -- /etc/haproxy/.haproxy.cfg.pgdeploy-"));
    assert_eq!(
        cmds[3],
        "systemctl enable -- haproxy && systemctl start -- haproxy"
    );
    let written = t.file(&t.writes()[0]).unwrap();
    assert_eq!(written.attrs.mode, Some(0o644));
    assert_eq!(
        String::from_utf8(written.content).unwrap(),
        h.render(&servers(&h, HashMap::new()))
    );
}

#[test]
fn converged_host_plans_nothing() {
    let h = seed_003_tls();
    let current = h.render(&servers(&h, HashMap::new()));
    let (plan, applied, t) = run(
        &h,
        vec![
            ("is-active", 0, probe_unit("active", "enabled"), ""),
            ("stat -L", 0, probe_file("644", &current), ""),
        ],
    );
    applied.unwrap();
    assert!(!plan.is_changed());
    assert_eq!(t.commands().len(), 2, "two probes, nothing else");
}

#[test]
fn a_changed_config_is_reloaded_never_restarted() {
    let h = seed_003_tls();
    let (plan, applied, t) = run(
        &h,
        vec![
            ("is-active", 0, probe_unit("active", "enabled"), ""),
            ("stat -L", 0, probe_file("644", "old\n"), ""),
            ("haproxy -c -q -f", 0, String::new(), ""),
            ("systemctl reload -- haproxy", 0, String::new(), ""),
        ],
    );
    applied.unwrap();
    assert_eq!(
        summaries(&plan),
        ["update `/etc/haproxy/haproxy.cfg`", "reload `haproxy`"]
    );
    let cmds: Vec<String> = t.commands();
    assert_eq!(cmds.last().unwrap(), "systemctl reload -- haproxy");
    assert!(!cmds.iter().any(|c| c.contains("restart")));
}

#[test]
fn an_invalid_config_is_refused_and_nothing_is_reloaded() {
    let mut h = seed_003_tls();
    h.defaults_extra = vec!["timeout connect never".into()];
    let (_, applied, t) = run(
        &h,
        vec![
            ("is-active", 0, probe_unit("active", "enabled"), ""),
            ("stat -L", 0, probe_file("644", "old\n"), ""),
            (
                "haproxy -c",
                1,
                String::new(),
                "[ALERT] parsing: unexpected character 'n'",
            ),
        ],
    );
    let e = applied.unwrap_err().to_string();
    assert!(
        e.starts_with("`/etc/haproxy/haproxy.cfg` not replaced: validation `haproxy -c -q -f "),
        "{e}"
    );
    assert!(
        e.ends_with("failed with exit status 1: [ALERT] parsing: unexpected character 'n'"),
        "{e}"
    );
    let cmds: Vec<String> = t.commands();
    assert!(
        !cmds
            .iter()
            .any(|c| c.starts_with("mv ") || c.starts_with("systemctl ")),
        "{cmds:?}"
    );
}

#[test]
fn parameter_checks_name_the_field() {
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("/nonexistent"),
        inventory: None,
    };
    let h = params(
        "group: postgres\nreader_port: 5432\ntimeouts: {client: 10x}\nconfig: haproxy.cfg\n\
         checks: {fall: 0}\ndefaults_extra: [\"a\\nb\"]",
    );
    let p: Vec<(Option<&str>, String)> = h
        .check(&cx)
        .into_iter()
        .map(|p| (p.field, p.message))
        .collect();
    assert_eq!(
        p,
        [
            (
                Some("config"),
                "`haproxy.cfg` is not an absolute path".to_string()
            ),
            (
                Some("reader_port"),
                "port `5432` is already used by `writer_port`".into()
            ),
            (
                Some("timeouts"),
                "`client`: `10x` is not a time such as `5s`, `500ms` or `30m`".into()
            ),
            (
                Some("checks"),
                "`fall` and `rise` must be at least 1".into()
            ),
            (Some("defaults_extra"), "each entry must be one line".into()),
        ]
    );
    assert!(is_time("500ms") && is_time("30") && !is_time("s") && !is_time("5 s"));
}
