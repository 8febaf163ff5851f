use serde_json::json;

use super::config::{dcs_diff, keep_managed_hba, patch_body, Member};
use super::*;
use pgdeploy_core::diag::{FieldPath, SourceFile};
use pgdeploy_core::yaml::{from_node, load_str};

fn params(yaml: &str) -> Patroni {
    let file = SourceFile::new("playbook.yml");
    let node = load_str(yaml, &file).expect("YAML");
    from_node(&node, &FieldPath::root().key("patroni")).expect("valid parameters")
}

const LAB: &str = r#"
scope: pgcluster
etcd:
  hosts: 10.213.7.11:2379,10.213.7.12:2379,10.213.7.13:2379
  cacert: /etc/pgdeploy/pki/ca.crt
  cert: /etc/pgdeploy/pki/host.crt
  key: /etc/pgdeploy/pki/host.key
restapi:
  certfile: /etc/pgdeploy/pki/host.crt
  keyfile: /etc/pgdeploy/pki/host.key
  cafile: /etc/pgdeploy/pki/ca.crt
  verify_client: optional
authentication:
  superuser: {password: "Su-secret-1"}
  replication: {password: "Repl-secret-2"}
dcs:
  parameters: {max_connections: 100, ssl: "on", ssl_cert_file: /etc/pgdeploy/pki/pg.crt, ssl_key_file: /etc/pgdeploy/pki/pg.key}
  pg_hba:
    - local all postgres peer
    - hostssl replication replicator 10.213.7.0/24 scram-sha-256
    - hostssl all all 0.0.0.0/0 scram-sha-256
tags: {nofailover: false}
"#;

fn member() -> Member {
    Member {
        name: "pg1".into(),
        address: "10.213.7.11".into(),
        version: 15,
        family: Family::Debian,
    }
}

#[test]
fn renders_the_lab_config() {
    let p = params(LAB);
    assert!(p.check().is_empty(), "{:?}", p.check());
    insta::assert_snapshot!("patroni_lab_config", p.render(&member(), false));
}

#[test]
fn masked_render_hides_every_password() {
    let p = params(LAB);
    let masked = p.render(&member(), true);
    assert!(!masked.contains("Su-secret-1") && !masked.contains("Repl-secret-2"));
    let real = p.render(&member(), false);
    assert_eq!(mask_passwords(&real), masked);
}

#[test]
fn timing_rules_are_checked() {
    let p = params(&LAB.replace(
        "dcs:\n",
        "dcs:\n  ttl: 20\n  loop_wait: 10\n  retry_timeout: 10\n",
    ));
    let problems: Vec<String> = p.check().into_iter().map(|p| p.message).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("10 + 2 × 10 = 30"), "{problems:?}");
    let p = params(&LAB.replace(
        "dcs:\n",
        "dcs:\n  ttl: 15\n  loop_wait: 5\n  retry_timeout: 5\n",
    ));
    assert!(p.check()[0].message.contains("at least 20"));
}

/// `site.yml`'s `pg_failover_profile` timings: both keep Patroni's rule, and `fast` reaches
/// the rendered configuration; a `retry_timeout` under Patroni's minimum is refused.
#[test]
fn failover_profiles_keep_the_timing_rule() {
    for (profile, ttl, loop_wait, retry) in [("default", 30, 10, 10), ("fast", 20, 2, 4)] {
        let p = params(&LAB.replace(
            "dcs:\n",
            &format!("dcs:\n  ttl: {ttl}\n  loop_wait: {loop_wait}\n  retry_timeout: {retry}\n"),
        ));
        assert_eq!(p.check().len(), 0, "{profile}: {:?}", p.check());
        let rendered = p.render(&member(), true);
        let dcs = rendered
            .lines()
            .filter(|l| {
                ["ttl:", "loop_wait:", "retry_timeout:"]
                    .contains(&l.trim().split(' ').next().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(format!("failover_profile_{profile}"), dcs);
    }
    let p = params(&LAB.replace(
        "dcs:\n",
        "dcs:\n  ttl: 20\n  loop_wait: 2\n  retry_timeout: 2\n",
    ));
    let problems: Vec<String> = p.check().into_iter().map(|p| p.message).collect();
    assert_eq!(problems, ["`retry_timeout` is 2; Patroni needs at least 3"]);
}

#[test]
fn weak_settings_are_refused() {
    let p = params(&LAB.replace("max_connections: 100", "wal_log_hints: off"));
    assert!(p.check()[0]
        .message
        .contains("`wal_log_hints` must be `on`"));
    let p = params(&LAB.replace(
        "replicator 10.213.7.0/24 scram-sha-256",
        "replicator 10.213.7.0/24 md5",
    ));
    assert!(p.check()[0].message.contains("`md5`"));
}

#[test]
fn dcs_diff_compares_settings_as_postgres_shows_them() {
    let p = params(LAB);
    let wanted = p.dcs();
    let mut current = wanted.clone();
    current["postgresql"]["parameters"]["max_connections"] = json!("100");
    current["postgresql"]["parameters"]["wal_log_hints"] = json!(true);
    current["check_timeline"] = json!(true); // unmanaged keys are left alone
    assert!(dcs_diff(&current, &wanted).is_empty());
    current["synchronous_mode"] = json!(false);
    current["postgresql"]["parameters"]["work_mem"] = json!("4MB");
    let p = params(
        &LAB.replace(
            "max_connections: 100",
            "max_connections: 100, work_mem: 8MB",
        )
        .replace("dcs:\n", "dcs:\n  synchronous_mode: true\n"),
    );
    let diff = dcs_diff(&current, &p.dcs());
    let keys: Vec<String> = diff.iter().map(|d| d.0.join("/")).collect();
    assert_eq!(keys, ["synchronous_mode", "postgresql/parameters/work_mem"]);
    assert_eq!(
        patch_body(&diff),
        json!({"synchronous_mode": true, "postgresql": {"parameters": {"work_mem": "8MB"}}})
    );
}

#[test]
fn the_rules_of_postgresql_pg_hba_tasks_are_kept_when_the_site_lines_converge() {
    let rule = format!(
        "hostssl db1 bob 0.0.0.0/0 reject {}",
        crate::common::hba::MARK
    );
    let p = params(LAB);
    let mut current = p.dcs();
    current["postgresql"]["pg_hba"] = json!([
        "local all postgres peer",
        "hostssl replication replicator 10.213.7.0/24 scram-sha-256",
        rule,
        "hostssl all all 0.0.0.0/0 scram-sha-256",
    ]);
    // the rule in place: nothing to converge
    assert!(dcs_diff(&current, &keep_managed_hba(p.dcs(), &current)).is_empty());
    // a site line changed: the new list keeps the rule before the catch-all
    let p = params(&LAB.replace("10.213.7.0/24", "10.213.8.0/24"));
    let diff = dcs_diff(&current, &keep_managed_hba(p.dcs(), &current));
    assert_eq!(diff.len(), 1);
    assert_eq!(
        diff[0].2,
        json!([
            "local all postgres peer",
            "hostssl replication replicator 10.213.8.0/24 scram-sha-256",
            rule,
            "hostssl all all 0.0.0.0/0 scram-sha-256",
        ])
    );
    // a site line with the mark is refused: it would be taken for a task's rule
    let p = params(&LAB.replace(
        "- hostssl all all 0.0.0.0/0 scram-sha-256",
        "- 'hostssl all all 0.0.0.0/0 scram-sha-256 # pgdeploy: postgresql_pg_hba'",
    ));
    assert!(p.check()[0]
        .message
        .contains("marks the lines of `postgresql_pg_hba`"));
}

/// Patroni's `PATCH /config`: a JSON merge patch (objects merge, `null` removes a key).
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

#[test]
fn dotted_parameter_is_one_key_and_converges() {
    let p = params(&LAB.replace(
        "max_connections: 100,",
        "max_connections: 100, pg_stat_statements.track: all, auto_explain.log_min_duration: 250ms,",
    ));
    let wanted = p.dcs();
    let mut current = params(LAB).dcs();
    let diff = dcs_diff(&current, &wanted);
    let shown: Vec<String> = diff
        .iter()
        .map(|d| super::config::show_path(&d.0))
        .collect();
    assert_eq!(
        shown,
        [
            "postgresql.parameters.\"pg_stat_statements.track\"",
            "postgresql.parameters.\"auto_explain.log_min_duration\"",
        ]
    );
    let body = patch_body(&diff);
    assert_eq!(
        body,
        json!({"postgresql": {"parameters": {
            "auto_explain.log_min_duration": "250ms",
            "pg_stat_statements.track": "all",
        }}})
    );
    // The next plan reads the patched `GET /config`: nothing left to do.
    merge_patch(&mut current, &body);
    assert!(dcs_diff(&current, &wanted).is_empty());
    assert_eq!(
        current["postgresql"]["parameters"]["pg_stat_statements.track"],
        json!("all")
    );
    assert!(current["postgresql"]["parameters"]
        .get("pg_stat_statements")
        .is_none());
}

#[test]
fn key_and_dotted_key_below_it_both_round_trip() {
    let p = params(&LAB.replace(
        "max_connections: 100,",
        "max_connections: 100, x: \"1\", x.y: \"2\",",
    ));
    let wanted = p.dcs();
    let mut current = params(LAB).dcs();
    let diff = dcs_diff(&current, &wanted);
    assert_eq!(diff.len(), 2);
    let body = patch_body(&diff);
    assert_eq!(
        body,
        json!({"postgresql": {"parameters": {"x": "1", "x.y": "2"}}})
    );
    merge_patch(&mut current, &body);
    assert!(dcs_diff(&current, &wanted).is_empty());
}

#[test]
fn patch_body_never_panics_on_a_value_in_the_way() {
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let diff = vec![
        (path(&["x"]), Value::Null, json!(1)),
        (path(&["x", "y"]), Value::Null, json!(2)),
    ];
    assert_eq!(patch_body(&diff), json!({"x": {"y": 2}}));
}

#[test]
fn probe_output_is_read() {
    let p = parse_probe("confdir=yes\nversions=15 13 \npatroni_active=inactive\npatroni_enabled=disabled\ndist_active=inactive\ndist_enabled=enabled\n");
    assert_eq!(p.versions, [13, 15]);
    assert!(!p.patroni_active && !p.patroni_enabled);
    assert_eq!(p.dist(Family::Debian, 15), (false, true));
    assert!(p.config_dir_exists);
    let p = parse_probe("dist_active_16=active\ndist_enabled_16=disabled\n");
    assert_eq!(p.dist(Family::RedHat, 16), (true, false));
    assert_eq!(p.dist(Family::RedHat, 15), (false, false));
}
