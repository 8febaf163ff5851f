//! The fault suite's faults other than the drills (issue 16, item 4), on the shared day-2
//! cluster: one etcd member down, `pgdeploy` killed with SIGKILL in the middle of an `apply`
//! of `site.yml`, and one host's SSH session cut in the middle of one. Each ends with
//! `verify` exit 0 and a re-apply that changes nothing, so the checks after these find the
//! cluster as it was.
//!
//! The applies have work because the checks remove managed files first (Patroni's
//! configuration on the members, HAProxy's and keepalived's on the balancers): the running
//! daemons keep going, the apply writes the files again and reloads. Faults are caused when
//! the apply's `--json` events show it at work, never after a fixed sleep.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::checks::Checks;
use super::cluster::{self, eventually, members_on};
use super::lab_support::LabFixture;
use super::{streaming, NODES};
use serde_json::Value;

const BALANCERS: [&str; 2] = ["lb1", "lb2"];

/// Managed files removed to give an apply work, per kind of host.
const MEMBER_FILES: [&str; 1] = ["/etc/patroni/config.yml"];
const BALANCER_FILES: [&str; 2] = [
    "/etc/haproxy/haproxy.cfg",
    "/etc/keepalived/keepalived.conf",
];

/// Every managed configuration file of a host, each checked with its own validator when it
/// is there: `MISSING` (the apply had not written it again yet), or whether it validated.
fn config_check_script(member: bool) -> &'static str {
    if member {
        "check() { if [ ! -e \"$1\" ]; then echo \"$1 MISSING\"; elif sh -c \"$2\" >/dev/null 2>&1; \
         then echo \"$1 valid\"; else echo \"$1 INVALID\"; fi; }; \
         check /etc/patroni/config.yml '/opt/patroni/bin/patroni --validate-config --ignore-listen-port /etc/patroni/config.yml'; \
         check /etc/default/etcd 'set -a; . /etc/default/etcd; [ -n \"$ETCD_NAME\" ] && [ -n \"$ETCD_INITIAL_CLUSTER\" ]'; \
         check /var/lib/pgdeploy/patroni.env '. /var/lib/pgdeploy/patroni.env; [ -x \"$PATRONICTL\" ]'; \
         check /var/lib/pgdeploy/etcd.env '. /var/lib/pgdeploy/etcd.env; [ -x \"$ETCDCTL\" ]'"
    } else {
        "check() { if [ ! -e \"$1\" ]; then echo \"$1 MISSING\"; elif sh -c \"$2\" >/dev/null 2>&1; \
         then echo \"$1 valid\"; else echo \"$1 INVALID\"; fi; }; \
         check /etc/haproxy/haproxy.cfg 'haproxy -c -q -f /etc/haproxy/haproxy.cfg'; \
         check /etc/keepalived/keepalived.conf 'keepalived -t -f /etc/keepalived/keepalived.conf'; \
         check /var/lib/pgdeploy/keepalived.env '. /var/lib/pgdeploy/keepalived.env; [ -n \"$VIP\" ]'"
    }
}

/// Each host's managed files: none torn (every file there validates); `complete` asks that
/// none is missing either.
fn assert_configs(lab: &LabFixture, hosts: &[&str], complete: bool) {
    for h in hosts {
        let member = h.starts_with("pg");
        let out = lab.ssh_ok(lab.ip(h), config_check_script(member));
        assert!(
            !out.contains("INVALID"),
            "{h}: a torn or invalid file:\n{out}"
        );
        if complete {
            assert!(!out.contains("MISSING"), "{h}: not written again:\n{out}");
        }
        eprintln!("  {h}: {}", out.replace('\n', ", "));
    }
}

/// Temporary files of atomic writes (`write_file`'s `.pgdeploy.*`, validated content's
/// `.NAME.pgdeploy-*`) left anywhere a run writes
fn assert_no_temporaries(lab: &LabFixture) {
    for h in NODES.iter().chain(BALANCERS.iter()) {
        let found = lab.ssh_ok(
            lab.ip(h),
            "find /etc /var/lib/pgdeploy /usr/local /opt /tmp -xdev \
             \\( -name '.pgdeploy.*' -o -name '.*.pgdeploy-*' \\) -print 2>/dev/null; true",
        );
        assert!(found.is_empty(), "{h}: left behind:\n{found}");
    }
}

/// Removes the managed files that give an apply work on every host.
fn remove_configs(lab: &LabFixture) {
    for h in NODES {
        lab.ssh_ok(lab.ip(h), &format!("rm -f -- {}", MEMBER_FILES.join(" ")));
    }
    for h in BALANCERS {
        lab.ssh_ok(lab.ip(h), &format!("rm -f -- {}", BALANCER_FILES.join(" ")));
    }
}

/// `pgdeploy apply --json -i INVENTORY site.yml` started, stdout piped
fn start_apply(inventory: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args(["apply", "--json", "-i"])
        .arg(inventory)
        .arg(cluster::playbook("site.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pgdeploy runs")
}

/// Reads `child`'s events until `until` holds for one (then calls `act`), then the rest
/// until its end: every event, and whether `act` ran.
fn events_of(
    child: &mut Child,
    mut until: impl FnMut(&Value) -> bool,
    act: impl FnOnce(&mut Child),
) -> (Vec<Value>, bool) {
    let stdout = child.stdout.take().unwrap();
    let mut events = Vec::new();
    let mut act = Some(act);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let hit = act.is_some() && until(&event);
        events.push(event);
        if hit {
            (act.take().unwrap())(child);
        }
    }
    (events, act.is_none())
}

/// The apply converges on the cluster (exit 0), then a second changes nothing.
fn converges(inventory: &Path, what: &str) {
    let started = Instant::now();
    let (code, stdout, stderr) = cluster::pgdeploy(
        "apply",
        &["--json"],
        inventory,
        &cluster::playbook("site.yml"),
    );
    eprintln!(
        "  {what}: re-run {:.1} s, {} changed",
        started.elapsed().as_secs_f64(),
        cluster::changed(&stdout)
    );
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    no_op_apply(inventory);
}

fn no_op_apply(inventory: &Path) {
    let started = Instant::now();
    let (code, stdout, stderr) = cluster::pgdeploy(
        "apply",
        &["--json"],
        inventory,
        &cluster::playbook("site.yml"),
    );
    eprintln!("  no-op re-apply: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(code, 0, "{stderr}\n{stdout}");
    assert_eq!(
        cluster::changed(&stdout),
        0,
        "{:?}: {:#?}",
        cluster::changed_per_host(&stdout),
        cluster::changed_steps(&stdout)
    );
}

/// `verify` exits 0 within 60 s (the balancers' checks may still have to see a member up)
fn verify_passes(inventory: &Path) {
    let started = Instant::now();
    let mut last = (0, String::new(), String::new());
    let ok = eventually(Duration::from_secs(60), || {
        last = cluster::command(&["verify"], inventory, None);
        last.0 == 0
    });
    eprintln!(
        "  verify exit {} after {:.1} s",
        last.0,
        started.elapsed().as_secs_f64()
    );
    assert!(ok, "{}{}", last.1, last.2);
}

/// One Patroni member and one etcd member per name, every member streaming
fn no_duplicate_member(lab: &LabFixture) {
    let rows = members_on(lab, "pg1");
    let mut names: Vec<&str> = rows.iter().filter_map(|r| r["Member"].as_str()).collect();
    names.sort();
    assert_eq!(names, NODES, "{rows:?}");
    let mut etcd = cluster::etcd_members_on(lab, "pg1");
    etcd.sort();
    assert_eq!(etcd, NODES, "etcd members");
}

fn leader(lab: &LabFixture) -> String {
    members_on(lab, "pg1")
        .iter()
        .find(|r| r["Role"] == "Leader")
        .and_then(|r| r["Member"].as_str().map(str::to_string))
        .expect("a leader")
}

/// `pgdeploy lab exec` on the lab's host: not through its sshd, which the fault may kill
fn lab_exec(lab: &LabFixture, host: &str, command: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args(["lab", "exec", "--name", lab.name(), host, "--"])
        .args(command)
        .output()
        .expect("pgdeploy lab exec runs")
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    let vip = lab.info.vip.to_string();

    c.run(
        "fault_one_etcd_member_down_the_cluster_keeps_working",
        || {
            let leader = leader(lab);
            // a host that is not the leader's: its Patroni loses its local etcd, not the cluster
            let down = NODES.iter().copied().rfind(|n| *n != leader).unwrap();
            lab.ssh_ok(lab.ip(down), "systemctl stop etcd");
            let started = Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // writes through the VIP
                for i in 0..3 {
                    let out = cluster::sql(
                        lab,
                        "pg1",
                        &vip,
                        5432,
                        &format!(
                            "CREATE TABLE IF NOT EXISTS fault_etcd (v int); \
                         INSERT INTO fault_etcd VALUES ({i}); SELECT count(*) FROM fault_etcd"
                        ),
                    );
                    assert!(
                        out.status.success(),
                        "a write through the VIP with etcd down on `{down}`: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                let address = lab.ip(down).to_string();
                let (code, stdout, stderr) = cluster::command(&["status"], inventory, None);
                assert_eq!(code, 2, "status degraded: {stdout}{stderr}");
                assert!(
                    stdout
                        .lines()
                        .any(|l| l.contains(&format!("https://{address}:2379"))
                            && l.contains("UNHEALTHY")),
                    "status names the endpoint down:\n{stdout}"
                );
                assert!(
                    stdout.matches(" healthy").count() >= 2,
                    "and the others healthy:\n{stdout}"
                );
                let (code, stdout, stderr) =
                    cluster::command(&["verify", "--json"], inventory, None);
                assert_eq!(code, 2, "{stdout}{stderr}");
                let doc: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
                let failed = cluster::findings(&doc, "outcome", "fail");
                assert!(
                    failed.len() == 1
                        && failed[0]["check"] == "etcd"
                        && failed[0]["message"]
                            .as_str()
                            .unwrap()
                            .contains(&format!("member `{down}`")),
                    "only the etcd member down fails, named: {failed:?}"
                );
                let quorum = doc["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["check"] == "etcd" && f["subject"] == "quorum")
                    .cloned();
                assert_eq!(
                    quorum.as_ref().map(|f| (&f["outcome"], &f["message"])),
                    Some((
                        &Value::from("pass"),
                        &Value::from("2 of 3 members healthy: quorum")
                    )),
                    "{quorum:?}"
                );
                eprintln!(
                    "  etcd down on `{down}`: writes, status and verify read in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }));
            lab.ssh_ok(lab.ip(down), "systemctl start etcd");
            if let Err(e) = result {
                std::panic::resume_unwind(e);
            }
            assert!(
                eventually(Duration::from_secs(60), || cluster::etcd_healthy_on(
                    lab, "pg1"
                )),
                "etcd healthy again"
            );
            verify_passes(inventory);
            no_op_apply(inventory);
        },
    );

    c.run(
        "fault_apply_killed_with_sigkill_then_rerun_converges",
        || {
            let etcd_config = |h: &str| lab.ssh_ok(lab.ip(h), "sha256sum /etc/default/etcd");
            let before: Vec<String> = NODES.iter().map(|h| etcd_config(h)).collect();
            remove_configs(lab);
            let started = Instant::now();
            let mut child = start_apply(inventory);
            // killed as soon as a step has changed something: other hosts are mid-way
            let mut at = None;
            let (events, killed) = events_of(
                &mut child,
                |e| e["event"] == "step_finished" && e["status"] == "changed",
                |child| {
                    child.kill().expect("SIGKILL");
                    at = Some(started.elapsed());
                },
            );
            let status = child.wait().unwrap();
            assert!(killed, "no step changed anything: {events:?}");
            assert!(
                !events.iter().any(|e| e["event"] == "recap"),
                "the run ended before the kill: {events:?}"
            );
            let changed: Vec<String> = events
                .iter()
                .filter(|e| e["status"] == "changed")
                .map(|e| format!("{} {}", e["host"], e["task"]))
                .collect();
            eprintln!(
                "  SIGKILL at {:.1} s ({status}), after {} events; changed before it: {changed:?}",
                at.unwrap().as_secs_f64(),
                events.len()
            );
            assert_configs(lab, &NODES, false);
            assert_configs(lab, &BALANCERS, false);
            assert_no_temporaries(lab);
            let after: Vec<String> = NODES.iter().map(|h| etcd_config(h)).collect();
            assert_eq!(before, after, "etcd's configuration untouched");
            // No lock of an earlier run stands in the way: `apply` takes none (see README).
            converges(inventory, "after SIGKILL");
            assert_configs(lab, &NODES, true);
            assert_configs(lab, &BALANCERS, true);
            assert_no_temporaries(lab);
            no_duplicate_member(lab);
            assert!(
                eventually(Duration::from_secs(60), || streaming(&members_on(
                    lab, "pg1"
                ))),
                "{:?}",
                members_on(lab, "pg1")
            );
            verify_passes(inventory);
        },
    );

    c.run("fault_ssh_session_of_one_host_cut_mid_apply", || {
        remove_configs(lab);
        let cut = "pg2";
        let started = Instant::now();
        let mut child = start_apply(inventory);
        let mut at = None;
        // cut when the host starts the step that writes its Patroni configuration
        let (events, cut_done) = events_of(
            &mut child,
            |e| e["event"] == "step_started" && e["host"] == cut && e["module"] == "patroni",
            |_| {
                let out = lab_exec(lab, cut, &["pkill", "-KILL", "-f", "sshd: root"]);
                at = Some(started.elapsed());
                assert!(out.status.success(), "pkill: {out:?}");
            },
        );
        let status = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&status.stderr).into_owned();
        let took = started.elapsed();
        assert!(
            cut_done,
            "never reached the patroni step on `{cut}`: {events:?}"
        );
        eprintln!(
            "  {cut}'s sshd session killed at {:.1} s; apply ended at {:.1} s with {:?}",
            at.unwrap().as_secs_f64(),
            took.as_secs_f64(),
            status.status.code()
        );
        // exit 4: a host unreachable (README's exit codes), the host named
        assert_eq!(status.status.code(), Some(4), "{stderr}\n{events:?}");
        let named: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["host"] == cut
                    && (e["event"] == "host_unreachable" || e["status"] == "unreachable")
            })
            .collect();
        assert!(
            named.iter().any(|e| e["error"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("host `{cut}` is unreachable")))),
            "{events:?}"
        );
        eprintln!("  {}", named[0]["error"]);
        let recap = events
            .iter()
            .find(|e| e["event"] == "recap")
            .expect("a recap");
        for h in recap["hosts"].as_array().unwrap() {
            let name = h["host"].as_str().unwrap();
            assert_eq!(h["unreachable"], name == cut, "{recap}");
            assert_eq!(h["failed"], 0, "{recap}");
        }
        // the other hosts finished their work: their files are back and valid
        let others: Vec<&str> = NODES
            .iter()
            .chain(BALANCERS.iter())
            .copied()
            .filter(|h| *h != cut)
            .collect();
        assert_configs(lab, &others, true);
        assert_configs(lab, &[cut], false);
        assert_no_temporaries(lab);
        converges(inventory, "after the cut");
        assert_configs(lab, &[cut], true);
        no_duplicate_member(lab);
        verify_passes(inventory);
    });
}
