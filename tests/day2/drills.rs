//! `pgdeploy verify --drill` (issue 16, item 2) on the shared day-2 cluster, last of its
//! checks: `site.yml` re-applied with `pg_failover_profile=fast` and synchronous mode (the
//! issue's conditions; an asynchronous replica may lack the last commits of a dead leader,
//! which is no bug of the drill), then the four drills with `--json`. Asserted: RPO 0, never
//! two writable primaries, the victim back, `verify` exit 0 after each. Timings are printed,
//! never asserted (a shared 2-core machine). Then a re-apply with the same variables changes
//! nothing. The cluster is left healthy with the fast profile and synchronous mode.

use std::path::Path;
use std::time::Instant;

use super::checks::Checks;
use super::cluster;
use super::lab_support::LabFixture;
use serde_json::Value;

const FAST: &str = r#"{"pg_failover_profile": "fast", "pg_synchronous_mode": true}"#;

fn apply(inventory: &Path, args: &[&str]) -> (i32, String, String) {
    let started = Instant::now();
    let mut all = vec!["-e", FAST];
    all.extend_from_slice(args);
    let out = cluster::pgdeploy("apply", &all, inventory, &cluster::playbook("site.yml"));
    eprintln!(
        "  apply -e {FAST} {}: {:.1} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    out
}

fn ca() -> String {
    format!("{}/playbooks/pki/ca.crt", env!("CARGO_MANIFEST_DIR"))
}

/// `verify --drill KIND --yes --json` (plus `extra`): exit code, the final `drill` document, and
/// all the output for messages.
fn drill(lab: &LabFixture, inventory: &Path, kind: &str, extra: &[&str]) -> (i32, Value, String) {
    let ca = ca();
    let mut args = vec![
        "verify", "--drill", kind, "--yes", "--json", "--ca", &ca, "--lab",
    ];
    args.push(lab.name());
    args.extend_from_slice(extra);
    let started = Instant::now();
    let (code, stdout, stderr) = cluster::command(&args, inventory, None);
    let doc = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "drill")
        .unwrap_or(Value::Null);
    eprintln!(
        "  drill {kind} {}: {:.1} s, exit {code}; event at {} s; RTO {} s (gap {} → {}), RPO {} of {} commits, \
         two primaries {} (most writable {}, {} rounds, unreached {}), `{}` back after {} s, \
         new leader {}, verify exit {}; {}",
        extra.join(" "),
        started.elapsed().as_secs_f64(),
        doc["event_at_s"],
        doc["rto_s"],
        doc["gap_from_s"],
        doc["gap_to_s"],
        doc["rpo_commits"],
        doc["commits"],
        doc["two_primaries"],
        doc["max_writable"],
        doc["watch_rounds"],
        doc["unobserved_rounds"],
        doc["victim"],
        doc["back_after_s"],
        doc["new_leader"],
        doc["verify_exit"],
        doc["how"],
    );
    (code, doc, format!("{stdout}\n{stderr}"))
}

fn assert_drill(code: i32, doc: &Value, out: &str) {
    assert!(doc.is_object(), "no drill document:\n{out}");
    assert_eq!(doc["rpo_commits"], 0, "acknowledged commits lost:\n{out}");
    assert_eq!(
        doc["two_primaries"], false,
        "two writable primaries:\n{out}"
    );
    assert!(doc["commits"].as_u64().unwrap_or(0) > 0, "{out}");
    assert_eq!(doc["writes_resumed"], true, "{out}");
    assert!(doc["back_after_s"].is_number(), "victim not back:\n{out}");
    assert_eq!(doc["verify_exit"], 0, "{out}");
    assert_eq!(code, 0, "{out}");
}

pub(crate) fn run(c: &mut Checks, lab: &LabFixture, inventory: &Path) {
    c.run("drill_fast_profile_converges", || {
        let (code, stdout, stderr) = apply(inventory, &[]);
        assert_eq!(code, 0, "{stderr}\n{stdout}");
        let (code, stdout, stderr) = apply(inventory, &["--json"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
        let config = lab.ssh_ok(
            lab.ip("pg1"),
            ". /var/lib/pgdeploy/patroni.env && \"$PATRONICTL\" -c \"$PATRONI_CONFIG\" show-config",
        );
        assert!(config.contains("ttl: 20"), "{config}");
        assert!(config.contains("synchronous_mode: true"), "{config}");
    });

    c.run("drill_is_refused_without_yes_or_outside_a_lab", || {
        let ca = ca();
        let (code, stdout, stderr) = cluster::command(
            &["verify", "--drill", "switchover", "--ca", &ca],
            inventory,
            None,
        );
        assert_eq!(code, 64, "{stdout}{stderr}");
        assert!(stderr.contains("add `--yes`"), "{stderr}");
        let (code, _, stderr) = cluster::command(
            &[
                "verify",
                "--drill",
                "leader-partition",
                "--yes",
                "--ca",
                &ca,
            ],
            inventory,
            None,
        );
        assert_eq!(code, 64, "{stderr}");
        assert!(stderr.contains("give `--lab NAME`"), "{stderr}");
    });

    for (kind, extra) in [
        ("switchover", &[][..]),
        ("failover", &["--power-cut"][..]),
        ("leader-partition", &[][..]),
        ("balancer-loss", &[][..]),
    ] {
        c.run(&format!("drill_{}", kind.replace('-', "_")), || {
            let (code, doc, out) = drill(lab, inventory, kind, extra);
            assert_drill(code, &doc, &out);
        });
    }

    c.run("drill_reapply_fast_changes_nothing", || {
        let (code, stdout, stderr) = apply(inventory, &["--json"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(cluster::changed(&stdout), 0, "{stdout}");
    });
}
