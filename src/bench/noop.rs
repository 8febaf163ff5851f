//! No-op re-apply benchmark: `pgdeploy apply` on converged hosts, over real SSH.
//!
//! Starts `hosts` OpenSSH servers on 127.0.0.1 (see [`super::sshd`]), writes an inventory and a
//! small generic playbook (directory, copy, template, file, guarded command per host, all under
//! the benchmark's own directory), converges them with one `apply`, then times `runs` further
//! `apply` runs of this same binary as a child process: wall time from spawn to exit, and the
//! child's peak resident memory (`ru_maxrss`). Each measured run must exit 0 with 0 changes.
//! Needs root (sshd) and OpenSSH.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::sshd::{self, LocalSshd, SshdError};

/// What one host count measured.
pub struct Report {
    pub hosts: usize,
    pub runs: usize,
    pub median: Duration,
    pub min: Duration,
    /// Highest peak RSS of the measured `apply` processes.
    pub peak_rss_kib: u64,
    /// Median CPU time (user + system) of the `apply` process itself.
    pub client_cpu: Duration,
    /// Median CPU time the whole machine spent during a run (client, sshd, remote commands):
    /// on a machine otherwise idle, what the run costs its two cores.
    pub machine_cpu: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NoopError {
    #[error(transparent)]
    Sshd(#[from] SshdError),
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{what}` exited with status {code} (want 0); its output is in `{}`", output.display())]
    Failed {
        what: String,
        code: i32,
        output: PathBuf,
    },
    #[error("the re-apply changed {changed} steps, want 0 (output in `{}`)", output.display())]
    NotNoop { changed: u64, output: PathBuf },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NoopError + '_ {
    move |source| NoopError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Tasks in the benchmark playbook (the 20-task no-op).
pub const TASKS: usize = 20;

/// Four blocks of five generic tasks (directory, copy, template, file, guarded command).
fn playbook_text() -> String {
    let mut out = String::from(
        "- name: no-op benchmark\n  hosts: all\n  vars:\n    dir: \"{{ base }}/{{ inventory_hostname }}\"\n  tasks:\n",
    );
    for k in 1..=TASKS / 5 {
        let _ = write!(
            out,
            "    - name: directory {k}\n      directory: {{path: \"{{{{ dir }}}}/d{k}\", mode: \"0755\"}}\n\
             \x20   - name: inline config {k}\n      copy: {{dest: \"{{{{ dir }}}}/d{k}/app.conf\", content: \"name={{{{ inventory_hostname }}}}\\nport=5432\\n\", mode: \"0644\"}}\n\
             \x20   - name: rendered config {k}\n      template: {{src: node.conf.j2, dest: \"{{{{ dir }}}}/d{k}/node.conf\", mode: \"0640\"}}\n\
             \x20   - name: marker {k}\n      file: {{path: \"{{{{ dir }}}}/d{k}/marker\", state: touch, mode: \"0600\"}}\n\
             \x20   - name: one-time init {k}\n      command: {{cmd: \"echo done > {{{{ dir }}}}/d{k}/init\", creates: \"{{{{ dir }}}}/d{k}/init\"}}\n"
        );
    }
    out
}

const TEMPLATE: &str = "host={{ inventory_hostname }}\nos={{ ansible_distribution }}\n";

/// The benchmark's directory, removed (after its servers stop) when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `hosts` servers, converges them once, then measures `runs` no-op re-applies.
/// `user` is the login user (root, or a user with a cheap shell startup; it must be able to
/// write under the benchmark's directory, which is made world-readable for it).
pub fn run(hosts: usize, runs: usize, user: &str) -> Result<Report, NoopError> {
    let work = WorkDir(std::env::temp_dir().join(format!(
        "pgdeploy-bench-noop-{}-{hosts}",
        std::process::id()
    )));
    let root = &work.0;
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root.join("templates")).map_err(io_error(root))?;
    let client_key = root.join("id_ed25519");
    sshd::keygen(&client_key)?;
    let client_public = sshd::public_key_of(&client_key)?;
    let servers = LocalSshd::start_many(root, hosts, &client_public)?;

    let base = root.join("managed");
    std::fs::create_dir_all(&base).map_err(io_error(&base))?;
    if user != "root" {
        // The login user reaches and writes the managed tree; keys and sshd files stay 0600.
        chmod(root, 0o755)?;
        chmod(&base, 0o1777)?;
    }
    let known_hosts = root.join("known_hosts");
    let lines: String = servers
        .iter()
        .map(|s| s.known_hosts_line() + "\n")
        .collect();
    write(&known_hosts, &lines)?;
    let mut inv = format!(
        "all:\n  vars:\n    base: {}\n    ansible_user: {user}\n    \
         ansible_ssh_private_key_file: {}\n    pgdeploy_known_hosts_file: {}\n  hosts:\n",
        base.display(),
        client_key.display(),
        known_hosts.display()
    );
    for (i, s) in servers.iter().enumerate() {
        let _ = writeln!(
            inv,
            "    node{i:03}:\n      ansible_host: 127.0.0.1\n      ansible_port: {}",
            s.port
        );
    }
    let inventory = root.join("inventory.yml");
    write(&inventory, &inv)?;
    let playbook = root.join("playbook.yml");
    write(&playbook, &playbook_text())?;
    write(&root.join("templates/node.conf.j2"), TEMPLATE)?;
    let ssh_config = root.join("ssh_config");
    write(&ssh_config, "")?;

    let exe = std::env::current_exe().map_err(io_error(Path::new("pgdeploy")))?;
    let apply = |output: &Path| -> Result<(Duration, Usage, i32), NoopError> {
        let out = std::fs::File::create(output).map_err(io_error(output))?;
        let err = out.try_clone().map_err(io_error(output))?;
        let busy_before = machine_busy();
        let started = Instant::now();
        let child = Command::new(&exe)
            .arg("apply")
            .arg("-i")
            .arg(&inventory)
            .arg(&playbook)
            .arg("--ssh-config")
            .arg(&ssh_config)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_error(&exe))?;
        let (code, mut usage) = wait_with_rusage(child.id()).map_err(io_error(&exe))?;
        let elapsed = started.elapsed();
        usage.machine_cpu = machine_busy().saturating_sub(busy_before);
        Ok((elapsed, usage, code))
    };

    let first = root.join("first-apply.out");
    let (_, _, code) = apply(&first)?;
    if code != 0 {
        return Err(NoopError::Failed {
            what: "pgdeploy apply (first, converging)".into(),
            code,
            output: keep(&first),
        });
    }
    let mut samples = Vec::with_capacity(runs);
    let mut client = Vec::with_capacity(runs);
    let mut machine = Vec::with_capacity(runs);
    let mut peak = 0;
    for r in 0..runs.max(1) {
        let output = root.join(format!("reapply-{r}.out"));
        let (elapsed, usage, code) = apply(&output)?;
        if code != 0 {
            return Err(NoopError::Failed {
                what: "pgdeploy apply (re-apply)".into(),
                code,
                output: keep(&output),
            });
        }
        let changed = changed_steps(&output)?;
        if changed != 0 {
            return Err(NoopError::NotNoop {
                changed,
                output: keep(&output),
            });
        }
        samples.push(elapsed);
        client.push(usage.client_cpu);
        machine.push(usage.machine_cpu);
        peak = peak.max(usage.peak_rss_kib);
    }
    drop(servers);
    let min = samples.iter().min().copied().unwrap_or_default();
    Ok(Report {
        hosts,
        runs: samples.len(),
        median: super::median(samples),
        min,
        peak_rss_kib: peak,
        client_cpu: super::median(client),
        machine_cpu: super::median(machine),
    })
}

fn write(path: &Path, text: &str) -> Result<(), NoopError> {
    std::fs::write(path, text).map_err(io_error(path))
}

fn chmod(path: &Path, mode: u32) -> Result<(), NoopError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error(path))
}

/// Copies a run's output out of the benchmark's directory (removed on return) for the error.
fn keep(output: &Path) -> PathBuf {
    let kept = std::env::temp_dir().join(format!(
        "pgdeploy-bench-noop-{}-{}",
        std::process::id(),
        output.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    match std::fs::copy(output, &kept) {
        Ok(_) => kept,
        Err(_) => output.to_path_buf(),
    }
}

/// The sum of `changed` over the hosts of the `recap` event of a `--json` run.
fn changed_steps(output: &Path) -> Result<u64, NoopError> {
    let text = std::fs::read_to_string(output).map_err(io_error(output))?;
    let recap = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "recap");
    match recap {
        Some(r) => Ok(r["hosts"]
            .as_array()
            .map(|hosts| hosts.iter().filter_map(|h| h["changed"].as_u64()).sum())
            .unwrap_or(0)),
        None => Err(NoopError::Failed {
            what: "pgdeploy apply (no recap event)".into(),
            code: 0,
            output: keep(output),
        }),
    }
}

/// What one `apply` process used.
#[derive(Default)]
struct Usage {
    peak_rss_kib: u64,
    client_cpu: Duration,
    machine_cpu: Duration,
}

/// CPU time the machine spent busy since boot (every state of `/proc/stat`'s `cpu` line but
/// idle and iowait), or zero when it cannot be read.
fn machine_busy() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Duration::ZERO;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return Duration::ZERO;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(busy * 1000 / hz)
}

/// Waits for child `pid`: its exit code (-1 when killed by a signal), peak RSS in KiB and CPU
/// time.
fn wait_with_rusage(pid: u32) -> std::io::Result<(i32, Usage)> {
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value; `wait4` fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is a child of this process not yet reaped.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok((
        code,
        Usage {
            // Linux reports ru_maxrss in KiB.
            peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            client_cpu: time(usage.ru_utime) + time(usage.ru_stime),
            machine_cpu: Duration::ZERO,
        },
    ))
}

#[cfg(test)]
mod playbook_tests {
    #[test]
    fn the_playbook_has_twenty_valid_tasks() {
        let text = super::playbook_text();
        let file = pgdeploy_core::diag::SourceFile::new("bench.yml");
        let node = pgdeploy_core::yaml::load_str(&text, &file).expect("valid YAML");
        let tasks = node.as_seq().unwrap()[0].get("tasks").unwrap();
        assert_eq!(tasks.as_seq().unwrap().len(), super::TASKS);
    }
}
