//! The offline commands end to end, as a user runs them: `validate` on the example
//! inventories and playbooks, `inventory --list|--graph`, `graph --format text|dot`.

use std::path::Path;
use std::process::{Command, Output};

fn pgdeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .env("PGDEPLOY_LOCK_WAIT", "120")
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
        ("inventories/seed003.yml", "playbooks/pglift.yml"),
        (
            "inventories/seed000.ini",
            "tests/fixtures/cli/seed000-pglift.yml",
        ),
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

/// Seed 000's `dalibo.pglift.instance` task with a typo: a located error with a suggestion.
#[test]
fn a_typo_in_seed_000s_pglift_task_is_located_with_a_suggestion() {
    let text = std::fs::read_to_string("tests/fixtures/cli/seed000-pglift.yml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yml");
    std::fs::write(&typo, text.replace("connect_host:", "connect_hots:")).unwrap();
    let out = pgdeploy(&[
        "validate",
        "-i",
        "inventories/seed000.ini",
        typo.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.yml:26:11: plays[0].tasks[0].dalibo.pglift.instance.patroni.postgresql.connect_hots: unknown field `connect_hots`"),
        "{err}"
    );
    assert!(err.contains("did you mean `connect_host`?"), "{err}");
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

/// Runs pgdeploy with `PGDEPLOY_VAULT_PASSWORD_FILE` set to `env_password` (or unset).
fn pgdeploy_vault(args: &[&str], env_password: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdeploy"));
    // Applies of parallel tests on this machine wait for each other's lock.
    cmd.env("PGDEPLOY_LOCK_WAIT", "120");
    cmd.args(args)
        .arg("--no-color")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("PGDEPLOY_VAULT_PASSWORD_FILE");
    if let Some(p) = env_password {
        cmd.env("PGDEPLOY_VAULT_PASSWORD_FILE", p);
    }
    cmd.output().expect("pgdeploy runs")
}

const VAULT_INVENTORY: &str = "tests/fixtures/vault/inventory.yml";
const VAULT_PLAYBOOK: &str = "tests/fixtures/vault/playbook.yml";
const VAULT_PASSWORD: &str = "tests/fixtures/vault/password";

/// Every value the vault fixtures decrypt to, as printed raw and as JSON escapes it.
const VAULT_PLAINTEXTS: &[&str] = &[
    "Vault11-Admin-Word",
    "Vault12-Labelled-Note",
    "Vault-Inline-Token",
    "Vault-Play-Var",
    "q\"uo\\te",
    "q\\\"uo\\\\te",
    "second-line",
];

fn assert_no_plaintext(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for plain in VAULT_PLAINTEXTS {
            assert!(!text.contains(plain), "`{plain}` printed:\n{text}");
        }
    }
}

#[test]
fn vault_values_load_and_are_masked_in_every_output() {
    let out = pgdeploy_vault(
        &[
            "inventory",
            "-i",
            VAULT_INVENTORY,
            "--list",
            "--vault-password-file",
            VAULT_PASSWORD,
        ],
        None,
    );
    assert_no_plaintext(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let pg1 = &json["_meta"]["hostvars"]["pg1"];
    for name in ["admin_word", "cluster_note", "app_word", "odd_word"] {
        assert_eq!(pg1[name], "********", "{name}: {pg1}");
    }
    assert_eq!(pg1["pg_port"], 5432);
    assert_eq!(pg1["ansible_host"], "10.0.0.11");

    // The environment variable is the same as the flag.
    let out = pgdeploy_vault(
        &["inventory", "-i", VAULT_INVENTORY, "--host", "pg2"],
        Some(VAULT_PASSWORD),
    );
    assert_no_plaintext(&out);
    assert!(stdout(&out).contains("\"app_word\": \"********\""));

    for args in [
        vec!["validate", "-i", VAULT_INVENTORY, VAULT_PLAYBOOK],
        vec!["graph", "-i", VAULT_INVENTORY, VAULT_PLAYBOOK],
        vec![
            "graph",
            "-i",
            VAULT_INVENTORY,
            VAULT_PLAYBOOK,
            "--format",
            "dot",
        ],
    ] {
        let mut args = args;
        args.extend(["--vault-password-file", VAULT_PASSWORD]);
        let out = pgdeploy_vault(&args, None);
        assert_no_plaintext(&out);
        stdout(&out);
    }
}

#[test]
fn an_executable_vault_password_file_is_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vault-pass.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf 'pgdeploy-vault-fixture\\n'\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = pgdeploy_vault(
        &[
            "validate",
            "-i",
            VAULT_INVENTORY,
            VAULT_PLAYBOOK,
            "--vault-password-file",
            script.to_str().unwrap(),
        ],
        None,
    );
    assert_no_plaintext(&out);
    assert!(stdout(&out).starts_with("ok: "));
}

#[test]
fn vault_without_a_password_or_with_a_wrong_one_is_a_located_error() {
    let out = pgdeploy_vault(&["validate", "-i", VAULT_INVENTORY, VAULT_PLAYBOOK], None);
    assert_eq!(out.status.code(), Some(1));
    assert_no_plaintext(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "error: tests/fixtures/vault/group_vars/all.yml: this file is encrypted with Ansible Vault: give `--vault-password-file` (or `PGDEPLOY_VAULT_PASSWORD_FILE`)",
        "error: tests/fixtures/vault/inventory.yml:5:15: this `!vault` value is encrypted with Ansible Vault",
        "error: tests/fixtures/vault/playbook.yml:7:15: this `!vault` value is encrypted with Ansible Vault",
    ] {
        assert!(err.contains(expected), "{expected}\nnot in:\n{err}");
    }

    let out = pgdeploy_vault(
        &[
            "inventory",
            "-i",
            VAULT_INVENTORY,
            "--list",
            "--vault-password-file",
            "tests/fixtures/vault/wrong-password",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_no_plaintext(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: tests/fixtures/vault/group_vars/all.yml: cannot decrypt this file: wrong vault password, or the data was altered (HMAC mismatch)"),
        "{err}"
    );
    let ciphertext = std::fs::read_to_string("tests/fixtures/vault/group_vars/all.yml").unwrap();
    assert!(
        !err.contains(&ciphertext.lines().nth(1).unwrap()[..12]),
        "{err}"
    );

    let out = pgdeploy_vault(
        &[
            "inventory",
            "-i",
            VAULT_INVENTORY,
            "--list",
            "--vault-password-file",
            "tests/fixtures/vault/none",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the vault password file `tests/fixtures/vault/none`"),
        "{err}"
    );
}

/// A secret used where a file mode is expected: the compile error quotes the value it got,
/// and must show it masked (with a quote and a backslash in it, as passwords have).
#[test]
fn a_secret_in_a_compile_error_is_masked() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inv.yml");
    std::fs::write(
        &inventory,
        "all:\n  hosts:\n    h1: {ansible_connection: local}\n  vars:\n    app_password: 'se\"cr\\et9'\n",
    )
    .unwrap();
    let playbook = dir.path().join("pb.yml");
    std::fs::write(
        &playbook,
        "- hosts: all\n  tasks:\n    - copy: {dest: /tmp/x, content: x, mode: \"{{ app_password }}\"}\n",
    )
    .unwrap();
    for command in ["validate", "plan", "graph"] {
        let out = pgdeploy(&[
            command,
            "-i",
            inventory.to_str().unwrap(),
            playbook.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            all.contains("copy.mode: invalid value string `********`"),
            "{command}: {all}"
        );
        assert!(
            !all.contains("cr\\et9") && !all.contains("se\"cr"),
            "{command}: {all}"
        );
    }
}

/// `apply PLANFILE` and `apply -i INVENTORY PLAYBOOK` are told apart by `-i`; mixing them is
/// a usage error (64) that says how to write each.
#[test]
fn apply_of_a_saved_plan_refuses_planning_options() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    std::fs::write(
        &plan,
        "{\"format\": \"pgdeploy-plan\", \"format_version\": 1}\n",
    )
    .unwrap();
    let plan = plan.to_str().unwrap();
    for (args, says) in [
        (
            vec!["apply", plan, "--limit", "db1"],
            "`--limit` cannot be used with a saved plan".to_string(),
        ),
        (
            vec!["apply", plan, "--check"],
            "`--check` cannot be used with a saved plan".to_string(),
        ),
        (
            vec!["apply", "-i", "inventories/seed003.yml", plan],
            format!("`{plan}` is a saved plan: apply it without `-i` (`pgdeploy apply {plan}`)"),
        ),
    ] {
        let out = pgdeploy(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(&says), "{args:?}: {stderr}");
        assert!(
            stderr.contains("pgdeploy apply <PLANFILE> [OPTIONS]"),
            "{args:?}: {stderr}"
        );
    }
    // A plan file of another version: refused naming it, exit 1.
    let out = pgdeploy(&["apply", plan]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "error: `{plan}` was made by pgdeploy `unknown`, this is pgdeploy `{}`",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A secret on the line an error points at is masked in the excerpt, whether the redactor
/// knew it (it is a vault or secret-named value) or not yet (the inventory failed to load).
#[test]
fn the_source_excerpt_never_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inv.yml");
    // The file does not load: no redactor exists yet.
    std::fs::write(
        &inventory,
        "all:\n  hosts:\n    h1: {ansible_port: x22, db_password: Hunter2-excerpt}\n",
    )
    .unwrap();
    let playbook = dir.path().join("pb.yml");
    std::fs::write(&playbook, "- hosts: all\n  tasks: []\n").unwrap();
    let args = [
        "validate",
        "-i",
        inventory.to_str().unwrap(),
        playbook.to_str().unwrap(),
    ];
    let out = pgdeploy(&args);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 |     h1: {ansible_port: x22, db_password: ********}\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("  |{}^^^\n", " ".repeat(24))),
        "{stderr}"
    );
    assert!(!stderr.contains("Hunter2-excerpt"), "{stderr}");
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let out = pgdeploy(&json_args);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("Hunter2-excerpt"), "{stdout}");
    // A secret the redactor knows, on the line of a playbook error.
    std::fs::write(
        &inventory,
        "all:\n  hosts:\n    h1: {ansible_connection: local}\n  vars:\n    vrrp_secret_key: 'Zq9-excerpt\"x'\n",
    )
    .unwrap();
    std::fs::write(
        &playbook,
        "- hosts: all\n  tasks:\n    - copy: {dest: /tmp/x, content: 'Zq9-excerpt\"x', mdoe: 1}\n",
    )
    .unwrap();
    let out = pgdeploy(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 |     - copy: {dest: /tmp/x, content: '********', mdoe: 1}\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("Zq9-excerpt"), "{stderr}");
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn validate_json_gives_one_object_per_diagnostic_and_a_summary() {
    let case = "tests/corpus/30-many-errors-at-once/playbook.yml";
    let out = pgdeploy(&[
        "validate",
        "--json",
        "-i",
        "tests/corpus/inventory.yml",
        case,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let first = &lines[0];
    assert_eq!(first["event"], "diagnostic");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["message"], "unknown field `onwer`");
    assert_eq!(first["file"], case);
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(3), Some(32))
    );
    assert_eq!(first["path"], "plays[0].tasks[0].directory.onwer");
    assert!(first["help"]
        .as_str()
        .unwrap()
        .starts_with("did you mean `owner`?"));
    assert_eq!(first["hosts"], serde_json::json!([]));
    assert_eq!(
        lines[3],
        serde_json::json!({"event": "summary", "valid": false, "errors": 3, "warnings": 0})
    );
    // Host-dependent errors list their hosts.
    let out = pgdeploy(&[
        "--json",
        "validate",
        "-i",
        "tests/corpus/43-template-fails-for-some-hosts/inventory.yml",
        "tests/corpus/43-template-fails-for-some-hosts/playbook.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_lines(&out)[0]["hosts"],
        serde_json::json!(["pg1", "pg2", "pg4", "pg5"])
    );
    // A valid playbook: its warnings, and a summary of what was checked.
    let out = pgdeploy(&[
        "validate",
        "--json",
        "-i",
        "inventories/seed003.yml",
        "playbooks/site.yml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["valid"], true);
    assert!(summary["steps"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn inventory_and_graph_json_errors_are_the_same_objects() {
    let out = pgdeploy(&[
        "inventory",
        "--json",
        "-i",
        "tests/corpus/33-inv-bad-port/inventory.yml",
        "--list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["event"], "diagnostic");
    assert_eq!(lines[0]["line"], 5);
    assert_eq!(lines.last().unwrap()["event"], "summary");
    // A run: the same objects where its events would be.
    let out = pgdeploy(&[
        "plan",
        "--json",
        "-i",
        "tests/corpus/inventory.yml",
        "tests/corpus/42-templated-task-unknown-param/playbook.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["message"], "unknown field `mdoe`");
    assert_eq!(lines.last().unwrap()["event"], "summary");
    let out = pgdeploy(&[
        "status",
        "--json",
        "-i",
        "tests/corpus/33-inv-bad-port/inventory.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out)[0]["column"], 21);
    let out = pgdeploy(&[
        "graph",
        "--json",
        "-i",
        "tests/corpus/inventory.yml",
        "tests/corpus/23-cycle/playbook.yml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert!(lines[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("dependency cycle"));
    assert_eq!(lines.last().unwrap()["errors"], 1);
}

/// The build script, compiled here too so its fallbacks are tested without a build.
#[allow(dead_code)]
#[path = "../build.rs"]
mod build_script;

#[test]
fn version_names_the_commit_when_built_from_git() {
    let out = pgdeploy(&["--version"]);
    let text = stdout(&out);
    let version = env!("CARGO_PKG_VERSION");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = Command::new("git")
        .args(["log", "-1", "--format=%h %cs"])
        .current_dir(root)
        .output();
    match git {
        Ok(g) if g.status.success() && root.join(".git").exists() => {
            let commit = String::from_utf8_lossy(&g.stdout).trim().to_string();
            assert_eq!(text, format!("pgdeploy {version} ({commit})\n"));
        }
        _ => assert_eq!(text, format!("pgdeploy {version}\n")),
    }
}

#[test]
fn the_build_script_falls_back_to_the_plain_version_and_finds_worktree_refs() {
    // Not a checkout (a crate tarball unpacked): the plain version, even inside another
    // repository.
    let plain = tempfile::tempdir().unwrap();
    assert_eq!(build_script::git_dir(plain.path()), None);
    assert_eq!(build_script::describe(plain.path()), None);
    assert_eq!(build_script::long_version("0.1.0", None), "0.1.0");
    assert_eq!(
        build_script::long_version("0.1.0", Some(("4090bf1".into(), "2026-12-01".into()))),
        "0.1.0 (4090bf1 2026-12-01)"
    );
    // A worktree: `.git` is a file, HEAD is in its git directory, the branch's ref in the
    // common directory.
    let root = tempfile::tempdir().unwrap();
    let common = root.path().join("main.git");
    let wt_git = common.join("worktrees/wt");
    std::fs::create_dir_all(wt_git.clone()).unwrap();
    std::fs::create_dir_all(common.join("refs/heads")).unwrap();
    std::fs::write(common.join("refs/heads/diag"), "4090bf1\n").unwrap();
    std::fs::write(wt_git.join("HEAD"), "ref: refs/heads/diag\n").unwrap();
    std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
    let checkout = root.path().join("wt");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(
        checkout.join(".git"),
        format!("gitdir: {}\n", wt_git.display()),
    )
    .unwrap();
    let git_dir = build_script::git_dir(&checkout).unwrap();
    assert_eq!(git_dir, wt_git);
    let watched = build_script::watched(&git_dir);
    assert_eq!(
        watched,
        [
            wt_git.join("HEAD"),
            wt_git.join("../..").join("refs/heads/diag")
        ]
    );
    // A detached HEAD: only HEAD itself.
    std::fs::write(wt_git.join("HEAD"), "4090bf1\n").unwrap();
    assert_eq!(build_script::watched(&git_dir), [wt_git.join("HEAD")]);
}

#[test]
fn completions_for_every_shell_and_a_man_page_naming_every_subcommand() {
    let bash = stdout(&pgdeploy(&["completions", "bash"]));
    assert!(bash.contains("apply"), "{bash}");
    assert!(bash.contains("--limit"), "{bash}");
    assert!(bash.contains("complete -F"), "{bash}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&pgdeploy(&["completions", shell]));
        assert!(script.contains("validate"), "{shell}: {script}");
    }
    let bogus = pgdeploy(&["completions", "tcsh"]);
    assert_eq!(bogus.status.code(), Some(64));
    let man = stdout(&pgdeploy(&["man"]));
    assert!(man.starts_with(".TH pgdeploy 1 "), "{}", &man[..200]);
    use clap::CommandFactory;
    let cli = pgdeploy::cli::Cli::command();
    for sub in cli.get_subcommands() {
        assert!(
            man.contains(&format!(".SS \"pgdeploy {}\"\n", sub.get_name())),
            "{} is not in the man page",
            sub.get_name()
        );
    }
    assert!(
        man.contains("\\-\\-limit"),
        "the options of each command are listed"
    );
    // Valid roff, when man is there to read it.
    if let Ok(out) = Command::new("man")
        .args(["--warnings", "-l", "-"])
        .env("MANWIDTH", "80")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(man.as_bytes())?;
            child.wait_with_output()
        })
    {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("warning"), "{stderr}");
    }
}

/// The day-2 commands check their own arguments before connecting to anything.
#[test]
fn day2_commands_check_their_arguments_offline() {
    let out = pgdeploy(&[
        "switchover",
        "-i",
        "inventories/seed003.yml",
        "--at",
        "tomorrow",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--at `tomorrow`: give an ISO 8601 time with its zone"),
        "{err}"
    );
    let out = pgdeploy(&["failover", "-i", "inventories/seed003.yml"]);
    assert_eq!(out.status.code(), Some(64), "--to is required");
    let out = pgdeploy(&["reinit", "-i", "inventories/seed003.yml"]);
    assert_eq!(out.status.code(), Some(64), "HOST is required");
    let out = pgdeploy(&["pause", "-i", "inventories/none.yml", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "no such inventory");
    let out = pgdeploy(&["restore", "-i", "inventories/seed003.yml", "--yes"]);
    assert_eq!(out.status.code(), Some(64), "a target is required");
    let out = pgdeploy(&[
        "restore",
        "-i",
        "inventories/seed003.yml",
        "--latest",
        "--target-lsn",
        "0/1",
    ]);
    assert_eq!(out.status.code(), Some(64), "one target only");
    let out = pgdeploy(&[
        "backup",
        "-i",
        "inventories/seed003.yml",
        "--type",
        "weekly",
    ]);
    assert_eq!(out.status.code(), Some(64), "full, diff or incr");
    for cmd in [
        "switchover",
        "failover",
        "restart",
        "reinit",
        "pause",
        "resume",
        "backup",
        "restore",
    ] {
        let help = stdout(&pgdeploy(&[cmd, "--help"]));
        assert!(
            help.contains("--yes") && help.contains("--timeout"),
            "{help}"
        );
    }
}

/// `pg_failover_profile` of `site.yml`: `default` and `fast` are valid, any other value is an
/// error at the place that reads it, before any host is contacted.
#[test]
fn the_failover_profile_is_checked_at_validate() {
    for profile in ["default", "fast"] {
        let out = pgdeploy(&[
            "validate",
            "-i",
            "inventories/seed003.yml",
            "playbooks/site.yml",
            "-e",
            &format!("pg_failover_profile={profile}"),
        ]);
        assert!(
            out.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = pgdeploy(&[
        "validate",
        "-i",
        "inventories/seed003.yml",
        "playbooks/site.yml",
        "-e",
        "pg_failover_profile=quick",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            ".tasks[0].patroni.dcs.ttl: `dcs_timings` has no key `quick` (its keys: `default`, `fast`)"
        ),
        "{err}"
    );
}

/// `verify --drill`'s refusals come before any host is touched (seed 003's hosts do not
/// exist here): a partition without a lab, a drill without `--ca`, a `--ca` without a
/// certificate; each exit 64, naming what is missing.
#[test]
fn drills_are_refused_before_any_host_is_touched() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let empty = empty.path().to_str().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--drill", "leader-partition", "--yes", "--ca", empty],
            "give `--lab NAME`",
        ),
        (&["--drill", "failover", "--yes"], "give `--ca FILE`"),
        (
            &["--drill", "switchover", "--yes", "--ca", empty],
            "no PEM certificate in it",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["verify", "-i", "inventories/seed003.yml"];
        all.extend_from_slice(args);
        let out = pgdeploy(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let out = pgdeploy(&[
        "verify",
        "-i",
        "inventories/seed003.yml",
        "--drill",
        "switchover",
        "--yes",
        "--ca",
        empty,
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(empty));
}
