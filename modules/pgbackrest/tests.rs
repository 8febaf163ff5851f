use serde_json::json;

use super::*;

fn params(extra: &str) -> Pgbackrest {
    serde_yaml_ng::from_str(&format!(
        "stanza: pgcluster\nrepo_host: lb1\npg_path: /var/lib/postgresql/17/pgcluster\n\
         tls: {{cert_file: /etc/patroni/pki/pg1.crt, key_file: /etc/patroni/pki/pg1.key, ca_file: /etc/patroni/pki/ca.crt}}\n{extra}"
    ))
    .unwrap()
}

fn members() -> Vec<Peer> {
    ["pg1", "pg2", "pg3"]
        .iter()
        .enumerate()
        .map(|(i, n)| Peer {
            name: n.to_string(),
            address: format!("10.0.0.{}", 11 + i),
        })
        .collect()
}

#[test]
fn member_config() {
    insta::assert_snapshot!(params("").member_config("10.0.0.21"));
}

#[test]
fn repository_config_with_a_cipher() {
    let p = params("cipher_pass: 'q\"uo\\te'\nretention: {full: 3}\n");
    let text = p.repo_config(&members());
    assert!(text.contains("repo1-cipher-pass=q\"uo\\te\n"), "{text}");
    insta::assert_snapshot!(p.cipher_pass.as_ref().unwrap().mask_in(&text));
}

#[test]
fn units_and_locator() {
    let p = params("");
    insta::assert_snapshot!(format!(
        "{}\n{}\n{}\n{}",
        p.server_unit("postgres"),
        p.backup_service("full"),
        p.backup_timer("diff", p.calendar("diff")),
        p.locator()
    ));
}

#[test]
fn bad_parameters_are_refused() {
    let p: Pgbackrest = serde_yaml_ng::from_str(
        "stanza: 'a b'\nrepo_host: lb1\npg_path: /d\nrepo_path: relative\nretention: {full: 0}\n\
         cipher_pass: \"two\\nlines\"\ntls: {cert_file: /c, key_file: /k, ca_file: /a}\n",
    )
    .unwrap();
    let problems: Vec<String> = p.check().iter().map(|p| format!("{p:?}")).collect();
    let all = problems.join("\n");
    assert_eq!(problems.len(), 4, "{all}");
    assert!(all.contains("`a b` is not a plain name"), "{all}");
    assert!(all.contains("`relative` is not an absolute path"), "{all}");
    assert!(all.contains("0 would keep no backup"), "{all}");
    assert!(all.contains("one non-empty line"), "{all}");
    assert!(
        !all.contains("lines"),
        "the cipher pass is not shown: {all}"
    );
}

#[test]
fn a_stanza_exists_with_or_without_backups() {
    assert!(stanza_exists(
        &json!([{"name": "s", "status": {"code": 0}}])
    ));
    assert!(stanza_exists(
        &json!([{"name": "s", "status": {"code": 2}}])
    ));
    assert!(!stanza_exists(
        &json!([{"name": "s", "status": {"code": 1}}])
    ));
    assert!(!stanza_exists(&json!([])));
    assert!(!stanza_exists(&Value::Null));
}
