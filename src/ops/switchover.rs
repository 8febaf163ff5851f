//! `pgdeploy switchover`: hands the leadership to a healthy streaming replica (`--to`, or the
//! one with the least lag), now or at `--at`. Refuses a candidate Patroni should not promote,
//! with the reason; measures how long until the new leader runs as the primary, then waits
//! until every replica streams from it.

use std::time::Instant;

use serde_json::json;

use super::{confirm, decide, Cluster, Report};
use crate::cli::SwitchoverArgs;
use pgdeploy_core::exit::Exit;

/// `--at`: an ISO 8601 time with a time zone (Patroni refuses one without):
/// `2026-12-01T22:00:00+00:00` or `…Z`.
pub(crate) fn check_at(at: &str) -> Result<(), String> {
    let b = at.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && b[16] == b':';
    let zone = at.ends_with('Z')
        || at
            .rfind(['+', '-'])
            .is_some_and(|i| i > 18 && at[i + 1..].len() == 5 && at.as_bytes()[i + 3] == b':');
    if shape && zone {
        Ok(())
    } else {
        Err(format!(
            "--at `{at}`: give an ISO 8601 time with its zone, such as `2026-12-01T22:00:00+00:00` or `2026-12-01T22:00:00Z`"
        ))
    }
}

pub(crate) fn run(args: &SwitchoverArgs, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: "switchover",
    };
    if let Some(at) = &args.at {
        if let Err(e) = check_at(at) {
            return Ok(report.fail(&e, Exit::Usage));
        }
    }
    let mut cluster = match Cluster::open(&args.ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = switchover(
        &mut cluster,
        args.to.as_deref(),
        args.at.as_deref(),
        args.ops.yes,
        &report,
    );
    cluster.close();
    Ok(exit)
}

/// The switchover on an open cluster: to inventory host or member `to` (or the best
/// candidate), at `at` (or now); asks first unless `yes`. Also the event of
/// `verify --drill switchover`.
pub(crate) fn switchover(
    cluster: &mut Cluster,
    to: Option<&str>,
    at: Option<&str>,
    yes: bool,
    report: &Report,
) -> Exit {
    let to = to.map(|h| cluster.member_name(h));
    let s = &cluster.state;
    let Some(leader) = s.healthy_leader().map(|m| m.name.clone()) else {
        return report.fail(
            &format!(
                "there is no healthy leader to hand over from ({}); `pgdeploy failover --to HOST` promotes a replica without one",
                s.summary()
            ),
            Exit::Error,
        );
    };
    let candidate = match decide::switchover_candidate(s, to.as_deref()) {
        Ok(c) => c,
        Err(why) => return report.fail(&format!("refusing the switchover: {why}"), Exit::Error),
    };
    let when = at
        .map(|a| format!(" at {a}"))
        .unwrap_or_else(|| " now".into());
    report.plan(
        &format!(
            "switchover of cluster `{}`{when}: leader `{leader}` → `{candidate}` ({})",
            cluster.scope(),
            s.summary()
        ),
        json!({"leader": leader, "candidate": candidate, "at": at, "members": s.members}),
    );
    if let Err(e) = confirm(report, yes, "Switch over?") {
        return e;
    }
    let scope = cluster.scope();
    let mut ctl = vec![
        "switchover",
        scope.as_str(),
        "--leader",
        leader.as_str(),
        "--candidate",
        candidate.as_str(),
        "--force",
    ];
    if let Some(at) = at {
        ctl.extend(["--scheduled", at]);
    }
    let started = Instant::now();
    let answer = match cluster.ctl(&ctl, cluster.timeout) {
        Ok(a) => a,
        Err(e) => return report.fail(&e, Exit::Error),
    };
    if let Some(at) = at {
        report.done(
            &format!(
                "switchover to `{candidate}` scheduled at {at} (Patroni does it then; `pgdeploy status` shows the leader)"
            ),
            json!({"scheduled_at": at, "candidate": candidate, "patronictl": answer}),
        );
        return Exit::Success;
    }
    let leads = match cluster.wait_for(report, &format!("`{candidate}` to lead"), |s| {
        s.member(&candidate).is_some_and(|m| m.healthy_leader())
    }) {
        Ok(_) => started.elapsed(),
        Err(e) => return report.fail(&e, Exit::Error),
    };
    report.progress(
        &format!(
            "  `{candidate}` runs as the primary {:.1} s after the switchover was asked",
            leads.as_secs_f64()
        ),
        json!({"leader": candidate, "leads_after_s": leads.as_secs_f64()}),
    );
    match cluster.wait_for(report, "the replicas to stream from the new leader", |s| {
        s.settled()
    }) {
        Ok(_) => {
            let s = &cluster.state;
            report.done(
                &format!(
                    "switched over to `{candidate}`: it accepted writes after {:.1} s; cluster settled after {:.1} s ({})",
                    leads.as_secs_f64(),
                    started.elapsed().as_secs_f64(),
                    s.summary()
                ),
                json!({"leader": candidate, "leads_after_s": leads.as_secs_f64(),
                       "settled_after_s": started.elapsed().as_secs_f64(), "members": s.members}),
            );
            Exit::Success
        }
        Err(e) => report.fail(&e, Exit::Error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_needs_a_zone() {
        assert!(check_at("2026-12-01T22:00:00+00:00").is_ok());
        assert!(check_at("2026-12-01T22:00:00Z").is_ok());
        assert!(check_at("2026-12-01 22:00:00-05:00").is_ok());
        assert!(check_at("2026-12-01T22:00:00").is_err());
        assert!(check_at("22:00").is_err());
        assert!(check_at("tomorrow").is_err());
    }
}
