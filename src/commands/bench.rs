//! `pgdeploy bench`: prints measurements as one table row each.

use crate::cli::BenchCommand;
use pgdeploy_core::exit::Exit;

pub fn run(cmd: &BenchCommand) -> anyhow::Result<Exit> {
    match cmd {
        BenchCommand::Compile {
            hosts,
            tasks,
            write: Some(dir),
            ..
        } => {
            std::fs::create_dir_all(dir)?;
            crate::bench::compile::generate(dir, *hosts, *tasks)?;
            pgdeploy_core::outln!(
                "wrote {hosts} hosts and {tasks} tasks: pgdeploy validate -i {} {}",
                dir.join("inventory.yml").display(),
                dir.join("playbook.yml").display()
            );
        }
        BenchCommand::Compile {
            hosts,
            tasks,
            runs,
            write: None,
        } => {
            let r = crate::bench::compile::run(*hosts, *tasks, *runs)?;
            pgdeploy_core::outln!(
                "compile: {} hosts, {} tasks, {} steps: median {:.1} ms (CPU {:.1} ms), min {:.1} ms over {runs} runs, peak memory {}",
                r.hosts,
                r.tasks,
                r.steps,
                r.median.as_secs_f64() * 1000.0,
                r.cpu.as_secs_f64() * 1000.0,
                r.min.as_secs_f64() * 1000.0,
                r.peak_rss_kib
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                    .unwrap_or_else(|| "unknown".into()),
            );
        }
        BenchCommand::Noop { hosts, runs, user } => {
            for &n in hosts {
                let r = crate::bench::noop::run(usize::from(n), *runs, user)?;
                pgdeploy_core::outln!(
                    "noop re-apply: {} hosts, login `{user}`: median {:.0} ms, min {:.0} ms over {} runs, peak memory {:.1} MiB, CPU {:.0} ms in pgdeploy, {:.0} ms on the whole machine",
                    r.hosts,
                    r.median.as_secs_f64() * 1000.0,
                    r.min.as_secs_f64() * 1000.0,
                    r.runs,
                    r.peak_rss_kib as f64 / 1024.0,
                    r.client_cpu.as_secs_f64() * 1000.0,
                    r.machine_cpu.as_secs_f64() * 1000.0,
                );
            }
        }
    }
    Ok(Exit::Success)
}
