//! Issue 19 on the pglift cluster: `tests/fixtures/lab/pglift-objects.yml` (`dalibo.pglift.role`
//! and `dalibo.pglift.database` tasks as the collection documents them) on every member; only
//! the primary changes anything, through `pglift role/database apply`, the replicas get the
//! objects by replication. `bob` (a password with a quote and a backslash) connects through
//! the leader's address; a second apply changes nothing; then a new password (a masked diff in
//! `plan`) and the extension removed (a clear diff), in one run, converge: the old password is
//! refused, the new one works, the extension is gone on every member, a re-apply changes
//! nothing. Five runs of the playbook in all.

use std::path::Path;
use std::time::{Duration, Instant};

use super::cluster::{self, changed_per_host, eventually, sql_as};
use super::lab_support::LabFixture;

const FIRST: &str = "o'ld\\pass \"word";
const SECOND: &str = "n\\ew'one";
const NODES: [&str; 3] = ["pg1", "pg2", "pg3"];

fn playbook() -> String {
    format!(
        "{}/tests/fixtures/lab/pglift-objects.yml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `pgdeploy MODE -e {bob_password, db1_extension_state}`, timed; the password never printed.
fn objects(mode: &str, inventory: &Path, password: &str, ext: &str) -> (i32, String, String) {
    let vars = serde_json::json!({"bob_password": password, "db1_extension_state": ext});
    let label = format!("pglift objects (extension {ext})");
    let json = mode == "apply";
    cluster::pgdeploy_secret(mode, &vars, json, inventory, &playbook(), password, &label)
}

/// A query as `postgres` on `host`'s local instance, in `db1`.
fn local(lab: &LabFixture, host: &str, query: &str) -> String {
    lab.ssh_ok(
        lab.ip(host),
        &format!(
            "cd / && runuser -u postgres -- psql -XAt -d db1 -c {}",
            cluster::sh_quote(query)
        ),
    )
}

/// `bob` runs `query` in `db1` from pg2 through the leader's address (pg1 leads here).
fn as_bob(lab: &LabFixture, password: &str, query: &str) -> std::process::Output {
    let leader = lab.ip("pg1");
    sql_as(
        lab,
        "pg2",
        &format!("host={leader} port=5432 user=bob dbname=db1 sslmode=disable"),
        password,
        query,
    )
}

const OBJECTS: &str = "SELECT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'bob'), \
     (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'db1'), \
     (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements')";

pub(crate) fn run(lab: &LabFixture, inventory: &Path) {
    let started = Instant::now();
    let (code, stdout, stderr) = objects("apply", inventory, FIRST, "present");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let per_host = changed_per_host(&stdout);
    assert_eq!(
        per_host.get("pg1"),
        Some(&2),
        "the primary makes both: {per_host:?}"
    );
    assert_eq!(per_host.get("pg2"), Some(&0), "{per_host:?}");
    assert_eq!(per_host.get("pg3"), Some(&0), "{per_host:?}");
    // replicated, not created there
    for h in NODES {
        let mut got = String::new();
        eventually(Duration::from_secs(30), || {
            got = local(lab, h, OBJECTS);
            got == "t|bob|1"
        });
        assert_eq!(got, "t|bob|1", "on {h}");
    }
    assert_eq!(local(lab, "pg2", "SELECT pg_is_in_recovery()"), "t");
    let out = as_bob(lab, FIRST, "SELECT current_user, current_database()");
    assert!(
        out.status.success(),
        "bob connects: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "bob|db1");

    let (code, stdout, stderr) = objects("apply", inventory, FIRST, "present");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(cluster::changed(&stdout), 0, "second apply: {stdout}");

    // a new password and the extension removed, in one run: a masked diff and a clear one,
    // then both converge
    let (code, stdout, _) = objects("plan", inventory, SECOND, "absent");
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("alter role `bob`: password"), "{stdout}");
    assert!(stdout.contains("+password: ******** (changed)"), "{stdout}");
    assert!(
        stdout.contains("alter database `db1`: drop extension `pg_stat_statements`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-extension pg_stat_statements: schema public"),
        "{stdout}"
    );
    let (code, stdout, stderr) = objects("apply", inventory, SECOND, "absent");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(changed_per_host(&stdout).get("pg1"), Some(&2), "{stdout}");
    assert!(
        !as_bob(lab, FIRST, "SELECT 1").status.success(),
        "old password refused"
    );
    let new = as_bob(lab, SECOND, "SELECT current_user");
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    for h in NODES {
        let mut got = String::new();
        eventually(Duration::from_secs(30), || {
            got = local(lab, h, OBJECTS);
            got == "t|bob|0"
        });
        assert_eq!(got, "t|bob|0", "on {h}");
    }
    let (code, stdout, stderr) = objects("apply", inventory, SECOND, "absent");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(cluster::changed(&stdout), 0, "converged: {stdout}");
    eprintln!(
        "  pglift roles and databases, all steps: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
