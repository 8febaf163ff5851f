//! Test support for lab tests that deploy a Patroni cluster with the shipped playbooks: running
//! `pgdeploy` on the lab inventory, reading the cluster (`patronictl` where the `patroni`
//! module put it), SQL over TLS from a lab host, and waiting for a condition.
//!
//! Include it with `#[path = "support/cluster.rs"] mod cluster;` next to `support/lab.rs`
//! (as `lab_support`).
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab_support::LabFixture;

/// A shipped playbook, by file name
pub(crate) fn playbook(name: &str) -> String {
    format!("{}/playbooks/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `pgdeploy MODE ARGS -i INVENTORY PLAYBOOK`: exit code, stdout, stderr
pub(crate) fn pgdeploy(
    mode: &str,
    args: &[&str],
    inventory: &Path,
    playbook: &str,
) -> (i32, String, String) {
    let mut all = vec![mode];
    all.extend_from_slice(args);
    command(&all, inventory, Some(playbook))
}

/// `pgdeploy MODE -e VARS [--json] -i INVENTORY PLAYBOOK` where `VARS` carry `password`,
/// timed (printed as `label`); fails when the password shows in stdout or stderr
pub(crate) fn pgdeploy_secret(
    mode: &str,
    vars: &Value,
    json: bool,
    inventory: &Path,
    playbook: &str,
    password: &str,
    label: &str,
) -> (i32, String, String) {
    let vars = vars.to_string();
    let mut args = vec!["-e", vars.as_str()];
    if json {
        args.push("--json");
    }
    let started = Instant::now();
    let out = pgdeploy(mode, &args, inventory, playbook);
    eprintln!("  {label} {mode}: {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        !out.1.contains(password) && !out.2.contains(password),
        "the password is printed:\n{}\n{}",
        out.1,
        out.2
    );
    out
}

/// The findings of a `verify --json` document whose `key` is `value` (e.g. `outcome`
/// `fail`, `check` `postgres_exporter`)
pub(crate) fn findings<'a>(doc: &'a Value, key: &str, value: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no `findings` array in {doc}"))
        .iter()
        .filter(|f| f[key] == value)
        .collect()
}

/// `pgdeploy ARGS -i INVENTORY [PLAYBOOK]` (stdin closed): exit code, stdout, stderr; without
/// a playbook for `status` and the day-2 commands
pub(crate) fn command(
    args: &[&str],
    inventory: &Path,
    playbook: Option<&str>,
) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args(args)
        .arg("-i")
        .arg(inventory)
        .args(playbook)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("pgdeploy runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Changed plus failed steps of a `--json` run
pub(crate) fn changed(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "recap")
        .flat_map(|e| e["hosts"].as_array().cloned().unwrap_or_default())
        .map(|h| h["changed"].as_u64().unwrap_or(0) + h["failed"].as_u64().unwrap_or(0))
        .sum()
}

/// A variable of the lab inventory's `all:vars`
pub(crate) fn inventory_var(lab: &LabFixture, name: &str) -> String {
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let inv: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    match &inv["all"]["vars"][name] {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        other => panic!("inventory variable `{name}` is {other:?}"),
    }
}

/// `patronictl list` on `host` as JSON rows, with the `patronictl` and configuration the
/// `patroni` module recorded in its locator file
pub(crate) fn members_on(lab: &LabFixture, host: &str) -> Vec<Value> {
    let text = lab.ssh_ok(
        lab.ip(host),
        ". /var/lib/pgdeploy/patroni.env && \"$PATRONICTL\" -c \"$PATRONI_CONFIG\" list -f json",
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// True when `rows` show one leader and every other member streaming on timeline `tl`
pub(crate) fn settled(rows: &[Value], tl: u64) -> bool {
    rows.iter().filter(|r| r["Role"] == "Leader").count() == 1
        && rows
            .iter()
            .all(|r| r["TL"] == tl && (r["Role"] == "Leader" || r["State"] == "streaming"))
}

/// Runs SQL as `postgres` over TLS from host `from` to `host:port`
pub(crate) fn sql(
    lab: &LabFixture,
    from: &str,
    host: &str,
    port: u16,
    query: &str,
) -> std::process::Output {
    let password = inventory_var(lab, "pg_superuser_password");
    sql_as(
        lab,
        from,
        &format!("host={host} port={port} user=postgres"),
        &password,
        query,
    )
}

/// Runs SQL from host `from` over TLS with `conninfo` (`host=… port=… user=…`, more keys
/// allowed: `dbname=…` overrides `postgres`) and `password`, whatever characters it holds
pub(crate) fn sql_as(
    lab: &LabFixture,
    from: &str,
    conninfo: &str,
    password: &str,
    query: &str,
) -> std::process::Output {
    lab.ssh(
        lab.ip(from),
        &format!(
            "PGPASSWORD={} psql {} -XAtc {}",
            sh_quote(password),
            sh_quote(&format!(
                "dbname=postgres sslmode=require connect_timeout=5 {conninfo}"
            )),
            sh_quote(query)
        ),
    )
}

/// `s` as one single-quoted shell word
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub(crate) fn sql_ok(lab: &LabFixture, from: &str, host: &str, port: u16, query: &str) -> String {
    let out = sql(lab, from, host, port, query);
    assert!(
        out.status.success(),
        "psql to {host}:{port}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Which of `hosts` holds `vip`
pub(crate) fn holder_of<'a>(lab: &LabFixture, vip: &str, hosts: &[&'a str]) -> Option<&'a str> {
    hosts.iter().copied().find(|h| {
        lab.ssh(lab.ip(h), &format!("ip -4 -o addr | grep -qw {vip}"))
            .status
            .success()
    })
}

/// Polls `f` until it returns true or `timeout` passes
pub(crate) fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

/// What apt and dpkg have done on a host so far: the lines of dpkg's and apt's logs and the
/// time of the last package index refresh. Equal before and after a run: it ran no
/// `apt-get install`/`remove` and no `apt-get update`
pub(crate) fn apt_activity(lab: &LabFixture, host: &str) -> String {
    lab.ssh_ok(
        lab.ip(host),
        "cat /var/log/dpkg.log /var/log/apt/history.log 2>/dev/null | wc -l; \
         stat -c %Y /var/cache/apt/pkgcache.bin /var/lib/apt/lists/partial 2>/dev/null",
    )
}

/// Asserts that none of the stack is on `host`: a freshly provisioned server
pub(crate) fn assert_bare(lab: &LabFixture, host: &str) {
    lab.ssh_ok(
        lab.ip(host),
        "test ! -e /usr/lib/postgresql && ! command -v etcd && ! command -v patroni \
         && ! command -v haproxy && ! command -v keepalived && test ! -e /opt/patroni",
    );
}

/// The names of etcd's members, from `etcdctl member list` run on `host` with its own client
/// certificate (in the order etcd lists them)
pub(crate) fn etcd_members_on(lab: &LabFixture, host: &str) -> Vec<String> {
    let text = lab.ssh_ok(
        lab.ip(host),
        &format!(
            "ETCDCTL_API=3 etcdctl --endpoints=https://{}:2379 --cacert=/etc/etcd/pki/ca.crt \
             --cert=/etc/etcd/pki/{host}.crt --key=/etc/etcd/pki/{host}.key member list",
            lab.ip(host)
        ),
    );
    text.lines()
        .filter_map(|l| l.split(", ").nth(2).map(str::to_string))
        .collect()
}

/// Whether every etcd member answers `endpoint health`, asked on `host`
pub(crate) fn etcd_healthy_on(lab: &LabFixture, host: &str) -> bool {
    lab.ssh(
        lab.ip(host),
        &format!(
            "ETCDCTL_API=3 etcdctl --endpoints=https://{}:2379 --cacert=/etc/etcd/pki/ca.crt \
             --cert=/etc/etcd/pki/{host}.crt --key=/etc/etcd/pki/{host}.key endpoint health --cluster",
            lab.ip(host)
        ),
    )
    .status
    .success()
}

/// The lab inventory's text with `hosts` taken out of the `postgres` group (and of seed 000's
/// `primary`/`replica` groups) but kept in the inventory (as hosts of `all` without a group,
/// with their address): reachable, no longer members
pub(crate) fn without_postgres_members(lab: &LabFixture, hosts: &[&str]) -> String {
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let mut kept = Vec::new();
    let mut moved = Vec::new();
    for line in text.lines() {
        let name = line.trim_start().split(':').next().unwrap_or("");
        if line.starts_with("        ") && hosts.contains(&name) {
            // the entry with the address is kept; the other groups only name the host
            if line.contains("ansible_host") {
                moved.push(format!("    {}", line.trim_start()));
            }
        } else {
            kept.push(line.to_string());
        }
    }
    assert_eq!(
        moved.len(),
        hosts.len(),
        "the lab inventory lists {hosts:?}: {text}"
    );
    let mut out = String::new();
    for line in kept {
        out.push_str(&line);
        out.push('\n');
        if line == "all:" {
            out.push_str("  hosts:\n");
            for m in &moved {
                out.push_str(m);
                out.push('\n');
            }
        }
    }
    out
}

/// Changed steps per host of a `--json` run's recap
/// The steps an `apply --json` changed or failed, as `host: task (status)`: what a
/// no-op assertion prints when the run was not one.
pub(crate) fn changed_steps(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["event"] == "step_finished" && (e["status"] == "changed" || e["status"] == "failed")
        })
        .map(|e| {
            format!(
                "{}: {} ({})",
                e["host"].as_str().unwrap_or_default(),
                e["task"].as_str().unwrap_or_default(),
                e["status"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

pub(crate) fn changed_per_host(stdout: &str) -> std::collections::BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "recap")
        .flat_map(|e| e["hosts"].as_array().cloned().unwrap_or_default())
        .map(|h| {
            (
                h["host"].as_str().unwrap_or_default().to_string(),
                h["changed"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}
