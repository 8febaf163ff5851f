//! Issue 19 on the pglift cluster: Prometheus postgres_exporters through
//! `dalibo.pglift.postgres_exporter` (`tests/fixtures/lab/pglift-exporters.yml`). `pglift.yml`
//! with `pglift_postgres_exporter: true` installs the package and gives pglift's site its
//! `prometheus` setting; then pg1, the monitoring host, runs one exporter per member, each
//! connecting over TCP as `prometheus` (made on the primary by `dalibo.pglift.role`). Each
//! answers `/metrics` with `pg_up 1` when `apply` returns; a second apply changes nothing; a
//! new password (a quote and a backslash: pglift writes it percent-encoded in the exporter's
//! URI) is a masked diff in `plan`, then converges with `pg_up 1` again; `state: absent`
//! removes them and `pglift.yml` without the variable puts the site back as it was.

use std::path::Path;
use std::time::Instant;

use super::cluster;
use super::lab_support::LabFixture;

const FIRST: &str = "ex'port\\er1";
const SECOND: &str = "ex\\port'er2";
const PORTS: [(&str, u16); 3] = [("pg1", 9188), ("pg2", 9189), ("pg3", 9190)];

fn playbook() -> String {
    format!(
        "{}/tests/fixtures/lab/pglift-exporters.yml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `pgdeploy MODE -e {exporter_password, exporter_state}`, timed; the password never printed
/// (as given or percent-encoded).
fn exporters(mode: &str, inventory: &Path, password: &str, state: &str) -> (i32, String, String) {
    let vars = serde_json::json!({"exporter_password": password, "exporter_state": state});
    let label = format!("pglift exporters ({state})");
    let out = cluster::pgdeploy_secret(
        mode,
        &vars,
        mode == "apply",
        inventory,
        &playbook(),
        password,
        &label,
    );
    for encoded in ["%27", "%5C"] {
        assert!(
            !out.1.contains(encoded) && !out.2.contains(encoded),
            "the encoded password is printed:\n{}\n{}",
            out.1,
            out.2
        );
    }
    out
}

/// `pglift.yml` applied with `pglift_postgres_exporter` set to `on`.
fn site(inventory: &Path, on: bool) -> (i32, String, String) {
    let vars = serde_json::json!({"pglift_postgres_exporter": on}).to_string();
    let started = Instant::now();
    let out = cluster::pgdeploy(
        "apply",
        &["--json", "-e", &vars],
        inventory,
        &cluster::playbook("pglift.yml"),
    );
    eprintln!(
        "  pglift.yml with pglift_postgres_exporter={on}: {:.1} s, {} changed",
        started.elapsed().as_secs_f64(),
        cluster::changed(&out.1)
    );
    out
}

/// `pg_up` of each exporter, read on pg1 (`none`: nothing answers).
fn pg_up(lab: &LabFixture) -> Vec<String> {
    PORTS
        .iter()
        .map(|(_, port)| {
            let out = lab.ssh_ok(
                lab.ip("pg1"),
                &format!(
                    "curl -sS --max-time 5 http://127.0.0.1:{port}/metrics 2>/dev/null | sed -n 's/^pg_up //p' | head -1; true"
                ),
            );
            match out.trim() {
                "" => "none".to_string(),
                v => v.to_string(),
            }
        })
        .collect()
}

pub(crate) fn run(lab: &LabFixture, inventory: &Path) {
    let started = Instant::now();
    let (code, stdout, stderr) = site(inventory, true);
    assert_eq!(code, 0, "{stderr}\n{stdout}");

    let (code, stdout, stderr) = exporters("apply", inventory, FIRST, "started");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    let per_host = cluster::changed_per_host(&stdout);
    assert_eq!(
        per_host.get("pg1"),
        Some(&4),
        "the role and three exporters: {per_host:?}"
    );
    assert_eq!(pg_up(lab), ["1", "1", "1"], "when apply returns");
    let modes = lab.ssh_ok(
        lab.ip("pg1"),
        "stat -c '%a %U' /pgdata/pglift/etc/prometheus/postgres_exporter-main@pg*.conf",
    );
    assert_eq!(
        modes.lines().collect::<Vec<_>>(),
        ["600 postgres"; 3],
        "{modes}"
    );

    let (code, stdout, stderr) = exporters("apply", inventory, FIRST, "started");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(cluster::changed(&stdout), 0, "second apply: {stdout}");

    let (code, stdout, _) = exporters("plan", inventory, SECOND, "started");
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("postgres_exporter `main@pg2`: reconfigure (restarted): password"),
        "{stdout}"
    );
    assert!(stdout.contains("+password: ******** (changed)"), "{stdout}");
    let (code, stdout, stderr) = exporters("apply", inventory, SECOND, "started");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(
        cluster::changed_per_host(&stdout).get("pg1"),
        Some(&4),
        "{stdout}"
    );
    assert_eq!(pg_up(lab), ["1", "1", "1"], "with the new password");
    let (code, stdout, stderr) = exporters("apply", inventory, SECOND, "started");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(cluster::changed(&stdout), 0, "converged: {stdout}");

    let (code, stdout, stderr) = exporters("apply", inventory, SECOND, "absent");
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(
        cluster::changed_per_host(&stdout).get("pg1"),
        Some(&3),
        "{stdout}"
    );
    assert_eq!(pg_up(lab), ["none", "none", "none"]);
    let left = lab.ssh_ok(
        lab.ip("pg1"),
        "ls /pgdata/pglift/etc/prometheus/ 2>/dev/null | wc -l",
    );
    assert_eq!(left.trim(), "0", "configuration files left");

    let (code, stdout, stderr) = site(inventory, false);
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    lab.ssh_ok(
        lab.ip("pg1"),
        "cd / && runuser -u postgres -- psql -XAtq -d postgres -c 'DROP ROLE IF EXISTS prometheus'",
    );
    eprintln!(
        "  pglift exporters, all steps: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
