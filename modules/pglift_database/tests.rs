use super::*;
use pgdeploy_core::diag::SourceFile;
use pgdeploy_core::yaml::load_str;
use serde_json::json;

fn parse(yaml: &str) -> Result<PgliftDatabase, Vec<DeError>> {
    let node = load_str(yaml, &SourceFile::new("playbook.yml")).expect("YAML");
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("."),
        inventory: None,
    };
    let path = FieldPath::root().key("dalibo.pglift.database");
    DatabaseModule("dalibo.pglift.database").parse(&node, &path, &cx)?;
    let mut m = SPEC.1.read(&node, &path).unwrap();
    let name = m.remove("name").unwrap().as_str().unwrap().to_string();
    let instance = m.remove("instance").unwrap().as_str().unwrap().to_string();
    Ok(PgliftDatabase {
        target: Target {
            instance,
            executable: DEFAULT_EXECUTABLE.into(),
            system_user: "postgres".into(),
        },
        name,
        manifest: m,
    })
}

/// `pglift database get db1 -o json` (pglift 3.3) for db1 owned by bob with
/// pg_stat_statements.
fn db1() -> Value {
    json!({"name": "db1", "owner": "bob", "settings": null,
        "schemas": [{"name": "public", "owner": "pg_database_owner"}],
        "extensions": [{"name": "pg_stat_statements", "schema": "public", "version": "1.10"}],
        "locale": "C", "publications": [], "subscriptions": [], "tablespace": "pg_default"})
}

fn server() -> Server {
    parse_server("schema|public\next|pg_stat_statements|1.10\n")
}

#[test]
fn the_generated_spec_is_pglifts() {
    assert_eq!(SPEC.0, "3.3.0");
    for f in [
        "name",
        "instance",
        "owner",
        "settings",
        "extensions",
        "schemas",
        "state",
    ] {
        assert!(SPEC.1.get(f).is_some(), "{f}");
    }
}

#[test]
fn unknown_parameters_are_located_with_the_closest_name() {
    let errs = parse("{instance: 15/main, name: db1, extension: [x]}").unwrap_err();
    assert_eq!(errs[0].message, "unknown parameter `extension`");
    assert_eq!(errs[0].help.as_deref(), Some("did you mean `extensions`?"));
    assert_eq!(
        errs[0].path.as_ref().unwrap().to_string(),
        "dalibo.pglift.database.extension"
    );
}

#[test]
fn a_new_database_and_then_nothing_to_do() {
    let d = parse("{instance: 15/main, name: db1, owner: bob, extensions: [pg_stat_statements]}")
        .unwrap();
    let p = d.decide(None, "postgres", &Server::default());
    assert_eq!(p.changes[0].summary, "create database `db1`");
    let after = p.changes[0].diff.as_ref().unwrap().after.clone().unwrap();
    assert!(after.contains("owner: bob\n"), "{after}");
    assert!(after.contains("extension pg_stat_statements"), "{after}");
    assert!(!d.decide(Some(&db1()), "postgres", &server()).is_changed());
}

#[test]
fn an_extension_removed_is_a_clear_diff() {
    let d = parse("{instance: 15/main, name: db1, owner: bob, extensions: [{name: pg_stat_statements, state: absent}]}").unwrap();
    let p = d.decide(Some(&db1()), "postgres", &server());
    assert_eq!(
        p.changes[0].summary,
        "alter database `db1`: drop extension `pg_stat_statements`"
    );
    let diff = p.changes[0].diff.as_ref().unwrap().unified();
    assert!(
        diff.contains("-extension pg_stat_statements: schema public, version 1.10\n"),
        "{diff}"
    );
}

#[test]
fn the_owner_left_out_goes_back_to_the_superuser_and_settings_are_diffed() {
    let d =
        parse("{instance: 15/main, name: db1, settings: {work_mem: 2MB}, schemas: [app]}").unwrap();
    let p = d.decide(Some(&db1()), "postgres", &server());
    assert_eq!(
        p.changes[0].summary,
        "alter database `db1`: owner `postgres`, set `work_mem` to `2MB`, create schema `app`"
    );
    let mut cur = db1();
    cur["owner"] = json!("postgres");
    cur["settings"] = json!({"work_mem": "2MB"});
    cur["schemas"] = json!([{"name": "app", "owner": "postgres"}, {"name": "public", "owner": "pg_database_owner"}]);
    assert!(!d.decide(Some(&cur), "postgres", &server()).is_changed());
}

#[test]
fn absent_drops_an_existing_database_only() {
    let d = parse("{instance: 15/main, name: db1, state: absent}").unwrap();
    assert!(!d.decide(None, "postgres", &server()).is_changed());
    assert_eq!(
        d.decide(Some(&db1()), "postgres", &server()).changes[0].summary,
        "drop database `db1`"
    );
}
