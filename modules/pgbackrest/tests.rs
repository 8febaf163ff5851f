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

mod plan {
    use std::collections::HashMap;

    use super::*;
    use crate::common::fake::*;
    use pgdeploy_core::module::Action;

    const LAB: &[(&str, &str, &[&str])] = &[
        ("pg1", "10.0.0.11", &["postgres"]),
        ("pg2", "10.0.0.12", &["postgres"]),
        ("lb1", "10.0.0.21", &["balancers"]),
    ];

    /// Plans `p` on `host`, whose probe prints `probe` and whose paths are all missing.
    fn plan_on(
        p: &Pgbackrest,
        host: &str,
        probe: &str,
    ) -> Result<pgdeploy_core::module::Plan, String> {
        let facts: HashMap<String, pgdeploy_core::template::Facts> = LAB
            .iter()
            .map(|(n, ip, _)| (n.to_string(), host0_facts(ip)))
            .collect();
        let scope = cluster_scope(LAB, facts.clone(), host, &["pg1", "pg2", "lb1"]);
        let t = MemoryTransport::default()
            .answer("getent hosts", output(0, probe))
            .answer("stat -L", output(0, "missing\nnolink\n"))
            // The units' states: none installed yet (`is-enabled` prints nothing on stdout).
            .answer(
                "systemctl is-active -- pgbackrest-server.service",
                output(
                    0,
                    "pgbackrest-server.service\tinactive\t\n\
                     pgbackrest-backup-full.timer\tinactive\t\n\
                     pgbackrest-backup-diff.timer\tinactive\t\n",
                ),
            );
        let cx = context(host, &t, &facts[host], &scope);
        block_on(p.plan(&cx)).map_err(|e| e.to_string())
    }

    #[test]
    fn peers_that_do_not_resolve_stop_the_plan() {
        let e = plan_on(&params(""), "pg1", "binary=yes\nuser=yes\nunresolved=lb1\n").unwrap_err();
        assert!(
            e.starts_with(
                "`lb1` does not resolve on `pg1`: pgBackRest reaches its peers by inventory name"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_bare_repository_host_gets_everything_and_the_cipher_is_not_shown() {
        let p = params("cipher_pass: 'q\"uo\\te'\n");
        let plan = plan_on(&p, "lb1", "binary=yes\n").unwrap();
        let shown: Vec<String> = plan
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}\n{}",
                    c.summary,
                    c.diff.as_ref().map(|d| d.unified()).unwrap_or_default()
                )
            })
            .collect();
        let all = shown.join("\n");
        assert!(all.contains("create system user `postgres`"), "{all}");
        assert!(
            all.contains("create directory `/var/lib/pgbackrest`"),
            "{all}"
        );
        assert!(all.contains("pg2-host=pg2"), "members by name: {all}");
        assert!(
            all.contains("enable `pgbackrest-backup-full.timer`"),
            "{all}"
        );
        assert!(all.contains("repo1-cipher-pass=********"), "{all}");
        assert!(!all.contains("uo\\te"), "{all}");
    }

    #[test]
    fn a_member_without_pgbackrest_yet_is_a_note_and_the_stanza_is_the_repository_hosts() {
        let plan = plan_on(&params(""), "pg2", "user=yes\n").unwrap();
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("pgBackRest is not installed on `pg2`")),
            "{:?}",
            plan.notes
        );
        let mut p = params("");
        p.state = State::Stanza;
        let e = plan_on(&p, "pg2", "").unwrap_err();
        assert_eq!(
            e,
            "`state: stanza` runs on the repository host `lb1`, not on `pg2`"
        );
    }
}
