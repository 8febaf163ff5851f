//! Front-end benchmark: load and compile a playbook over a generated inventory.
//!
//! The inventory has `hosts` hosts in three groups with group and host variables; the
//! playbook has `tasks` tasks over two plays, half of them templated per host (so the
//! renderer and the typed reading run once per host), with a notified handler and a
//! rolling `throttle`. Reported: the median wall time of load + compile and the peak memory.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compile::{compile, CompileOptions};

pub struct Report {
    pub hosts: usize,
    pub tasks: usize,
    pub steps: usize,
    pub median: Duration,
    pub min: Duration,
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
    let mut samples = Vec::new();
    let mut steps = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let inventory = crate::inventory::load(&dir.join("inventory.yml"))
            .map_err(|d| anyhow::anyhow!("generated inventory is invalid:\n{d}"))?;
        let playbook = crate::playbook::load(&dir.join("playbook.yml"))
            .map_err(|d| anyhow::anyhow!("generated playbook is invalid:\n{d}"))?;
        let compiled = compile(
            &playbook,
            Arc::new(inventory),
            CompileOptions {
                limit: None,
                facts: None,
            },
        )
        .map_err(|d| anyhow::anyhow!("generated playbook does not compile:\n{d}"))?;
        samples.push(start.elapsed());
        steps = compiled.graph.node_count();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let min = samples.iter().min().copied().unwrap_or_default();
    Ok(Report {
        hosts,
        tasks,
        steps,
        median: super::median(samples),
        min,
        peak_rss_kib: super::peak_rss_kib(),
    })
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("pgdeploy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
