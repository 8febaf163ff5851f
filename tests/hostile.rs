//! Hostile and unusual input: each case runs the real binary with its CPU time and peak memory
//! measured (`wait4`'s `ru_utime + ru_stime` and `ru_maxrss`: CPU time, not wall time, so a
//! loaded machine does not fail the test; the child is killed past 20 s of wall time, and an
//! address-space limit of 2 GiB stops a runaway before it hurts the machine). Each must end
//! with exit 1 and a located error that names the limit it met, or succeed — within 2 s and
//! 200 MB, never an abort, a hang or a panic. Large inputs are generated here, not stored.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// CPU time (user + system, from `wait4`) a hostile input may cost. It catches the blowups
/// these inputs are built to cause (exponential expansion, quadratic loading), which take
/// minutes; it is not a benchmark: the slowest case takes 0.7 s in a debug build on an idle
/// machine and took 2.3 s beside the lab tests on CI's two cores (cache and frequency
/// contention), hence the margin.
const TIME_LIMIT: Duration = Duration::from_secs(8);
const MEMORY_LIMIT_KIB: i64 = 200 * 1024;

/// What a case must end with.
enum Want {
    /// Exit 1, an error located at `file:line:column` (or at a file), containing this text.
    Refused(&'static str),
    /// Exit 0.
    Accepted,
}

// `elapsed` is CPU time (user + system).

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    elapsed: Duration,
    peak_kib: i64,
}

/// Runs `pgdeploy validate -i inventory playbook.yml` in `dir`.
fn run(dir: &Path, inventory: &str) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgdeploy"));
    // Applies of parallel tests on this machine wait for each other's lock.
    cmd.env("PGDEPLOY_LOCK_WAIT", "120");
    cmd.args(["validate", "-i", inventory, "playbook.yml", "--no-color"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let start = Instant::now();
    // Reaped by `wait4` below, which also gives its resource usage.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("pgdeploy starts");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    loop {
        // SAFETY: plain syscall on our own child, with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4 failed");
        if start.elapsed() > TIME_LIMIT * 10 {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let elapsed = cpu(usage.ru_utime) + cpu(usage.ru_stime);
    let stderr = reader.join().unwrap_or_default();
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stderr,
        elapsed,
        peak_kib: usage.ru_maxrss,
    }
}

const INVENTORY: &str =
    "all:\n  children:\n    pg:\n      hosts:\n        pg1: {}\n        pg2: {}\n";
const ONE_TASK: &str =
    "- hosts: pg\n  gather_facts: false\n  tasks:\n    - command: {cmd: \"true\"}\n";

/// A playbook whose one task renders `content` after the play's `vars` (YAML lines).
fn with_vars(vars: &str, content: &str) -> String {
    format!(
        "- hosts: pg\n  gather_facts: false\n  vars:\n{vars}  tasks:\n    - copy: {{dest: /tmp/x, content: \"{content}\"}}\n"
    )
}

type Setup = fn(&Path);

fn cases() -> Vec<(&'static str, Setup, Want)> {
    vec![
        (
            "inventory nested 20,000 levels (`- - - … v`)",
            |d| write(d, "inventory.yml", &format!("{}v\n", "- ".repeat(20_000))),
            Want::Refused("`MAX_YAML_DEPTH`"),
        ),
        (
            "playbook nested 100,000 flow levels",
            |d| write(d, "playbook.yml", &"[".repeat(100_000)),
            Want::Refused("playbook.yml:1:"),
        ),
        (
            "billion laughs: nine levels of nine aliases",
            |d| {
                let mut vars =
                    String::from("    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
                let mut prev = 'a';
                for n in "bcdefghi".chars() {
                    let refs = vec![format!("*{prev}"); 9].join(", ");
                    vars.push_str(&format!("    {n}: &{n} [{refs}]\n"));
                    prev = n;
                }
                write(d, "playbook.yml", &with_vars(&vars, "x"));
            },
            Want::Refused("`MAX_ALIAS_NODES`"),
        ),
        (
            "30 variables, each using the previous one twice",
            |d| {
                let mut vars = String::from("    v0: ab\n");
                for i in 1..30 {
                    vars.push_str(&format!(
                        "    v{i}: \"{{{{ v{p} }}}}{{{{ v{p} }}}}\"\n",
                        p = i - 1
                    ));
                }
                write(d, "playbook.yml", &with_vars(&vars, "{{ v29 | length }}"));
            },
            Want::Refused("`MAX_RENDER_BYTES`"),
        ),
        (
            "a variable that refers to itself",
            |d| {
                write(
                    d,
                    "playbook.yml",
                    &with_vars("    a: \"{{ b }}\"\n    b: \"x{{ a }}\"\n", "{{ a }}"),
                )
            },
            Want::Refused("`a` refers to itself through `b`"),
        ),
        (
            "a template loop of 100,000,000 iterations",
            |d| {
                let tpl = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}";
                write(d, "playbook.yml", &with_vars("    x: 1\n", tpl));
            },
            Want::Refused("`TEMPLATE_FUEL`"),
        ),
        (
            "two symbolic links to each other in group_vars/",
            |d| {
                std::fs::create_dir(d.join("group_vars")).unwrap();
                std::os::unix::fs::symlink("pg.yml", d.join("group_vars/all.yml")).unwrap();
                std::os::unix::fs::symlink("all.yml", d.join("group_vars/pg.yml")).unwrap();
            },
            Want::Refused("symbolic links"),
        ),
        (
            "a directory in group_vars/ linking to its parent",
            |d| {
                std::fs::create_dir_all(d.join("group_vars/all")).unwrap();
                write(d, "group_vars/all/main.yml", "x: 1\n");
                std::os::unix::fs::symlink("..", d.join("group_vars/all/up")).unwrap();
            },
            Want::Accepted,
        ),
        (
            "a named pipe as host_vars/pg1.yml",
            |d| {
                std::fs::create_dir(d.join("host_vars")).unwrap();
                let fifo = d.join("host_vars/pg1.yml");
                let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
                assert!(ok.success());
            },
            Want::Refused("named pipe"),
        ),
        (
            "an inventory of 40 MB",
            |d| {
                let f = std::fs::File::create(d.join("inventory.yml")).unwrap();
                f.set_len(40 << 20).unwrap();
            },
            Want::Refused("`MAX_FILE_BYTES`"),
        ),
        (
            "pg[1:10000] with one task",
            |d| write(d, "inventory.ini", "[pg]\npg[1:10000]\n"),
            Want::Accepted,
        ),
        (
            "one host with a 100,000-key vars mapping",
            |d| {
                let mut inv = String::from(
                    "all:\n  children:\n    pg:\n      hosts:\n        pg1:\n          big:\n",
                );
                for i in 0..100_000 {
                    inv.push_str(&format!("            k{i}: {i}\n"));
                }
                write(d, "inventory.yml", &inv);
            },
            Want::Accepted,
        ),
        (
            "a playbook and an inventory starting with a byte-order mark",
            |d| {
                write(d, "playbook.yml", &format!("\u{feff}{ONE_TASK}"));
                write(d, "inventory.yml", &format!("\u{feff}{INVENTORY}"));
            },
            Want::Accepted,
        ),
    ]
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn hostile_inputs_end_within_their_limits() {
    let located = regex_lite::Regex::new(r"(?m)^error: [^\s:]+(:\d+:\d+)?: ").unwrap();
    let mut failures = Vec::new();
    for (name, setup, want) in cases() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "playbook.yml", ONE_TASK);
        write(dir.path(), "inventory.yml", INVENTORY);
        setup(dir.path());
        let inventory = if dir.path().join("inventory.ini").exists() {
            "inventory.ini"
        } else {
            "inventory.yml"
        };
        let o = run(dir.path(), inventory);
        let summary = format!(
            "{name}: exit {:?}, signal {:?}, {:.2} s CPU, {} MiB\n{}",
            o.code,
            o.signal,
            o.elapsed.as_secs_f64(),
            o.peak_kib / 1024,
            o.stderr.chars().take(1500).collect::<String>()
        );
        eprintln!("{}", summary.lines().next().unwrap_or_default());
        let ok = match want {
            Want::Refused(text) => {
                o.code == Some(1) && located.is_match(&o.stderr) && o.stderr.contains(text)
            }
            Want::Accepted => o.code == Some(0),
        };
        let panicked = o.stderr.contains("panicked");
        if !ok || panicked || o.elapsed > TIME_LIMIT || o.peak_kib > MEMORY_LIMIT_KIB {
            failures.push(summary);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
