//! Secrets never appear in anything the binary prints: values with `"`, `\`, newlines,
//! non-ASCII and a 1-character one, planted under nested names, play vars, Ansible's own
//! secret names, Ansible Vault and `lookup('env'|'file')`, used in `copy` and `template`
//! content, in a shell command, in a file mode (an error), in diffs and in JSON, are looked for in stdout and
//! stderr of `validate`, `inventory`, `graph`, `plan`, `plan --json`, `check`, `apply -vv` — real runs
//! over the local transport, writing only inside a temporary directory.

use std::path::Path;
use std::process::Command;

const ENV_NAME: &str = "PGDEPLOY_SECRETS_TEST_ENV";
const ENV_VALUE: &str = "Env\"Look\\Tail-Env8";
const FILE_VALUE: &str = "File-Lookup-Tail9";
/// Given with `-e` (JSON), over the inventory's `db_pw`.
const EXTRA_VALUE: &str = "E\"x\\tra\nXtra-Tail16";

/// Every planted secret (at least 4 characters), as planted.
const SECRETS: &[&str] = &[
    "se\"cr\\et9'-TailQuote1",
    "pâss-Tail-Nested7",
    "Play-Var-Tail5",
    "Play-Nested-Tail6",
    ENV_VALUE,
    FILE_VALUE,
    "OldRotated-Tail10",
    "Removed-Tail15",
    "Become-Tail11",
    "Db-Pw-Tail12",
    EXTRA_VALUE,
    "KeyLineAlphaTail13",
    "KeyLineBetaTail14",
    "visible-only-without-no-log",
    // Ansible Vault fixtures (tests/fixtures/vault/README.md).
    "Vault-Inline-Token",
    "Vault11-Admin-Word",
    "q\"uo\\te",
    "second-line",
];

/// Pieces of the secrets that no escaping changes: found in any form of the value.
const TAILS: &[&str] = &[
    "TailQuote1",
    "Tail-Nested7",
    "Play-Var-Tail5",
    "Play-Nested-Tail6",
    "Tail-Env8",
    "Lookup-Tail9",
    "OldRotated-Tail10",
    "Removed-Tail15",
    "Become-Tail11",
    "Db-Pw-Tail12",
    "Xtra-Tail16",
    "KeyLineAlphaTail13",
    "KeyLineBetaTail14",
    "pâss",
    "p\\u00e2ss",
    "Vault-Inline-Token",
    "Vault11-Admin-Word",
    "second-line",
    "uo\\te",
    "uo\\\\te",
];

/// The 1-character secret (`nested.deep.short_pw`), and the ways it would show.
const SHORT_LEAKS: &[&str] = &["short=Z", "`Z`", "\"Z\"", "mode Z"];

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
}

fn manifest(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// Inventory, playbooks, a template and a file for `lookup('file')` in a temporary directory.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path();
    let d = root.display();
    for sub in ["group_vars", "files", "templates", "out"] {
        std::fs::create_dir(root.join(sub)).unwrap();
    }
    // The vault fixtures: the encrypted group_vars file as it is, and the inventory's inline
    // `!vault` values (its `all.vars`), followed by this test's variables and host.
    std::fs::copy(
        manifest("tests/fixtures/vault/group_vars/all.yml"),
        root.join("group_vars/all.yml"),
    )
    .unwrap();
    let vault_inventory =
        std::fs::read_to_string(manifest("tests/fixtures/vault/inventory.yml")).unwrap();
    let vault_vars = &vault_inventory[..vault_inventory.find("  children:").unwrap()];
    let inventory = format!(
        r#"{vault_vars}    ansible_connection: local
    app_password: 'se"cr\et9''-TailQuote1'
    nested:
      deep:
        deep_password: "pâss-Tail-Nested7"
        short_pw: "Z"
    tls_private_key: |
      -----BEGIN TEST KEY-----
      KeyLineAlphaTail13
      KeyLineBetaTail14
      -----END TEST KEY-----
    ansible_become_password: "Become-Tail11"
    db_pw: "Db-Pw-Tail12"
  hosts:
    local1: {{}}
"#
    );
    std::fs::write(root.join("inventory.yml"), inventory).unwrap();
    std::fs::write(root.join("files/secret.txt"), format!("{FILE_VALUE}\n")).unwrap();
    std::fs::write(
        root.join("templates/app.j2"),
        format!(
            "t={{{{ play_secret }}}} e={{{{ lookup('env', '{ENV_NAME}') }}}} f={{{{ lookup('file', 'secret.txt') }}}} s={{{{ nested.deep.short_pw }}}}\n"
        ),
    )
    .unwrap();
    // The current file: one secret line that stays, one whose secret is rotated, and an old
    // secret that no current value gives away (masked by its key's name).
    std::fs::write(
        root.join("out/app.conf"),
        "keep=se\"cr\\et9'-TailQuote1\nrot=OldRotated-Tail10\nother=1\nold_password = Removed-Tail15\n",
    )
    .unwrap();
    let play_vars = format!(
        r#"  vars:
    play_secret: "Play-Var-Tail5"
    app:
      api_token: "Play-Nested-Tail6"
    env_value: "{{{{ lookup('env', '{ENV_NAME}') }}}}"
    file_value: "{{{{ lookup('file', 'secret.txt') }}}}""#
    );
    std::fs::write(
        root.join("pb.yml"),
        format!(
            r#"- name: secrets play
  hosts: all
{play_vars}
  tasks:
    - name: secrets in a file
      copy:
        dest: "{d}/out/app.conf"
        content: |
          keep={{{{ app_password }}}}
          rot={{{{ play_secret }}}}
          deep={{{{ nested.deep.deep_password }}}}
          short={{{{ nested.deep.short_pw }}}}
          token={{{{ app.api_token }}}}
          env={{{{ env_value }}}}
          file={{{{ file_value }}}}
          vault={{{{ app_word }}}} {{{{ admin_word }}}}
          odd={{{{ odd_word }}}}
          become={{{{ ansible_become_password }}}}
          db={{{{ db_pw }}}}
          {{{{ tls_private_key }}}}
          other=2
    - name: a rendered template
      template:
        src: app.j2
        dest: "{d}/out/t.conf"
    - name: a command with secrets
      command:
        cmd: "echo {{{{ app_password | quote }}}} {{{{ env_value | quote }}}} {{{{ nested.deep.short_pw }}}} && touch {d}/out/ran"
        creates: "{d}/out/ran"
    - name: hidden task
      no_log: "yes"
      command:
        cmd: "echo visible-only-without-no-log > {d}/out/hidden.conf"
        creates: "{d}/out/hidden.conf"
"#
        ),
    )
    .unwrap();
    // Secrets where a file mode is expected: compile errors that quote the value.
    let modes: String = [
        "{{ app_password }}",
        "{{ nested.deep.short_pw }}",
        "{{ nested.deep.deep_password }}",
        "{{ play_secret }}",
        "{{ env_value }}",
        "{{ file_value }}",
        "{{ odd_word }}",
        "{{ app_word }}",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| format!("    - copy: {{dest: \"{d}/out/m{i}\", content: x, mode: \"{m}\"}}\n"))
    .collect();
    std::fs::write(
        root.join("bad.yml"),
        format!("- hosts: all\n{play_vars}\n  tasks:\n{modes}"),
    )
    .unwrap();
    Fixture { dir }
}

struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn pgdeploy(fx: &Fixture, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdeploy"));
    // Applies of parallel tests on this machine wait for each other's lock.
    cmd.env("PGDEPLOY_LOCK_WAIT", "120");
    cmd.current_dir(fx.dir.path())
        .args(args)
        .env(ENV_NAME, ENV_VALUE)
        .env(
            "PGDEPLOY_VAULT_PASSWORD_FILE",
            manifest("tests/fixtures/vault/password"),
        )
        .env("NO_COLOR", "1")
        .env_remove("PGDEPLOY_LOG");
    let out = cmd.output().expect("pgdeploy runs");
    Run {
        what: args.join(" "),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// No planted secret in either stream, in any form.
fn assert_no_secret(run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let json_forms = SECRETS.iter().map(|s| {
            let j = serde_json::to_string(s).unwrap();
            j[1..j.len() - 1].to_string()
        });
        for leak in SECRETS
            .iter()
            .map(|s| s.to_string())
            .chain(json_forms)
            .chain(TAILS.iter().map(|s| s.to_string()))
            .chain(SHORT_LEAKS.iter().map(|s| s.to_string()))
        {
            assert!(
                !text.contains(&leak),
                "`{}` shows `{leak}` on {stream}:\n{text}",
                run.what
            );
        }
    }
}

#[test]
fn no_secret_appears_in_any_stream_of_any_command() {
    let fx = fixture();
    let inv = fx.path("inventory.yml");
    let pb = fx.path("pb.yml");
    let bad = fx.path("bad.yml");

    let validate = pgdeploy(&fx, &["validate", "-i", &inv, &pb]);
    assert_no_secret(&validate);
    assert_eq!(validate.code, Some(0), "{}", validate.stderr);
    // The 1-character secret is named (never shown) once.
    assert_eq!(
        validate
            .stderr
            .matches("warning: the secret `short_pw` has fewer than 4 characters")
            .count(),
        1,
        "{}",
        validate.stderr
    );

    for format in ["text", "dot"] {
        let graph = pgdeploy(&fx, &["graph", "-i", &inv, &pb, "--format", format]);
        assert_no_secret(&graph);
        assert_eq!(graph.code, Some(0), "{}", graph.stderr);
    }

    for args in [
        vec!["inventory", "-i", &inv, "--list"],
        vec!["inventory", "-i", &inv, "--host", "local1"],
    ] {
        let run = pgdeploy(&fx, &args);
        assert_no_secret(&run);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        // Ansible's own secret names are masked by name.
        assert!(
            run.stdout
                .contains("\"ansible_become_password\": \"********\""),
            "{}",
            run.stdout
        );
    }

    // Secrets where a file mode is expected: every command stops at the compile error.
    for command in ["validate", "plan", "check", "graph"] {
        for json in [false, true] {
            let mut args = vec![command, "-i", &inv, &bad];
            if json {
                args.insert(0, "--json");
            }
            let run = pgdeploy(&fx, &args);
            assert_no_secret(&run);
            assert_eq!(run.code, Some(1), "{}: {}", run.what, run.stderr);
            // With `--json` the diagnostics are JSON objects on stdout.
            let (shown, wanted) = if json {
                (&run.stdout, "invalid value string `********`")
            } else {
                (&run.stderr, "copy.mode: invalid value string `********`")
            };
            assert!(shown.contains(wanted), "{}: {shown}", run.what);
        }
    }

    let plan = pgdeploy(&fx, &["plan", "-i", &inv, &pb]);
    assert_no_secret(&plan);
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let out = &plan.stdout;
    // Masked where they are, not dropped: the test sees the lines it looks into.
    assert!(out.contains("+short=********\n"), "{out}");
    assert!(out.contains("+deep=********\n"), "{out}");
    assert!(out.contains("+env=********\n"), "{out}");
    assert!(out.contains("+file=********\n"), "{out}");
    assert!(out.contains("+odd=********\n"), "{out}");
    assert!(out.contains("+********\n"), "{out}");
    assert!(
        out.contains("+t=******** e=******** f=******** s=********\n"),
        "{out}"
    );
    // The unchanged secret line is context, not a change; the rotated one is a change
    // that shows neither value.
    assert!(out.contains("\n       keep=********\n"), "{out}");
    assert!(!out.contains("-keep"), "{out}");
    assert!(out.contains("-rot=********\n"), "{out}");
    assert!(out.contains("+rot=******** (secret changed)\n"), "{out}");
    assert!(out.contains("-old_password = ********\n"), "{out}");
    // `no_log`: the change counts, its details do not show.
    assert!(
        out.contains(
            "change  [local1] hidden task\n    1 change (details and diff hidden: no_log)\n"
        ),
        "{out}"
    );

    let json = pgdeploy(&fx, &["--json", "plan", "-i", &inv, &pb]);
    assert_no_secret(&json);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let diff = events
        .iter()
        .find(|e| e["task"] == "secrets in a file" && e["event"] == "step_finished")
        .map(|e| e["changes"][0]["diff"].clone())
        .expect("the file's change");
    let after = diff["after"].as_str().unwrap();
    assert!(after.contains("keep=********\n"), "{after}");
    assert!(after.contains("short=********\n"), "{after}");
    assert!(after.contains("rot=******** (secret changed)\n"), "{after}");
    assert_eq!(
        diff["before"].as_str().unwrap(),
        "keep=********\nrot=********\nother=1\nold_password = ********\n"
    );

    let hidden = events
        .iter()
        .find(|e| e["task"] == "hidden task" && e["event"] == "step_finished")
        .expect("the no_log task's result");
    assert_eq!(hidden["status"], "changed");
    assert_eq!(
        hidden["changes"],
        serde_json::json!([{"summary": "1 change (details and diff hidden: no_log)"}])
    );

    let check = pgdeploy(&fx, &["check", "-i", &inv, &pb]);
    assert_no_secret(&check);
    assert_eq!(check.code, Some(2), "{}", check.stderr);

    // A secret given with `-e`, over the inventory's `db_pw` (a name outside the pattern's
    // words): masked everywhere; a saved plan refuses to keep it.
    let extra = serde_json::json!({ "db_pw": EXTRA_VALUE }).to_string();
    for args in [
        vec!["plan", "-i", &inv, &pb, "-e", &extra],
        vec!["--json", "plan", "-i", &inv, &pb, "-e", &extra],
        vec!["check", "-i", &inv, &pb, "-e", &extra],
    ] {
        let run = pgdeploy(&fx, &args);
        assert_no_secret(&run);
        assert!(
            matches!(run.code, Some(0 | 2)),
            "{}: {}",
            run.what,
            run.stderr
        );
        assert!(
            run.stdout.contains("db=********"),
            "{}: {}",
            run.what,
            run.stdout
        );
    }
    let refused = pgdeploy(
        &fx,
        &["plan", "--out", "x.plan", "-i", &inv, &pb, "-e", &extra],
    );
    assert_no_secret(&refused);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the plan was not saved to `x.plan`: `-e` argument 1 holds a secret"),
        "{}",
        refused.stderr
    );
    assert!(!Path::new(&fx.path("x.plan")).exists());

    // A saved plan: neither its output nor the file holds a secret, and applying it (the
    // plan made again on the host, compared masked) refuses nothing while nothing changed.
    // On a fixture of its own, since it applies.
    let fx2 = fixture();
    let (inv2, pb2) = (fx2.path("inventory.yml"), fx2.path("pb.yml"));
    let saved = pgdeploy(&fx2, &["plan", "--out", "saved.plan", "-i", &inv2, &pb2]);
    assert_no_secret(&saved);
    assert_eq!(saved.code, Some(0), "{}", saved.stderr);
    let file = Run {
        what: "the file of plan --out".into(),
        code: None,
        stdout: std::fs::read_to_string(fx2.path("saved.plan")).expect("the plan was saved"),
        stderr: String::new(),
    };
    assert_no_secret(&file);
    assert!(
        file.stdout.contains("rot=******** (secret changed)"),
        "{}",
        file.stdout
    );
    let applied = pgdeploy(&fx2, &["-vv", "apply", "--diff", "saved.plan"]);
    assert_no_secret(&applied);
    assert_eq!(applied.code, Some(0), "{}", applied.stderr);
    let written = std::fs::read_to_string(fx2.path("out/app.conf")).unwrap();
    assert!(written.contains("short=Z\n"), "{written}");

    let apply = pgdeploy(&fx, &["-vv", "apply", "--diff", "-i", &inv, &pb]);
    assert_no_secret(&apply);
    assert_eq!(apply.code, Some(0), "{}", apply.stderr);
    // `-vv` logs the other tasks' commands, not the `no_log` task's.
    assert!(apply.stderr.contains("touch "), "{}", apply.stderr);
    assert!(!apply.stderr.contains("hidden.conf"), "{}", apply.stderr);
    // The files hold the real values: only the output is masked.
    let written = std::fs::read_to_string(fx.path("out/app.conf")).unwrap();
    assert!(
        written.contains("keep=se\"cr\\et9'-TailQuote1\n"),
        "{written}"
    );
    assert!(written.contains("short=Z\n"), "{written}");
    assert!(written.contains(&format!("env={ENV_VALUE}\n")), "{written}");

    let again = pgdeploy(&fx, &["--json", "check", "-i", &inv, &pb]);
    assert_no_secret(&again);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
}

#[test]
fn a_missing_lookup_file_is_an_error_naming_the_paths() {
    let fx = fixture();
    let pb = fx.path("missing.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  tasks:\n    - copy: {dest: /tmp/pgdeploy-never, content: \"{{ lookup('file', 'nope.txt') }}\"}\n",
    )
    .unwrap();
    let run = pgdeploy(&fx, &["validate", "-i", &fx.path("inventory.yml"), &pb]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "`lookup('file', 'nope.txt')`: no such file (looked for `{}`, `{}`)",
            fx.path("files/nope.txt"),
            fx.path("nope.txt")
        )),
        "{}",
        run.stderr
    );
    assert_no_secret(&run);
}
