//! Metrics (issue 19, item 3) on the shared day-2 cluster: `playbooks/site.yml` applied again
//! with `postgres_exporter_password` (a quote and a backslash in it) installs Debian's
//! `prometheus-postgres-exporter` on every member from the lab mirror, its role `prometheus`
//! made on the leader and replicated; every member's exporter answers `/metrics` with
//! `pg_up 1` (and Patroni's own `/metrics` over TLS with the playbook's CA), `pgdeploy verify`
//! says so, a second apply changes nothing, and a new password
//! is a masked change in `plan` (not applied: the cluster is left as the apply made it).

use std::path::Path;
use std::time::Instant;

use super::checks::Checks;
use super::cluster::{self, sql_ok};
use super::lab_support::LabFixture;

const PASSWORD: &str = "ex'port\\er-pw";
const MEMBERS: [&str; 3] = ["pg1", "pg2", "pg3"];

/// `pgdeploy MODE site.yml -e postgres_exporter_password=… --json`, timed, the password
/// looked for in both streams.
fn site(mode: &str, inventory: &Path, password: &str) -> (i32, String, String) {
    let vars = serde_json::json!({ "postgres_exporter_password": password }).to_string();
    let started = Instant::now();
    let out = cluster::pgdeploy(
        mode,
        &["-e", &vars, "--json"],
        inventory,
        &cluster::playbook("site.yml"),
    );
    eprintln!(
        "  site.yml {mode} with the exporter: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for s in [&out.1, &out.2] {
        assert!(!s.contains(password), "the password is printed:\n{s}");
        assert!(
            !s.contains(&password.replace('\\', "\\\\")),
            "the password is printed (JSON):\n{s}"
        );
    }
    out
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    c.run("metrics_exporter_answers_pg_up_1_on_every_member", || {
        let (code, stdout, stderr) = site("apply", inventory, PASSWORD);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        for m in MEMBERS {
            let ip = lab.ip(m);
            // from another lab host: the exporter listens on the member's address
            let metrics = lab.ssh_ok(
                lab.ip("pg1"),
                &format!("curl -s --max-time 5 http://{ip}:9187/metrics"),
            );
            assert!(metrics.lines().any(|l| l == "pg_up 1"), "{m}: {metrics}");
            // Patroni's own /metrics, over TLS verified with the playbook's CA (the README's
            // scrape configuration)
            let patroni = lab.ssh_ok(
                lab.ip("pg1"),
                &format!(
                    "curl -s --max-time 5 --cacert /etc/patroni/pki/ca.crt https://{ip}:8008/metrics"
                ),
            );
            assert!(
                patroni
                    .lines()
                    .any(|l| l.starts_with("patroni_postgres_running{") && l.ends_with(" 1")),
                "{m}: {patroni}"
            );
            let file = lab.ssh_ok(
                ip,
                "stat -c '%a %U' /etc/prometheus-postgres-exporter/pgcluster.password",
            );
            assert_eq!(file.trim(), "600 prometheus", "{m}");
            // the role exists everywhere, by replication
            assert_eq!(
                sql_ok(
                    lab,
                    m,
                    "127.0.0.1",
                    5432,
                    "SELECT pg_has_role('prometheus', 'pg_monitor', 'member')"
                ),
                "t",
                "{m}"
            );
        }
    });

    c.run("metrics_verify_reports_every_exporter", || {
        let (_, stdout, stderr) = cluster::command(&["verify", "--json"], inventory, None);
        let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stderr);
        let found = cluster::findings(&doc, "check", "postgres_exporter");
        assert_eq!(found.len(), 3, "{found:?}");
        for m in MEMBERS {
            assert!(
                found
                    .iter()
                    .any(|f| f["subject"] == format!("{m}:pgcluster")
                        && f["outcome"] == "pass"
                        && f["message"]
                            .as_str()
                            .unwrap_or_default()
                            .contains("pg_up 1")),
                "{m}: {found:?}"
            );
        }
    });

    c.run("metrics_second_apply_changes_nothing", || {
        let (code, stdout, stderr) = site("apply", inventory, PASSWORD);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
    });

    c.run("metrics_a_new_password_is_a_masked_plan", || {
        let (code, stdout, stderr) = site("plan", inventory, "n\\ew'export-pw");
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            stdout.contains("alter role `prometheus`: password"),
            "{stdout}"
        );
        assert!(
            stdout
                .contains("/etc/prometheus-postgres-exporter/pgcluster.password` (secret changed)"),
            "{stdout}"
        );
        assert!(
            stdout.contains("restart `pgdeploy-postgres-exporter@pgcluster.service`"),
            "{stdout}"
        );
    });
}
