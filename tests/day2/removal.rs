//! Removing a member (issue 14, item 2) on the shared day-2 cluster: `pg3` taken out of the
//! `postgres` group (kept in the inventory, so pgdeploy reaches it and stops its daemons),
//! `plan` showing both removals, `apply` without `--allow-removal` removing nothing and saying
//! why, with it leaving etcd and Patroni with 2 members and HAProxy without `pg3`; a further
//! removal below etcd's quorum refused; then the original inventory, and `pg3` joins again
//! (its removed member's etcd data set aside, `member add`, a streaming replica). The cluster
//! is left as it was found: 3 members, healthy, every replica streaming.

use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::Checks;
use super::cluster::{
    self, etcd_healthy_on, etcd_members_on, eventually, members_on, sql_ok,
    without_postgres_members,
};
use super::lab_support::LabFixture;
use serde_json::Value;

fn site(mode: &str, args: &[&str], inventory: &Path) -> (i32, String, String) {
    let started = Instant::now();
    let out = cluster::pgdeploy(mode, args, inventory, &cluster::playbook("site.yml"));
    eprintln!(
        "  {mode} {}: {:.1} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    out
}

fn names(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .filter_map(|r| r["Member"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn settled(rows: &[Value]) -> bool {
    rows.iter().filter(|r| r["Role"] == "Leader").count() == 1
        && rows
            .iter()
            .all(|r| r["Role"] == "Leader" || r["State"] == "streaming")
}

fn unit_state(lab: &LabFixture, host: &str, unit: &str) -> String {
    let out = lab.ssh(
        lab.ip(host),
        &format!("systemctl is-active {unit}; systemctl is-enabled {unit}"),
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    let dir = inventory.parent().unwrap();
    let without_pg3 = dir.join("without-pg3.yml");
    let without_pg2_pg3 = dir.join("without-pg2-pg3.yml");
    std::fs::write(&without_pg3, without_postgres_members(lab, &["pg3"])).unwrap();
    std::fs::write(
        &without_pg2_pg3,
        without_postgres_members(lab, &["pg2", "pg3"]),
    )
    .unwrap();

    c.run("removal_plan_shows_the_patroni_and_etcd_removals", || {
        // The leader is never removed (a switchover first): make it another member.
        let rows = members_on(lab, "pg1");
        if rows.iter().any(|r| r["Member"] == "pg3" && r["Role"] == "Leader") {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
                .args(["switchover", "--yes", "--to", "pg1", "-i"])
                .arg(inventory)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let (code, stdout, stderr) = site("plan", &["--allow-removal", "--no-color"], &without_pg3);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            stdout.contains("remove Patroni member `pg3` from `pgcluster`"),
            "{stdout}"
        );
        assert!(stdout.contains("remove etcd member `pg3`"), "{stdout}");
        // The same in the JSON events.
        let (_, json, _) = site("plan", &["--allow-removal", "--json"], &without_pg3);
        let events: Vec<Value> = json
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let text = serde_json::to_string(&events).unwrap();
        assert!(text.contains("remove Patroni member `pg3`"), "{json}");
        assert!(text.contains("remove etcd member `pg3`"), "{json}");
        // Without the flag: the same, as a note naming it.
        let (code, stdout, stderr) = site("plan", &["--no-color"], &without_pg3);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            stdout.contains(
                "`pg3` is no longer in the PostgreSQL group but is still a member: nothing is removed without `--allow-removal`"
            ),
            "{stdout}"
        );
    });

    c.run(
        "removal_apply_without_the_flag_removes_nothing_and_says_why",
        || {
            let (code, stdout, stderr) = site("apply", &["--no-color"], &without_pg3);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert!(
                stdout.contains("nothing is removed without `--allow-removal`"),
                "{stdout}"
            );
            assert_eq!(etcd_members_on(lab, "pg1").len(), 3);
            let rows = members_on(lab, "pg1");
            assert_eq!(names(&rows), ["pg1", "pg2", "pg3"], "{rows:?}");
            assert_eq!(unit_state(lab, "pg3", "patroni"), "active enabled");
        },
    );

    c.run("removal_apply_with_the_flag_leaves_two_members", || {
        let (code, stdout, stderr) =
            site("apply", &["--allow-removal", "--no-color"], &without_pg3);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let mut etcd = etcd_members_on(lab, "pg1");
        etcd.sort();
        assert_eq!(etcd, ["pg1", "pg2"]);
        assert!(etcd_healthy_on(lab, "pg1"));
        let rows = members_on(lab, "pg1");
        assert_eq!(names(&rows), ["pg1", "pg2"], "{rows:?}");
        assert!(settled(&rows), "{rows:?}");
        assert_eq!(unit_state(lab, "pg3", "patroni"), "inactive disabled");
        assert_eq!(unit_state(lab, "pg3", "etcd"), "inactive disabled");
        for lb in ["lb1", "lb2"] {
            let haproxy = lab.ssh_ok(lab.ip(lb), "cat /etc/haproxy/haproxy.cfg");
            assert!(!haproxy.contains("server pg3"), "{haproxy}");
            assert!(haproxy.contains("server pg2"), "{haproxy}");
        }
        // The VIP still reaches the leader.
        let vip = lab.info.vip.to_string();
        assert!(
            eventually(Duration::from_secs(20), || {
                cluster::sql(lab, "pg1", &vip, 5432, "SELECT pg_is_in_recovery()").stdout == b"f\n"
            }),
            "the VIP reaches no primary"
        );
        // Converged: a second run changes nothing.
        let (code, stdout, _) = site("apply", &["--allow-removal", "--json"], &without_pg3);
        assert_eq!((code, cluster::changed(&stdout)), (0, 0), "{stdout}");
    });

    c.run("removal_below_the_etcd_quorum_is_refused", || {
        let (code, stdout, stderr) =
            site("apply", &["--allow-removal", "--no-color"], &without_pg2_pg3);
        assert_eq!(code, 1, "{stderr}\n{stdout}");
        let all = format!("{stdout}{stderr}");
        assert!(
            all.contains(
                "refusing to remove `pg2` from the cluster: removing etcd member `pg2` would leave 1 healthy member(s) of 2: the removal needs a quorum of 2 healthy members that stay"
            ),
            "{all}"
        );
        // Nothing changed: the run stopped before the cluster's plays.
        assert_eq!(etcd_members_on(lab, "pg1").len(), 2);
        assert_eq!(names(&members_on(lab, "pg1")), ["pg1", "pg2"]);
        assert_eq!(unit_state(lab, "pg2", "patroni"), "active enabled");
        let haproxy = lab.ssh_ok(lab.ip("lb1"), "cat /etc/haproxy/haproxy.cfg");
        assert!(haproxy.contains("server pg2"), "{haproxy}");
    });

    c.run(
        "removal_undone_pg3_joins_again_as_a_streaming_replica",
        || {
            let (code, stdout, stderr) = site("apply", &["--no-color"], inventory);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert!(stdout.contains("add etcd member `pg3`"), "{stdout}");
            assert!(
                stdout.contains("set `/var/lib/etcd/default/member` aside"),
                "{stdout}"
            );
            let mut etcd = etcd_members_on(lab, "pg1");
            etcd.sort();
            assert_eq!(etcd, ["pg1", "pg2", "pg3"]);
            assert!(etcd_healthy_on(lab, "pg3"));
            assert!(
                eventually(Duration::from_secs(90), || {
                    let rows = members_on(lab, "pg1");
                    names(&rows) == ["pg1", "pg2", "pg3"] && settled(&rows)
                }),
                "{:?}",
                members_on(lab, "pg1")
            );
            assert_eq!(
                sql_ok(lab, "pg3", "127.0.0.1", 5432, "SELECT pg_is_in_recovery()"),
                "t"
            );
            let haproxy = lab.ssh_ok(lab.ip("lb1"), "cat /etc/haproxy/haproxy.cfg");
            assert!(haproxy.contains("server pg3"), "{haproxy}");
        },
    );
}
