//! `playbooks/site.yml` (seed 003's architecture) on 5 real lab hosts: 3 PostgreSQL hosts with
//! etcd and Patroni, 2 balancers with HAProxy and keepalived. One `apply` from fresh hosts gives
//! a TLS-only cluster reached through the VIP; a second changes nothing; DCS settings are
//! converged without restart; the VIP survives the loss of its balancer.
//!
//! One lab, one cluster, checks in order (each builds on the previous ones).

#[path = "support/checks.rs"]
mod checks;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/lab.rs"]
mod lab_support;

use std::path::Path;
use std::time::{Duration, Instant};

use checks::Checks;
use cluster::{
    apt_activity, assert_bare, changed, eventually, holder_of, inventory_var, sql, sql_ok,
};
use lab_support::LabFixture;
use serde_json::Value;

const NAME: &str = "pgdst";
const SUBNET: &str = "10.213.23.0/24";
const NODES: [&str; 3] = ["pg1", "pg2", "pg3"];

fn playbook() -> String {
    cluster::playbook("site.yml")
}

/// Cluster-wide settings the playbook reads, in group_vars beside the lab inventory.
fn write_settings(lab: &LabFixture, sync_mode: bool, parameters: &str) {
    write_settings_restart(lab, sync_mode, parameters, false)
}

fn write_settings_restart(lab: &LabFixture, sync_mode: bool, parameters: &str, restart: bool) {
    let dir = lab.inventory().parent().unwrap().join("group_vars");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("all.yml"),
        format!(
            "pg_synchronous_mode: {sync_mode}\npg_parameters: {parameters}\n\
             pg_allow_restart: {restart}\n"
        ),
    )
    .unwrap();
}

/// Seed 004's VIP on the Patroni leader: `.101` of the lab subnet (the balancers have `.100`).
fn leader_vip(lab: &LabFixture) -> String {
    inventory_var(lab, "leader_vip")
}

/// `pgdeploy MODE ARGS -i INVENTORY site.yml`: exit code, stdout, stderr.
fn pgdeploy(mode: &str, args: &[&str], inventory: &Path) -> (i32, String, String) {
    cluster::pgdeploy(mode, args, inventory, &playbook())
}

fn pgdeploy_with(
    mode: &str,
    args: &[&str],
    inventory: &Path,
    playbook: &str,
) -> (i32, String, String) {
    cluster::pgdeploy(mode, args, inventory, playbook)
}

/// `patronictl list` as JSON rows.
fn members(lab: &LabFixture) -> Vec<Value> {
    cluster::members_on(lab, "pg1")
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

/// Which balancer holds the VIP.
fn vip_holder(lab: &LabFixture, vip: &str) -> Option<&'static str> {
    holder_of(lab, vip, &["lb1", "lb2"])
}

#[test]
fn site_playbook_on_the_lab() {
    let Some(lab) = LabFixture::up(NAME, SUBNET, 4, 2) else {
        return;
    };
    // The cluster starts on pg1-pg3; pg4 is added to the inventory by the last check.
    let full_inventory = lab.inventory();
    let inventory = full_inventory.with_file_name("lab3.yml");
    let text = std::fs::read_to_string(&full_inventory).unwrap();
    let without_pg4: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("pg4:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, without_pg4, "the lab inventory lists pg4");
    std::fs::write(&inventory, without_pg4).unwrap();
    let vip = lab.info.vip.to_string();
    write_settings(&lab, false, "{max_connections: 100}");
    let mut c = Checks::new();

    c.run("hosts_start_bare", || {
        for h in ["pg1", "pg2", "pg3", "pg4", "lb1", "lb2"] {
            assert_bare(&lab, h);
        }
    });
    c.run("one_apply_deploys_the_whole_architecture", || {
        let started = Instant::now();
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        eprintln!(
            "  fresh hosts to a cluster behind its VIP: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        // A replica that just joined may show `running`, and no timeline, for a moment.
        let mut rows = members(&lab);
        eventually(Duration::from_secs(30), || {
            rows = members(&lab);
            rows.iter()
                .all(|r| r["TL"] == 1 && (r["Role"] == "Leader" || r["State"] == "streaming"))
        });
        let leaders: Vec<&Value> = rows.iter().filter(|r| r["Role"] == "Leader").collect();
        assert_eq!(leaders.len(), 1, "{rows:?}");
        assert_eq!(
            leaders[0]["Member"], "pg1",
            "the intended primary bootstraps"
        );
        assert!(rows.iter().all(|r| r["TL"] == 1), "{rows:?}");
        // everything came from the lab mirror, through `pgdg_repo`, `packages` and `patroni`
        let mirror = inventory_var(&lab, "pgdg_mirror");
        for n in ["pg1", "pg2", "pg3", "lb1", "lb2"] {
            let source = lab.ssh_ok(lab.ip(n), "cat /etc/apt/sources.list.d/pgdg.sources");
            assert!(source.contains(&format!("URIs: {mirror}\n")), "{n}: {source}");
        }
        for n in NODES {
            let v = lab.ssh_ok(
                lab.ip(n),
                "/opt/patroni/bin/patroni --version && /usr/lib/postgresql/15/bin/postgres --version \
                 && systemctl show -p ExecStart --value patroni",
            );
            assert!(v.contains("patroni 4."), "{n}: {v}");
            assert!(v.contains("/opt/patroni/bin/patroni"), "{n}: {v}");
            // the packages created no cluster of their own, and started nothing
            lab.ssh_ok(lab.ip(n), "test ! -e /etc/postgresql/15/main");
        }
        assert!(
            rows.iter()
                .all(|r| r["Role"] == "Leader" || r["State"] == "streaming"),
            "{rows:?}"
        );
    });
    c.run("status_shows_the_cluster_and_healthy_etcd", || {
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
        assert_eq!(s["members"].as_array().unwrap().len(), 3, "{s}");
        let etcd = s["etcd"].as_array().unwrap();
        assert_eq!(etcd.len(), 3, "{s}");
        assert!(etcd.iter().all(
            |e| e["health"] == true && e["endpoint"].as_str().unwrap().starts_with("https://")
        ));
    });
    c.run(
        "the_vip_reaches_the_primary_on_5432_and_a_replica_on_5433",
        || {
            // (from the database hosts: the balancers carry no PostgreSQL client)
            assert_eq!(
                sql_ok(&lab, "pg3", &vip, 5432, "SELECT pg_is_in_recovery()"),
                "f"
            );
            assert_eq!(
                sql_ok(&lab, "pg2", &vip, 5433, "SELECT pg_is_in_recovery()"),
                "t"
            );
        },
    );
    c.run("rows_written_on_the_leader_are_read_on_replicas", || {
        sql_ok(
            &lab,
            "pg1",
            "127.0.0.1",
            5432,
            "CREATE TABLE t (v int); INSERT INTO t VALUES (42)",
        );
        for n in ["pg2", "pg3"] {
            assert!(
                eventually(Duration::from_secs(20), || {
                    sql(&lab, n, "127.0.0.1", 5432, "SELECT v FROM t").stdout == b"42\n"
                }),
                "row not replicated to {n}"
            );
        }
    });
    c.run(
        "plain_connections_are_refused_and_the_rest_api_uses_tls",
        || {
            let out = lab.ssh(
                lab.ip("pg2"),
                &format!(
                    "psql 'host={} user=postgres dbname=postgres sslmode=disable' -XAtc 'SELECT 1'",
                    lab.ip("pg1")
                ),
            );
            assert!(!out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("no pg_hba.conf entry"), "{err}");
            for n in NODES {
                let code = lab.ssh_ok(
                    lab.ip("pg1"),
                    &format!(
                    "curl -s --cacert /etc/patroni/pki/ca.crt -o /dev/null -w '%{{http_code}}' \
                     https://{}:8008/primary",
                    lab.ip(n)
                ),
                );
                assert_eq!(code, if n == "pg1" { "200" } else { "503" }, "{n}");
            }
        },
    );
    c.run("second_apply_changes_nothing_and_restarts_nothing", || {
        let before = postmaster_pids(&lab);
        let hosts = ["pg1", "pg2", "pg3", "lb1", "lb2"];
        let apt_before: Vec<String> = hosts.iter().map(|h| apt_activity(&lab, h)).collect();
        let started = Instant::now();
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        eprintln!("  no-op re-apply: {:.2} s", started.elapsed().as_secs_f64());
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(changed(&stdout), 0, "{stdout}");
        assert_eq!(postmaster_pids(&lab), before);
        let apt_after: Vec<String> = hosts.iter().map(|h| apt_activity(&lab, h)).collect();
        assert_eq!(apt_before, apt_after, "apt ran during a no-op apply");
        let (code, _, stderr) = pgdeploy("check", &[], &inventory);
        assert_eq!(code, 0, "{stderr}");
    });
    c.run("dcs_settings_are_patched_without_restart", || {
        let before = postmaster_pids(&lab);
        write_settings(&lab, true, "{max_connections: 100, work_mem: 8MB}");
        let (code, _, _) = pgdeploy("check", &[], &inventory);
        assert_eq!(code, 2, "drift");
        let (_, plan, _) = pgdeploy("plan", &["--no-color"], &inventory);
        assert!(
            plan.contains("synchronous_mode: `false` → `true`")
                && plan.contains("postgresql.parameters.work_mem: (unset) → `8MB`"),
            "{plan}"
        );
        let password = inventory_var(&lab, "pg_superuser_password");
        assert!(!plan.contains(&password), "a password in the plan");
        let (code, _, stderr) = pgdeploy("apply", &[], &inventory);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            eventually(Duration::from_secs(30), || {
                members(&lab).iter().any(|r| r["Role"] == "Sync Standby")
                    && NODES.iter().all(|n| {
                        sql(&lab, n, "127.0.0.1", 5432, "SHOW work_mem").stdout == b"8MB\n"
                    })
            }),
            "{:?}",
            members(&lab)
        );
        assert_eq!(postmaster_pids(&lab), before, "nothing restarted");
        let (code, stdout, _) = pgdeploy("apply", &["--json"], &inventory);
        assert_eq!((code, changed(&stdout)), (0, 0));
    });
    c.run(
        "a_restart_setting_is_pending_then_rolled_replicas_first",
        || {
            let params = "{max_connections: 150, work_mem: 8MB}";
            write_settings_restart(&lab, true, params, false);
            let (code, stdout, stderr) = pgdeploy("apply", &[], &inventory);
            assert_eq!(code, 0, "{stderr}");
            assert!(
                stdout.contains("max_connections: `100` → `150`"),
                "{stdout}"
            );
            // Patroni flags the restart within loop_wait; without allow_restart it is only a note.
            let mut plan = String::new();
            assert!(
                eventually(Duration::from_secs(30), || {
                    plan = pgdeploy("plan", &["--no-color"], &inventory).1;
                    plan.contains("note: PostgreSQL waits for a restart")
                }),
                "{plan}"
            );
            let (code, _, _) = pgdeploy("check", &[], &inventory);
            assert_eq!(code, 0, "a pending restart is not drift");
            let leader = members(&lab)
                .iter()
                .find(|r| r["Role"] == "Leader")
                .and_then(|r| r["Member"].as_str().map(str::to_string))
                .unwrap();
            write_settings_restart(&lab, true, params, true);
            let (code, stdout, stderr) = pgdeploy("apply", &[], &inventory);
            assert_eq!(code, 0, "{stderr}");
            assert!(stdout.contains("replicas first, leader last"), "{stdout}");
            let started: Vec<(String, String)> = NODES
                .iter()
                .map(|n| {
                    let t = sql_ok(
                        &lab,
                        n,
                        "127.0.0.1",
                        5432,
                        "SELECT pg_postmaster_start_time()",
                    );
                    assert_eq!(
                        sql_ok(&lab, n, "127.0.0.1", 5432, "SHOW max_connections"),
                        "150"
                    );
                    (n.to_string(), t)
                })
                .collect();
            let leader_started = &started.iter().find(|(n, _)| *n == leader).unwrap().1;
            for (n, t) in &started {
                assert!(
                    n == &leader || t < leader_started,
                    "{started:?}: leader {leader} last"
                );
            }
            let rows = members(&lab);
            assert!(
                rows.iter()
                    .any(|r| r["Role"] == "Leader" && r["Member"] == leader.as_str()),
                "{rows:?}"
            );
            let (code, stdout, _) = pgdeploy("apply", &["--json"], &inventory);
            assert_eq!((code, changed(&stdout)), (0, 0), "{stdout}");
        },
    );
    c.run("leader_vip_follows_a_switchover", || {
        // seed 004: keepalived on the PostgreSQL hosts, the VIP where Patroni's /primary is 200
        let vip = leader_vip(&lab);
        let on_leader = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/vip-on-leader.yml");
        let (code, _, stderr) = pgdeploy_with("apply", &[], &inventory, on_leader);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            eventually(Duration::from_secs(20), || holder_of(&lab, &vip, &NODES)
                == Some("pg1")),
            "the VIP is not on the leader pg1"
        );
        assert_eq!(
            sql_ok(&lab, "pg2", &vip, 5432, "SELECT pg_is_in_recovery()"),
            "f"
        );
        // In synchronous mode (set above) the candidate must be the sync standby.
        // After the rolling restart above, wait until a sync standby is chosen again.
        let mut sync: Option<String> = None;
        eventually(Duration::from_secs(60), || {
            sync = members(&lab)
                .iter()
                .find(|r| r["Role"] == "Sync Standby")
                .and_then(|r| r["Member"].as_str().map(str::to_string));
            sync.is_some()
        });
        let candidate: &'static str = match sync.as_deref() {
            Some("pg3") => "pg3",
            _ => "pg2",
        };
        let started = Instant::now();
        let answer = lab.ssh_ok(
            lab.ip("pg1"),
            &format!(
                "curl -s --cacert /etc/patroni/pki/ca.crt -X POST \
                 -d '{{\"leader\":\"pg1\",\"candidate\":\"{candidate}\"}}' https://{}:8008/switchover",
                lab.ip("pg1")
            ),
        );
        assert!(answer.contains("switched over"), "{answer}");
        assert!(
            eventually(Duration::from_secs(30), || holder_of(&lab, &vip, &NODES)
                == Some(candidate)),
            "the VIP did not follow the new leader {candidate}"
        );
        let moved = started.elapsed();
        assert!(
            eventually(Duration::from_secs(30), || {
                sql(&lab, "pg2", &vip, 5432, "SELECT pg_is_in_recovery()").stdout == b"f\n"
            }),
            "no primary through the leader VIP"
        );
        eprintln!(
            "  leader VIP followed the switchover to {candidate} in {:.1} s",
            moved.as_secs_f64()
        );
        // The cluster after a switchover is still the converged cluster.
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        assert_eq!((code, changed(&stdout)), (0, 0), "{stderr}{stdout}");
    });
    c.run("the_vip_moves_when_its_balancer_dies", || {
        let holder = vip_holder(&lab, &vip).expect("a balancer holds the VIP");
        let other = if holder == "lb1" { "lb2" } else { "lb1" };
        let started = Instant::now();
        pgdeploy_lab::kill(NAME, holder).unwrap();
        assert!(
            eventually(Duration::from_secs(30), || vip_holder(&lab, &vip)
                == Some(other)),
            "the VIP did not move to {other}"
        );
        let moved = started.elapsed();
        assert!(
            eventually(Duration::from_secs(30), || {
                sql(&lab, "pg2", &vip, 5432, "SELECT pg_is_in_recovery()").stdout == b"f\n"
            }),
            "no primary through the VIP after the move"
        );
        eprintln!(
            "  VIP moved to {other} in {:.1} s; primary reachable again after {:.1} s",
            moved.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        pgdeploy_lab::start(NAME, holder).unwrap();
    });
    c.run("a_fourth_host_joins_as_a_streaming_replica", || {
        let (_, plan, _) = pgdeploy("plan", &["--no-color"], &full_inventory);
        assert!(plan.contains("[pg4] Patroni cluster member"), "{plan}");
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &full_inventory);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            eventually(Duration::from_secs(60), || {
                members(&lab)
                    .iter()
                    .any(|r| r["Member"] == "pg4" && r["State"] == "streaming")
            }),
            "{:?}",
            members(&lab)
        );
        let members_text = lab.ssh_ok(
            lab.ip("pg4"),
            "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 \
             --cacert=/etc/etcd/pki/ca.crt --cert=/etc/etcd/pki/pg4.crt \
             --key=/etc/etcd/pki/pg4.key member list",
        );
        assert_eq!(members_text.lines().count(), 4, "{members_text}");
        let haproxy = lab.ssh_ok(lab.ip("lb1"), "cat /etc/haproxy/haproxy.cfg");
        assert!(haproxy.contains("server pg4"), "{haproxy}");
        let (code, stdout, _) = pgdeploy("apply", &["--json"], &full_inventory);
        assert_eq!((code, changed(&stdout)), (0, 0), "{stdout}");
    });
    c.finish();
}
