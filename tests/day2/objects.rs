//! Roles, databases and extensions on the Patroni stack (issue 19, item 2) on the shared day-2
//! cluster: `tests/fixtures/lab/objects.yml` runs `postgresql_role`, `postgresql_database` and
//! `postgresql_extension` on every member; only the leader changes anything, the replicas get
//! the objects by replication. `bob` (a password with a quote and a backslash) connects
//! through the VIP with TLS; a second apply changes nothing; a new password is a masked diff in
//! `plan`, then the old one is refused and the new one works; removing the extension is a
//! clear diff and converges. The objects are dropped at the end: the cluster is left as found.

use std::path::Path;

use super::checks::Checks;
use super::cluster::{self, changed_per_host, members_on, sql_as, sql_ok};
use super::lab_support::LabFixture;

const FIRST: &str = "o'ld\\pass word";
const SECOND: &str = "n\\ew'one";

fn playbook() -> String {
    format!(
        "{}/tests/fixtures/lab/objects.yml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `pgdeploy MODE -e {bob_password, pgss_state} [--json]`, timed; the password never printed.
fn objects(
    mode: &str,
    inventory: &Path,
    password: &str,
    pgss: &str,
    json: bool,
) -> (i32, String, String) {
    let vars = serde_json::json!({"bob_password": password, "pgss_state": pgss});
    let label = format!("objects (pgss {pgss})");
    cluster::pgdeploy_secret(mode, &vars, json, inventory, &playbook(), password, &label)
}

fn roles(lab: &LabFixture) -> (String, Vec<String>) {
    let rows = members_on(lab, "pg1");
    let name = |r: &serde_json::Value| r["Member"].as_str().unwrap_or_default().to_string();
    let leader = rows
        .iter()
        .find(|r| r["Role"] == "Leader")
        .map(name)
        .expect("a leader");
    let replicas = rows
        .iter()
        .filter(|r| r["Role"] != "Leader")
        .map(name)
        .collect();
    (leader, replicas)
}

/// `bob` runs `query` in `db1` through the VIP (port 5432: the primary).
fn as_bob(lab: &LabFixture, password: &str, query: &str) -> std::process::Output {
    let vip = lab.info.vip.to_string();
    sql_as(
        lab,
        "pg2",
        &format!("host={vip} port=5432 user=bob dbname=db1"),
        password,
        query,
    )
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    c.run("objects_are_made_on_the_leader_only", || {
        let (leader, replicas) = roles(lab);
        let (code, stdout, stderr) = objects("apply", inventory, FIRST, "present", true);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let changed = changed_per_host(&stdout);
        assert_eq!(changed.get(&leader), Some(&3), "{changed:?}");
        for r in &replicas {
            assert_eq!(changed.get(r), Some(&0), "{r} changed: {changed:?}");
        }
    });

    c.run("bob_connects_through_the_vip_with_tls", || {
        let out = as_bob(
            lab,
            FIRST,
            "SELECT current_user, s.ssl, d.datdba::regrole, (SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements') FROM pg_stat_ssl s, pg_database d WHERE s.pid = pg_backend_pid() AND d.datname = current_database()",
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "bob|t|bob|pg_stat_statements"
        );
    });

    c.run("objects_second_apply_changes_nothing", || {
        let (code, stdout, stderr) = objects("apply", inventory, FIRST, "present", true);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
    });

    c.run("objects_are_replicated_not_made_on_replicas", || {
        let (leader, replicas) = roles(lab);
        let (code, stdout, _) = objects("plan", inventory, FIRST, "present", false);
        assert_eq!(code, 0, "{stdout}");
        let note = format!("on the leader `{leader}`: nothing to do on this replica");
        assert_eq!(stdout.matches(&note).count(), 3 * replicas.len(), "{stdout}");
        for r in &replicas {
            let got = sql_ok(
                lab,
                r,
                "127.0.0.1",
                5432,
                "SELECT pg_is_in_recovery(), (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'bob'), (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'db1')",
            );
            assert_eq!(got, "t|t|bob", "on {r}");
        }
    });

    c.run("a_new_password_is_a_masked_diff_and_converges", || {
        let (code, stdout, stderr) = objects("plan", inventory, SECOND, "present", false);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(stdout.contains("alter role `bob`: password"), "{stdout}");
        assert!(stdout.contains("+password: ******** (changed)"), "{stdout}");
        let (code, stdout, stderr) = objects("apply", inventory, SECOND, "present", true);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 1, "{stdout}");
        let old = as_bob(lab, FIRST, "SELECT 1");
        assert!(!old.status.success(), "the old password still works");
        assert!(
            String::from_utf8_lossy(&old.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&old.stderr)
        );
        let new = as_bob(lab, SECOND, "SELECT current_user");
        assert!(
            new.status.success(),
            "{}",
            String::from_utf8_lossy(&new.stderr)
        );
        let (_, stdout, _) = objects("apply", inventory, SECOND, "present", true);
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
    });

    c.run(
        "removing_the_extension_is_a_clear_diff_and_converges",
        || {
            let (code, stdout, stderr) = objects("plan", inventory, SECOND, "absent", false);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert!(
                stdout.contains("drop extension `pg_stat_statements` in database `db1`"),
                "{stdout}"
            );
            assert!(stdout.contains("-version: "), "{stdout}");
            let (code, stdout, stderr) = objects("apply", inventory, SECOND, "absent", true);
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            assert_eq!(cluster::changed(&stdout), 1, "{stdout}");
            let out = as_bob(
                lab,
                SECOND,
                "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
            let (_, stdout, _) = objects("apply", inventory, SECOND, "absent", true);
            assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
        },
    );

    c.run("objects_are_dropped_at_the_end", || {
        let (leader, _) = roles(lab);
        sql_ok(
            lab,
            &leader,
            "127.0.0.1",
            5432,
            "DROP DATABASE IF EXISTS db1",
        );
        sql_ok(lab, &leader, "127.0.0.1", 5432, "DROP ROLE IF EXISTS bob");
    });
}
