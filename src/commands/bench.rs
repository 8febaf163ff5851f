//! `pgdeploy bench`: prints measurements as one table row each, and with several host counts a
//! last row of the time per host at each count, relative to the first, so that how the cost
//! grows with the number of hosts reads off one line.

use std::time::Duration;

use crate::cli::BenchCommand;
use pgdeploy_core::exit::Exit;

pub(crate) fn run(cmd: &BenchCommand) -> anyhow::Result<Exit> {
    // 200 hosts are 200 servers, each with its sockets and log, and as many connections.
    crate::bench::raise_open_files_limit();
    match cmd {
        BenchCommand::Compile {
            hosts,
            tasks,
            write: Some(dir),
            ..
        } => {
            let [hosts] = hosts[..] else {
                anyhow::bail!("`--write` takes one host count, not `{}`", hosts.len());
            };
            std::fs::create_dir_all(dir)?;
            crate::bench::compile::generate(dir, hosts, *tasks)?;
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
            let mut rows = Vec::new();
            for &n in hosts {
                let r = crate::bench::compile::run(n, *tasks, *runs)?;
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
                rows.push((r.hosts, r.median, r.cpu));
            }
            if let Some(line) = scaling("compile", &rows) {
                pgdeploy_core::outln!("{line}");
            }
        }
        BenchCommand::Noop { hosts, runs, user } => {
            let mut rows = Vec::new();
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
                rows.push((r.hosts, r.median, r.client_cpu));
            }
            if let Some(line) = scaling("noop re-apply", &rows) {
                pgdeploy_core::outln!("{line}");
            }
        }
    }
    Ok(Exit::Success)
}

/// `what scaling: per host 16.9 ms at 50, 15.2 ms at 100 (×0.90), …; CPU per host …`: wall
/// and CPU time per host at each `(hosts, wall, cpu)` row, each relative to the first row.
/// A ratio at or under ×1.00 is linear or better. `None` for fewer than two rows.
fn scaling(what: &str, rows: &[(usize, Duration, Duration)]) -> Option<String> {
    let (first, rest) = rows.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let per_host = |d: Duration, n: usize| d.as_secs_f64() * 1000.0 / n.max(1) as f64;
    let series = |pick: fn(&(usize, Duration, Duration)) -> Duration| {
        let base = per_host(pick(first), first.0);
        rows.iter()
            .map(|r| {
                let v = per_host(pick(r), r.0);
                let text = if v < 1.0 {
                    format!("{:.1} µs at {}", v * 1000.0, r.0)
                } else {
                    format!("{v:.2} ms at {}", r.0)
                };
                if std::ptr::eq(r, first) || base <= 0.0 {
                    text
                } else {
                    format!("{text} (×{:.2})", v / base)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "{what} scaling, time per host: wall {}; CPU {}",
        series(|r| r.1),
        series(|r| r.2)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn scaling_is_per_host_time_relative_to_the_first_count() {
        let rows = [(50, ms(1000), ms(100)), (200, ms(3000), ms(800))];
        assert_eq!(
            scaling("noop", &rows).unwrap(),
            "noop scaling, time per host: wall 20.00 ms at 50, 15.00 ms at 200 (×0.75); \
             CPU 2.00 ms at 50, 4.00 ms at 200 (×2.00)"
        );
        let rows = [(100, ms(3), ms(2)), (1000, ms(20), ms(30))];
        assert_eq!(
            scaling("compile", &rows).unwrap(),
            "compile scaling, time per host: wall 30.0 µs at 100, 20.0 µs at 1000 (×0.67); \
             CPU 20.0 µs at 100, 30.0 µs at 1000 (×1.50)"
        );
    }

    #[test]
    fn one_count_has_no_scaling_row() {
        assert_eq!(scaling("noop", &[(50, ms(1000), ms(100))]), None);
        assert_eq!(scaling("noop", &[]), None);
    }
}
