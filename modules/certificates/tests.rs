use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::common::fake::*;
use pgdeploy_core::template::Facts;

fn params(yaml: &str) -> Certificates {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn info(sans: &[&str], issuer: &str, days_left: i64) -> pki::CertInfo {
    pki::CertInfo {
        subject: "CN=h1".into(),
        issuer: issuer.into(),
        sans: sans.iter().map(|s| s.to_string()).collect(),
        not_after: 1_000_000_000 + days_left * 86400,
        public_key: Vec::new(),
    }
}

#[test]
fn reissue_reasons() {
    let wanted: BTreeSet<String> = ["h1", "10.0.0.1"].iter().map(|s| s.to_string()).collect();
    let now = 1_000_000_000;
    let good = info(&["h1", "10.0.0.1"], "CN=ca", 90);
    let r = |i: Option<&pki::CertInfo>, key, ca: Option<&str>, same| {
        reissue_reason(i, key, ca, same, &wanted, now)
    };
    assert_eq!(r(Some(&good), KeyCheck::Matches, Some("CN=ca"), true), None);
    assert_eq!(
        r(None, KeyCheck::Matches, Some("CN=ca"), true).unwrap(),
        "missing"
    );
    assert_eq!(
        r(Some(&good), KeyCheck::Missing, Some("CN=ca"), true).unwrap(),
        "its key is missing"
    );
    assert_eq!(
        r(Some(&good), KeyCheck::Mismatch, Some("CN=ca"), true).unwrap(),
        "its key on the host does not belong to it"
    );
    assert_eq!(
        r(Some(&good), KeyCheck::Matches, None, true).unwrap(),
        "the CA is new"
    );
    assert_eq!(
        r(Some(&good), KeyCheck::Matches, Some("CN=other"), true).unwrap(),
        "issued by `CN=ca`, not by the CA `CN=other`"
    );
    let moved = info(&["h1", "10.0.0.2"], "CN=ca", 90);
    assert_eq!(
        r(Some(&moved), KeyCheck::Matches, Some("CN=ca"), true).unwrap(),
        "SANs change: add `10.0.0.1`; remove `10.0.0.2`"
    );
    let old = info(&["h1", "10.0.0.1"], "CN=ca", 29);
    assert_eq!(
        r(Some(&old), KeyCheck::Matches, Some("CN=ca"), true).unwrap(),
        "it expires on 2001-10-08, within 30 days"
    );
}

#[test]
fn checks_name_the_field() {
    let p = params("installs: [{dir: etc/x}]\nextra_sans: ['a b']\nca_cert: ca.pem\ndays: 10");
    let cx = ParseContext {
        playbook_dir: Path::new("/nonexistent"),
        inventory: None,
    };
    let problems: Vec<String> = p
        .check(&cx)
        .into_iter()
        .map(|p| format!("{}: {}", p.field.unwrap_or("-"), p.message))
        .collect();
    assert_eq!(
        problems,
        [
            "ca_cert: `ca_cert` needs `ca_key` (the CA's private key) too",
            "installs: `etc/x` is not an absolute path",
            "extra_sans: `a b` is neither an IP address nor a DNS name",
            "days: `10` days is too short: certificates are renewed 30 days before expiry",
        ]
    );
    let e = serde_yaml_ng::from_str::<Certificates>("installs: []\nbogus: 1").unwrap_err();
    assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
}

/// A fresh host: plan creates nothing locally and says what apply will do; apply creates the
/// CA (key 0600) and installs the leaf with the wanted owner and modes; keys never show.
#[test]
fn fresh_host_plan_then_apply() {
    let dir = tempfile::tempdir().unwrap();
    // A bare host: no certificate yet, and the directory made at apply.
    let fake = MemoryTransport::default()
        .answer("if [ -e", output(0, "missing\nnolink\n"))
        .answer("mkdir -p -m 0755 -- ", output(0, ""));
    let mut facts = Facts::new();
    facts.insert(
        "ansible_default_ipv4".into(),
        serde_json::json!({"address": "10.0.0.7"}),
    );
    let mut h = Harness::new(fake, facts);
    h.playbook_dir = dir.path().to_path_buf();
    let p = params("installs: [{dir: /etc/etcd/pki, owner: etcd, group: etcd}]");
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert!(!dir.path().join("pki").exists(), "plan must not write");
    let summaries: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
    assert!(summaries[0].starts_with("create CA `"), "{summaries:?}");
    assert_eq!(
        &summaries[1..],
        [
            "create directory `/etc/etcd/pki` (owner `etcd`, group `etcd`, mode `0755`)",
            "issue `/etc/etcd/pki/h1.crt` (owner `etcd`, group `etcd`, mode `0644`) (missing)",
            "create private key `/etc/etcd/pki/h1.key` (owner `etcd`, group `etcd`, mode `0600`)",
            "create `/etc/etcd/pki/ca.crt` (owner `etcd`, group `etcd`, mode `0644`)",
        ]
    );
    let key_diff = plan.changes[3].diff.as_ref().unwrap();
    assert_eq!(key_diff.after.as_deref(), Some(KEY_NOT_SHOWN));
    let cert_diff = plan.changes[2]
        .diff
        .as_ref()
        .unwrap()
        .after
        .clone()
        .unwrap();
    assert!(
        cert_diff.contains("SANs: 10.0.0.7, 127.0.0.1, h1, localhost"),
        "{cert_diff}"
    );

    block_on(p.apply(&h.cx(), &plan)).unwrap();
    let ca_key = dir.path().join("pki/ca.key");
    let mode = std::fs::metadata(&ca_key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let written = h.transport.written();
    let (key, key_attrs) = &written["/etc/etcd/pki/h1.key"];
    assert!(String::from_utf8_lossy(key).contains("PRIVATE KEY"));
    assert_eq!(key_attrs.mode, Some(0o600));
    assert_eq!(key_attrs.owner.as_deref(), Some("etcd"));
    let (cert, _) = &written["/etc/etcd/pki/h1.crt"];
    let info = pki::inspect(cert).unwrap();
    assert_eq!(info.issuer, "CN=pgdeploy CA");
    let (ca, _) = &written["/etc/etcd/pki/ca.crt"];
    assert_eq!(ca, &std::fs::read(dir.path().join("pki/ca.crt")).unwrap());
    // Nothing of a private key in what the plan shows.
    let shown = format!("{:?}", plan.changes);
    assert!(!shown.contains("PRIVATE KEY"));
    assert!(h
        .transport
        .commands()
        .iter()
        .all(|c| !c.contains("PRIVATE")));
}

/// A CA of the user's: never recreated, and the leaf is signed by it.
#[test]
fn user_provided_ca_signs_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let own = pki::CaPaths {
        cert: dir.path().join("own/root.pem"),
        key: dir.path().join("own/root.key"),
        generated: false,
    };
    let ca = pki::create_ca(&own, "Example Root", 365).unwrap();
    // A bare host: no certificate yet, and the directory made at apply.
    let fake = MemoryTransport::default()
        .answer("if [ -e", output(0, "missing\nnolink\n"))
        .answer("mkdir -p -m 0755 -- ", output(0, ""));
    let mut h = Harness::new(fake, Facts::new());
    h.playbook_dir = dir.path().to_path_buf();
    let p = params("ca_cert: own/root.pem\nca_key: own/root.key\ninstalls: [{dir: /etc/pg}]");
    let cx = ParseContext {
        playbook_dir: dir.path(),
        inventory: None,
    };
    assert!(p.check(&cx).is_empty());
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert!(plan
        .changes
        .iter()
        .all(|c| !c.summary.starts_with("create CA")));
    block_on(p.apply(&h.cx(), &plan)).unwrap();
    assert!(!dir.path().join("pki").exists());
    let written = h.transport.written();
    let info = pki::inspect(&written["/etc/pg/h1.crt"].0).unwrap();
    assert_eq!(info.issuer, ca.subject);
    assert_eq!(info.issuer, "CN=Example Root");
    // A missing user CA is an error, never replaced by a generated one.
    std::fs::remove_file(&own.key).unwrap();
    let e = block_on(p.plan(&h.cx())).unwrap_err().to_string();
    assert!(e.contains("not found"), "{e}");
}
