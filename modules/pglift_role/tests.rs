use super::*;
use pgdeploy_core::diag::SourceFile;
use pgdeploy_core::yaml::load_str;
use serde_json::json;

fn parse(yaml: &str) -> Result<PgliftRole, Vec<DeError>> {
    let node = load_str(yaml, &SourceFile::new("playbook.yml")).expect("YAML");
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("."),
        inventory: None,
    };
    let path = FieldPath::root().key("dalibo.pglift.role");
    let parsed = RoleModule("dalibo.pglift.role").parse(&node, &path, &cx)?;
    let dbg = format!("{:?}", parsed.action);
    assert!(!dbg.is_empty());
    // the action is ours: parse again into the struct for the pure tests
    let m = SPEC.1.read(&node, &path).unwrap();
    let name = m["name"].as_str().unwrap().to_string();
    let mut manifest = m.clone();
    for k in ["name", "instance", "executable", "system_user"] {
        manifest.remove(k);
    }
    Ok(PgliftRole {
        target: Target {
            instance: m["instance"].as_str().unwrap().into(),
            executable: DEFAULT_EXECUTABLE.into(),
            system_user: "postgres".into(),
        },
        name,
        manifest,
    })
}

fn messages(yaml: &str) -> Vec<String> {
    parse(yaml)
        .unwrap_err()
        .into_iter()
        .map(|e| format!("{} | {}", e.message, e.help.unwrap_or_default()))
        .collect()
}

/// `pglift role get bob -o json` (pglift 3.3) for a role made with login and a password.
fn bob() -> Value {
    json!({"name": "bob", "has_password": true, "inherit": true, "login": true,
        "superuser": false, "createdb": false, "createrole": false, "replication": false,
        "connection_limit": null, "valid_until": "2030-01-01T00:00:00Z",
        "memberships": [{"role": "pg_read_all_stats"}], "hba_records": [], "pgpass": false})
}

#[test]
fn the_generated_spec_is_pglifts_with_the_collections_instance() {
    assert_eq!(SPEC.0, "3.3.0");
    for f in [
        "name",
        "instance",
        "password",
        "login",
        "superuser",
        "valid_until",
        "memberships",
        "state",
        "connection_limit",
        "executable",
    ] {
        assert!(SPEC.1.get(f).is_some(), "{f}");
    }
    assert!(SPEC.1.get("password").unwrap().no_log);
    assert_eq!(SPEC.1.default_of("inherit"), Some(&Value::Bool(true)));
}

#[test]
fn the_collections_example_reads() {
    let r = parse("{instance: 12/main, name: admin, login: true, superuser: true, validity: '2023-01-01T00:00', in_roles: [pg_read_all_stats, pg_signal_backend]}").unwrap();
    assert_eq!(r.manifest["valid_until"], "2023-01-01T00:00");
    assert_eq!(
        r.manifest["memberships"],
        json!([{"role": "pg_read_all_stats"}, {"role": "pg_signal_backend"}])
    );
}

#[test]
fn unknown_and_unsupported_parameters_are_located_errors() {
    let m = messages("{instance: 15/main, name: bob, logon: true}");
    assert_eq!(m, ["unknown parameter `logon` | did you mean `login`?"]);
    let m = messages("{name: bob}");
    assert_eq!(m[0], "missing required parameter `instance` | ");
    let m = messages("{instance: 15/main, name: bob, hba_records: [{method: trust}], pgpass: true, validity: soon}");
    assert!(
        m[0].starts_with("not supported by pgdeploy: pglift writes them"),
        "{m:?}"
    );
    assert!(
        m[1].starts_with("not supported by pgdeploy: the password file"),
        "{m:?}"
    );
    assert!(m[2].starts_with("`soon` is not a date and time"), "{m:?}");
    let m = messages(
        "{instance: 15/main, name: bob, state: absent, password: Pglift-Role-Absent-Pw-1}",
    );
    assert!(
        m[0].starts_with("`password` is for `state: present`"),
        "{m:?}"
    );
}

#[test]
fn a_new_role_is_created_with_its_password_masked() {
    let secret = "it's \\ \"a\" pass";
    let r = parse(&format!(
        "{{instance: 15/main, name: bob, login: true, password: {}}}",
        serde_json::to_string(secret).unwrap()
    ))
    .unwrap();
    let p = r.decide(None, "");
    assert_eq!(p.changes[0].summary, "create role `bob`");
    let after = p.changes[0].diff.as_ref().unwrap().after.clone().unwrap();
    assert!(after.contains("login: true\n") && after.contains("password: ********\n"));
    assert!(!after.contains(secret));
    let Some(Work::Apply(m)) = p.work::<Work>() else {
        panic!()
    };
    assert_eq!(m["password"], secret, "the manifest (stdin) holds it");
}

#[test]
fn the_same_role_plans_nothing_and_a_new_password_a_masked_change() {
    let stored = Verifier::random("Pglift-Role-Old-Pw-1").unwrap().text();
    let r = parse("{instance: 15/main, name: bob, login: true, password: Pglift-Role-Old-Pw-1, validity: '2030-01-01T00:00', in_roles: [pg_read_all_stats]}").unwrap();
    assert!(!r.decide(Some(&bob()), &stored).is_changed());
    let r = parse(
        "{instance: 15/main, name: bob, login: true, password: Pglift-Role-New-Pw-1, in_roles: [pg_read_all_stats]}",
    )
    .unwrap();
    let p = r.decide(Some(&bob()), &stored);
    assert_eq!(p.changes[0].summary, "alter role `bob`: password");
    let d = p.changes[0].diff.as_ref().unwrap().unified();
    assert!(d.contains("-password: ********\n"), "{d}");
    assert!(d.contains("+password: ******** (changed)\n"), "{d}");
    assert!(!d.contains("Pglift-Role-New-Pw-1"), "{d}");
}

#[test]
fn left_out_attributes_go_back_to_pglifts_defaults_and_memberships_are_diffed() {
    let r = parse("{instance: 15/main, name: bob, superuser: true, memberships: [{role: pg_read_all_stats, state: absent}, pg_monitor]}").unwrap();
    let p = r.decide(Some(&bob()), "");
    assert_eq!(
        p.changes[0].summary,
        "alter role `bob`: login, superuser, revoke `pg_read_all_stats`, grant `pg_monitor`"
    );
    let d = p.changes[0].diff.as_ref().unwrap().unified();
    assert!(
        d.contains("-memberships: [pg_read_all_stats]\n+memberships: [pg_monitor]\n"),
        "{d}"
    );
    let Some(Work::Apply(m)) = p.work::<Work>() else {
        panic!()
    };
    assert!(m.get("password").is_none());
}

#[test]
fn absent_drops_an_existing_role_only() {
    let r = parse("{instance: 15/main, name: bob, state: absent}").unwrap();
    assert!(!r.decide(None, "").is_changed());
    let p = r.decide(Some(&bob()), "");
    assert_eq!(p.changes[0].summary, "drop role `bob`");
    assert!(p.changes[0].diff.as_ref().unwrap().after.is_none());
}

mod over_a_fake_host {
    use super::*;
    use crate::common::fake::*;
    use pgdeploy_core::template::Facts;

    const PRIMARY: &str = "==name h1\n==surole postgres\n==recovery f\n==get\nError: role 'bob' not found\n==get-status 1\n==sql\n";

    #[test]
    fn the_primary_plans_a_creation_and_apply_runs_role_apply() {
        let r = parse("{instance: 15/main, name: bob, login: true}").unwrap();
        let h = Harness::new(
            MemoryTransport::default()
                .answer("instance env", output(0, PRIMARY))
                .answer(
                    "role -i 15/main apply -f - -o json",
                    output(0, "{\"change_state\": \"created\"}\n"),
                ),
            Facts::default(),
        );
        let p = block_on(r.plan(&h.cx())).unwrap();
        assert_eq!(p.changes[0].summary, "create role `bob`");
        block_on(r.apply(&h.cx(), &p)).unwrap();
        let cmds = h.transport.commands();
        assert!(
            cmds[1].contains("role -i 15/main apply -f - -o json"),
            "{cmds:?}"
        );
    }

    #[test]
    fn still_not_installed_at_apply_is_an_error() {
        let r = parse("{instance: 15/main, name: bob}").unwrap();
        let h = Harness::new(
            MemoryTransport::default().answer("instance env", output(0, "==missing\n")),
            Facts::default(),
        );
        let p = block_on(r.plan(&h.cx())).unwrap();
        assert!(p.is_changed() && !p.notes.is_empty());
        let e = block_on(r.apply(&h.cx(), &p)).unwrap_err().to_string();
        assert!(e.contains("is still not there on `h1`"), "{e}");
    }

    #[test]
    fn a_replica_plans_nothing() {
        let r = parse("{instance: 15/main, name: bob}").unwrap();
        let text = "==name h1\n==surole postgres\n==patroni\n[{\"Member\": \"h2\", \"Role\": \"Leader\", \"State\": \"running\"}]\n==recovery t\n";
        let h = Harness::new(
            MemoryTransport::default().answer("instance env", output(0, text)),
            Facts::default(),
        );
        let p = block_on(r.plan(&h.cx())).unwrap();
        assert!(!p.is_changed());
        assert!(p.notes[0].contains("on the leader `h2`"), "{:?}", p.notes);
    }
}
