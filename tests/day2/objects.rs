//! Roles, databases and extensions on the Patroni stack (issue 19, item 2) on the shared day-2
//! cluster: `tests/fixtures/lab/objects.yml` runs `postgresql_role`, `postgresql_database` and
//! `postgresql_extension` on every member; only the leader changes anything, the replicas get
//! the objects by replication. `bob` (a password with a quote and a backslash) connects
//! through the VIP with TLS; a second apply changes nothing; a new password is a masked diff in
//! `plan`, then the old one is refused and the new one works; removing the extension is a
//! clear diff and converges. A `postgresql_pg_hba` rule for bob in db1 lands in Patroni's
//! cluster-wide `pg_hba` before the catch-alls, reaches every member's `pg_hba.conf` with no
//! restart, survives a `site.yml` apply (whose `patroni` task owns the other lines), and turned
//! into `reject` refuses bob as soon as `apply` returns. The objects and the rule are removed at
//! the end: the cluster is left as found.

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
    objects_hba(mode, inventory, password, pgss, HBA, json)
}

/// The pg_hba rule as the tasks make it by default: method, state.
const HBA: (&str, &str) = ("scram-sha-256", "present");

/// [`objects`] with the pg_hba rule's `bob_hba_method` and `bob_hba_state`.
fn objects_hba(
    mode: &str,
    inventory: &Path,
    password: &str,
    pgss: &str,
    (method, state): (&str, &str),
    json: bool,
) -> (i32, String, String) {
    let vars = serde_json::json!({"bob_password": password, "pgss_state": pgss,
        "bob_hba_method": method, "bob_hba_state": state});
    let label = format!("objects (pgss {pgss}, pg_hba {method} {state})");
    cluster::pgdeploy_secret(mode, &vars, json, inventory, &playbook(), password, &label)
}

/// Patroni's cluster-wide `pg_hba` list (`patronictl show-config`, read on `pg1`).
fn dcs_hba(lab: &LabFixture) -> Vec<String> {
    let config = lab.ssh_ok(
        lab.ip("pg1"),
        ". /var/lib/pgdeploy/patroni.env && \"$PATRONICTL\" -c \"$PATRONI_CONFIG\" show-config",
    );
    let v: serde_json::Value = serde_yaml_ng::from_str(&config).expect("show-config is YAML");
    v["postgresql"]["pg_hba"]
        .as_array()
        .expect("a pg_hba list")
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The rule lines (`type database user address method`) of `host`'s `pg_hba.conf` for bob,
/// as PostgreSQL parses the file (`pg_hba_file_rules`), and whether it loaded the file since
/// it was last written.
fn bob_rules(lab: &LabFixture, host: &str) -> String {
    sql_ok(
        lab,
        host,
        "127.0.0.1",
        5432,
        "SELECT (SELECT string_agg(concat_ws(' ', type, array_to_string(database, ','), array_to_string(user_name, ','), address || '/' || netmask, auth_method), ';') FROM pg_hba_file_rules WHERE 'bob' = ANY(user_name)), pg_conf_load_time() >= (pg_stat_file(current_setting('hba_file'))).modification",
    )
}

fn start_times(lab: &LabFixture) -> Vec<String> {
    ["pg1", "pg2", "pg3"]
        .iter()
        .map(|h| {
            sql_ok(
                lab,
                h,
                "127.0.0.1",
                5432,
                "SELECT pg_postmaster_start_time()",
            )
        })
        .collect()
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
    let started = start_times(lab);
    let subnet = cluster::inventory_var(lab, "lab_subnet");
    let netmask = |mask: &str| format!("{}/{mask}", subnet.split('/').next().unwrap_or_default());
    c.run("objects_are_made_on_the_leader_only", || {
        let (leader, replicas) = roles(lab);
        let (code, stdout, stderr) = objects("apply", inventory, FIRST, "present", true);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let changed = changed_per_host(&stdout);
        assert_eq!(changed.get(&leader), Some(&4), "{changed:?}");
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

    c.run(
        "the_pg_hba_rule_reaches_every_member_without_a_restart",
        || {
            let rule =
                format!("hostssl db1 bob {subnet} scram-sha-256 # pgdeploy: postgresql_pg_hba");
            let list = dcs_hba(lab);
            let at = list.iter().position(|l| *l == rule);
            let catch_all = list.iter().position(|l| l.starts_with("hostssl all all "));
            assert!(
                at.is_some() && at < catch_all,
                "before the catch-alls: {list:#?}"
            );
            let wanted = format!(
                "hostssl db1 bob {} scram-sha-256|t",
                netmask("255.255.255.0")
            );
            for h in ["pg1", "pg2", "pg3"] {
                let mut seen = String::new();
                let ok = cluster::eventually(std::time::Duration::from_secs(40), || {
                    seen = bob_rules(lab, h);
                    seen == wanted
                });
                assert!(ok, "on {h}: `{seen}`, wanted `{wanted}`");
            }
            assert_eq!(start_times(lab), started, "no member restarted");
        },
    );

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
        assert_eq!(stdout.matches(&note).count(), 4 * replicas.len(), "{stdout}");
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

    c.run("the_site_apply_keeps_the_pg_hba_rule", || {
        let rule = format!("hostssl db1 bob {subnet} scram-sha-256 # pgdeploy: postgresql_pg_hba");
        let (code, stdout, stderr) =
            cluster::pgdeploy("plan", &[], inventory, &cluster::playbook("site.yml"));
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            !stdout.contains("pg_hba"),
            "site.yml plans a pg_hba change:\n{stdout}"
        );
        let (code, stdout, stderr) = cluster::pgdeploy(
            "apply",
            &["--json"],
            inventory,
            &cluster::playbook("site.yml"),
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
        assert!(dcs_hba(lab).contains(&rule), "{:#?}", dcs_hba(lab));
    });

    c.run("a_reject_rule_is_a_clear_diff_and_refuses_bob_at_once", || {
        let reject = ("reject", "present");
        let (code, stdout, stderr) =
            objects_hba("plan", inventory, SECOND, "absent", reject, false);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert!(
            stdout.contains(&format!(
                "pg_hba rule `hostssl db1 bob {subnet} scram-sha-256` becomes `hostssl db1 bob {subnet} reject`"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("-hostssl db1 bob {subnet} scram-sha-256 # pgdeploy"))
                && stdout.contains(&format!("+hostssl db1 bob {subnet} reject # pgdeploy")),
            "{stdout}"
        );
        let (code, stdout, stderr) =
            objects_hba("apply", inventory, SECOND, "absent", reject, true);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 1, "{stdout}");
        // `apply` returned once the leader (behind the VIP) loaded the rule: no wait here
        let out = as_bob(lab, SECOND, "SELECT 1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("pg_hba.conf rejects connection"),
            "{err}"
        );
        let (code, stdout, stderr) = objects_hba("apply", inventory, SECOND, "absent", HBA, true);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 1, "{stdout}");
        let out = as_bob(lab, SECOND, "SELECT current_user");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(start_times(lab), started, "no member restarted");
    });

    c.run("objects_are_dropped_at_the_end", || {
        let (code, stdout, stderr) = objects_hba(
            "apply",
            inventory,
            SECOND,
            "absent",
            ("scram-sha-256", "absent"),
            true,
        );
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        assert_eq!(cluster::changed(&stdout), 1, "{stdout}");
        let list = dcs_hba(lab);
        assert!(!list.iter().any(|l| l.contains("# pgdeploy")), "{list:#?}");
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
