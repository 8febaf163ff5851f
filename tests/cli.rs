//! The offline commands end to end, as a user runs them: `validate` on the example
//! inventories and playbooks, `inventory --list|--graph`, `graph --format text|dot`.

use std::path::Path;
use std::process::{Command, Output};

fn pgdeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args(args)
        .arg("--no-color")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("pgdeploy runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

/// Every example playbook validates against the inventories written for it.
#[test]
fn example_playbooks_validate_against_their_inventories() {
    for (inventory, playbook) in [
        ("inventories/seed003.yml", "playbooks/site.yml"),
        ("inventories/seed003.yml", "playbooks/hosts.yml"),
        ("inventories/seed000.ini", "playbooks/primary-replica.yml"),
        ("inventories/seed004.yml", "playbooks/site.yml"),
        ("inventories/seed004.yml", "playbooks/vip-on-leader.yml"),
    ] {
        let out = pgdeploy(&["validate", "-i", inventory, playbook]);
        let text = stdout(&out);
        assert!(text.starts_with("ok: "), "{text}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn inventory_list_is_ansible_shaped_and_masks_secrets() {
    let text = stdout(&pgdeploy(&[
        "inventory",
        "-i",
        "tests/fixtures/cli/secrets.yml",
        "--list",
    ]));
    for secret in ["rEpl-9f2c7e41", "sU-77ab1d"] {
        assert!(!text.contains(secret), "secret `{secret}` printed:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let pg2 = &json["_meta"]["hostvars"]["pg2"];
    assert_eq!(pg2["replication_password"], "********");
    assert_eq!(pg2["patroni"]["superuser_password"], "********");
    assert_eq!(pg2["patroni"]["port"], 8008);
    assert_eq!(json["postgres"]["hosts"], serde_json::json!(["pg1", "pg2"]));
    insta::assert_snapshot!("inventory_list_secrets", text);
}

#[test]
fn inventory_list_and_graph_of_the_ini_example() {
    let list = stdout(&pgdeploy(&[
        "inventory",
        "-i",
        "inventories/seed000.ini",
        "--list",
    ]));
    insta::assert_snapshot!("inventory_list_seed000", list);
    let graph = stdout(&pgdeploy(&[
        "inventory",
        "-i",
        "inventories/seed000.ini",
        "--graph",
    ]));
    insta::assert_snapshot!("inventory_graph_seed000", graph);
}

#[test]
fn graph_text_names_every_edge_reason() {
    let text = stdout(&pgdeploy(&[
        "graph",
        "-i",
        "inventories/seed000.ini",
        "playbooks/primary-replica.yml",
        "--format",
        "text",
    ]));
    insta::assert_snapshot!("graph_text_seed000", text);
}

/// The DOT output is valid for Graphviz and has the edges the playbook implies.
#[test]
fn graph_dot_renders_with_graphviz() {
    let dot = stdout(&pgdeploy(&[
        "graph",
        "-i",
        "inventories/seed003.yml",
        "playbooks/site.yml",
        "--format",
        "dot",
    ]));
    // host order on one host, and the play boundary before the `postgres` play
    assert!(dot.contains("[label=\"host order\"]"), "{dot}");
    assert!(dot.contains("[label=\"play boundary\"]"), "{dot}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dot_file = dir.path().join("g.dot");
    std::fs::write(&dot_file, &dot).expect("write dot");
    let svg = dir.path().join("g.svg");
    let out = Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_file)
        .arg("-o")
        .arg(&svg)
        .output()
        .expect("graphviz `dot` is installed (scripts/install-test-prereqs)");
    assert!(
        out.status.success(),
        "dot refused the graph: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(Path::new(&svg)).expect("svg written");
    assert!(svg.contains("postgres&#45;01") || svg.contains("postgres-01"));
}

/// A module's warning (here: an even etcd member count) is shown once, with its place, and
/// does not fail `validate`.
#[test]
fn an_even_etcd_member_count_is_a_placed_warning() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(
        &inventory,
        "postgres:\n  hosts:\n    pg1: {ansible_host: 10.0.0.11}\n    pg2: {ansible_host: 10.0.0.12}\n    \
         pg3: {ansible_host: 10.0.0.13}\n    pg4: {ansible_host: 10.0.0.14}\n",
    )
    .unwrap();
    let playbook = dir.path().join("etcd.yml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/etcd.yml"),
        &playbook,
    )
    .unwrap();
    let out = pgdeploy(&[
        "validate",
        "-i",
        inventory.to_str().unwrap(),
        playbook.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(text.starts_with("ok: "), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wanted = "etcd has 4 members: quorum is 3, so it tolerates 1 failure(s), no more than 3 members would; an odd count is better";
    assert_eq!(stderr.matches(wanted).count(), 1, "{stderr}");
    assert!(stderr.contains("warning"), "{stderr}");
    assert!(stderr.contains("etcd.yml:28:"), "{stderr}");
    assert!(
        stderr.contains("plays[0].tasks[3].etcd.members"),
        "{stderr}"
    );
}
