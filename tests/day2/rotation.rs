//! Rotating the superuser's and the replication user's passwords on the day-2 cluster: a
//! copy of the lab inventory with new passwords (a quote, a backslash, a `$` and spaces in
//! each), planned and applied, then the original inventory applied again so that the checks
//! after these find the cluster as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checks::Checks;
use super::cluster::{self, eventually, inventory_var, sql_as};
use super::lab_support::LabFixture;
use super::{members, streaming, NODES};

/// A word in both new passwords and nowhere else: found in a stream, whatever escaping
/// the stream applied around it, it is a leak.
const TOKEN_SU: &str = "Qx7suRot";
const TOKEN_REPL: &str = "Qx7replRot";

fn new_superuser() -> String {
    format!("it's a \\ ${TOKEN_SU} pass")
}
fn new_replication() -> String {
    format!("r'e\\p $ {TOKEN_REPL} x")
}

/// The lab inventory with these passwords, written beside it.
fn inventory_with(inventory: &Path, superuser: &str, replication: &str, name: &str) -> PathBuf {
    // A JSON string is a YAML double-quoted scalar: any character, a line break too.
    let yaml = |v: &str| serde_json::to_string(v).unwrap();
    let text = std::fs::read_to_string(inventory).unwrap();
    let mut replaced = 0;
    let out: String = text
        .lines()
        .map(|l| {
            let line = if let Some((head, _)) = l.split_once("pg_superuser_password: ") {
                replaced += 1;
                format!("{head}pg_superuser_password: {}", yaml(superuser))
            } else if let Some((head, _)) = l.split_once("pg_replication_password: ") {
                replaced += 1;
                format!("{head}pg_replication_password: {}", yaml(replication))
            } else {
                l.to_string()
            };
            line + "\n"
        })
        .collect();
    assert_eq!(replaced, 2, "{text}");
    let path = inventory.with_file_name(name);
    std::fs::write(&path, out).unwrap();
    path
}

/// The forms a planted secret could take in output: as is, JSON-escaped, YAML- and
/// shell-quoted, and its token alone (any other escaping keeps it).
fn leaks(text: &str, secret: &str, token: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let forms = [
        secret.to_string(),
        json.trim_matches('"').to_string(),
        secret.replace('\'', "''"),
        secret.replace('\'', "'\\''"),
        token.to_string(),
    ];
    forms
        .into_iter()
        .filter(|f| text.contains(f.as_str()))
        .collect()
}

fn assert_masked(what: &str, text: &str) {
    for (secret, token) in [(new_superuser(), TOKEN_SU), (new_replication(), TOKEN_REPL)] {
        let found = leaks(text, &secret, token);
        assert!(found.is_empty(), "{what}: {found:?} in:\n{text}");
    }
}

/// Each member's postmaster start time and Patroni's pid.
fn processes(lab: &LabFixture, password: &str) -> Vec<(String, String)> {
    NODES
        .iter()
        .map(|n| {
            let start = sql_as(
                lab,
                n,
                "host=127.0.0.1 port=5432 user=postgres",
                password,
                "SELECT pg_postmaster_start_time()",
            );
            assert!(start.status.success(), "{n}: {start:?}");
            let pid = lab.ssh_ok(lab.ip(n), "systemctl show -p MainPID --value patroni");
            (
                String::from_utf8_lossy(&start.stdout).trim().to_string(),
                pid.trim().to_string(),
            )
        })
        .collect()
}

/// Whether `user` logs in with `password` through the VIP (the leader, from `pg2`).
fn logs_in(lab: &LabFixture, vip: &str, user: &str, password: &str) -> Result<(), String> {
    let out = sql_as(
        lab,
        "pg2",
        &format!("host={vip} port=5432 user={user}"),
        password,
        "SELECT current_user",
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    let site = cluster::playbook("site.yml");
    let vip = lab.info.vip.to_string();
    let old_superuser = inventory_var(lab, "pg_superuser_password");
    let old_replication = inventory_var(lab, "pg_replication_password");
    let rotated = inventory_with(
        inventory,
        &new_superuser(),
        &new_replication(),
        "rotated-passwords.yml",
    );

    c.run(
        "a_password_with_a_line_break_is_refused_before_any_host",
        || {
            let broken = inventory_with(
                inventory,
                "Qx7first\nQx7second",
                &old_replication,
                "broken.yml",
            );
            let (code, stdout, stderr) = cluster::pgdeploy("plan", &[], &broken, &site);
            assert_eq!(code, 1, "{stdout}{stderr}");
            // located at the value of site.yml's patroni `authentication:` (the mapping on the
            // next line), wherever the task is
            let text = std::fs::read_to_string(&site).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let key = lines
                .iter()
                .position(|l| l.trim_start().starts_with("authentication:"))
                .expect("site.yml has a patroni `authentication:`");
            let value = lines[key + 1];
            let (line, column) = (key + 2, value.len() - value.trim_start().len() + 1);
            assert!(
                stderr.contains(&format!("playbooks/site.yml:{line}:{column}: plays[")),
                "{stderr}"
            );
            assert!(
                stderr.contains(
                    ".tasks[0].patroni.authentication: a password holds a line break: \
                     Patroni's `.pgpass` cannot hold one"
                ),
                "{stderr}"
            );
            assert!(stderr.contains("no host was contacted"), "{stderr}");
        },
    );

    c.run(
        "rotated_passwords_plan_masked_and_apply_without_restart",
        || {
            let before = processes(lab, &old_superuser);
            for args in [&[][..], &["--json"], &["-vv"]] {
                let (code, stdout, stderr) = cluster::pgdeploy("plan", args, &rotated, &site);
                assert_eq!(code, 0, "plan {args:?}: {stdout}{stderr}");
                assert!(
                    stdout.contains(
                        "set the password of `postgres` (superuser), `replicator` (replication) \
                     on the leader"
                    ),
                    "plan {args:?}: {stdout}"
                );
                assert!(stdout.contains("(secret changed)"), "{stdout}");
                assert_masked(&format!("plan {args:?} stdout"), &stdout);
                assert_masked(&format!("plan {args:?} stderr"), &stderr);
            }
            let started = std::time::Instant::now();
            let (code, stdout, stderr) =
                cluster::pgdeploy("apply", &["--json", "-vv"], &rotated, &site);
            eprintln!(
                "  rotation applied: {:.1} s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert!(cluster::changed(&stdout) > 0, "{stdout}");
            assert!(
                stdout.contains("ALTER ROLE with a SCRAM-SHA-256 verifier"),
                "{stdout}"
            );
            assert_masked("apply --json -vv stdout", &stdout);
            assert_masked("apply --json -vv stderr", &stderr);

            let refused = logs_in(lab, &vip, "postgres", &old_superuser).unwrap_err();
            assert!(
                refused.contains("password authentication failed"),
                "{refused}"
            );
            logs_in(lab, &vip, "postgres", &new_superuser()).unwrap();
            let refused = logs_in(lab, &vip, "replicator", &old_replication).unwrap_err();
            assert!(
                refused.contains("password authentication failed"),
                "{refused}"
            );
            logs_in(lab, &vip, "replicator", &new_replication()).unwrap();

            assert_eq!(
                processes(lab, &new_superuser()),
                before,
                "nothing restarted"
            );
            assert!(
                eventually(Duration::from_secs(30), || streaming(&members(lab))),
                "{:?}",
                members(lab)
            );
            // The clear passwords never reached a server log, nor Patroni's.
            for n in NODES {
                let logs = lab.ssh_ok(
                    lab.ip(n),
                    "journalctl -u patroni --no-pager -o cat; \
                 cat /var/lib/postgresql/*/pgcluster/log/* 2>/dev/null; true",
                );
                assert_masked(&format!("{n}'s logs"), &logs);
            }

            let (code, stdout, stderr) = cluster::pgdeploy("apply", &["--json"], &rotated, &site);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert_eq!(cluster::changed(&stdout), 0, "second apply: {stdout}");
            assert_masked("second apply stdout", &stdout);
        },
    );

    c.run("passwords_rotated_back_to_the_inventorys", || {
        let before = processes(lab, &new_superuser());
        let (code, stdout, stderr) = cluster::pgdeploy("apply", &["-vv"], inventory, &site);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(stdout.contains("(secret changed)"), "{stdout}");
        // The old side of the diff held the planted passwords.
        assert_masked("apply back stdout", &stdout);
        assert_masked("apply back stderr", &stderr);
        logs_in(lab, &vip, "postgres", &old_superuser).unwrap();
        assert!(logs_in(lab, &vip, "postgres", &new_superuser()).is_err());
        assert_eq!(processes(lab, &old_superuser), before, "nothing restarted");
        assert!(
            eventually(Duration::from_secs(30), || streaming(&members(lab))),
            "{:?}",
            members(lab)
        );
    });
    let _ = std::fs::remove_file(&rotated);
}
