//! PostgreSQL with Patroni on 3 real lab hosts: one `apply` from fresh hosts gives a leader and
//! two streaming replicas; data written on the leader is read on the replicas; a second
//! `apply` changes nothing; DCS settings are converged through the REST API without restart.
//!
//! One lab, one cluster, checks in order (each builds on the previous one).

#[path = "support/checks.rs"]
mod checks;
#[path = "support/lab.rs"]
mod lab_support;

use std::path::Path;
use std::time::{Duration, Instant};

use checks::Checks;
use lab_support::LabFixture;
use serde_json::Value;

const NAME: &str = "pgdpt";
const SUBNET: &str = "10.213.23.0/24";
const NODES: [&str; 3] = ["pg1", "pg2", "pg3"];
const SUPERUSER_PASSWORD: &str = "Su-5f0c2a9e-pw";

fn playbook() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lab/patroni.yml"
    )
}

/// Writes the settings the playbook reads, beside the lab inventory.
fn write_vars(lab: &LabFixture, sync_mode: bool, parameters: &str) {
    let dir = lab.inventory().parent().unwrap().join("group_vars");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("all.yml"),
        format!(
            "pg_superuser_password: {SUPERUSER_PASSWORD}\n\
             pg_replication_password: Repl-71d3e0-pw\n\
             sync_mode: {sync_mode}\n\
             pg_parameters: {parameters}\n"
        ),
    )
    .unwrap();
}

/// `pgdeploy MODE --json`: exit code, events, stderr.
fn pgdeploy(mode: &str, inventory: &Path) -> (i32, Vec<Value>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args([mode, "--json", "-i"])
        .arg(inventory)
        .arg(playbook())
        .output()
        .expect("pgdeploy runs");
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        events,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn changed(events: &[Value]) -> u64 {
    events
        .iter()
        .filter(|e| e["event"] == "recap")
        .flat_map(|e| e["hosts"].as_array().cloned().unwrap_or_default())
        .map(|h| h["changed"].as_u64().unwrap_or(0) + h["failed"].as_u64().unwrap_or(0))
        .sum()
}

/// `patronictl list` as JSON rows.
fn members(lab: &LabFixture) -> Vec<Value> {
    let text = lab.ssh_ok(
        lab.ip("pg1"),
        "patronictl -c /etc/patroni/config.yml list -f json",
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn psql(lab: &LabFixture, host: &str, sql: &str) -> String {
    lab.ssh_ok(
        lab.ip(host),
        &format!("su postgres -c \"psql -XAtc '{sql}'\""),
    )
}

fn postmaster_pids(lab: &LabFixture) -> Vec<String> {
    NODES
        .iter()
        .map(|n| {
            lab.ssh_ok(
                lab.ip(n),
                "head -1 /var/lib/postgresql/15/pgcluster/postmaster.pid",
            )
        })
        .collect()
}

/// Polls `f` until it returns true or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    f()
}

#[test]
fn patroni_cluster_on_the_lab() {
    let Some(lab) = LabFixture::up(NAME, SUBNET, 3, 0) else {
        return;
    };
    let inventory = lab.inventory();
    write_vars(&lab, false, "{max_connections: 100}");
    let mut c = Checks::new();

    c.run(
        "one_apply_gives_a_leader_and_two_streaming_replicas",
        || {
            let started = Instant::now();
            let (code, events, stderr) = pgdeploy("apply", &inventory);
            eprintln!(
                "  fresh hosts to a streaming 3-node cluster: {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(code, 0, "{stderr}\n{events:?}");
            // A replica that just joined may show `running` for a moment before `streaming`.
            let mut rows = members(&lab);
            eventually(Duration::from_secs(30), || {
                rows = members(&lab);
                rows.iter()
                    .all(|r| r["Role"] == "Leader" || r["State"] == "streaming")
            });
            let roles: Vec<&str> = rows.iter().map(|r| r["Role"].as_str().unwrap()).collect();
            assert_eq!(
                roles.iter().filter(|r| **r == "Leader").count(),
                1,
                "{rows:?}"
            );
            let leader = rows.iter().find(|r| r["Role"] == "Leader").unwrap();
            assert_eq!(leader["Member"], "pg1", "the intended primary bootstraps");
            for r in rows.iter().filter(|r| r["Role"] != "Leader") {
                assert_eq!(r["State"], "streaming", "{rows:?}");
            }
            for r in &rows {
                assert_eq!(r["TL"], 1, "{rows:?}");
            }
        },
    );
    c.run("status_shows_the_cluster_and_etcd", || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
            .args(["status", "--json", "-i"])
            .arg(&inventory)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        let members = s["members"].as_array().unwrap();
        assert_eq!(members.len(), 3, "{s}");
        assert_eq!(s["etcd"].as_array().unwrap().len(), 3, "{s}");
        assert!(
            s["etcd"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["health"] == true),
            "{s}"
        );
        let text = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
            .args(["status", "-i"])
            .arg(&inventory)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("Leader") && text.contains("streaming"),
            "{text}"
        );
    });
    c.run("rows_written_on_the_leader_are_read_on_replicas", || {
        psql(
            &lab,
            "pg1",
            "CREATE TABLE t (v text); INSERT INTO t VALUES (42)",
        );
        for n in ["pg2", "pg3"] {
            assert!(
                eventually(Duration::from_secs(20), || {
                    lab.ssh(
                        lab.ip(n),
                        "su postgres -c \"psql -XAtc 'SELECT v FROM t'\" | grep -qx 42",
                    )
                    .status
                    .success()
                }),
                "row not replicated to {n}"
            );
            assert_eq!(psql(&lab, n, "SELECT pg_is_in_recovery()"), "t");
        }
    });
    c.run("primary_endpoint_answers_on_the_leader_only", || {
        for n in NODES {
            let code = lab.ssh_ok(
                lab.ip("pg1"),
                &format!(
                    "curl -s -o /dev/null -w '%{{http_code}}' http://{}:8008/primary",
                    lab.ip(n)
                ),
            );
            assert_eq!(code, if n == "pg1" { "200" } else { "503" }, "{n}");
        }
    });
    c.run(
        "secrets_stay_out_of_the_config_diff_and_the_file_is_private",
        || {
            let mode = lab.ssh_ok(lab.ip("pg2"), "stat -c '%U %a' /etc/patroni/config.yml");
            assert_eq!(mode, "postgres 600");
            write_vars(&lab, false, "{max_connections: 100, application_name: x}");
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
                .args(["plan", "--no-color", "-i"])
                .arg(&inventory)
                .arg(playbook())
                .output()
                .unwrap();
            write_vars(&lab, false, "{max_connections: 100}");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(all.contains("application_name"), "{all}");
            assert!(!all.contains(SUPERUSER_PASSWORD), "{all}");
        },
    );
    c.run("second_apply_changes_nothing_and_restarts_nothing", || {
        let before = postmaster_pids(&lab);
        let (code, events, stderr) = pgdeploy("apply", &inventory);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(changed(&events), 0, "{events:?}");
        assert_eq!(postmaster_pids(&lab), before);
        let (code, _, stderr) = pgdeploy("check", &inventory);
        assert_eq!(code, 0, "{stderr}");
    });
    c.run("dcs_settings_are_patched_without_restart", || {
        let before = postmaster_pids(&lab);
        write_vars(&lab, true, "{max_connections: 100, work_mem: 8MB}");
        let (code, _, _) = pgdeploy("check", &inventory);
        assert_eq!(code, 2, "drift");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
            .args(["plan", "--no-color", "-i"])
            .arg(&inventory)
            .arg(playbook())
            .output()
            .unwrap();
        let plan = String::from_utf8_lossy(&out.stdout);
        assert!(
            plan.contains("synchronous_mode: `false` → `true`")
                && plan.contains("postgresql.parameters.work_mem: (unset) → `8MB`"),
            "{plan}"
        );
        let (code, _, stderr) = pgdeploy("apply", &inventory);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            eventually(Duration::from_secs(30), || {
                members(&lab).iter().any(|r| r["Role"] == "Sync Standby")
                    && NODES
                        .iter()
                        .all(|n| psql(&lab, n, "SHOW work_mem") == "8MB")
            }),
            "{:?}",
            members(&lab)
        );
        assert_eq!(postmaster_pids(&lab), before, "nothing restarted");
        let (code, events, _) = pgdeploy("apply", &inventory);
        assert_eq!((code, changed(&events)), (0, 0));
    });
    c.finish();
}
