//! What the binary prints, and where, in real runs over the local transport
//! (`ansible_connection: local`; the playbook only plans paths that do not exist, so nothing
//! on this machine changes): results on stdout in a fixed order, progress only on a
//! terminal's stderr, usage errors exit 64, a closed stdout ends the command quietly.

use std::process::{Command, Output, Stdio};

const INVENTORY: &str = "tests/fixtures/output/inv.yml";
const PLAYBOOK: &str = "tests/fixtures/output/pb.yml";

/// The binary in the crate's folder, with none of the colour variables of the caller.
fn pgdeploy() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdeploy"));
    // Applies of parallel tests on this machine wait for each other's lock.
    cmd.env("PGDEPLOY_LOCK_WAIT", "120");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env("TERM", "xterm");
    cmd
}

fn plan() -> Command {
    let mut cmd = pgdeploy();
    cmd.args(["plan", "-i", INVENTORY, PLAYBOOK]);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("pgdeploy runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `sh_command` run by `script` in a pseudo-terminal: the terminal's output (stdout and
/// stderr of the command, unless redirected) and the command's exit code.
fn in_terminal(sh_command: &str, term: &str) -> (i32, String) {
    let out = Command::new("script")
        .args(["-qec", sh_command, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TERM", term)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

#[test]
fn plan_to_a_file_holds_the_whole_plan_in_play_task_host_order() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("plan.txt");
    let file = std::fs::File::create(&path).expect("plan.txt");
    let out = run(plan().stdout(file));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    let plan = std::fs::read_to_string(&path).expect("plan.txt read");
    assert!(!plan.contains('\x1b'), "colour in a file:\n{plan}");
    insta::assert_snapshot!("plan_to_a_file", plan);
}

#[test]
fn ten_runs_print_the_same_bytes() {
    let first = run(&mut plan());
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    for _ in 0..9 {
        let again = run(&mut plan());
        assert_eq!(text(&again.stdout), text(&first.stdout));
    }
}

#[test]
fn at_a_terminal_results_still_go_to_stdout_and_progress_to_stderr() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("plan.txt");
    let bin = env!("CARGO_BIN_EXE_pgdeploy");
    let (code, terminal) = in_terminal(
        &format!("{bin} plan -i {INVENTORY} {PLAYBOOK} > {}", path.display()),
        "xterm",
    );
    assert_eq!(code, 0, "{terminal}");
    let plan = std::fs::read_to_string(&path).expect("plan.txt read");
    assert_eq!(plan, text(&run(&mut plan_cmd_piped()).stdout));
    assert!(plan.contains("RECAP"), "{plan}");
    assert!(!plan.contains('\x1b'), "colour in a file:\n{plan}");
    // The terminal (stderr) got the progress bar and none of the results.
    assert!(terminal.contains("steps"), "no progress bar: {terminal:?}");
    assert!(
        !terminal.contains("RECAP"),
        "results on stderr: {terminal:?}"
    );
}

fn plan_cmd_piped() -> Command {
    let mut cmd = plan();
    cmd.stdout(Stdio::piped());
    cmd
}

#[test]
fn with_term_dumb_a_terminal_gets_the_results_and_no_progress_bar() {
    let bin = env!("CARGO_BIN_EXE_pgdeploy");
    let (code, terminal) = in_terminal(&format!("{bin} plan -i {INVENTORY} {PLAYBOOK}"), "dumb");
    assert_eq!(code, 0, "{terminal}");
    assert!(terminal.contains("RECAP"), "{terminal:?}");
    assert!(
        terminal.contains("change  [h6] a touched file"),
        "{terminal:?}"
    );
    assert!(
        !terminal.contains('\x1b'),
        "escapes with TERM=dumb: {terminal:?}"
    );
}

#[test]
fn colour_only_on_a_terminal_or_when_forced() {
    let piped = run(&mut plan());
    assert!(!text(&piped.stdout).contains('\x1b'));
    let forced = run(plan().env("CLICOLOR_FORCE", "1"));
    assert!(text(&forced.stdout).contains("\x1b[33mchange"));
    let refused = run(plan().env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1"));
    assert!(!text(&refused.stdout).contains('\x1b'));
    let flag = run(plan().env("CLICOLOR_FORCE", "1").arg("--no-color"));
    assert!(!text(&flag.stdout).contains('\x1b'));
    // Logs on a piped stderr are plain too.
    let logs = run(plan().arg("-v"));
    assert!(!logs.stderr.is_empty(), "no logs with -v");
    assert!(
        !text(&logs.stderr).contains('\x1b'),
        "{}",
        text(&logs.stderr)
    );
}

#[test]
fn check_exits_2_on_drift_and_json_events_stay_one_per_line() {
    let out = run(pgdeploy().args(["check", "-i", INVENTORY, PLAYBOOK]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let json = run(pgdeploy().args(["plan", "--json", "-i", INVENTORY, PLAYBOOK]));
    let lines: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let finished = lines
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .count();
    assert_eq!(finished, 18);
    assert!(lines
        .iter()
        .all(|e| e.get("key").is_none() && e.get("order").is_none()));
}

#[test]
fn usage_errors_exit_64_and_help_and_version_exit_0() {
    let bogus = run(pgdeploy().args(["check", "--bogus", "-i", INVENTORY, PLAYBOOK]));
    assert_eq!(bogus.status.code(), Some(64));
    assert!(
        text(&bogus.stderr).contains("'--bogus'"),
        "{}",
        text(&bogus.stderr)
    );
    assert!(bogus.stdout.is_empty());
    let missing = run(pgdeploy().args(["plan", PLAYBOOK]));
    assert_eq!(missing.status.code(), Some(64), "{}", text(&missing.stderr));
    let nothing = run(&mut pgdeploy());
    assert_eq!(nothing.status.code(), Some(64));
    for args in [&["--help"][..], &["--version"], &["check", "--help"]] {
        let out = run(pgdeploy().args(args));
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

/// `cmd` with its stdout a pipe whose reading end is already closed.
fn into_closed_pipe(cmd: &mut Command) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills both descriptors on success; each is owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    let child = cmd.spawn().expect("pgdeploy starts");
    child.wait_with_output().expect("pgdeploy ends")
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_141() {
    for args in [
        &["inventory", "-i", "inventories/seed003.yml", "--list"][..],
        &["inventory", "-i", "inventories/seed003.yml", "--graph"],
        &[
            "graph",
            "-i",
            "inventories/seed003.yml",
            "playbooks/site.yml",
        ],
        &[
            "validate",
            "-i",
            "inventories/seed003.yml",
            "playbooks/site.yml",
        ],
        &["plan", "-i", INVENTORY, PLAYBOOK],
        &["plan", "--json", "-i", INVENTORY, PLAYBOOK],
        &["--help"],
        &["man"],
        &["completions", "bash"],
    ] {
        let out = into_closed_pipe(pgdeploy().args(args));
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}");
    }
}

/// `cmd` with its stderr a pipe whose reading end is already closed.
fn stderr_into_closed_pipe(cmd: &mut Command) -> Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills both descriptors on success; each is owned once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    cmd.stderr(writer).stdout(Stdio::piped());
    let child = cmd.spawn().expect("pgdeploy starts");
    child.wait_with_output().expect("pgdeploy ends")
}

const BROKEN: [&str; 4] = [
    "validate",
    "-i",
    "tests/corpus/inventory.yml",
    "tests/corpus/30-many-errors-at-once/playbook.yml",
];

#[test]
fn a_closed_stderr_never_panics_and_keeps_the_exit_code() {
    let cases: [(&[&str], i32); 6] = [
        // Diagnostics (errors), then the count.
        (&BROKEN, 1),
        (&["--json", "validate", BROKEN[1], BROKEN[2], BROKEN[3]], 1),
        // `-vv` logs through the log formatter, and a whole run.
        (&["-vv", "plan", "-i", INVENTORY, PLAYBOOK], 0),
        // A usage error (clap's message).
        (&["check", "--bogus"], 64),
        // A top-level error.
        (&["inventory", "-i", INVENTORY, "--host", "nope"], 1),
        // A warning, and results on stdout.
        (
            &["validate", "-i", "tests/fixtures/output/inv.yml", PLAYBOOK],
            0,
        ),
    ];
    for (args, want) in cases {
        let out = stderr_into_closed_pipe(pgdeploy().args(args));
        assert_eq!(out.status.code(), Some(want), "{args:?}");
        let stdout = text(&out.stdout);
        assert!(!stdout.contains("panicked"), "{args:?}: {stdout}");
    }
    // `2>&-`: the descriptor itself closed, as a shell does it.
    let bin = env!("CARGO_BIN_EXE_pgdeploy");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{bin} {} 2>&-", BROKEN.join(" ")))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("sh runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    // And the usual way to meet it: both streams into `head -1` (exit 101, a panic, before).
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {bin} {} 2>&1 | head -1",
            BROKEN.join(" ")
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("sh runs");
    let first = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{first}");
    assert!(first.starts_with("error: "), "{first}");
    assert!(!first.contains("panicked"), "{first}");
}

#[test]
fn diagnostics_are_coloured_only_on_a_terminal() {
    let piped = run(pgdeploy().args(BROKEN));
    assert_eq!(piped.status.code(), Some(1));
    let stderr = text(&piped.stderr);
    assert!(
        stderr.contains("  = help: did you mean `owner`?"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let bin = env!("CARGO_BIN_EXE_pgdeploy");
    let (code, terminal) = in_terminal(&format!("{bin} {}", BROKEN.join(" ")), "xterm");
    assert_eq!(code, 1, "{terminal}");
    assert!(terminal.contains('\x1b'), "{terminal}");
    assert!(terminal.contains('^'), "{terminal}");
    let (_, plain) = in_terminal(&format!("{bin} --no-color {}", BROKEN.join(" ")), "xterm");
    assert!(!plain.contains('\x1b'), "{plain}");
    let (_, dumb) = in_terminal(&format!("{bin} {}", BROKEN.join(" ")), "dumb");
    assert!(!dumb.contains('\x1b'), "{dumb}");
}
