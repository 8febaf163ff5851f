//! One `pgdeploy apply` at a time on a host (`crates/engine/src/run/lock.rs`), over the local
//! transport: while an apply runs, a second one stops before changing anything (exit 75), naming
//! the host and the first apply's pid, as text and as a JSON event; `--lock-wait` waits for it
//! instead; and an apply killed with SIGKILL leaves no lock behind. The lock is this machine's
//! (`/run/lock/pgdeploy`): this binary's one test is the only apply here while it runs.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const INVENTORY: &str = "all:\n  hosts:\n    here: {ansible_connection: local}\n";

fn playbook(seconds: u32) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: take a while\n      command: {{cmd: sleep {seconds}}}\n"
    )
}

fn pgdeploy(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdeploy"));
    cmd.current_dir(dir)
        .args(args)
        .arg("--no-color")
        .env_remove("PGDEPLOY_LOCK_WAIT")
        .stdin(Stdio::null());
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts `apply slow.yml` and waits until it holds the lock (its step has started).
fn first_apply(dir: &Path) -> Child {
    let child = pgdeploy(dir, &["apply", "--json", "-i", "inv.yml", "slow.yml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pgdeploy starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir("/run/lock/pgdeploy").is_ok_and(|mut d| {
        d.any(|e| {
            e.is_ok_and(|e| {
                e.file_name().to_string_lossy().starts_with("owner.")
                    && std::fs::read_to_string(e.path())
                        .is_ok_and(|o| o.contains(&format!("(pid {})", child.id())))
            })
        })
    }) {
        assert!(
            Instant::now() < deadline,
            "the first apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn quick(dir: &Path, extra: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut args = vec!["apply", "-i", "inv.yml", "quick.yml"];
    args.extend_from_slice(extra);
    let out = pgdeploy(dir, &args).output().expect("pgdeploy runs");
    (out, started.elapsed())
}

#[test]
fn a_second_apply_stops_before_changing_anything_and_a_killed_one_leaves_no_lock() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("inv.yml"), INVENTORY).unwrap();
    std::fs::write(dir.join("slow.yml"), playbook(30)).unwrap();
    std::fs::write(
        dir.join("quick.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: a marker\n      command: {cmd: touch marker, creates: marker}\n",
    )
    .unwrap();

    let mut first = first_apply(dir);
    let pid = first.id();
    // refused at once, nothing done, the holder named
    let (out, took) = quick(dir, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("busy [here] another pgdeploy run holds this host: `pgdeploy apply` by ")
            && stdout.contains(&format!("(pid {pid}) since ")),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("nothing was changed"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.join("marker").exists(),
        "the second apply changed something"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    let (out, _) = quick(dir, &["--json"]);
    assert_eq!(out.status.code(), Some(75));
    let event = text(&out.stdout)
        .lines()
        .find(|l| l.contains("host_busy"))
        .map(str::to_string)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&event).expect("a host_busy event");
    assert_eq!(v["host"], "here");
    assert!(v["held_by"]
        .as_str()
        .unwrap()
        .contains(&format!("(pid {pid})")));

    // SIGKILL: the first apply cannot release anything; its holding command ends by itself
    first.kill().unwrap();
    first.wait().unwrap();
    let (out, took) = quick(dir, &["--lock-wait", "20"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(dir.join("marker").exists());
    eprintln!("after SIGKILL of the holder: the next apply ran in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // `--lock-wait`: the second apply waits for the first to end, then runs
    std::fs::write(dir.join("slow.yml"), playbook(2)).unwrap();
    std::fs::remove_file(dir.join("marker")).unwrap();
    let mut first = first_apply(dir);
    let (out, took) = quick(dir, &["--lock-wait", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(first.wait().unwrap().success());
    assert!(dir.join("marker").exists());
    assert!(took >= Duration::from_millis(500), "did not wait: {took:?}");
}
