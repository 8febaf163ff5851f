//! `pgdeploy verify` (issue 16, item 1) on the shared day-2 cluster: every check listed and
//! passed on the healthy cluster (exit 0); one replica's Patroni stopped (PostgreSQL stops
//! with it) gives exit 2 naming that member, in the table and in `--json`; started again,
//! once it streams, exit 0. The cluster is left as it was found.

use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::Checks;
use super::cluster::{self, eventually, members_on};
use super::lab_support::LabFixture;
use serde_json::Value;

/// Every check kind of `src/verify/`'s table.
const KINDS: [&str; 7] = [
    "members",
    "replication",
    "etcd",
    "vip",
    "haproxy",
    "certificates",
    "pg_hba",
];

fn verify(inventory: &Path, json: bool) -> (i32, String, String) {
    let started = Instant::now();
    let args: &[&str] = if json {
        &["verify", "--json"]
    } else {
        &["verify"]
    };
    let out = cluster::command(args, inventory, None);
    eprintln!("  verify: {:.1} s", started.elapsed().as_secs_f64());
    out
}

fn streaming(rows: &[Value]) -> bool {
    rows.iter().filter(|r| r["Role"] == "Leader").count() == 1
        && rows
            .iter()
            .all(|r| r["Role"] == "Leader" || r["State"] == "streaming")
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    c.run("verify_passes_every_check_on_the_healthy_cluster", || {
        let (code, stdout, stderr) = verify(inventory, false);
        assert_eq!(code, 0, "{stdout}{stderr}");
        for k in KINDS {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("{k} ")) && l.contains(" ok ")),
                "`{k}` listed and passed:\n{stdout}"
            );
        }
        assert!(stdout.contains(" 0 warnings, 0 failed\n"), "{stdout}");
        // each balancer reached the VIP on 5432, the writer backend is the leader's
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.starts_with("vip ")
                    && l.contains(":5432 ")
                    && l.contains("answers (from `lb"))
                .count(),
            2,
            "{stdout}"
        );
        assert!(stdout.contains("(the leader)"), "{stdout}");
    });

    c.run("verify_names_a_replica_whose_patroni_stopped", || {
        let rows = members_on(lab, "pg1");
        let replica = rows
            .iter()
            .filter(|r| r["Role"] != "Leader")
            .filter_map(|r| r["Member"].as_str())
            .max()
            .expect("a replica")
            .to_string();
        lab.ssh_ok(lab.ip(&replica), "systemctl stop patroni");
        let (code, stdout, stderr) = verify(inventory, true);
        lab.ssh_ok(lab.ip(&replica), "systemctl start patroni");
        assert_eq!(code, 2, "{stdout}{stderr}");
        let doc: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
        assert_eq!(doc["exit"], 2, "{doc}");
        let failed = cluster::findings(&doc, "outcome", "fail");
        assert!(
            failed
                .iter()
                .any(|f| f["check"] == "members" && f["subject"] == replica.as_str()),
            "{failed:?}"
        );
        assert!(
            failed
                .iter()
                .all(|f| f["subject"].as_str().unwrap().starts_with(replica.as_str())),
            "only `{replica}` fails: {failed:?}"
        );
        assert!(
            eventually(Duration::from_secs(90), || streaming(&members_on(
                lab, "pg1"
            ))),
            "{:?}",
            members_on(lab, "pg1")
        );
        // Streaming again, the balancers' health checks still have to see it up (HAProxy
        // marks a server up on its next check): verify passes once they have.
        let mut last = verify(inventory, false);
        eventually(Duration::from_secs(60), || {
            last = verify(inventory, false);
            last.0 == 0
        });
        let (code, stdout, stderr) = last;
        assert_eq!(code, 0, "{stdout}{stderr}");
    });
}
