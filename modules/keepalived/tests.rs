use std::collections::HashMap;

use super::*;
use crate::common::fake::*;
use pgdeploy_core::template::Facts;

/// Seed 003: the VIP on the HAProxy hosts.
const SEED_003: &[(&str, &str, &[&str])] = &[
    ("haproxy-01", "192.168.0.200", &["balancers"]),
    ("haproxy-02", "192.168.0.201", &["balancers"]),
    ("postgres-01", "192.168.0.203", &["postgres"]),
    ("postgres-02", "192.168.0.204", &["postgres"]),
    ("postgres-03", "192.168.0.205", &["postgres"]),
];

/// Seed 004: keepalived on the three PostgreSQL hosts, the VIP on the Patroni primary.
const SEED_004: &[(&str, &str, &[&str])] = &[
    ("pg1", "10.0.2.3", &["postgres"]),
    ("pg2", "10.0.2.4", &["postgres"]),
    ("pg3", "10.0.2.5", &["postgres"]),
];

const PASS: &str = "rGNTny9l";

fn params(yaml: &str) -> Keepalived {
    serde_yaml_ng::from_str(&format!("{yaml}\nauth_pass: {PASS}\n")).unwrap()
}

fn seed_003() -> Keepalived {
    params("mode: haproxy\nvip: 192.168.0.210\nvirtual_router_id: 51\ngroup: balancers")
}

fn seed_004() -> Keepalived {
    params("mode: patroni\nvip: 10.0.2.12\nvirtual_router_id: 3\ngroup: postgres")
}

fn facts_of(hosts: &[(&str, &str, &[&str])]) -> HashMap<String, Facts> {
    hosts
        .iter()
        .map(|(n, ip, _)| (n.to_string(), host0_facts(ip)))
        .collect()
}

/// Resolves for `host` in a play over `play`.
fn resolve(
    k: &Keepalived,
    hosts: &[(&str, &str, &[&str])],
    host: &str,
    play: &[&str],
) -> Result<Resolved, ModuleError> {
    let facts = facts_of(hosts);
    let scope = cluster_scope(hosts, facts.clone(), host, play);
    let t = MemoryTransport::new(host);
    let cx = context(host, &t, &facts[host], &scope);
    k.resolve(&cx)
}

#[test]
fn seed_003_balancers_config_and_script() {
    let k = seed_003();
    let play = ["haproxy-01", "haproxy-02"];
    let r1 = resolve(&k, SEED_003, "haproxy-01", &play).unwrap();
    let r2 = resolve(&k, SEED_003, "haproxy-02", &play).unwrap();
    assert_eq!((r1.priority, r2.priority), (150, 140));
    assert_eq!(r2.peers, ["192.168.0.200".parse::<Ipv4Addr>().unwrap()]);
    insta::assert_snapshot!("seed_003_haproxy_01", k.render_config(&r1));
    insta::assert_snapshot!("seed_003_haproxy_02", k.render_config(&r2));
    insta::assert_snapshot!("seed_003_check_script", k.render_script(&r1));
}

#[test]
fn seed_004_patroni_config_and_scripts() {
    let mut k = seed_004();
    let play = ["pg1", "pg2", "pg3"];
    let r = resolve(&k, SEED_004, "pg2", &play).unwrap();
    assert_eq!(r.priority, 140);
    insta::assert_snapshot!("seed_004_pg2", k.render_config(&r));
    insta::assert_snapshot!("seed_004_check_script_http", k.render_script(&r));
    k.patroni_tls = Some(PatroniTls {
        ca_file: "/etc/patroni/certs/ca.pem".into(),
        cert_file: Some("/etc/patroni/certs/pg2.pem".into()),
        key_file: Some("/etc/patroni/certs/pg2.key".into()),
    });
    k.script_user = "postgres".into();
    insta::assert_snapshot!("seed_004_check_script_tls", k.render_script(&r));
}

#[test]
fn peers_come_from_the_group_whatever_the_play_and_priority_and_router_id_can_be_set() {
    let mut k = params("mode: patroni\nvip: 10.0.2.12/24\nvirtual_router_id: 3\ngroup: postgres");
    k.priority = Some(42);
    k.router_id = Some("PG1".into());
    // as with `--limit pg1`
    let r = resolve(&k, SEED_004, "pg1", &["pg1"]).unwrap();
    let peers: Vec<String> = r.peers.iter().map(|p| p.to_string()).collect();
    assert_eq!(peers, ["10.0.2.4", "10.0.2.5"]);
    assert_eq!((r.priority, r.router_id.as_str()), (42, "PG1"));
}

#[test]
fn vip_outside_the_interface_subnet_is_refused() {
    let mut k = seed_004();
    k.vip = "10.0.3.12".into();
    let e = resolve(&k, SEED_004, "pg1", &["pg1"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "`vip` `10.0.3.12` is not in the subnet of interface `host0` (`10.0.2.0/24`)"
    );
    k.vip = "10.0.2.4".into();
    let e = resolve(&k, SEED_004, "pg1", &["pg1"])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "`vip` `10.0.2.4` is the address of host `pg2`");
    k.vip = "10.0.2.12".into();
    let mut facts = facts_of(SEED_004);
    let pg1 = facts.get_mut("pg1").unwrap();
    pg1["ansible_host0"]["ipv4_secondaries"] =
        serde_json::json!([{"address": "10.0.2.12", "prefix": "24"}]);
    let scope = cluster_scope(SEED_004, facts.clone(), "pg1", &["pg1", "pg2"]);
    let t = MemoryTransport::new("pg1");
    let cx = context("pg1", &t, &facts["pg1"], &scope);
    let r = k.resolve(&cx).unwrap();
    assert_eq!(
        r.src_ip.to_string(),
        "10.0.2.3",
        "the holder of the VIP resolves the same"
    );
    k.interface = Some("eth1".into());
    let e = resolve(&k, SEED_004, "pg1", &["pg1"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "interface `eth1` is not on host `pg1` (facts `ansible_interfaces`)"
    );
    k.interface = None;
    k.group = "balancers".into();
    let e = resolve(&k, SEED_004, "pg1", &["pg1"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "group `balancers` is not in the inventory (groups: `all`, `postgres`)"
    );
}

#[test]
fn parameter_checks_name_the_field_and_never_show_the_password() {
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("/nonexistent"),
        inventory: None,
    };
    let long = "changeme123";
    let k: Keepalived = serde_yaml_ng::from_str(&format!(
        "mode: haproxy\nvip: 10.0.0.300\nvirtual_router_id: 256\nauth_pass: {long}\npriority: 255\ngroup: lb\n\
         patroni_tls: {{ca_file: /ca.pem}}"
    ))
    .unwrap();
    let problems: Vec<(Option<&str>, String)> = k
        .check(&cx)
        .into_iter()
        .map(|p| (p.field, p.message))
        .collect();
    assert_eq!(
        problems,
        [
            (
                Some("vip"),
                "`10.0.0.300` is not an IPv4 address".to_string()
            ),
            (
                Some("virtual_router_id"),
                "`256` is not a VRRP router id (1–255)".into()
            ),
            (
                Some("auth_pass"),
                "the VRRP password has 11 characters; keepalived uses at most 8".into()
            ),
            (
                Some("priority"),
                "`255` is not a VRRP priority (1–254)".into()
            ),
            (Some("patroni_tls"), "only for `mode: patroni`".into()),
        ]
    );
    assert!(!format!("{problems:?}").contains(long));
    assert!(!format!("{k:?}").contains(long), "Debug masks the password");
    assert!(seed_003().check(&cx).is_empty());
}

#[test]
fn diffs_mask_the_password_of_both_versions() {
    let text = "a\n    auth_pass new2\n  auth_pass\told1\nauth_passx 1\n";
    assert_eq!(
        mask_auth_pass(text, &Secret::new("new2")),
        format!("a\n    auth_pass {MASK}\n  auth_pass {MASK} (another password)\nauth_passx 1\n")
    );
}

/// Apply makes the scripts directory with this command.
const SCRIPTS_DIR: &str = "install -d -o root -g root -m 0755 -- /etc/keepalived/scripts";
/// Apply's last command waits until the VIP answers: it is on this host here.
const VIP_ANSWERS: &str = "ip -4 -o addr show | grep -qw -- 192.168.0.210";

fn run(
    k: &Keepalived,
    rules: Vec<(&str, i32, String, &str)>,
) -> (Plan, Result<(), ModuleError>, MemoryTransport) {
    let t = rules
        .into_iter()
        .fold(MemoryTransport::new("haproxy-01"), |t, (n, s, o, e)| {
            t.answer(n, output_err(s, &o, e))
        });
    let facts = facts_of(SEED_003);
    let scope = cluster_scope(
        SEED_003,
        facts.clone(),
        "haproxy-01",
        &["haproxy-01", "haproxy-02"],
    );
    let cx = context("haproxy-01", &t, &facts["haproxy-01"], &scope);
    let plan = block_on(k.plan(&cx)).unwrap();
    let applied = block_on(k.apply(&cx, &plan));
    (plan, applied, t)
}

#[test]
fn fresh_balancer_in_order_with_masked_diff() {
    let k = seed_003();
    let (plan, applied, t) = run(
        &k,
        vec![
            ("is-active", 0, probe_unit("inactive", "disabled"), ""),
            ("stat -L", 0, "missing\nnolink\n".into(), ""),
            (SCRIPTS_DIR, 0, String::new(), ""),
            ("keepalived -t -f", 0, String::new(), ""),
            ("mkdir -p -- /var/lib/pgdeploy", 0, String::new(), ""),
            (
                "systemctl enable -- keepalived && systemctl start -- keepalived",
                0,
                String::new(),
                "",
            ),
            (VIP_ANSWERS, 0, String::new(), ""),
        ],
    );
    applied.unwrap();
    let summaries: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "create directory `/etc/keepalived/scripts` (owner `root`, group `root`, mode `0755`)",
            "create `/etc/keepalived/scripts/check_haproxy.sh` (owner `root`, group `root`, mode `0755`)",
            "create `/etc/keepalived/keepalived.conf` (owner `root`, group `root`, mode `0640`)",
            "create `/var/lib/pgdeploy/keepalived.env` (owner `root`, group `root`, mode `0644`)",
            "enable `keepalived`",
            "start `keepalived` (not running, so not reloaded)",
        ]
    );
    let shown = serde_json::to_string(&plan.changes).unwrap();
    assert!(!shown.contains(PASS) && shown.contains(MASK));
    let cmds: Vec<String> = t.commands();
    // the last command waits for the VIP to answer
    assert!(
        cmds[cmds.len() - 1].contains("grep -qw -- 192.168.0.210"),
        "{cmds:?}"
    );
    let applied_cmds = &cmds[cmds.len() - 5..cmds.len() - 1];
    assert_eq!(
        applied_cmds[0],
        "install -d -o root -g root -m 0755 -- /etc/keepalived/scripts"
    );
    // validated and renamed in one command
    assert!(applied_cmds[1]
        .contains("setsid -w keepalived -t -f /etc/keepalived/.keepalived.conf.pgdeploy-"));
    assert!(applied_cmds[1].contains("then mv -f -- /etc/keepalived/.keepalived.conf.pgdeploy-"));
    assert_eq!(applied_cmds[2], "mkdir -p -- /var/lib/pgdeploy");
    assert_eq!(
        applied_cmds[3],
        "systemctl enable -- keepalived && systemctl start -- keepalived"
    );
    let writes = t.writes();
    assert_eq!(writes[0], "/etc/keepalived/scripts/check_haproxy.sh");
    assert_eq!(t.file(&writes[0]).unwrap().attrs.mode, Some(0o755));
    assert_eq!(t.file(&writes[1]).unwrap().attrs.mode, Some(0o640));
    assert_eq!(writes[2], LOCATOR);
    let vip = &t.file(&writes[2]).unwrap().content;
    assert!(
        String::from_utf8_lossy(vip).ends_with("\nVIP=192.168.0.210\n"),
        "{vip:?}"
    );
}

#[test]
fn converged_balancer_plans_nothing_and_a_refused_config_is_masked() {
    let k = seed_003();
    let facts = facts_of(SEED_003);
    let r = resolve(&k, SEED_003, "haproxy-01", &["haproxy-01", "haproxy-02"]).unwrap();
    let conf = k.render_config(&r);
    let script = k.render_script(&r);
    let dir = "directory\troot\troot\t0\t0\t755\nnolink\n".to_string();
    let (plan, _, t) = run(
        &k,
        vec![
            ("is-active", 0, probe_unit("active", "enabled"), ""),
            ("-- /etc/keepalived/scripts ||", 0, dir.clone(), ""),
            ("check_haproxy.sh", 0, probe_file("755", &script), ""),
            ("keepalived.conf", 0, probe_file("640", &conf), ""),
            ("keepalived.env", 0, probe_file("644", &locator(r.vip)), ""),
        ],
    );
    assert!(!plan.is_changed(), "{:?}", plan.changes);
    assert_eq!(t.commands().len(), 5, "five probes");
    drop(facts);
    let (plan, applied, _) = run(
        &k,
        vec![
            ("is-active", 0, probe_unit("active", "enabled"), ""),
            ("-- /etc/keepalived/scripts ||", 0, dir, ""),
            (
                "keepalived -t",
                1,
                String::new(),
                &format!("bad line auth_pass {PASS}"),
            ),
            ("check_haproxy.sh", 0, probe_file("755", &script), ""),
            ("keepalived.conf", 0, probe_file("640", "old\n"), ""),
            ("keepalived.env", 0, probe_file("644", &locator(r.vip)), ""),
        ],
    );
    let summaries: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "update `/etc/keepalived/keepalived.conf`",
            "reload `keepalived`"
        ]
    );
    let e = applied.unwrap_err().to_string();
    assert!(
        e.contains("not replaced") && !e.contains(PASS) && e.contains(MASK),
        "{e}"
    );
}

#[test]
fn another_script_user_is_created_and_the_config_checked_as_root() {
    let mut k = seed_003();
    k.script_user = "keepalived_script".into();
    let (plan, applied, t) = run(
        &k,
        vec![
            ("id -u", 1, String::new(), "no such user"),
            ("is-active", 0, probe_unit("active", "enabled"), ""),
            ("stat -L", 0, "missing\nnolink\n".into(), ""),
            ("useradd --system", 0, String::new(), ""),
            (SCRIPTS_DIR, 0, String::new(), ""),
            ("keepalived -t -f", 0, String::new(), ""),
            ("mkdir -p -- /var/lib/pgdeploy", 0, String::new(), ""),
            ("systemctl reload -- keepalived", 0, String::new(), ""),
            (VIP_ANSWERS, 0, String::new(), ""),
        ],
    );
    applied.unwrap();
    assert_eq!(
        plan.changes[0].summary,
        "create system user `keepalived_script` (runs the check script)"
    );
    let cmds: Vec<String> = t.commands();
    assert!(cmds
        .iter()
        .any(|c| c.starts_with("useradd --system --no-create-home")));
    assert!(cmds
        .iter()
        .any(|c| c.contains("script_user root/'") && c.contains("setsid -w keepalived -t")));
}

/// The validation commands run in a real shell: a failing check leaves status and output.
#[test]
fn validate_as_root_rewrites_only_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("k.conf");
    std::fs::write(&conf, "global_defs {\n    script_user nobody\n}\n").unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // Stand-ins: `setsid -w` runs its command; `keepalived -t -f F` prints F's script_user.
    std::fs::write(bin.join("setsid"), "#!/bin/sh\nshift\nexec \"$@\"\n").unwrap();
    std::fs::write(
        bin.join("keepalived"),
        "#!/bin/sh\ngrep script_user \"$3\"; exit 5\n",
    )
    .unwrap();
    for f in ["setsid", "keepalived"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cmd = VALIDATE_AS_ROOT.replace("%s", conf.to_str().unwrap());
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "script_user root"
    );
    assert!(std::fs::read_to_string(&conf)
        .unwrap()
        .contains("script_user nobody"));
}

#[test]
fn the_vip_wait_ends_at_once_on_a_host_holding_it() {
    // 127.0.0.1 is an address of this machine's `lo`: found by `ip addr`, no packet sent.
    let script = super::vip_answers_script(std::net::Ipv4Addr::LOCALHOST, 0, 1);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(script.contains("grep -qw -- 127.0.0.1"));
}
