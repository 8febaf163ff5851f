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

use support::sshd::Sshd;

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
}

impl Host {
    fn on(name: &str, sshd: &Sshd) -> Host {
        Host {
            name: name.to_owned(),
            port: sshd.port,
            known_hosts: sshd.known_hosts.clone(),
            vars: Vec::new(),
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
            let _ = writeln!(inv, "      ansible_host: 127.0.0.1");
            let _ = writeln!(inv, "      ansible_port: {}", h.port);
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
    let sshd = Sshd::start();
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
