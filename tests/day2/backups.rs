//! pgBackRest on the day-2 cluster: the repository on `lb1` (added to the running cluster by
//! `site.yml` with `pgbackrest_repo_host`), a full backup, a dropped table brought back by
//! `restore --target-time`, a restore before the first backup refused with nothing stopped,
//! archiving after a switchover, a replica re-created from the repository, a
//! `restore --latest` with every Patroni stopped (no leader; `backup` refused), and re-applies
//! with nothing to change. The last check applies `site.yml` without the variable again, so
//! the next checks find the cluster converged as they expect (same members, all streaming).

use std::path::Path;
use std::time::{Duration, Instant};

use super::checks::Checks;
use super::cluster::{self, eventually, members_on, sql_ok};
use super::lab_support::LabFixture;

/// Quotes, a backslash and a space: masked in every output, written intact to the file.
const CIPHER: &str = "Cipher \"q\\uo'te";

fn backups_vars() -> String {
    serde_json::json!({
        "pgbackrest_repo_host": "lb1",
        "pgbackrest_cipher_pass": CIPHER,
        // `archive_mode` needs a restart on a running cluster
        "pg_allow_restart": true,
    })
    .to_string()
}

fn apply(inventory: &Path, extra: &[&str]) -> (i32, String, String) {
    cluster::pgdeploy("apply", extra, inventory, &cluster::playbook("site.yml"))
}

/// One leader, every other member streaming, all on one timeline: that timeline.
fn settled_timeline(lab: &LabFixture) -> Option<u64> {
    let rows = members_on(lab, "pg1");
    let tl = rows.first()?["TL"].as_u64()?;
    cluster::settled(&rows, tl).then_some(tl)
}

fn leader(lab: &LabFixture) -> String {
    members_on(lab, "pg1")
        .iter()
        .find(|r| r["Role"] == "Leader")
        .and_then(|r| r["Member"].as_str().map(str::to_string))
        .expect("a leader")
}

/// `pgbackrest` as `postgres` on `host`
fn pgbackrest(lab: &LabFixture, host: &str, args: &str) -> std::process::Output {
    lab.ssh(
        lab.ip(host),
        &format!("cd / && runuser -u postgres -- pgbackrest --stanza=pgcluster {args}"),
    )
}

/// Patroni's state and PostgreSQL's start time on every member
fn running_since(lab: &LabFixture) -> Vec<String> {
    ["pg1", "pg2", "pg3"]
        .iter()
        .map(|h| {
            lab.ssh_ok(
                lab.ip(h),
                "systemctl is-active patroni; cd / && runuser -u postgres -- psql -XAtc 'select pg_postmaster_start_time()'",
            )
        })
        .collect()
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    let vars = backups_vars();
    let vip = lab.info.vip.to_string();

    c.run("backups_site_adds_a_repository_on_lb1", || {
        let started = Instant::now();
        let (code, stdout, stderr) = apply(inventory, &["-e", &vars]);
        eprintln!(
            "  backups added to the running cluster: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        for part in ["Cipher", "q\\uo"] {
            assert!(
                !stdout.contains(part) && !stderr.contains(part),
                "{stdout}{stderr}"
            );
        }
        assert!(stdout.contains("create stanza `pgcluster`"), "{stdout}");
        // the cipher pass is in the repository host's file only, as given
        let conf = lab.ssh_ok(lab.ip("lb1"), "cat /etc/pgbackrest/pgbackrest.conf");
        assert!(
            conf.contains(&format!("repo1-cipher-pass={CIPHER}")),
            "{conf}"
        );
        assert!(!lab
            .ssh_ok(lab.ip("pg1"), "cat /etc/pgbackrest/pgbackrest.conf")
            .contains("cipher"));
        let check = pgbackrest(lab, "lb1", "check");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(eventually(Duration::from_secs(60), || settled_timeline(
            lab
        )
        .is_some()));
    });

    c.run(
        "backups_full_backup_then_restore_to_a_time_before_a_drop",
        || {
            let started = Instant::now();
            let (code, stdout, stderr) = super::pgdeploy(&["backup", "--type", "full"], inventory);
            eprintln!(
                "  full backup: {:.1} s ({})",
                started.elapsed().as_secs_f64(),
                stdout.trim()
            );
            assert_eq!(code, 0, "{stdout}{stderr}");
            assert!(stdout.contains("(full) taken in"), "{stdout}");
            let status = super::pgdeploy(&["status"], inventory).1;
            assert!(status.contains("backups (pgBackRest): ok"), "{status}");
            assert!(status.contains("  last full: `"), "{status}");
            // the leader's archiver, whichever member `status` read first
            assert!(
                status.contains("archiving: ok (on the leader `"),
                "{status}"
            );
            let before = settled_timeline(lab).expect("settled");
            // rows written, the time noted, the table dropped (through the VIP: the leader)
            sql_ok(
                lab,
                "pg1",
                &vip,
                5432,
                "CREATE TABLE bk_keep AS SELECT generate_series(1, 500) AS i",
            );
            let noted = sql_ok(lab, "pg1", &vip, 5432, "SELECT clock_timestamp()");
            std::thread::sleep(Duration::from_secs(1));
            sql_ok(lab, "pg1", &vip, 5432, "DROP TABLE bk_keep");
            let started = Instant::now();
            let (code, stdout, stderr) =
                super::pgdeploy(&["restore", "--yes", "--target-time", &noted], inventory);
            eprintln!(
                "  restore to a time: {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(code, 0, "{stdout}{stderr}");
            for stage in 1..=5 {
                assert!(stderr.contains(&format!("stage {stage}/5")), "{stderr}");
            }
            let after = settled_timeline(lab).expect("one leader, every replica streaming");
            assert!(after > before, "a new timeline: {before} then {after}");
            assert!(
                eventually(Duration::from_secs(30), || {
                    cluster::sql(lab, "pg1", &vip, 5432, "SELECT count(*) FROM bk_keep").stdout
                        == b"500\n"
                }),
                "the table and its rows are back, through the VIP"
            );
            assert_eq!(
                sql_ok(lab, "pg1", &vip, 5432, "SELECT pg_is_in_recovery()"),
                "f"
            );
            for h in ["pg1", "pg2", "pg3"] {
                assert!(eventually(Duration::from_secs(30), || {
                    cluster::sql(lab, h, "127.0.0.1", 5432, "SELECT count(*) FROM bk_keep").stdout
                        == b"500\n"
                }));
            }
        },
    );

    c.run("backups_restore_before_the_first_backup_is_refused", || {
        let before = running_since(lab);
        let (code, stdout, stderr) = super::pgdeploy(
            &[
                "restore",
                "--yes",
                "--target-time",
                "2001-01-01 00:00:00+00",
            ],
            inventory,
        );
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(
            stderr.contains(
                "refusing to restore: no backup ends before time `2001-01-01 00:00:00+00`"
            ) && stderr.contains("nothing was stopped"),
            "{stderr}"
        );
        assert_eq!(running_since(lab), before, "nothing stopped or restarted");
        let (code, _, stderr) = super::pgdeploy(
            &["restore", "--yes", "--target-time", "not a time"],
            inventory,
        );
        assert_eq!(code, 1);
        assert!(
            stderr.contains("is not a time PostgreSQL reads"),
            "{stderr}"
        );
        assert_eq!(running_since(lab), before);
    });

    c.run("backups_archiving_survives_a_switchover", || {
        let old = leader(lab);
        let to = if old == "pg2" { "pg3" } else { "pg2" };
        let (code, stdout, stderr) =
            super::pgdeploy(&["switchover", "--yes", "--to", to], inventory);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let check = pgbackrest(lab, to, "check");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let check = pgbackrest(lab, "lb1", "check");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    });

    c.run(
        "backups_a_reinitialised_replica_restores_from_the_repository",
        || {
            let current = leader(lab);
            let replica = ["pg1", "pg2", "pg3"]
                .into_iter()
                .find(|h| *h != current)
                .unwrap();
            let since = lab.ssh_ok(lab.ip(replica), "date '+%Y-%m-%d %H:%M:%S'");
            let (code, stdout, stderr) = super::pgdeploy(&["reinit", "--yes", replica], inventory);
            assert_eq!(code, 0, "{stdout}{stderr}");
            let log = lab.ssh_ok(
                lab.ip(replica),
                &format!("journalctl -u patroni --since '{since}' --no-pager"),
            );
            assert!(
                log.contains("replica has been created using pgbackrest"),
                "{log}"
            );
            assert!(eventually(Duration::from_secs(60), || settled_timeline(
                lab
            )
            .is_some()));
        },
    );

    c.run(
        "backups_restore_latest_with_every_patroni_stopped",
        || {
            let old = leader(lab);
            // rows written through the VIP; `pgbackrest check` switches the WAL and waits
            // until it is archived (WAL left unarchived when the primary stops is not there
            // to recover, as `restore` says)
            sql_ok(
                lab,
                "pg1",
                &vip,
                5432,
                "CREATE TABLE bk_noleader AS SELECT generate_series(1, 300) AS i",
            );
            let check = pgbackrest(lab, &old, "check");
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            // every Patroni stopped, the leader last (no failover on the way): no leader
            for h in ["pg1", "pg2", "pg3"]
                .into_iter()
                .filter(|h| *h != old)
                .chain([old.as_str()])
            {
                lab.ssh_ok(lab.ip(h), "systemctl stop patroni");
            }
            let rows = members_on(lab, "pg1");
            assert!(
                rows.iter().all(|r| r["Role"] != "Leader" && r["State"] == "stopped"),
                "{rows:?}"
            );
            let (code, stdout, stderr) = super::pgdeploy(&["backup"], inventory);
            assert_eq!(code, 1, "{stdout}{stderr}");
            assert!(
                stderr.contains("has no running leader to back up")
                    && stderr.contains("the primary must run"),
                "{stderr}"
            );
            let started = Instant::now();
            let (code, stdout, stderr) =
                super::pgdeploy(&["restore", "--yes", "--latest"], inventory);
            eprintln!(
                "  restore --latest with every Patroni stopped: {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(code, 0, "{stdout}{stderr}");
            // restored on the last leader, found by its data directory, and said so
            assert!(
                stdout.contains(&format!(
                    "restore `{old}` (no running leader; its PostgreSQL was last a primary (`pg_controldata`: `shut down`))"
                )),
                "{stdout}"
            );
            assert!(stderr.contains("stage 1/5: no running primary"), "{stderr}");
            assert!(
                settled_timeline(lab).is_some(),
                "one leader, every replica streaming"
            );
            assert_eq!(leader(lab), old);
            assert_eq!(
                sql_ok(lab, "pg1", &vip, 5432, "SELECT pg_is_in_recovery()"),
                "f",
                "the VIP reaches the leader"
            );
            for h in ["pg1", "pg2", "pg3"] {
                assert!(eventually(Duration::from_secs(30), || {
                    cluster::sql(lab, h, "127.0.0.1", 5432, "SELECT count(*) FROM bk_noleader")
                        .stdout
                        == b"300\n"
                }));
            }
            let mut last = String::new();
            assert!(
                eventually(Duration::from_secs(60), || {
                    let (code, stdout, stderr) = super::pgdeploy(&["verify"], inventory);
                    last = format!("{stdout}{stderr}");
                    code == 0
                }),
                "{last}"
            );
        },
    );

    c.run("backups_reapply_changes_nothing", || {
        let (code, stdout, stderr) = apply(inventory, &["--json", "-e", &vars]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
    });

    c.run("backups_off_again_for_the_next_checks", || {
        let (code, stdout, stderr) = apply(inventory, &[]);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let (code, stdout, stderr) = apply(inventory, &["--json"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
        assert!(eventually(Duration::from_secs(60), || settled_timeline(
            lab
        )
        .is_some()));
    });
}
