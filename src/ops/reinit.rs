//! `pgdeploy reinit HOST`: a replica's data directory erased and copied again from the
//! leader (Patroni's reinitialize); never the leader. Waits until it streams again.

use serde_json::json;

use super::{confirm, decide, Cluster, Report};
use crate::cli::ReinitArgs;
use pgdeploy_core::exit::Exit;

pub(crate) fn run(args: &ReinitArgs, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: "reinit",
    };
    let mut cluster = match Cluster::open(&args.ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = reinit(&mut cluster, args, &report);
    cluster.close();
    Ok(exit)
}

fn reinit(cluster: &mut Cluster, args: &ReinitArgs, report: &Report) -> Exit {
    let name = cluster.member_name(&args.host);
    let s = &cluster.state;
    if let Some(why) = decide::reinit_refusal(s, &name) {
        return report.fail(&format!("refusing to reinitialise: {why}"), Exit::Error);
    }
    let leader = s.leader().map(|l| l.name.clone()).unwrap_or_default();
    report.plan(
        &format!(
            "reinitialise `{name}` of cluster `{}`: its data directory is erased and copied again from the leader `{leader}`",
            cluster.scope()
        ),
        json!({"member": name, "leader": leader, "members": s.members}),
    );
    if let Err(e) = confirm(
        report,
        args.ops.yes,
        &format!("Erase and copy `{name}` again?"),
    ) {
        return e;
    }
    let scope = cluster.scope();
    if let Err(e) = cluster.ctl(
        &["reinit", scope.as_str(), name.as_str(), "--force", "--wait"],
        cluster.timeout,
    ) {
        return report.fail(&e, Exit::Error);
    }
    match cluster.wait_for(report, &format!("`{name}` to stream again"), |s| {
        s.settled() && s.member(&name).is_some_and(|m| m.lag_mb.is_some())
    }) {
        Ok(_) => {
            let m = cluster.state.member(&name).cloned();
            report.done(
                &format!(
                    "`{name}` reinitialised and streaming ({})",
                    cluster.state.summary()
                ),
                json!({"member": m}),
            );
            Exit::Success
        }
        Err(e) => report.fail(&e, Exit::Error),
    }
}
