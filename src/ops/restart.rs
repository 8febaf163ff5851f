//! `pgdeploy restart [HOST…] [--pending]`: PostgreSQL restarted member by member through
//! Patroni, replicas first and the leader last (the order of the `patroni` module's rolling
//! restart, decided in [`super::decide::restart_order`]), each one waited for until it leads
//! or streams again before the next.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{confirm, decide, Cluster, Report};
use crate::cli::RestartArgs;
use pgdeploy_core::exit::Exit;

pub(crate) fn run(args: &RestartArgs, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: "restart",
    };
    let mut cluster = match Cluster::open(&args.ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = restart(&mut cluster, args, &report);
    cluster.close();
    Ok(exit)
}

fn restart(cluster: &mut Cluster, args: &RestartArgs, report: &Report) -> Exit {
    let named: Vec<String> = args
        .members
        .iter()
        .map(|h| cluster.member_name(h))
        .collect();
    let order = match decide::restart_order(&cluster.state, &named, args.pending) {
        Ok(o) => o,
        Err(e) => return report.fail(&e, Exit::Usage),
    };
    if order.is_empty() {
        report.done(
            "no member waits for a restart: nothing to do",
            json!({"restarted": []}),
        );
        return Exit::Success;
    }
    if cluster.state.paused {
        report.progress(
            "note: the cluster is paused: Patroni restarts members on request, but does not fail over",
            json!({}),
        );
    }
    let leader = cluster.state.leader().map(|l| l.name.clone());
    let shown: Vec<String> = order
        .iter()
        .map(|n| {
            if Some(n) == leader.as_ref() {
                format!("`{n}` (leader)")
            } else {
                format!("`{n}`")
            }
        })
        .collect();
    report.plan(
        &format!(
            "restart PostgreSQL{} on {}, one at a time, replicas first, leader last",
            if args.pending {
                " where a restart is pending"
            } else {
                ""
            },
            shown.join(", ")
        ),
        json!({"order": order, "members": cluster.state.members}),
    );
    if let Err(e) = confirm(report, args.ops.yes, "Restart?") {
        return e;
    }
    let scope = cluster.scope();
    let started = Instant::now();
    for name in &order {
        let one = Instant::now();
        let mut ctl = vec!["restart", scope.as_str(), name.as_str(), "--force"];
        if args.pending {
            ctl.push("--pending");
        }
        report.progress(&format!("restarting `{name}`"), json!({"member": name}));
        if let Err(e) = cluster.ctl(&ctl, cluster.timeout) {
            return report.fail(&e, Exit::Error);
        }
        // `/cluster` comes from the DCS, written once per HA loop: wait a moment so that a
        // state from before the restart is not read as "back".
        std::thread::sleep(Duration::from_secs(1));
        let was_leader = Some(name) == leader.as_ref();
        let back = cluster.wait_for(report, &format!("`{name}` to run again"), |s| {
            let Some(m) = s.member(name) else {
                return false;
            };
            let ok = if was_leader {
                m.healthy_leader()
            } else {
                m.streams(s.old_patroni())
            };
            ok && (!args.pending || !m.pending_restart)
        });
        if let Err(e) = back {
            return report.fail(&e, Exit::Error);
        }
        report.progress(
            &format!(
                "  `{name}` restarted, {} again after {:.1} s",
                if was_leader { "leading" } else { "streaming" },
                one.elapsed().as_secs_f64()
            ),
            json!({"member": name, "seconds": one.elapsed().as_secs_f64()}),
        );
    }
    match cluster.wait_for(report, "the cluster to settle", |s| s.settled()) {
        Ok(_) => {
            report.done(
                &format!(
                    "restarted {} in {:.1} s ({})",
                    shown.join(", "),
                    started.elapsed().as_secs_f64(),
                    cluster.state.summary()
                ),
                json!({"restarted": order, "members": cluster.state.members}),
            );
            Exit::Success
        }
        Err(e) => report.fail(&e, Exit::Error),
    }
}
