//! The day-2 commands (`switchover`, `restart`, `reinit`, `pause`, `failover`, `resume`) against one
//! real cluster: `playbooks/site.yml` (seed 003's stack: 3 PostgreSQL + etcd + Patroni hosts,
//! 2 HAProxy + keepalived balancers with the VIP) deployed once on a lab, then checks in order,
//! each on the cluster the previous one left. Checks of other topics are in `day2/` (one file
//! each, one call line at the end): `rotation.rs` rotates the database passwords, `faults.rs`
//! causes faults (an etcd member down, `apply` killed, an SSH session cut) and checks that the
//! cluster recovers.

#[path = "day2/backups.rs"]
mod backups;
#[path = "support/checks.rs"]
mod checks;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "day2/drills.rs"]
mod drills;
#[path = "day2/faults.rs"]
mod faults;
#[path = "support/lab.rs"]
mod lab_support;
#[path = "day2/metrics.rs"]
mod metrics;
#[path = "day2/objects.rs"]
mod objects;
#[path = "support/poll.rs"]
mod poll;
#[path = "day2/removal.rs"]
mod removal;
#[path = "day2/rotation.rs"]
mod rotation;
#[path = "day2/settings.rs"]
mod settings;
#[path = "day2/verify.rs"]
mod verify;

use std::path::Path;
use std::time::{Duration, Instant};

use checks::Checks;
use cluster::{eventually, members_on, sql, sql_ok};
use lab_support::LabFixture;
use serde_json::Value;

const NAME: &str = "pgdd2";
const SUBNET: &str = "10.213.42.0/24";
const NODES: [&str; 3] = ["pg1", "pg2", "pg3"];

/// `pgdeploy ARGS -i INVENTORY` (stdin closed): exit code, stdout, stderr.
fn pgdeploy(args: &[&str], inventory: &Path) -> (i32, String, String) {
    cluster::command(args, inventory, None)
}

fn members(lab: &LabFixture) -> Vec<Value> {
    members_on(lab, "pg1")
}

fn leader(lab: &LabFixture) -> String {
    members(lab)
        .iter()
        .find(|r| r["Role"] == "Leader")
        .and_then(|r| r["Member"].as_str().map(str::to_string))
        .expect("a leader")
}

fn streaming(rows: &[Value]) -> bool {
    rows.iter().filter(|r| r["Role"] == "Leader").count() == 1
        && rows
            .iter()
            .all(|r| r["Role"] == "Leader" || r["State"] == "streaming")
}

fn start_time(lab: &LabFixture, host: &str) -> String {
    sql_ok(
        lab,
        host,
        "127.0.0.1",
        5432,
        "SELECT pg_postmaster_start_time()",
    )
}

#[test]
fn day2_commands_on_the_lab() {
    let Some(lab) = LabFixture::up(NAME, SUBNET, 3, 2) else {
        return;
    };
    let inventory = lab.inventory();
    let vip = lab.info.vip.to_string();
    let mut c = Checks::new();

    c.run("site_playbook_deploys_the_cluster", || {
        let started = Instant::now();
        let (code, stdout, stderr) =
            cluster::pgdeploy("apply", &[], &inventory, &cluster::playbook("site.yml"));
        eprintln!(
            "  fresh hosts to a cluster: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            eventually(Duration::from_secs(60), || streaming(&members(&lab))),
            "{:?}",
            members(&lab)
        );
    });
    verify::run(&mut c, &lab, &inventory);
    settings::run(&mut c, &lab, &inventory);

    c.run("without_yes_and_a_terminal_nothing_is_done", || {
        let before = leader(&lab);
        let (code, stdout, stderr) = pgdeploy(&["switchover", "--to", "pg2"], &inventory);
        assert_eq!(code, 64, "{stdout}{stderr}");
        assert!(
            stdout.contains("switchover of cluster `pgcluster` now"),
            "{stdout}"
        );
        assert!(stderr.contains("add `--yes`"), "{stderr}");
        assert_eq!(leader(&lab), before);
    });

    c.run("a_bad_candidate_is_refused_with_the_reason", || {
        let current = leader(&lab);
        let (code, _, stderr) = pgdeploy(&["switchover", "--yes", "--to", &current], &inventory);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "refusing the switchover: `{current}` is already the leader"
            )),
            "{stderr}"
        );
        let (code, _, stderr) = pgdeploy(&["switchover", "--yes", "--to", "lb1"], &inventory);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr
                .contains("`lb1` is not a member of cluster `pgcluster` (members: pg1, pg2, pg3)"),
            "{stderr}"
        );
        // a failover while the leader is healthy: refused, a switchover is the clean way
        let (code, _, stderr) = pgdeploy(&["failover", "--yes", "--to", "pg2"], &inventory);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("is a healthy leader: a failover is for a cluster without one"),
            "{stderr}"
        );
        assert_eq!(leader(&lab), current);
    });

    c.run(
        "switchover_to_a_named_replica_moves_writes_behind_the_vip",
        || {
            let old = leader(&lab);
            let to = if old == "pg2" { "pg3" } else { "pg2" };
            let started = Instant::now();
            // Measured from outside too: how long until a write through the VIP succeeds.
            let new_address = lab.ip(to).to_string();
            let finished = std::sync::atomic::AtomicBool::new(false);
            let probe = std::thread::scope(|s| {
                let watcher = s.spawn(|| {
                    // A write through the VIP every ~0.2 s (each over SSH): when one first fails
                    // or lands elsewhere, when the new leader first accepts one, and from when on
                    // every write goes to it (HAProxy marks the old leader down only after `fall`
                    // failed checks: until then the VIP may still reach it, now a replica).
                    let end = Instant::now() + Duration::from_secs(60);
                    let (mut down, mut first, mut stable) = (None, None, None);
                    let mut old_last = None;
                    let mut run = 0;
                    while Instant::now() < end {
                        let at = started.elapsed();
                        let out = sql(
                            &lab,
                            "pg1",
                            &vip,
                            5432,
                            "CREATE TABLE IF NOT EXISTS d2 (v int); INSERT INTO d2 VALUES (1); \
                         SELECT inet_server_addr()",
                        );
                        // (psql 15 prints every statement's result: the address is the last line)
                        let text = String::from_utf8_lossy(&out.stdout).to_string();
                        let server = text.lines().last().unwrap_or("").trim().to_string();
                        if out.status.success() && server == new_address {
                            first.get_or_insert(at);
                            if run == 0 {
                                stable = Some(at);
                            }
                            run += 1;
                            if run >= 5 && finished.load(std::sync::atomic::Ordering::SeqCst) {
                                return (old_last, down, first, stable);
                            }
                        } else {
                            if out.status.success() {
                                old_last = Some(at);
                            } else {
                                down.get_or_insert(at);
                            }
                            run = 0;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    (old_last, down, first, None)
                });
                let result = pgdeploy(&["switchover", "--yes", "--to", to], &inventory);
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
                (result, watcher.join().unwrap())
            });
            let ((code, stdout, stderr), (old_last, down, first, stable)) = probe;
            let command = started.elapsed();
            assert_eq!(code, 0, "{stdout}{stderr}");
            assert!(
                stdout.contains(&format!("switched over to `{to}`")),
                "{stdout}"
            );
            assert_eq!(leader(&lab), to);
            let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
            eprintln!(
                "  switchover {old} → {to}: the command took {:.1} s; through the VIP, the last \
             write {old} accepted was at {:.1} s, the first refused at {:.1} s, the first \
             accepted by {to} at {:.1} s, and all went to {to} from {:.1} s on; pgdeploy: {}",
                command.as_secs_f64(),
                secs(old_last),
                secs(down),
                secs(first),
                secs(stable),
                stdout.lines().last().unwrap_or_default()
            );
            assert!(
                stable.is_some(),
                "the VIP never reached only the new leader"
            );
            assert_eq!(
                sql_ok(&lab, "pg1", &vip, 5432, "SELECT pg_is_in_recovery()"),
                "f"
            );
            assert!(streaming(&members(&lab)), "{:?}", members(&lab));
        },
    );

    c.run("restart_pending_goes_replicas_first_leader_last", || {
        let current = leader(&lab);
        lab.ssh_ok(
            lab.ip("pg1"),
            ". /var/lib/pgdeploy/patroni.env && \"$PATRONICTL\" -c \"$PATRONI_CONFIG\" \
             edit-config -p max_connections=150 --force",
        );
        assert!(
            eventually(Duration::from_secs(40), || {
                lab.ssh_ok(
                    lab.ip("pg1"),
                    ". /var/lib/pgdeploy/patroni.env && \"$PATRONICTL\" -c \"$PATRONI_CONFIG\" list -e -f json",
                )
                .matches("\"Pending restart\": \"*\"")
                .count()
                    == 3
            }),
            "no pending restart on every member"
        );
        let before: Vec<String> = NODES.iter().map(|n| start_time(&lab, n)).collect();
        let (code, stdout, stderr) = pgdeploy(&["restart", "--pending", "--yes"], &inventory);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("replicas first, leader last"), "{stdout}");
        let after: Vec<(String, String)> = NODES
            .iter()
            .map(|n| (n.to_string(), start_time(&lab, n)))
            .collect();
        for (i, (n, t)) in after.iter().enumerate() {
            assert_ne!(t, &before[i], "{n} restarted");
            assert_eq!(
                sql_ok(&lab, n, "127.0.0.1", 5432, "SHOW max_connections"),
                "150"
            );
        }
        let leader_started = &after.iter().find(|(n, _)| *n == current).unwrap().1;
        for (n, t) in &after {
            assert!(
                n == &current || t < leader_started,
                "{after:?}: the leader {current} last"
            );
        }
        assert_eq!(leader(&lab), current, "the leader stayed the leader");
        let (code, stdout, _) = pgdeploy(&["restart", "--pending", "--yes"], &inventory);
        assert_eq!(code, 0);
        assert!(stdout.contains("nothing to do"), "{stdout}");
        eprintln!("  {}", stdout.trim());
    });

    c.run("reinit_of_a_replica_streams_again", || {
        let current = leader(&lab);
        let (code, _, stderr) = pgdeploy(&["reinit", "--yes", &current], &inventory);
        assert_eq!(code, 1);
        assert!(
            stderr.contains("is the leader: reinitialising it would erase"),
            "{stderr}"
        );
        let replica = NODES.iter().find(|n| **n != current).unwrap();
        let before = start_time(&lab, replica);
        let (code, stdout, stderr) = pgdeploy(&["reinit", "--yes", replica], &inventory);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("reinitialised and streaming"), "{stdout}");
        assert_ne!(
            start_time(&lab, replica),
            before,
            "PostgreSQL started again"
        );
        let rows = members(&lab);
        let tl = rows.iter().find(|r| r["Role"] == "Leader").unwrap()["TL"].clone();
        let r = rows.iter().find(|r| r["Member"] == *replica).unwrap();
        assert_eq!(
            (r["State"].as_str(), &r["TL"]),
            (Some("streaming"), &tl),
            "{rows:?}"
        );
        // the rows written through the VIP are there again
        assert!(eventually(Duration::from_secs(20), || {
            sql(
                &lab,
                replica,
                "127.0.0.1",
                5432,
                "SELECT count(*) > 0 FROM d2",
            )
            .stdout
                == b"t\n"
        }));
    });

    c.run("pause_is_shown_in_status_and_honoured_failover_then_resume", || {
        let (code, stdout, stderr) = pgdeploy(&["pause", "--yes", "--json"], &inventory);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("\"event\":\"done\"") && l.contains("\"paused\":true")),
            "{stdout}"
        );
        let (code, stdout, _) = pgdeploy(&["status"], &inventory);
        assert_eq!(code, 2, "paused: degraded");
        assert!(stdout.contains("PAUSED: maintenance mode"), "{stdout}");
        let (_, json, _) = pgdeploy(&["status", "--json"], &inventory);
        assert!(json.contains("\"paused\":true"), "{json}");
        // Honoured: the leader gone (Patroni and PostgreSQL stopped), no replica takes over,
        // even once its leader key expired (ttl 30 s).
        let current = leader(&lab);
        lab.ssh_ok(
            lab.ip(&current),
            "systemctl stop patroni && su postgres -s /bin/sh -c \
             'cd /tmp && /usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/pgcluster stop -m fast'",
        );
        // Watched past the key's expiry: a promotion fails the check when it happens.
        let replicas: Vec<&str> = NODES.iter().copied().filter(|n| *n != current).collect();
        poll::never(
            "a replica was promoted while paused",
            Duration::from_secs(40),
            Duration::from_secs(2),
            || {
                replicas
                    .iter()
                    .map(|n| {
                        let q = "SELECT pg_is_in_recovery()";
                        (n.to_string(), sql_ok(&lab, n, "127.0.0.1", 5432, q))
                    })
                    .collect::<Vec<_>>()
            },
            |seen| seen.iter().any(|(_, in_recovery)| in_recovery != "t"),
        );
        let rows = members_on(&lab, replicas[0]);
        assert!(rows.iter().all(|r| r["Role"] != "Leader"), "{rows:?}");
        // This is what `failover` is for: promote a replica of a cluster without a leader.
        let to = replicas[1];
        let (code, stdout, stderr) = pgdeploy(&["failover", "--yes", "--to", to], &inventory);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains(&format!("failed over to `{to}`")), "{stdout}");
        eprintln!("  {}", stdout.lines().last().unwrap_or_default());
        assert_eq!(
            sql_ok(&lab, to, "127.0.0.1", 5432, "SELECT pg_is_in_recovery()"),
            "f"
        );
        // The old leader comes back; after the resume Patroni starts it as a replica.
        lab.ssh_ok(lab.ip(&current), "systemctl start patroni");
        let (code, stdout, stderr) = pgdeploy(&["resume", "--yes"], &inventory);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains("resumed"), "{stdout}");
        assert_eq!(leader(&lab), to);
        // (the old leader's member shows again once its Patroni runs, then rewinds and streams)
        let mut status = String::new();
        assert!(
            eventually(Duration::from_secs(60), || {
                let (code, stdout, _) = pgdeploy(&["status"], &inventory);
                status = stdout;
                code == 0 && status.contains(&format!("{current} ")) && !status.contains("PAUSED")
            }),
            "{status}"
        );
        let rows = members(&lab);
        assert!(
            rows.iter()
                .any(|r| r["Member"] == current.as_str() && r["State"] == "streaming"),
            "{rows:?}"
        );
    });
    rotation::run(&mut c, &lab, &inventory);
    backups::run(&mut c, &lab, &inventory);
    objects::run(&mut c, &lab, &inventory);
    faults::run(&mut c, &lab, &inventory);
    removal::run(&mut c, &lab, &inventory);
    // After removal: the member removal re-adds would have no exporter (the exporter is
    // applied with `-e` here), and `verify` fails a member without one when others have one.
    metrics::run(&mut c, &lab, &inventory);
    drills::run(&mut c, &lab, &inventory);
    c.finish();
}
