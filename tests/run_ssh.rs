//! Issue 3's acceptance tests: the real `pgdeploy` binary against real OpenSSH servers on
//! 127.0.0.1 (see `support/sshd.rs`). We run as root, so what the sessions create is on this
//! machine: every playbook manages files under the test's own temporary directory only.
//!
//! Playbooks are in `tests/fixtures/run_ssh/`; the inventory of each test is written into its
//! temporary directory, with `base` (where the playbook's files go), the server's port, the
//! fixture's client key and the server's known_hosts file.

mod support;

use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::sshd::{Sshd, SshdOptions};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run_ssh")
}

/// What one invocation of the binary gave back.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn all_lines(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines().chain(self.stderr.lines())
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One host of a test inventory.
struct Host {
    name: String,
    port: u16,
    known_hosts: PathBuf,
    /// Extra host variables, as YAML `key: value` lines.
    vars: Vec<String>,
    /// Reached through the ssh config's `Host` entry of its name: no `ansible_host`/`_port`.
    alias: bool,
}

impl Host {
    fn on(name: &str, sshd: &Sshd) -> Host {
        Host {
            name: name.to_owned(),
            port: sshd.port,
            known_hosts: sshd.known_hosts.clone(),
            vars: Vec::new(),
            alias: false,
        }
    }
}

/// A test's scratch space: its inventory, an empty ssh config, and `base`, the directory the
/// playbooks manage files under.
struct Lab {
    dir: tempfile::TempDir,
    client_key: PathBuf,
}

impl Lab {
    /// A known_hosts file in the lab's directory with the keys of `servers`.
    fn known_hosts_of(&self, servers: &[&Sshd]) -> PathBuf {
        let path = self.dir.path().join("known_hosts");
        let lines: String = servers
            .iter()
            .map(|s| format!("{}\n", s.known_hosts_line()))
            .collect();
        std::fs::write(&path, lines).unwrap();
        path
    }

    fn new(sshd: &Sshd) -> Lab {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("ssh_config"), "").expect("empty ssh config");
        std::fs::create_dir(dir.path().join("managed")).expect("managed directory");
        Lab {
            dir,
            client_key: sshd.client_key.clone(),
        }
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("managed")
    }

    fn host_dir(&self, host: &str) -> PathBuf {
        self.base().join(host)
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }

    /// Writes the inventory for `hosts`, with `vars` (YAML `key: value` lines) for all.
    fn write_inventory(&self, hosts: &[Host], vars: &[String]) {
        let mut inv = String::from("all:\n  vars:\n");
        let _ = writeln!(inv, "    base: {}", self.base().display());
        let _ = writeln!(inv, "    ansible_user: root");
        let _ = writeln!(
            inv,
            "    ansible_ssh_private_key_file: {}",
            self.client_key.display()
        );
        let _ = writeln!(inv, "    app_port: 5432");
        for v in vars {
            let _ = writeln!(inv, "    {v}");
        }
        inv.push_str("  hosts:\n");
        for h in hosts {
            let _ = writeln!(inv, "    {}:", h.name);
            if !h.alias {
                let _ = writeln!(inv, "      ansible_host: 127.0.0.1");
                let _ = writeln!(inv, "      ansible_port: {}", h.port);
            }
            let _ = writeln!(
                inv,
                "      pgdeploy_known_hosts_file: {}",
                h.known_hosts.display()
            );
            for v in &h.vars {
                let _ = writeln!(inv, "      {v}");
            }
        }
        std::fs::write(self.inventory(), inv).expect("inventory");
    }

    /// Runs `pgdeploy COMMAND -i INVENTORY PLAYBOOK --ssh-config EMPTY ARGS...`.
    fn run(&self, command: &str, playbook: &str, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
            .env("PGDEPLOY_LOCK_WAIT", "120")
            .arg(command)
            .arg("-i")
            .arg(self.inventory())
            .arg(fixtures().join(playbook))
            .arg("--ssh-config")
            .arg(self.dir.path().join("ssh_config"))
            .arg("--no-color")
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("pgdeploy runs");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `pgdeploy ARGS... --ssh-config EMPTY --no-color` (no inventory, no playbook: for
    /// `apply PLANFILE`).
    fn pgdeploy(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
            .env("PGDEPLOY_LOCK_WAIT", "120")
            .args(args)
            .arg("--ssh-config")
            .arg(self.dir.path().join("ssh_config"))
            .arg("--no-color")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("pgdeploy runs");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Where the tests save plans.
    fn plan_file(&self) -> String {
        self.dir.path().join("plan.json").display().to_string()
    }

    /// Replaces what changes from run to run (temporary directory, ports) by placeholders.
    fn normalize(&self, text: &str, ports: &[u16]) -> String {
        let mut t = text.replace(&self.dir.path().display().to_string(), "[TMP]");
        for p in ports {
            t = t.replace(&p.to_string(), "[PORT]");
        }
        t
    }
}

/// The recap of a `--json` run: host → (ok, changed, failed, skipped, unreachable).
fn json_recap(out: &Out) -> Vec<(String, u64, u64, u64, u64, bool)> {
    let recap = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "recap")
        .unwrap_or_else(|| panic!("no recap event in {out:?}"));
    let mut hosts: Vec<_> = recap["hosts"]
        .as_array()
        .expect("recap hosts")
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_owned(),
                h["ok"].as_u64().unwrap(),
                h["changed"].as_u64().unwrap(),
                h["failed"].as_u64().unwrap(),
                h["skipped"].as_u64().unwrap(),
                h["unreachable"].as_bool().unwrap(),
            )
        })
        .collect();
    hosts.sort();
    hosts
}

/// The names of the tasks reported changed (`step_finished` with status `changed`).
fn changed_tasks(out: &Out) -> Vec<String> {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step_finished" && e["status"] == "changed")
        .map(|e| {
            format!(
                "{} {}",
                e["host"].as_str().unwrap(),
                e["task"].as_str().unwrap()
            )
        })
        .collect()
}

/// How many command sessions the server has started so far (needs `LogLevel=VERBOSE`).
fn command_sessions(sshd: &Sshd) -> usize {
    std::fs::read_to_string(&sshd.log)
        .unwrap_or_default()
        .matches("Starting session: command")
        .count()
}

fn uid_of(name: &str) -> u32 {
    let out = Command::new("id").args(["-u", name]).output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

fn gid_of(group: &str) -> u32 {
    let out = Command::new("getent")
        .args(["group", group])
        .output()
        .expect("getent");
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("a gid")
}

/// Asserts type-independent attributes of `path` (not following links).
fn assert_attrs(path: &Path, uid: u32, gid: u32, mode: u32) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (uid, gid, mode),
        "owner, group, mode of {}",
        path.display()
    );
}

fn short_hostname() -> String {
    let out = Command::new("hostname").output().expect("hostname");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split('.')
        .next()
        .unwrap()
        .to_owned()
}

/// Applies `site.yml` to one fresh host and checks the result on disk.
fn converge_one(lab: &Lab, sshd: &Sshd) {
    lab.write_inventory(&[Host::on("db1", sshd)], &[]);
    let out = lab.run("apply", "site.yml", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("RECAP"), "{out:?}");
}

#[test]
fn apply_creates_everything_then_changes_nothing() {
    // VERBOSE: sshd logs every command session, so the test can count them.
    let sshd = Sshd::start_with(&SshdOptions {
        options: vec!["LogLevel=VERBOSE".into()],
    });
    let lab = Lab::new(&sshd);
    lab.write_inventory(&[Host::on("db1", &sshd)], &[]);

    let first = lab.run("apply", "site.yml", &["--json"]);
    assert_eq!(first.code, 0, "{first:?}");
    let recap = json_recap(&first);
    assert_eq!(recap.len(), 1, "{first:?}");
    let (host, _ok, changed, failed, _skipped, unreachable) = &recap[0];
    assert_eq!((host.as_str(), *failed, *unreachable), ("db1", 0, false));
    // Everything but the read-only query and the already installed package changed.
    assert_eq!(*changed, 9, "{:#?}", changed_tasks(&first));

    let dir = lab.host_dir("db1");
    let (nobody, nogroup) = (uid_of("nobody"), gid_of("nogroup"));
    assert!(dir.is_dir());
    assert_attrs(&dir, 0, 0, 0o750);
    assert_attrs(&dir.join("conf"), nobody, nogroup, 0o755);
    assert_attrs(&dir.join("conf/app.conf"), nobody, nogroup, 0o640);
    assert_eq!(
        std::fs::read_to_string(dir.join("conf/app.conf")).unwrap(),
        "listen_port = 5432\nmax_connections = 100\nlog_level = info\n"
    );
    assert_attrs(&dir.join("motd.txt"), 0, 0, 0o644);
    assert_eq!(
        std::fs::read(dir.join("motd.txt")).unwrap(),
        std::fs::read(fixtures().join("files/motd.txt")).unwrap()
    );
    assert_attrs(&dir.join("conf/host.conf"), 0, 0, 0o600);
    assert_eq!(
        std::fs::read_to_string(dir.join("conf/host.conf")).unwrap(),
        format!(
            "# managed by pgdeploy\ninventory_hostname = db1\nhostname = {}\napp_port = 5432\n",
            short_hostname()
        )
    );
    let touched = std::fs::metadata(dir.join("touched")).unwrap();
    assert!(touched.is_file() && touched.len() == 0);
    assert_attrs(&dir.join("touched"), 0, 0, 0o604);
    let link = std::fs::symlink_metadata(dir.join("app.conf")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(dir.join("app.conf")).unwrap(),
        dir.join("conf/app.conf")
    );
    let marker = dir.join("marker");
    let marker_before = std::fs::metadata(&marker).unwrap();
    let marker_text = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("unless.log")).unwrap(),
        "once\n"
    );

    // The second run changes nothing and runs no state-changing command.
    let sessions_before = command_sessions(&sshd);
    let second = lab.run("apply", "site.yml", &["--json"]);
    assert_eq!(second.code, 0, "{second:?}");
    let recap = json_recap(&second);
    assert_eq!(recap[0].2, 0, "changed: {:#?}", changed_tasks(&second));
    assert_eq!((recap[0].3, recap[0].5), (0, false), "{second:?}");
    let marker_after = std::fs::metadata(&marker).unwrap();
    assert_eq!(marker_after.mtime(), marker_before.mtime());
    assert_eq!(marker_after.mtime_nsec(), marker_before.mtime_nsec());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), marker_text);
    assert_eq!(
        std::fs::read_to_string(dir.join("unless.log")).unwrap(),
        "once\n"
    );
    // Reads are batched: the facts, with the probes of every step whose parameters need no
    // facts (the path states in one `stat`, the `creates` guard); the symbolic link, which
    // the batch leaves to its own probe; the `unless` guard, a user command never read
    // ahead; the read-only query, which `changed_when: false` runs in apply; and the package
    // query, which depends on the facts' package manager. Then the apply lock's three: the
    // command that holds it, the one that waits for its word, and the release.
    assert_eq!(
        command_sessions(&sshd) - sessions_before,
        5 + 3,
        "{second:?}"
    );
    // The human recap says so too.
    let third = lab.run("apply", "site.yml", &[]);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(
        third.stdout.lines().any(|l| l.starts_with("db1 ")
            && l.contains("changed=0 ")
            && l.contains("failed=0 ")
            && l.ends_with("unreachable=0")),
        "{third:?}"
    );
}

#[test]
fn check_is_clean_when_converged_and_reports_a_hand_edit_as_drift() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    converge_one(&lab, &sshd);

    let clean = lab.run("check", "site.yml", &[]);
    assert_eq!(clean.code, 0, "{clean:?}");

    // Someone edits the config by hand on the host.
    let conf = lab.host_dir("db1").join("conf/app.conf");
    std::fs::write(
        &conf,
        "listen_port = 5432\nmax_connections = 500\nlog_level = info\n",
    )
    .unwrap();

    let drift = lab.run("check", "site.yml", &[]);
    assert_eq!(drift.code, 2, "{drift:?}");
    assert!(drift.stdout.contains("-max_connections = 500"), "{drift:?}");
    assert!(drift.stdout.contains("+max_connections = 100"), "{drift:?}");

    let plan = lab.run("plan", "site.yml", &[]);
    assert_eq!(plan.code, 0, "{plan:?}");
    // The exact unified diff of the edited file, nothing else changes.
    assert!(
        plan.stdout.contains(
            "      @@ -1,3 +1,3 @@\n       listen_port = 5432\n      -max_connections = 500\n      +max_connections = 100\n       log_level = info\n"
        ),
        "{plan:?}"
    );
    insta::assert_snapshot!(
        "plan_after_hand_edit",
        lab.normalize(&plan.all(), &[sshd.port])
    );
    // plan and check wrote nothing.
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "listen_port = 5432\nmax_connections = 500\nlog_level = info\n"
    );
    let detailed = lab.run("plan", "site.yml", &["--detailed-exitcode"]);
    assert_eq!(detailed.code, 2, "{detailed:?}");

    // apply repairs it, and check is clean again.
    let repair = lab.run("apply", "site.yml", &["--json"]);
    assert_eq!(repair.code, 0, "{repair:?}");
    assert_eq!(changed_tasks(&repair), vec!["db1 inline config".to_owned()]);
    assert_eq!(lab.run("check", "site.yml", &[]).code, 0);
}

#[test]
fn changed_host_key_is_refused_naming_host_and_known_hosts_line() {
    let mut sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    // A known_hosts with a comment first, so the entry is on line 2.
    std::fs::write(
        &sshd.known_hosts,
        format!("# hosts of the test\n{}\n", sshd.known_hosts_line()),
    )
    .unwrap();
    converge_one(&lab, &sshd);

    // The host is reinstalled: same address and port, new host key.
    sshd.reinstall();
    assert_ne!(sshd.current_public_key(), sshd.host_public_key);
    let known_before = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    for flags in [&[][..], &["--accept-new-host-keys"][..]] {
        let out = lab.run("apply", "site.yml", flags);
        assert_eq!(out.code, 4, "{flags:?}: {out:?}");
        let text = out.all();
        let line = text
            .lines()
            .find(|l| l.contains("CHANGED"))
            .unwrap_or_else(|| panic!("no host key error in {out:?}"));
        assert!(line.contains("`db1`"), "{line}");
        assert!(
            line.contains(&format!("`[127.0.0.1]:{}`", sshd.port)),
            "{line}"
        );
        assert!(
            line.contains(&format!("`{}` line 2", sshd.known_hosts.display())),
            "{line}"
        );
        assert!(line.contains("SHA256:"), "{line}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("db1 ") && l.ends_with("unreachable=1")),
            "{out:?}"
        );
        // Refusing never rewrites known_hosts.
        assert_eq!(
            std::fs::read_to_string(&sshd.known_hosts).unwrap(),
            known_before
        );
    }
}

#[test]
fn unknown_host_key_is_refused_unless_accepted_then_recorded() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    std::fs::write(&sshd.known_hosts, "# nothing known yet\n").unwrap();
    lab.write_inventory(&[Host::on("db1", &sshd)], &[]);

    let refused = lab.run("apply", "site.yml", &[]);
    assert_eq!(refused.code, 4, "{refused:?}");
    let text = refused.all();
    assert!(
        text.lines().any(|l| l.contains("[db1]")
            && l.contains(&format!("`[127.0.0.1]:{}` is not in", sshd.port))
            && l.contains(&format!("`{}`", sshd.known_hosts.display()))
            && l.contains("--accept-new-host-keys")),
        "{refused:?}"
    );
    assert!(!lab.host_dir("db1").exists(), "nothing may be done");
    assert_eq!(
        std::fs::read_to_string(&sshd.known_hosts).unwrap(),
        "# nothing known yet\n"
    );

    let accepted = lab.run("apply", "site.yml", &["--accept-new-host-keys"]);
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert_eq!(
        std::fs::read_to_string(&sshd.known_hosts).unwrap(),
        format!("# nothing known yet\n{}\n", sshd.known_hosts_line())
    );
    assert!(lab.host_dir("db1").join("conf/app.conf").is_file());
    // Now known: no flag needed, and nothing left to change.
    assert_eq!(lab.run("check", "site.yml", &[]).code, 0);
}

#[test]
fn unreachable_host_exits_4_naming_it_while_the_others_converge() {
    let servers = Sshd::start_many(2);
    let lab = Lab::new(&servers[0]);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut down = Host::on("db-down", &servers[0]);
    down.port = closed;
    lab.write_inventory(
        &[
            Host::on("db1", &servers[0]),
            down,
            Host::on("db2", &servers[1]),
        ],
        &[],
    );

    let out = lab.run("apply", "site.yml", &[]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.all().lines().any(|l| l.contains("[db-down]")
            && l.contains("`db-down`")
            && l.contains(&format!("127.0.0.1:{closed}"))),
        "{out:?}"
    );
    for host in ["db1", "db2"] {
        assert!(
            lab.host_dir(host).join("conf/host.conf").is_file(),
            "{host} converged"
        );
    }
    assert!(!lab.host_dir("db-down").exists());

    let json = lab.run("apply", "site.yml", &["--json"]);
    assert_eq!(json.code, 4, "{json:?}");
    let recap = json_recap(&json);
    let summary: Vec<_> = recap
        .iter()
        .map(|(h, _, changed, failed, _, unreachable)| {
            (h.as_str(), *changed, *failed, *unreachable)
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("db-down", 0, 0, true),
            ("db1", 0, 0, false),
            ("db2", 0, 0, false)
        ],
        "{json:?}"
    );
    assert!(
        json.stdout
            .lines()
            .any(|l| l.contains("\"host_unreachable\"") && l.contains("\"host\":\"db-down\"")),
        "{json:?}"
    );
}

/// A value no output may contain.
fn distinctive_secret() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("Zq7-{}-{nanos:09}-sEcReT", std::process::id())
}

#[test]
fn secrets_never_appear_in_any_output_but_reach_the_files() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    let secret = distinctive_secret();
    lab.write_inventory(
        &[Host::on("db1", &sshd)],
        &[format!("db_password: \"{secret}\"")],
    );
    // Every secret value the inventory has held: none may ever be shown.
    let secrets = std::cell::RefCell::new(vec![secret.clone()]);
    let mut seen = Vec::new();
    let mut run = |command: &str, playbook: &str, args: &[&str]| {
        let out = lab.run(command, playbook, args);
        let secrets = secrets.borrow();
        let leaks: Vec<&str> = out
            .all_lines()
            .filter(|l| secrets.iter().any(|s| l.contains(s.as_str())))
            .collect();
        assert!(
            leaks.is_empty(),
            "`{command} {playbook} {args:?}` shows the secret:\n{}",
            leaks.join("\n")
        );
        seen.push(format!("{command} {args:?}"));
        out
    };

    // Before anything exists: the diffs show whole new files.
    let plan = run("plan", "secrets.yml", &[]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("+password = ********"), "{plan:?}");
    assert!(
        plan.stdout.contains("+127.0.0.1:5432:*:app:********"),
        "{plan:?}"
    );
    let plan_json = run("plan", "secrets.yml", &["--json"]);
    assert!(plan_json.stdout.contains("********"), "{plan_json:?}");
    let check = run("check", "secrets.yml", &["-v"]);
    assert_eq!(check.code, 2, "{check:?}");
    let apply = run("apply", "secrets.yml", &["--diff", "-vv"]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(apply.stdout.contains("+password = ********"), "{apply:?}");

    // The files on the host hold the real value.
    let dir = lab.host_dir("db1");
    assert_eq!(
        std::fs::read_to_string(dir.join("secret.conf")).unwrap(),
        format!("user = app\npassword = {secret}\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("pgpass")).unwrap(),
        format!("127.0.0.1:5432:*:app:{secret}\n")
    );

    // Edited by hand (the secret stays in context lines of the diff), then repaired.
    std::fs::write(
        dir.join("secret.conf"),
        format!("user = admin\npassword = {secret}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pgpass"),
        format!("127.0.0.1:5433:*:app:{secret}\n"),
    )
    .unwrap();
    let drift = run("apply", "secrets.yml", &["--json", "--diff", "-v"]);
    assert_eq!(drift.code, 0, "{drift:?}");
    assert_eq!(changed_tasks(&drift).len(), 2, "{drift:?}");

    // The password is rotated: the old value, still in the files, is no longer in the
    // inventory, and must not show in the diffs either.
    let rotated = format!("{secret}-rotated");
    secrets.borrow_mut().push(rotated.clone());
    lab.write_inventory(
        &[Host::on("db1", &sshd)],
        &[format!("db_password: \"{rotated}\"")],
    );
    let plan = run("plan", "secrets.yml", &[]);
    assert!(plan.stdout.contains("-password = ********"), "{plan:?}");
    assert!(plan.stdout.contains("+password = ********"), "{plan:?}");
    run("plan", "secrets.yml", &["--json"]);
    let rotate = run("apply", "secrets.yml", &["--diff"]);
    assert_eq!(rotate.code, 0, "{rotate:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("secret.conf")).unwrap(),
        format!("user = app\npassword = {rotated}\n")
    );

    // A failing command whose line and error output hold the secret.
    let failed = run("apply", "secrets_fail.yml", &["-vv"]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        failed.all().contains("cannot log in with ********"),
        "{failed:?}"
    );
    let failed_json = run("apply", "secrets_fail.yml", &["--json"]);
    assert_eq!(failed_json.code, 1, "{failed_json:?}");
    assert_eq!(seen.len(), 10);
}

#[test]
fn become_user_runs_tasks_as_that_user() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    // `nobody` must be able to reach the managed directory.
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.write_inventory(&[Host::on("db1", &sshd)], &[]);
    let out = lab.run("apply", "become.yml", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let dir = lab.host_dir("db1");
    assert_eq!(
        std::fs::read_to_string(dir.join("whoami")).unwrap(),
        "nobody\n"
    );
    assert_attrs(
        &dir.join("by-nobody.txt"),
        uid_of("nobody"),
        gid_of("nogroup"),
        0o644,
    );
    assert_eq!(lab.run("check", "become.yml", &[]).code, 0);
}

#[test]
fn proxy_jump_through_an_ssh_config_alias() {
    let bastion = Sshd::start();
    let db = Sshd::start();
    let lab = Lab::new(&db);
    // The host is known by its alias only: address, port and jump come from the ssh config.
    std::fs::write(
        lab.dir.path().join("ssh_config"),
        format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n\n\
             Host db-behind\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump bastion\n",
            bastion.port,
            bastion.client_key.display(),
            db.port,
        ),
    )
    .unwrap();
    let known_hosts = lab.known_hosts_of(&[&bastion, &db]);
    let mut host = Host::on("db-behind", &db);
    host.alias = true;
    host.known_hosts = known_hosts;
    lab.write_inventory(&[host], &[]);
    let accepted_by_bastion = || {
        std::fs::read_to_string(&bastion.log)
            .unwrap_or_default()
            .matches("Accepted publickey for root")
            .count()
    };
    assert_eq!(accepted_by_bastion(), 0);

    let out = lab.run("apply", "site.yml", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(lab.host_dir("db-behind").join("conf/app.conf").is_file());
    // The run went through the bastion: it authenticated us once (one connection per host).
    assert_eq!(accepted_by_bastion(), 1, "{out:?}");
    assert_eq!(lab.run("check", "site.yml", &[]).code, 0);
    assert_eq!(accepted_by_bastion(), 2);
}

/// The files under `dir`, with their contents (`None` for directories and links), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path.clone());
                out.push((path, None));
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, Some(bytes)));
            } else {
                out.push((path, None));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn saved_plan_applies_and_converges() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    lab.write_inventory(&[Host::on("db1", &sshd)], &[]);
    let plan_file = lab.plan_file();

    let plan = lab.run("plan", "site.yml", &["--out", &plan_file]);
    assert_eq!(plan.code, 0, "{plan:?}");
    // The plan is printed as usual, then where it was saved.
    assert!(
        plan.stdout.contains("change  [db1] inline config"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.trim_end().ends_with(&format!(
            "plan saved to `{plan_file}`; apply exactly it with `pgdeploy apply {plan_file}`"
        )),
        "{plan:?}"
    );
    assert!(!lab.host_dir("db1").exists(), "plan wrote nothing");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["format"], "pgdeploy-plan");
    assert_eq!(saved["format_version"], 1);
    assert_eq!(saved["pgdeploy_version"], env!("CARGO_PKG_VERSION"));
    let files: Vec<&str> = saved["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for read in ["inventory.yml", "site.yml", "motd.txt", "host.conf.j2"] {
        assert!(
            files.iter().any(|f| f.ends_with(read)),
            "`{read}` has a digest: {files:?}"
        );
    }
    let steps = saved["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 11, "every step of the report");
    assert_eq!(steps[2]["task"], "inline config");
    assert_eq!(steps[2]["status"], "changed");

    let apply = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(
        apply.stdout.contains(&format!(
            "`{plan_file}`: the inputs and the hosts are in the state the plan was made from; applying it"
        )),
        "{apply:?}"
    );
    assert!(
        apply.stdout.contains("changed [db1] inline config"),
        "{apply:?}"
    );
    assert_eq!(
        std::fs::read_to_string(lab.host_dir("db1").join("conf/app.conf")).unwrap(),
        "listen_port = 5432\nmax_connections = 100\nlog_level = info\n"
    );
    // Converged: a plan shows no change.
    let again = lab.run("plan", "site.yml", &["--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{again:?}");

    // A saved plan with no change: the hosts are checked once, nothing is applied.
    let empty = lab.run("plan", "site.yml", &["--out", &plan_file]);
    assert_eq!(empty.code, 0, "{empty:?}");
    let nothing = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(nothing.code, 0, "{nothing:?}");
    assert_eq!(
        nothing.stdout,
        format!("`{plan_file}` plans no change, and the hosts are still as it was made from: nothing to apply\n"),
        "{nothing:?}"
    );
}

#[test]
fn saved_plan_is_refused_when_a_host_changed_and_nothing_is_written() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    converge_one(&lab, &sshd);
    let dir = lab.host_dir("db1");
    // Three changes to plan: an edited config, a removed file, an edited template output.
    std::fs::write(
        dir.join("conf/app.conf"),
        "listen_port = 5432\nmax_connections = 500\nlog_level = info\n",
    )
    .unwrap();
    std::fs::remove_file(dir.join("motd.txt")).unwrap();
    std::fs::write(dir.join("conf/host.conf"), "# edited\n").unwrap();
    let plan_file = lab.plan_file();
    let plan = lab.run("plan", "site.yml", &["--out", &plan_file]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert_eq!(plan.stdout.matches("change  [db1]").count(), 3, "{plan:?}");

    // Someone edits the config again before the apply.
    std::fs::write(
        dir.join("conf/app.conf"),
        "listen_port = 5432\nmax_connections = 600\nlog_level = info\n",
    )
    .unwrap();
    let before = tree(&lab.base());
    let apply = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(apply.code, 1, "{apply:?}");
    assert!(
        apply.stderr.contains(&format!(
            "error: cannot apply `{plan_file}`: host `db1` changed since the plan was made, nothing was applied"
        )),
        "{apply:?}"
    );
    assert!(
        apply
            .stderr
            .contains("[db1] inline config: the planned changes differ"),
        "{apply:?}"
    );
    assert!(apply.stderr.contains("max_connections = 600"), "{apply:?}");
    assert!(apply.stdout.is_empty(), "{apply:?}");
    insta::assert_snapshot!(
        "saved_plan_refused_after_hand_edit",
        lab.normalize(&apply.all(), &[sshd.port])
    );
    // Nothing written, on any managed file: the hand edit, the removed file and the edited
    // template output are as they were.
    assert_eq!(tree(&lab.base()), before);
    assert_eq!(
        std::fs::read_to_string(dir.join("conf/app.conf")).unwrap(),
        "listen_port = 5432\nmax_connections = 600\nlog_level = info\n"
    );
    assert!(!dir.join("motd.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("conf/host.conf")).unwrap(),
        "# edited\n"
    );
}

#[test]
fn saved_plan_is_refused_when_an_input_changed() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    lab.write_inventory(&[Host::on("db1", &sshd)], &[]);
    let plan_file = lab.plan_file();
    let plan = lab.run("plan", "site.yml", &["--out", &plan_file]);
    assert_eq!(plan.code, 0, "{plan:?}");

    // A new host_vars file would be read: refused.
    let host_vars = lab.dir.path().join("host_vars");
    std::fs::create_dir(&host_vars).unwrap();
    std::fs::write(host_vars.join("db1.yml"), "app_port: 6432\n").unwrap();
    let new = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(new.code, 1, "{new:?}");
    assert!(
        new.stderr.contains(&format!(
            "error: cannot apply `{plan_file}`: `{}` is read now and was not when the plan was made; make the plan again",
            host_vars.join("db1.yml").display()
        )),
        "{new:?}"
    );
    std::fs::remove_dir_all(&host_vars).unwrap();

    // The inventory edited: refused, naming it.
    lab.write_inventory(&[Host::on("db1", &sshd)], &["extra: 1".to_owned()]);
    let changed = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(changed.code, 1, "{changed:?}");
    assert!(
        changed.stderr.contains(&format!(
            "error: cannot apply `{plan_file}`: `{}` changed since the plan was made; make the plan again",
            lab.inventory().display()
        )),
        "{changed:?}"
    );
    assert!(!lab.host_dir("db1").exists(), "nothing may be done");

    // Back as it was: the plan applies.
    lab.write_inventory(&[Host::on("db1", &sshd)], &[]);
    let apply = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(apply.code, 0, "{apply:?}");
}

#[test]
fn saved_plan_with_an_unreachable_host_exits_4_and_applies_nowhere() {
    let servers = Sshd::start_many(2);
    let lab = Lab::new(&servers[0]);
    lab.write_inventory(
        &[Host::on("db1", &servers[0]), Host::on("db2", &servers[1])],
        &[],
    );
    let plan_file = lab.plan_file();
    let plan = lab.run("plan", "site.yml", &["--out", &plan_file]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let mut servers = servers;
    drop(servers.pop());
    let apply = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(apply.code, 4, "{apply:?}");
    assert!(
        apply.stderr.contains(&format!(
            "error: cannot apply `{plan_file}`: unreachable: `db2`; every host of the plan must be reached, nothing was applied"
        )),
        "{apply:?}"
    );
    assert!(!lab.host_dir("db1").exists(), "nothing applied on db1");

    // A plan with a host down is incomplete: printed, not saved.
    let partial = lab.dir.path().join("partial.json");
    let plan = lab.run("plan", "site.yml", &["--out", partial.to_str().unwrap()]);
    assert_eq!(plan.code, 4, "{plan:?}");
    assert!(
        plan.stderr.contains(&format!(
            "the plan was not saved to `{}`: 1 host(s) unreachable, the plan is incomplete",
            partial.display()
        )),
        "{plan:?}"
    );
    assert!(!partial.exists());
}

#[test]
fn saved_plan_file_holds_no_secret_and_is_private() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    let nanos = distinctive_secret();
    // A quote, a backslash and a newline: as YAML writes them in double quotes.
    let secret = format!("q\"uo\\te-{nanos}\nsecond-line-{nanos}");
    let yaml = format!("q\\\"uo\\\\te-{nanos}\\nsecond-line-{nanos}");
    lab.write_inventory(
        &[Host::on("db1", &sshd)],
        &[format!("db_password: \"{yaml}\"")],
    );
    let plan_file = lab.plan_file();
    let plan = lab.run("plan", "secrets.yml", &["--out", &plan_file]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let text = std::fs::read_to_string(&plan_file).unwrap();
    let json_form = serde_json::to_string(&secret).unwrap();
    for form in [
        secret.as_str(),
        &json_form[1..json_form.len() - 1],
        &format!("q\"uo\\te-{nanos}"),
        &format!("second-line-{nanos}"),
        &nanos,
    ] {
        assert!(
            !text.contains(form),
            "the plan file holds `{form}`:\n{text}"
        );
        assert!(!plan.all().contains(form), "{plan:?}");
    }
    assert!(text.contains("password = ********"), "{text}");
    let mode = std::fs::metadata(&plan_file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);

    // Applied, the files hold the real value.
    let apply = lab.pgdeploy(&["apply", &plan_file]);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert!(!apply.all().contains(&nanos), "{apply:?}");
    assert_eq!(
        std::fs::read_to_string(lab.host_dir("db1").join("secret.conf")).unwrap(),
        format!("user = app\npassword = {secret}\n")
    );
}

/// A login user made for one test, whose sudo needs its password (a sudoers rule without
/// `NOPASSWD`); removed, with the rule, when dropped.
struct SudoUser {
    name: String,
    password: String,
    sudoers: PathBuf,
}

impl SudoUser {
    fn create() -> SudoUser {
        Self::create_as("sudo", true)
    }

    /// A user `pgd-KIND-PID` with a password, allowed sudo (with that password) if `sudoers`.
    fn create_as(kind: &str, sudoers: bool) -> SudoUser {
        let name = format!("pgd-{kind}-{}", std::process::id());
        let password = format!("{kind}-Pw-7e3f19");
        let _ = Command::new("userdel").args(["-r", &name]).output();
        let ok = |cmd: &mut Command| {
            let out = cmd.output().expect("user tools run");
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(Command::new("useradd").args(["-m", "-s", "/bin/sh", &name]));
        let mut chpasswd = Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("chpasswd");
        use std::io::Write as _;
        writeln!(chpasswd.stdin.take().unwrap(), "{name}:{password}").unwrap();
        assert!(chpasswd.wait().unwrap().success());
        let sudoers_file = PathBuf::from(format!("/etc/sudoers.d/{name}"));
        if sudoers {
            std::fs::write(&sudoers_file, format!("{name} ALL=(ALL:ALL) ALL\n")).unwrap();
            std::fs::set_permissions(&sudoers_file, std::fs::Permissions::from_mode(0o440))
                .unwrap();
            ok(Command::new("visudo").args(["-c", "-q"]));
        }
        SudoUser {
            name,
            password,
            sudoers: sudoers_file,
        }
    }
}

impl Drop for SudoUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = Command::new("userdel").args(["-r", &self.name]).output();
    }
}

#[test]
fn become_with_a_sudo_password_sent_on_stdin() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    let user = SudoUser::create();
    // The login user must reach the managed directory to be told apart from root there.
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let inventory = |password: &str| {
        let mut host = Host::on("db1", &sshd);
        host.vars = vec![
            format!("ansible_user: {}", user.name),
            format!("ansible_become_password: '{password}'"),
        ];
        lab.write_inventory(&[host], &[]);
    };
    inventory(&user.password);
    let out = lab.run("apply", "become_password.yml", &["-vv"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Never on a command line, never in a log line.
    assert!(!out.all().contains(&user.password), "{out:?}");
    assert!(out.all().contains("sudo -S -p ''"), "{out:?}");
    let dir = lab.host_dir("db1");
    assert_eq!(
        std::fs::read_to_string(dir.join("whoami")).unwrap(),
        "root\n"
    );
    // The file's content came on stdin after the password: whole, nothing else.
    assert_eq!(
        std::fs::read_to_string(dir.join("by-root.txt")).unwrap(),
        "line one\nline two\n"
    );
    assert_attrs(&dir.join("by-root.txt"), 0, 0, 0o600);
    assert_eq!(lab.run("check", "become_password.yml", &[]).code, 0);

    // A wrong password: sudo's own words, at once, no prompt left waiting.
    inventory("not-the-password");
    let started = std::time::Instant::now();
    let out = lab.run("check", "become_password.yml", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        out.all()
            .contains("become with `sudo` failed: the become password was refused (`sudo: ")
            && out.all().contains("incorrect password attempts`)"),
        "{out:?}"
    );
    assert!(!out.all().contains("not-the-password"), "{out:?}");
}

#[test]
fn become_with_su_and_the_target_users_password() {
    let sshd = Sshd::start();
    let lab = Lab::new(&sshd);
    let login = SudoUser::create_as("login", false);
    let target = SudoUser::create_as("sutarget", false);
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(lab.base(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The play's `become_method: su` first, then the inventory's `ansible_become_method`.
    let inventory = |password: &str, method: Option<&str>| {
        let mut host = Host::on("db1", &sshd);
        host.vars = vec![
            format!("ansible_user: {}", login.name),
            format!("ansible_become_pass: '{password}'"),
            format!("ansible_become_user: {}", target.name),
        ];
        host.vars
            .extend(method.map(|m| format!("ansible_become_method: {m}")));
        lab.write_inventory(&[host], &[]);
    };
    inventory(&target.password, None);
    let out = lab.run("apply", "become_su.yml", &["-vv"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.all().contains(&target.password), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(lab.base().join("db1-whoami")).unwrap(),
        format!("{}\n", target.name)
    );
    let written = lab.base().join("db1-su.txt");
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        "as su\nline two\n"
    );
    assert_eq!(
        std::fs::metadata(&written).unwrap().uid(),
        uid_of(&target.name)
    );
    assert_eq!(lab.run("check", "become_su.yml", &[]).code, 0);

    inventory("not-the-password", Some("su"));
    let out = lab.run("check", "become_su.yml", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.all().contains(
            "become with `su` failed: the become password was refused (`su: Authentication failure`)"
        ),
        "{out:?}"
    );
}

#[test]
fn proxy_jump_from_ansible_ssh_common_args() {
    let bastion = Sshd::start();
    let db = Sshd::start();
    let lab = Lab::new(&db);
    // The jump's key comes from the ssh config, as for `ssh -J` (which does not pass `-i` on).
    std::fs::write(
        lab.dir.path().join("ssh_config"),
        format!("Host *\n  IdentityFile {}\n", bastion.client_key.display()),
    )
    .unwrap();
    let known_hosts = lab.known_hosts_of(&[&bastion, &db]);
    let mut host = Host::on("db1", &db);
    host.known_hosts = known_hosts;
    host.vars = vec![format!(
        "ansible_ssh_common_args: '-o ProxyJump=root@127.0.0.1:{} -o ConnectTimeout=5 -o ControlMaster=auto'",
        bastion.port
    )];
    lab.write_inventory(&[host], &[]);
    let out = lab.run("apply", "site.yml", &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let through_bastion = std::fs::read_to_string(&bastion.log)
        .unwrap_or_default()
        .matches("Accepted publickey for root")
        .count();
    assert_eq!(through_bastion, 1, "{out:?}");

    // An option the transport cannot honour is refused where it is set, before any connection.
    let mut host = Host::on("db1", &db);
    host.vars = vec!["ansible_ssh_extra_args: '-o ProxyCommand=\"nc %h %p\"'".to_owned()];
    lab.write_inventory(&[host], &[]);
    let out = lab.run("plan", "site.yml", &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "ansible_ssh_extra_args: `ansible_ssh_extra_args`: `ProxyCommand` is not supported: use `ProxyJump`"
        ),
        "{out:?}"
    );
}
