//! Ansible's keywords and flags, end to end over the local transport (login root, so `become`
//! changes nothing; the playbook only plans paths that do not exist): `-e`, `--tags`,
//! `--skip-tags`, `always`/`never`, `gather_facts: no`, `become: "yes"`, and inventory
//! warnings printed by every command. The step lists are the ones `ansible-playbook` runs for
//! the same playbook and flags.

use std::process::{Command, Output};

const INVENTORY: &str = "tests/fixtures/ansible/inv.yml";
const PLAYBOOK: &str = "tests/fixtures/ansible/pb.yml";

fn pgdeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .env("PGDEPLOY_LOCK_WAIT", "120")
        .args(args)
        .arg("--no-color")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .output()
        .expect("pgdeploy runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr:\n{}\nstdout:\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

/// The steps of `graph --format text` (one line per step, edges left out).
fn graph_steps(flags: &[&str]) -> Vec<String> {
    let mut args = vec!["graph", "-i", INVENTORY, PLAYBOOK, "--format", "text"];
    args.extend_from_slice(flags);
    let out = pgdeploy(&args);
    ok(&out)
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' ') && !l.starts_with("end of play"))
        .map(str::to_string)
        .collect()
}

/// `task on host` for each host of `tasks`, hosts in inventory order.
fn on_both(tasks: &[&str]) -> Vec<String> {
    tasks
        .iter()
        .flat_map(|t| {
            ["a1", "a2"].map(|h| {
                if let Some(handler) = t.strip_prefix("handler ") {
                    format!("handler `{handler}` on `{h}`")
                } else {
                    format!("`{t}` on `{h}`")
                }
            })
        })
        .collect()
}

#[test]
fn tags_select_the_steps_ansible_runs() {
    let cases: &[(&[&str], &[&str])] = &[
        // No flag: every task but the `never` one.
        (
            &[],
            &[
                "base directory",
                "always touched",
                "config file",
                "untagged file",
                "handler reload",
            ],
        ),
        // A task tag: `always` still runs; the handler its task notifies stays.
        (
            &["--tags", "config"],
            &["always touched", "config file", "handler reload"],
        ),
        // A play tag is inherited by the play's tasks, a `never` one included: it then has a
        // tag that was asked for, and Ansible runs it.
        (
            &["--tags", "setup"],
            &["base directory", "always touched", "debug dump"],
        ),
        // `never` runs when its other tag is asked for.
        (&["-t", "debug"], &["always touched", "debug dump"]),
        (
            &["--tags", "all,debug"],
            &[
                "base directory",
                "always touched",
                "debug dump",
                "config file",
                "untagged file",
                "handler reload",
            ],
        ),
        // `always` is skipped only by name.
        (
            &["--skip-tags", "always"],
            &[
                "base directory",
                "config file",
                "untagged file",
                "handler reload",
            ],
        ),
        // The handler notified only by a skipped task cannot run.
        (
            &["--skip-tags", "config", "--skip-tags", "setup"],
            &["untagged file"],
        ),
        (
            &["--tags", "untagged"],
            &["always touched", "untagged file"],
        ),
        (
            &["--tags", "tagged"],
            &[
                "base directory",
                "always touched",
                "config file",
                "handler reload",
            ],
        ),
        (
            &["--tags", "setup", "--skip-tags", "always,debug"],
            &["base directory"],
        ),
    ];
    for (flags, tasks) in cases {
        assert_eq!(graph_steps(flags), on_both(tasks), "flags {flags:?}");
    }
}

/// The steps `plan --json` planned: (task, host) of each `step_finished`, in event order
/// sorted by the playbook's order of tasks then hosts.
fn planned(flags: &[&str]) -> (Vec<(String, String)>, Vec<serde_json::Value>, String) {
    let mut args = vec!["plan", "--json", "-i", INVENTORY, PLAYBOOK];
    args.extend_from_slice(flags);
    let out = pgdeploy(&args);
    let stdout = ok(&out);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let mut steps: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_string(),
                e["host"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let order = [
        "base directory",
        "always touched",
        "debug dump",
        "config file",
        "untagged file",
        "reload",
    ];
    steps.sort_by_key(|(t, h)| (order.iter().position(|o| o == t), h.clone()));
    (steps, events, text(&out.stderr))
}

#[test]
fn plan_runs_the_selected_steps_with_extra_vars_above_everything() {
    let (steps, events, stderr) = planned(&[
        "-e",
        "greeting='from -e' unused=1",
        "-e",
        r#"{"db_password": "extra-secret-99"}"#,
        "--tags",
        "debug,config",
    ]);
    let pairs = |tasks: &[&str]| -> Vec<(String, String)> {
        tasks
            .iter()
            .flat_map(|t| ["a1", "a2"].map(|h| (t.to_string(), h.to_string())))
            .collect()
    };
    assert_eq!(
        steps,
        pairs(&["always touched", "debug dump", "config file", "reload"])
    );
    let all = events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    // -e wins over host vars (`a2`) and over play vars (`config`).
    let after = |task: &str, host: &str| -> String {
        events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["task"] == task && e["host"] == host)
            .and_then(|e| e["changes"][0]["diff"]["after"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(after("debug dump", "a2"), "from -e ********\n");
    // A trailing newline after a single expression is kept: the file ends with it.
    assert_eq!(after("config file", "a1"), "from -e\n", "{all}");
    for secret in ["extra-secret-99", "inventory-secret-1"] {
        assert!(!all.contains(secret), "secret `{secret}` printed:\n{all}");
        assert!(!stderr.contains(secret), "secret `{secret}` on stderr");
    }
    let run_started = events.iter().find(|e| e["event"] == "run_started").unwrap();
    assert_eq!(run_started["steps"], 9, "{all}");
}

#[test]
fn no_facts_are_gathered_when_no_play_asks_for_them() {
    // `gather_facts: no` and `"off"`: the facts script never runs; the probes still go in one
    // command per host before the first step (then one per play, after its boundary).
    let out = pgdeploy(&["plan", "-v", "-i", INVENTORY, PLAYBOOK]);
    ok(&out);
    let log = text(&out.stderr);
    assert!(!log.contains("==os-release"), "{log}");
    let execs = log
        .lines()
        .filter(|l| l.contains("local exec host=a1"))
        .count();
    assert_eq!(execs, 3, "{log}");
    // The same playbook with facts gathered in its first play runs the facts script once.
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("pb.yml");
    let yaml = std::fs::read_to_string(PLAYBOOK).unwrap();
    std::fs::write(
        &pb,
        yaml.replacen("gather_facts: no", "gather_facts: yes", 1),
    )
    .unwrap();
    let out = pgdeploy(&["plan", "-v", "-i", INVENTORY, pb.to_str().unwrap()]);
    ok(&out);
    let log = text(&out.stderr);
    let facts = log
        .split("local exec host=")
        .filter(|command| command.starts_with("a1 ") && command.contains("==os-release"))
        .count();
    assert_eq!(facts, 1, "{log}");
}

#[test]
fn extra_vars_from_a_file_and_their_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("vars.yml");
    std::fs::write(
        &good,
        "greeting: from a file\nbase: /nonexistent-pgdeploy-e\n",
    )
    .unwrap();
    let steps = graph_steps(&["-e", &format!("@{}", good.display()), "--tags", "config"]);
    assert_eq!(
        steps,
        on_both(&["always touched", "config file", "handler reload"])
    );

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "greeting: [unclosed\n").unwrap();
    let out = pgdeploy(&[
        "validate",
        "-i",
        INVENTORY,
        PLAYBOOK,
        "-e",
        &format!("@{}", bad.display()),
        "-e",
        "novalue",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("error: {}:2:1: invalid YAML", bad.display())),
        "{err}"
    );
    assert!(
        err.contains("error: -e: `novalue` is not `name=value`"),
        "{err}"
    );
    // An extra var reaches the connection variables too, located by its name.
    let out = pgdeploy(&[
        "validate",
        "-i",
        INVENTORY,
        PLAYBOOK,
        "-e",
        "ansible_port=seventy",
    ]);
    assert_eq!(
        text(&out.stderr),
        "error: -e ansible_port: ansible_port: `ansible_port` must be a port number from 1 to 65535, found `seventy`\n\n\
         1 error found, no host was contacted\n"
    );
}

#[test]
fn an_unknown_tag_is_a_warning_listing_the_playbook_tags() {
    let out = pgdeploy(&["validate", "-i", INVENTORY, PLAYBOOK, "--tags", "confg"]);
    ok(&out);
    insta::assert_snapshot!("unknown_tag_warning", text(&out.stderr));
}

#[test]
fn a_fact_in_a_play_without_gather_facts_is_a_compile_error() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("pb.yml");
    // Every spelling Ansible accepts for a boolean keyword; a fact where facts are gathered
    // (later play) is fine, where they are not it is an error naming the keyword.
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - directory:\n        path: \"/nonexistent/{{ ansible_hostname }}\"\n\
         - hosts: a1\n  gather_facts: 'Yes'\n  become: \"yes\"\n  any_errors_fatal: On\n  tasks:\n    - directory:\n        path: \"/nonexistent/{{ ansible_hostname }}\"\n      become: 0\n",
    )
    .unwrap();
    let run = || {
        let out = pgdeploy(&["validate", "-i", INVENTORY, pb.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        text(&out.stderr).replace(&pb.display().to_string(), "pb.yml")
    };
    insta::assert_snapshot!("gather_facts_error", run());
    let yaml = std::fs::read_to_string(&pb).unwrap();
    std::fs::write(
        &pb,
        yaml.replace("'Yes'", "'maybe'")
            .replace("become: 0", "become: 2"),
    )
    .unwrap();
    insta::assert_snapshot!("boolean_keyword_errors", run());
}

#[test]
fn inventory_warnings_are_printed_once_by_every_command() {
    let inv = "tests/fixtures/ansible/typo/hosts.yml";
    let warning = "warning: tests/fixtures/ansible/typo/group_vars/postgress.yml: group `postgress` \
                   is not in the inventory; these variables are not used\n  |\n  = help: did you mean `postgres`?\n";
    let with_playbook = |cmd: &str| {
        pgdeploy(&[
            cmd,
            "-i",
            inv,
            PLAYBOOK,
            "-e",
            "base=/nonexistent-pgdeploy-ansible greeting=x db_password=abcdefgh",
        ])
    };
    for out in [
        with_playbook("validate"),
        with_playbook("graph"),
        with_playbook("plan"),
        with_playbook("check"),
        pgdeploy(&["inventory", "-i", inv, "--list"]),
        // Fails (no cluster here) after loading the inventory: the warning is shown anyway.
        pgdeploy(&["status", "-i", inv]),
    ] {
        let stderr = text(&out.stderr);
        assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    }
}
