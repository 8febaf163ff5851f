//! `pgdeploy backup [--type full|diff|incr]`: one pgBackRest backup of the cluster, taken
//! from its current leader into the repository. pgBackRest runs it on the repository host
//! (the one its members' locator names), which finds the primary among the members itself;
//! the command checks first that the cluster has a running leader (refused otherwise, with
//! the members' states: pgBackRest needs the primary for every backup), and waits until the
//! backup is in the repository's list.

use std::time::{Duration, Instant};

use serde_json::json;

use super::backrest::{self, Backrest};
use super::state::ClusterState;
use super::{Cluster, Report};
use crate::cli::BackupArgs;
use pgdeploy_core::exit::Exit;

pub(crate) fn run(args: &BackupArgs, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: "backup",
    };
    let mut cluster = match Cluster::open(&args.ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = backup(&mut cluster, args, &report);
    cluster.close();
    Ok(exit)
}

/// The pgBackRest locator of the first member that has one, with the repository host
/// connected.
pub(crate) fn locate(cluster: &mut Cluster) -> Result<Backrest, String> {
    let mut first = None;
    for host in cluster.host_names() {
        let out = cluster.run_on(
            &host,
            &backrest::locator_script(),
            None,
            Duration::from_secs(30),
        )?;
        if let Some(b) = backrest::parse_locator(&String::from_utf8_lossy(&out.stdout)) {
            cluster.connect_host(&b.repo_host).map_err(|e| {
                format!(
                    "the repository host `{}` (named by `{host}`'s locator): {e}",
                    b.repo_host
                )
            })?;
            return Ok(b);
        }
        first.get_or_insert(host);
    }
    Err(backrest::no_locator(&first.unwrap_or_default()))
}

/// The repository's backups, read on the repository host.
pub(crate) fn info(cluster: &Cluster, b: &Backrest) -> Result<backrest::Info, String> {
    let out = cluster.run_ok(
        &b.repo_host,
        &b.on_repo("--output=json info"),
        "`pgbackrest info`",
        Duration::from_secs(60),
    )?;
    backrest::parse_info(&out)
}

/// Why there is no backup without a running leader: pgBackRest takes every backup through
/// the primary (with `backup-standby` it copies the files from a replica, but still starts
/// and stops the backup on the primary), so no replica is used instead.
fn no_leader(s: &ClusterState) -> String {
    let members = if s.members.is_empty() {
        "no member in the DCS".to_string()
    } else {
        s.summary()
    };
    format!(
        "cluster `{}` has no running leader to back up ({members}): pgBackRest backs up through the primary \
         (even with `backup-standby`, which copies from a replica, the primary must run); start Patroni, \
         or bring the cluster back with `pgdeploy restore`",
        s.scope.as_deref().unwrap_or_default()
    )
}

fn backup(cluster: &mut Cluster, args: &BackupArgs, report: &Report) -> Exit {
    let Some(leader) = cluster.state.healthy_leader().map(|l| l.name.clone()) else {
        return report.fail(&no_leader(&cluster.state), Exit::Error);
    };
    let b = match locate(cluster) {
        Ok(b) => b,
        Err(e) => return report.fail(&e, Exit::Error),
    };
    let kind = args.kind.as_str();
    report.plan(
        &format!(
            "{kind} backup of cluster `{}` (stanza `{}`) from the leader `{leader}` into the repository on `{}`",
            cluster.scope(),
            b.stanza,
            b.repo_host
        ),
        json!({"type": kind, "leader": leader, "stanza": b.stanza, "repo_host": b.repo_host}),
    );
    let before = match info(cluster, &b) {
        Ok(i) => i.backups.len(),
        Err(e) => return report.fail(&e, Exit::Error),
    };
    let started = Instant::now();
    report.progress(
        &format!(
            "  running `pgbackrest --type={kind} backup` on `{}`",
            b.repo_host
        ),
        json!({}),
    );
    // A backup of a big cluster takes hours: no timeout but the user's (`--timeout`, raised
    // to a day at least for the backup itself).
    let limit = cluster.timeout.max(Duration::from_secs(86_400));
    if let Err(e) = cluster.run_ok(
        &b.repo_host,
        &b.on_repo(&format!("--type={kind} backup")),
        "`pgbackrest backup`",
        limit,
    ) {
        return report.fail(&e, Exit::Error);
    }
    let elapsed = started.elapsed();
    let info = match info(cluster, &b) {
        Ok(i) => i,
        Err(e) => return report.fail(&e, Exit::Error),
    };
    let Some(set) = info
        .backups
        .last()
        .filter(|_| info.backups.len() > before || before == 0)
    else {
        return report.fail(
            "`pgbackrest backup` succeeded but the repository lists no new backup",
            Exit::Error,
        );
    };
    report.done(
        &format!(
            "backup `{}` ({}) taken in {:.1} s: {} MB of data, {} MB in the repository",
            set.label,
            set.kind,
            elapsed.as_secs_f64(),
            set.size / 1_000_000,
            set.repo_size / 1_000_000
        ),
        json!({"backup": set, "seconds": elapsed.as_secs_f64()}),
    );
    Exit::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_running_leader_the_backup_says_why() {
        let mut s = pgdeploy_modules::patroni_state::fixture::state();
        s.members[0].state = "stopped".into();
        let e = no_leader(&s);
        assert!(
            e.starts_with(
                "cluster `pgcluster` has no running leader to back up (pg1 Leader stopped TL 2"
            ),
            "{e}"
        );
        assert!(e.contains("the primary must run"), "{e}");
        s.members.clear();
        assert!(no_leader(&s).contains("(no member in the DCS)"));
    }
}
