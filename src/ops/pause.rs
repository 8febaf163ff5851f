//! `pgdeploy pause` / `pgdeploy resume`: Patroni's maintenance mode (no automatic failover,
//! no restart of a stopped PostgreSQL) on or off for the whole cluster.

use serde_json::json;

use super::{confirm, Cluster, Report};
use crate::cli::OpsArgs;
use pgdeploy_core::exit::Exit;

/// `pause` (`on`) or `resume`.
pub(crate) fn run(args: &OpsArgs, on: bool, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: if on { "pause" } else { "resume" },
    };
    let mut cluster = match Cluster::open(args, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = toggle(&mut cluster, args, on, &report);
    cluster.close();
    Ok(exit)
}

fn toggle(cluster: &mut Cluster, args: &OpsArgs, on: bool, report: &Report) -> Exit {
    let scope = cluster.scope();
    if cluster.state.paused == on {
        report.done(
            &format!(
                "cluster `{scope}` is already {}: nothing to do",
                if on { "paused" } else { "managed (not paused)" }
            ),
            json!({"paused": on, "changed": false}),
        );
        return Exit::Success;
    }
    let what = if on {
        format!("pause cluster `{scope}`: maintenance mode, Patroni stops managing PostgreSQL (no automatic failover, no restart) until `pgdeploy resume`")
    } else {
        format!(
            "resume cluster `{scope}`: Patroni manages PostgreSQL again (automatic failover on)"
        )
    };
    report.plan(
        &what,
        json!({"paused": on, "members": cluster.state.members}),
    );
    let question = if on { "Pause?" } else { "Resume?" };
    if let Err(e) = confirm(report, args.yes, question) {
        return e;
    }
    let verb = if on { "pause" } else { "resume" };
    if let Err(e) = cluster.ctl(&[verb, scope.as_str(), "--wait"], cluster.timeout) {
        return report.fail(&e, Exit::Error);
    }
    let wanted = |s: &super::state::ClusterState| s.paused == on && (on || s.settled());
    match cluster.wait_for(
        report,
        if on {
            "the pause"
        } else {
            "the cluster to settle"
        },
        wanted,
    ) {
        Ok(_) => {
            report.done(
                &format!(
                    "cluster `{scope}` {} ({})",
                    if on { "paused" } else { "resumed" },
                    cluster.state.summary()
                ),
                json!({"paused": on, "changed": true}),
            );
            Exit::Success
        }
        Err(e) => report.fail(&e, Exit::Error),
    }
}
