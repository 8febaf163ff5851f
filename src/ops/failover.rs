//! `pgdeploy failover --to HOST`: promotes a replica when the cluster has no healthy leader.
//! With a healthy leader it refuses (a switchover is the clean way) unless `--with-leader`,
//! since Patroni would fail over anyway.

use std::time::Instant;

use serde_json::json;

use super::{confirm, decide, Cluster, Report};
use crate::cli::FailoverArgs;
use pgdeploy_core::exit::Exit;

pub(crate) fn run(args: &FailoverArgs, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: "failover",
    };
    let mut cluster = match Cluster::open(&args.ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = failover(&mut cluster, args, &report);
    cluster.close();
    Ok(exit)
}

fn failover(cluster: &mut Cluster, args: &FailoverArgs, report: &Report) -> Exit {
    let to = cluster.member_name(&args.to);
    let s = &cluster.state;
    if let Some(why) = decide::failover_refusal(s, &to, args.with_leader) {
        return report.fail(&format!("refusing the failover: {why}"), Exit::Error);
    }
    let from = s
        .leader()
        .map(|l| format!("leader `{}` ({})", l.name, l.state))
        .unwrap_or_else(|| "no leader".into());
    report.plan(
        &format!(
            "failover of cluster `{}`: {from} → promote `{to}` ({})",
            cluster.scope(),
            s.summary()
        ),
        json!({"candidate": to, "members": s.members}),
    );
    if let Err(e) = confirm(report, args.ops.yes, "Fail over?") {
        return e;
    }
    let scope = cluster.scope();
    let started = Instant::now();
    if let Err(e) = cluster.ctl(
        &[
            "failover",
            scope.as_str(),
            "--candidate",
            to.as_str(),
            "--force",
        ],
        cluster.timeout,
    ) {
        return report.fail(&e, Exit::Error);
    }
    if let Err(e) = cluster.wait_for(report, &format!("`{to}` to lead"), |s| {
        s.member(&to).is_some_and(|m| m.healthy_leader())
    }) {
        return report.fail(&e, Exit::Error);
    }
    let leads = started.elapsed();
    match cluster.wait_for(
        report,
        "the other members to stream from the new leader",
        |s| s.settled(),
    ) {
        Ok(_) => {
            report.done(
                &format!(
                    "failed over to `{to}`: it leads after {:.1} s; cluster settled after {:.1} s ({})",
                    leads.as_secs_f64(),
                    started.elapsed().as_secs_f64(),
                    cluster.state.summary()
                ),
                json!({"leader": to, "leads_after_s": leads.as_secs_f64(), "members": cluster.state.members}),
            );
            Exit::Success
        }
        Err(e) => report.fail(
            &format!(
                "`{to}` leads, but {e} (a member that cannot follow may need `pgdeploy reinit`)"
            ),
            Exit::Error,
        ),
    }
}
