//! `playbooks/pglift.yml` (seeds 000/002's shape) on 3 real lab hosts from bare: etcd with
//! mutual TLS, pglift's site, and the instance `main` created by pglift on every host, run by
//! Patroni (cluster `maincluster`) with a pgBackRest stanza. Then: a second apply changes
//! nothing; a `work_mem` change is converged on every member without restart; `max_connections`
//! goes through Patroni and is pending a restart; a replica stopped and started again streams;
//! a replica dropped leaves the cluster healthy. Seed 000's own playbook on that cluster
//! changes nothing; `pgdeploy status` and `switchover` find pglift's Patroni through the
//! locator `pglift_instance` writes. Roles and databases through `dalibo.pglift.role` and
//! `dalibo.pglift.database` (`pglift/objects.rs`); postgres_exporters through
//! `dalibo.pglift.postgres_exporter` (`pglift/exporters.rs`).
//!
//! One lab, one cluster, checks in order (each builds on the previous ones).

#[path = "support/checks.rs"]
mod checks;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "pglift/exporters.rs"]
mod exporters;
#[path = "support/lab.rs"]
mod lab_support;
#[path = "pglift/objects.rs"]
mod objects;

use std::path::Path;
use std::time::{Duration, Instant};

use checks::Checks;
use cluster::{assert_bare, changed, eventually};
use lab_support::LabFixture;
use serde_json::Value;

const NAME: &str = "pgdpl";
const SUBNET: &str = "10.213.41.0/24";
const NODES: [&str; 3] = ["pg1", "pg2", "pg3"];
const PATRONICTL: &str = "/opt/pglift/bin/patronictl -c /etc/patroni/15-main.yaml";
/// Seed 000's playbook (its two plays, addresses and passwords from the inventory).
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/lab/seed000-pglift.yml"
);

fn pgdeploy(mode: &str, args: &[&str], inventory: &Path) -> (i32, String, String) {
    cluster::pgdeploy(mode, args, inventory, &cluster::playbook("pglift.yml"))
}

/// A command as `postgres` on `host`, from `/`.
fn as_postgres(lab: &LabFixture, host: &str, command: &str) -> String {
    lab.ssh_ok(
        lab.ip(host),
        &format!("cd / && runuser -u postgres -- sh -c '{command}'"),
    )
}

/// `patronictl list` (through pglift's Patroni configuration) as JSON rows.
fn members(lab: &LabFixture, host: &str) -> Vec<Value> {
    let text = as_postgres(lab, host, &format!("{PATRONICTL} list -f json"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn settled(rows: &[Value], n: usize) -> bool {
    rows.len() == n
        && rows.iter().filter(|r| r["Role"] == "Leader").count() == 1
        && rows
            .iter()
            .all(|r| r["Role"] == "Leader" || r["State"] == "streaming")
}

fn start_times(lab: &LabFixture) -> Vec<String> {
    NODES
        .iter()
        .map(|h| as_postgres(lab, h, "psql -XAtc \"select pg_postmaster_start_time()\""))
        .collect()
}

fn setting(lab: &LabFixture, host: &str, name: &str) -> String {
    as_postgres(lab, host, &format!("psql -XAtc \"show {name}\""))
        .trim()
        .to_string()
}

/// The instance settings and pg3's state, in group_vars/host_vars beside the lab inventory.
fn write_vars(lab: &LabFixture, settings: &str, pg3_state: &str) {
    let base = lab.inventory().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(base.join("group_vars")).unwrap();
    std::fs::create_dir_all(base.join("host_vars")).unwrap();
    std::fs::write(
        base.join("group_vars/all.yml"),
        format!("pglift_settings: {settings}\n"),
    )
    .unwrap();
    std::fs::write(
        base.join("host_vars/pg3.yml"),
        format!("pglift_state: {pg3_state}\n"),
    )
    .unwrap();
}

/// The steps of a `--json` run that changed something, as `host: summary` lines.
fn changes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["event"] == "step_finished" && e["status"] != "ok" && e["status"] != "skipped"
        })
        .map(|e| format!("{}: {}", e["host"], e))
        .collect()
}

const BASE: &str = "{shared_buffers: 128MB, effective_cache_size: 512MB}";
const WORK_MEM: &str = "{shared_buffers: 128MB, effective_cache_size: 512MB, work_mem: 16MB}";
const MAX_CONN: &str =
    "{shared_buffers: 128MB, effective_cache_size: 512MB, work_mem: 16MB, max_connections: 150}";

#[test]
fn pglift_playbook_on_the_lab() {
    let Some(lab) = LabFixture::up(NAME, SUBNET, 3, 0) else {
        return;
    };
    let inventory = lab.inventory();
    write_vars(&lab, BASE, "started");
    let mut c = Checks::new();

    c.run("hosts_start_bare", || {
        for h in NODES {
            assert_bare(&lab, h);
        }
    });
    c.run("one_apply_deploys_pglift_instances_run_by_patroni", || {
        let started = Instant::now();
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        eprintln!(
            "  bare hosts to a pglift + Patroni cluster: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let mut rows = members(&lab, "pg1");
        eventually(Duration::from_secs(60), || {
            rows = members(&lab, "pg1");
            settled(&rows, 3)
        });
        assert!(settled(&rows, 3), "{rows:?}");
        let leader: Vec<&Value> = rows.iter().filter(|r| r["Role"] == "Leader").collect();
        assert_eq!(leader[0]["Member"], "pg1", "the primary is created first");
        for h in NODES {
            let list = as_postgres(&lab, h, "/opt/pglift/bin/pglift instance list -o json");
            let list: Vec<Value> = serde_json::from_str(&list).unwrap();
            assert_eq!(list.len(), 1, "{h}: {list:?}");
            assert_eq!(list[0]["name"], "main", "{h}: {list:?}");
            assert_eq!(list[0]["status"], "running", "{h}: {list:?}");
        }
        // the passwords never appear in the output
        let pw = cluster::inventory_var(&lab, "pg_superuser_password");
        assert!(!stdout.contains(&pw) && !stderr.contains(&pw));
    });
    c.run("the_stanza_exists_and_a_backup_is_listed", || {
        as_postgres(
            &lab,
            "pg1",
            "/opt/pglift/bin/pglift --non-interactive instance backup main",
        );
        let info = as_postgres(
            &lab,
            "pg1",
            "pgbackrest --config-path=/pgdata/pglift/etc/pgbackrest --stanza=main-stz info --output=json",
        );
        let info: Vec<Value> = serde_json::from_str(&info).unwrap();
        assert_eq!(info[0]["name"], "main-stz");
        let backups = info[0]["backup"].as_array().unwrap();
        assert_eq!(backups.len(), 1, "{info:?}");
        assert_eq!(backups[0]["type"], "full", "{info:?}");
    });
    let before = start_times(&lab);
    c.run("second_apply_changes_nothing", || {
        let started = Instant::now();
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        eprintln!("  second apply: {:.1} s", started.elapsed().as_secs_f64());
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(changed(&stdout), 0, "{:#?}", changes(&stdout));
        assert_eq!(start_times(&lab), before, "nothing restarted");
    });
    c.run("seed_000s_playbook_converges_on_the_cluster", || {
        // seed 000's own two plays (`hosts: primary`, `hosts: replica`, `become_user:
        // postgres`) on the lab inventory's groups of the same names: they describe the
        // instances pglift.yml made, so nothing is left to do
        let started = Instant::now();
        let (code, stdout, stderr) = cluster::pgdeploy("apply", &["--json"], &inventory, SEED);
        eprintln!(
            "  seed 000's playbook on the cluster: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(changed(&stdout), 0, "{:#?}", changes(&stdout));
        let (code, stdout, stderr) = cluster::pgdeploy("check", &[], &inventory, SEED);
        assert_eq!(code, 0, "no drift: {stderr}\n{stdout}");
        let rows = members(&lab, "pg1");
        assert!(settled(&rows, 3), "{rows:?}");
        assert_eq!(start_times(&lab), before, "nothing restarted");
    });
    c.run("status_reads_the_cluster_through_the_locator", || {
        for h in NODES {
            let text = lab.ssh_ok(lab.ip(h), "cat /var/lib/pgdeploy/patroni.env");
            let vars: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            assert_eq!(
                vars,
                [
                    "PATRONI_CONFIG=/etc/patroni/15-main.yaml",
                    "PATRONICTL=/opt/pglift/bin/patronictl"
                ],
                "{h}: {text}"
            );
        }
        let (code, stdout, stderr) = cluster::command(&["status", "--json"], &inventory, None);
        assert_eq!(code, 0, "healthy: {stderr}\n{stdout}");
        let status: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(status["scope"], "maincluster", "{status}");
        let mut names: Vec<&str> = status["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["member"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, NODES, "{status}");
        let etcd = status["etcd"].as_array().unwrap();
        assert_eq!(etcd.len(), 3, "{status}");
        assert!(etcd.iter().all(|e| e["health"] == true), "{status}");
    });
    c.run(
        "roles_and_databases_through_the_collections_modules",
        || objects::run(&lab, &inventory),
    );
    c.run(
        "postgres_exporters_through_the_collections_module_answer_pg_up",
        || exporters::run(&lab, &inventory),
    );
    c.run(
        "work_mem_is_converged_on_every_member_without_restart",
        || {
            write_vars(&lab, WORK_MEM, "started");
            let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert_eq!(changed(&stdout), 3, "{:#?}", changes(&stdout));
            for h in NODES {
                assert_eq!(setting(&lab, h, "work_mem"), "16MB", "{h}");
            }
            assert_eq!(start_times(&lab), before, "no restart");
            let (_, stdout, _) = pgdeploy("apply", &["--json"], &inventory);
            assert_eq!(changed(&stdout), 0, "{:#?}", changes(&stdout));
        },
    );
    c.run(
        "max_connections_goes_through_patroni_and_is_pending_restart",
        || {
            write_vars(&lab, MAX_CONN, "started");
            let (code, stdout, _) = pgdeploy("check", &[], &inventory);
            assert_eq!(code, 2, "drift: {stdout}");
            assert!(
                stdout
                    .contains("set `max_connections` to `150` in Patroni's cluster configuration"),
                "{stdout}"
            );
            let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            // set once, through the first host; the others find it done
            assert_eq!(changed(&stdout), 1, "{:#?}", changes(&stdout));
            let mut rows = members(&lab, "pg1");
            eventually(Duration::from_secs(30), || {
                rows = members(&lab, "pg1");
                rows.iter().all(|r| r["Pending restart"] == "*")
            });
            assert!(rows.iter().all(|r| r["Pending restart"] == "*"), "{rows:?}");
            assert_eq!(setting(&lab, "pg1", "max_connections"), "100");
            assert_eq!(start_times(&lab), before, "no restart");
            let (_, stdout, _) = pgdeploy("apply", &["--json"], &inventory);
            assert_eq!(changed(&stdout), 0, "{:#?}", changes(&stdout));
        },
    );
    c.run("a_stopped_replica_streams_again_once_started", || {
        write_vars(&lab, MAX_CONN, "stopped");
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(changed(&stdout), 1, "{:#?}", changes(&stdout));
        let list = as_postgres(&lab, "pg3", "/opt/pglift/bin/pglift instance list -o json");
        assert!(list.contains("not_running"), "{list}");
        write_vars(&lab, MAX_CONN, "started");
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(changed(&stdout), 1, "{:#?}", changes(&stdout));
        let mut rows = members(&lab, "pg1");
        eventually(Duration::from_secs(60), || {
            rows = members(&lab, "pg1");
            settled(&rows, 3)
        });
        assert!(settled(&rows, 3), "{rows:?}");
    });
    c.run("a_dropped_replica_leaves_the_cluster_healthy", || {
        write_vars(&lab, MAX_CONN, "absent");
        let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(changed(&stdout), 1, "{:#?}", changes(&stdout));
        let list = as_postgres(&lab, "pg3", "/opt/pglift/bin/pglift instance list -o json");
        assert_eq!(list.trim(), "[]");
        // pg3's member key expires with its TTL; the two others stay a healthy cluster
        let mut rows = members(&lab, "pg1");
        eventually(Duration::from_secs(60), || {
            rows = members(&lab, "pg1");
            settled(&rows, 2)
        });
        assert!(settled(&rows, 2), "{rows:?}");
        // its locator named the Patroni file the drop removed: gone with it
        lab.ssh_ok(lab.ip("pg3"), "test ! -e /var/lib/pgdeploy/patroni.env");
        let (_, stdout, _) = pgdeploy("apply", &["--json"], &inventory);
        assert_eq!(changed(&stdout), 0, "{:#?}", changes(&stdout));
    });
    c.run("switchover_moves_the_leader_of_the_pglift_cluster", || {
        let started = Instant::now();
        let (code, stdout, stderr) =
            cluster::command(&["switchover", "--yes", "--to", "pg2"], &inventory, None);
        eprintln!(
            "  switchover pg1 → pg2: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let rows = members(&lab, "pg1");
        let leader: Vec<&Value> = rows.iter().filter(|r| r["Role"] == "Leader").collect();
        assert_eq!(leader.len(), 1, "{rows:?}");
        assert_eq!(leader[0]["Member"], "pg2", "{rows:?}");
        let (code, stdout, stderr) = cluster::command(&["status"], &inventory, None);
        assert_eq!(
            code, 0,
            "healthy once the command returned: {stderr}\n{stdout}"
        );
    });
    c.finish();
}
