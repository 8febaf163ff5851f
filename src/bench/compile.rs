//! Front-end benchmark: load and compile a playbook over a generated inventory.
//!
//! The inventory has `hosts` hosts in three groups with group and host variables; the
//! playbook has `tasks` tasks over two plays, half of them templated per host (so the
//! renderer and the typed reading run once per host), with a notified handler and a
//! rolling `throttle`. Reported: the median wall time and CPU time of what `pgdeploy validate`
//! does (load, type-check, compile: [`crate::commands::load`]), generation excluded, and the
//! peak memory. `--write DIR` writes the inputs instead, for timing `validate` itself.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{PlaybookArgs, VaultArgs};

pub struct Report {
    pub hosts: usize,
    pub tasks: usize,
    pub steps: usize,
    pub median: Duration,
    pub min: Duration,
    /// Median CPU time (user + system) of one load + compile.
    pub cpu: Duration,
    pub peak_rss_kib: Option<u64>,
}

/// Writes the generated inventory and playbook into `dir`.
pub fn generate(dir: &Path, hosts: usize, tasks: usize) -> std::io::Result<()> {
    let mut inv = String::from(
        "all:\n  vars:\n    ansible_user: root\n    cluster_name: bench\n  children:\n",
    );
    let groups = ["postgres", "etcd", "balancers"];
    for (g, group) in groups.iter().enumerate() {
        let _ = writeln!(
            inv,
            "    {group}:\n      vars:\n        role: {group}\n      hosts:"
        );
        for h in (0..hosts).filter(|h| h % groups.len() == g) {
            let _ = writeln!(
                inv,
                "        node{h:04}:\n          ansible_host: 10.{}.{}.{}\n          node_index: {h}",
                (h >> 16) & 255,
                (h >> 8) & 255,
                h & 255
            );
        }
    }
    std::fs::write(dir.join("inventory.yml"), inv)?;
    std::fs::create_dir_all(dir.join("templates"))?;
    std::fs::write(
        dir.join("templates/node.conf.j2"),
        "name={{ inventory_hostname }}\nrole={{ role }}\n",
    )?;
    let mut pb = String::new();
    for (play, pattern) in ["all", "postgres"].iter().enumerate() {
        let _ = writeln!(
            pb,
            "- name: play {play}\n  hosts: {pattern}\n  throttle: 10\n  tasks:"
        );
        for t in 0..tasks / 2 {
            let n = play * 100 + t;
            match t % 4 {
                0 => {
                    let _ = writeln!(
                        pb,
                        "    - name: dir {n}\n      directory: {{ path: /srv/d{n}, mode: \"0755\" }}"
                    );
                }
                1 => {
                    let _ = writeln!(
                        pb,
                        "    - name: conf {n}\n      copy:\n        dest: /etc/c{n}.conf\n        content: \"node={{{{ inventory_hostname }}}} index={{{{ node_index }}}} addr={{{{ ansible_host }}}}\\n\"\n      notify: reload {play}"
                    );
                }
                2 => {
                    let _ = writeln!(
                        pb,
                        "    - name: tpl {n}\n      template: {{ src: node.conf.j2, dest: \"/etc/{{{{ cluster_name }}}}-{n}.conf\" }}"
                    );
                }
                _ => {
                    let _ = writeln!(
                        pb,
                        "    - name: cmd {n}\n      command: {{ cmd: \"true\", creates: /srv/done-{n} }}\n      when: node_index is defined"
                    );
                }
            }
        }
        let _ = writeln!(
            pb,
            "  handlers:\n    - name: reload {play}\n      service: {{ name: ssh, state: reloaded }}"
        );
    }
    std::fs::write(dir.join("playbook.yml"), pb)
}

pub fn run(hosts: usize, tasks: usize, runs: usize) -> anyhow::Result<Report> {
    let dir = tempfile_dir()?;
    generate(&dir, hosts, tasks)?;
    let args = PlaybookArgs {
        inventory: dir.join("inventory.yml"),
        playbook: dir.join("playbook.yml"),
        limit: None,
        facts: None,
        extra_vars: Vec::new(),
        tags: Vec::new(),
        skip_tags: Vec::new(),
        vault: VaultArgs {
            vault_password_file: None,
        },
    };
    let mut samples = Vec::new();
    let mut cpu = Vec::new();
    let mut steps = 0;
    for _ in 0..runs.max(1) {
        let (start, cpu_start) = (Instant::now(), cpu_time());
        let loaded = crate::commands::load(&args)
            .map_err(|d| anyhow::anyhow!("generated site is invalid:\n{d}"))?;
        samples.push(start.elapsed());
        cpu.push(cpu_time().saturating_sub(cpu_start));
        steps = loaded.compiled.graph.node_count();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let min = samples.iter().min().copied().unwrap_or_default();
    Ok(Report {
        hosts,
        tasks,
        steps,
        median: super::median(samples),
        min,
        cpu: super::median(cpu),
        peak_rss_kib: super::peak_rss_kib(),
    })
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value, which `getrusage` fills for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("pgdeploy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
