//! `pgdeploy restore --target-time T | --target-lsn L | --latest`: the cluster brought back
//! to a point in the past from the pgBackRest repository, the sequence of seeds 000 and 002
//! orchestrated and checked, stage by stage:
//!
//! 1. checks, with nothing stopped: the member to restore on is chosen ([`restore_on`]: the
//!    running leader, or without one the last leader, else the first member in inventory
//!    order; refused when a Patroni that cannot be stopped could take over), the repository
//!    holds a backup that ends before the target (refused otherwise), the target is one
//!    PostgreSQL reads (without a running leader: a time with a UTC offset), the members'
//!    pgBackRest and Patroni agree on the data directory and on the cluster, and
//!    `pgbackrest check` on the leader pushes the WAL written so far into the repository
//!    (recovery needs a WAL record after the target; without a running leader, WAL not
//!    archived before it stopped is not recovered, and `pgbackrest info` on the chosen
//!    member checks it reaches the repository);
//! 2. Patroni stopped on every member, replicas first (it stops PostgreSQL);
//! 3. `pgbackrest restore` on the chosen member, PostgreSQL started alone on it (local
//!    connections only) until recovery reaches the target and promotes on a new timeline;
//!    the recovery settings pgBackRest wrote reset, PostgreSQL stopped;
//! 4. the cluster's keys removed from the DCS (`patronictl remove`), so that Patroni, started
//!    there again, takes the restored data directory over as a new cluster's leader (what
//!    Patroni documents as converting a standalone to a Patroni cluster);
//! 5. the other members' data directories emptied and Patroni started there: they are created
//!    again as replicas, from the repository first (`create_replica_methods`), and stream on
//!    the new timeline.
//!
//! The command returns once every member streams from the leader on the new timeline.

use std::time::{Duration, Instant};

use serde_json::json;

use super::backrest::{self, Target};
use super::backup::{info, locate};
use super::restore_on::{self, Candidate};
use super::{confirm, state, Cluster, Report};
use crate::cli::RestoreArgs;
use pgdeploy_core::exit::Exit;
use pgdeploy_core::transport::shell::quote;

/// Where a member's PostgreSQL is, from its Patroni configuration.
#[derive(Debug, Clone)]
struct Paths {
    data_dir: String,
    bin_dir: String,
    /// Patroni's `name` and `scope` for the member.
    name: Option<String>,
    scope: Option<String>,
    /// The `nofailover` tag.
    nofailover: bool,
}

pub(crate) fn run(args: &RestoreArgs, json: bool) -> anyhow::Result<Exit> {
    let report = Report {
        json,
        command: "restore",
    };
    let mut cluster = match Cluster::open(&args.ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = match restore(&mut cluster, args, &report) {
        Ok(()) => Exit::Success,
        Err(e) => e,
    };
    cluster.close();
    Ok(exit)
}

const PATHS_SCRIPT: &str = ". /var/lib/pgdeploy/patroni.env && \
    sed -n -e 's/^  data_dir: /data_dir=/p' -e 's/^  bin_dir: /bin_dir=/p' -e 's/^name: /name=/p' \
      -e 's/^scope: /scope=/p' -e '/^tags:/,/^[^ ]/s/^  nofailover: /nofailover=/p' \"$PATRONI_CONFIG\"; \
    sed -n 's/^pg1-path=/pg1_path=/p' /etc/pgbackrest/pgbackrest.conf";

fn paths(cluster: &Cluster, host: &str) -> Result<Paths, String> {
    let out = cluster.run_ok(
        host,
        PATHS_SCRIPT,
        "reading Patroni's and pgBackRest's configuration",
        Duration::from_secs(30),
    )?;
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
    };
    let data_dir = get("data_dir").ok_or_else(|| {
        format!("no `postgresql.data_dir` in Patroni's configuration on `{host}`")
    })?;
    let bin_dir = get("bin_dir")
        .ok_or_else(|| format!("no `postgresql.bin_dir` in Patroni's configuration on `{host}`"))?;
    match get("pg1_path") {
        Some(p) if p == data_dir => Ok(Paths {
            data_dir,
            bin_dir,
            name: get("name"),
            scope: get("scope"),
            nofailover: get("nofailover").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }),
        other => Err(format!(
            "on `{host}`, pgBackRest's `pg1-path` (`{}`) is not Patroni's data directory `{data_dir}`: a restore would write elsewhere",
            other.unwrap_or_else(|| "unset".into())
        )),
    }
}

/// `pg_controldata`'s `Database cluster state` of the member's data directory (`None`
/// without one): tells which member was last a primary when no Patroni says.
fn pg_state(cluster: &Cluster, host: &str, p: &Paths) -> Option<String> {
    let script = format!(
        "cd / && runuser -u postgres -- {}/pg_controldata -D {} 2>/dev/null | sed -n 's/^Database cluster state: *//p'",
        quote(&p.bin_dir),
        quote(&p.data_dir)
    );
    let out = cluster
        .run_on(host, &script, None, Duration::from_secs(30))
        .ok()?;
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status == 0 && !state.is_empty()).then_some(state)
}

/// A time without a running PostgreSQL: read here (an offset required), and not after the
/// clock of the member restored on.
fn offline_time(cluster: &Cluster, t: &str, host: &str) -> Result<Target, String> {
    let epoch = backrest::parse_time_with_offset(t)?;
    let now = cluster
        .run_ok(
            host,
            "date +%s",
            "reading the clock",
            Duration::from_secs(30),
        )?
        .trim()
        .parse::<f64>()
        .map_err(|_| format!("`date +%s` on `{host}` printed no number"))?;
    if epoch > now {
        return Err(format!(
            "`--target-time` `{t}` is in the future of `{host}`'s clock: nothing to recover to yet"
        ));
    }
    Ok(Target::Time(t.to_string(), epoch))
}

/// The target as PostgreSQL reads it: a time is parsed by the leader's PostgreSQL (the
/// parser recovery uses), so a time it would not accept is refused before anything stops;
/// without a running leader, see [`offline_time`].
fn target(
    cluster: &Cluster,
    args: &RestoreArgs,
    leader_host: &str,
    running: bool,
) -> Result<Target, String> {
    if let (Some(t), false) = (&args.target_time, running) {
        return offline_time(cluster, t, leader_host);
    }
    if let Some(t) = &args.target_time {
        let script = format!(
            "printf '%s\\n' \"select extract(epoch from :'t'::timestamptz), extract(epoch from now())\" | (cd / && runuser -u postgres -- psql -XAt -F ' ' -v t={})",
            quote(t)
        );
        let out = cluster.run_on(leader_host, &script, None, Duration::from_secs(30))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace().map(str::parse::<f64>);
        return match (out.status, words.next(), words.next()) {
            (0, Some(Ok(epoch)), Some(Ok(now))) if epoch <= now => {
                Ok(Target::Time(t.clone(), epoch))
            }
            (0, Some(Ok(_)), Some(Ok(_))) => Err(format!(
                "`--target-time` `{t}` is in the future of the leader's clock: nothing to recover to yet"
            )),
            _ => Err(format!(
                "`--target-time` `{t}` is not a time PostgreSQL reads (`2026-12-01 22:54:45+00`): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        };
    }
    if let Some(l) = &args.target_lsn {
        return backrest::parse_lsn(l)
            .map(|n| Target::Lsn(l.clone(), n))
            .ok_or_else(|| format!("`--target-lsn` `{l}` is not an LSN (`0/3000028`)"));
    }
    Ok(Target::Latest)
}

/// The cluster's scope: the DCS's, else (no member left there) the members' Patroni
/// configurations'; every member must say the same (`--hosts` naming one cluster).
fn scope_of(cluster: &Cluster, all_paths: &[(String, Paths)]) -> Result<String, String> {
    let dcs = cluster.state.scope.clone();
    let mut scope = dcs.clone();
    for (h, p) in all_paths {
        match (&scope, &p.scope) {
            (_, None) => return Err(format!("no `scope` in Patroni's configuration on `{h}`")),
            (None, Some(s)) => scope = Some(s.clone()),
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "refusing to restore: `{h}` is a member of cluster `{b}`, not `{a}` (`--hosts` names one cluster); nothing was stopped"
                ))
            }
            _ => {}
        }
    }
    scope.ok_or_else(|| "no member of `--hosts` was reached".to_string())
}

fn stage(report: &Report, n: u32, what: &str) {
    report.progress(&format!("stage {n}/5: {what}"), json!({"stage": n}));
}

fn fail(report: &Report, message: String) -> Exit {
    report.fail(&message, Exit::Error)
}

fn restore(cluster: &mut Cluster, args: &RestoreArgs, report: &Report) -> Result<(), Exit> {
    let started = Instant::now();
    // 1. Checks; nothing is stopped before they all pass.
    let hosts = cluster.host_names();
    let mut all_paths = Vec::new();
    for h in &hosts {
        all_paths.push((h.clone(), paths(cluster, h).map_err(|e| fail(report, e))?));
    }
    let scope = scope_of(cluster, &all_paths).map_err(|e| fail(report, e))?;
    let candidates: Vec<Candidate> = all_paths
        .iter()
        .map(|(h, p)| Candidate {
            host: h.clone(),
            member: p.name.clone().unwrap_or_else(|| cluster.member_name(h)),
            nofailover: p.nofailover,
            pg_state: pg_state(cluster, h, p),
        })
        .collect();
    let choice = restore_on::choose(&cluster.state, &candidates, |m| cluster.host_of_member(m))
        .map_err(|e| {
            fail(
                report,
                format!("refusing to restore: {e}; nothing was stopped"),
            )
        })?;
    let leader_host = choice.host.clone();
    let leader = choice.member.clone();
    let b = locate(cluster).map_err(|e| fail(report, e))?;
    let target =
        target(cluster, args, &leader_host, choice.running_leader).map_err(|e| fail(report, e))?;
    let repo = info(cluster, &b).map_err(|e| fail(report, e))?;
    let set = backrest::backup_for(&repo, &target)
        .map_err(|e| {
            fail(
                report,
                format!("refusing to restore: {e}; nothing was stopped"),
            )
        })?
        .clone();
    if choice.running_leader {
        stage(
            report,
            1,
            "`pgbackrest check` on the leader: the WAL written so far reaches the repository",
        );
        cluster
            .run_ok(
                &leader_host,
                &b.on_member("check"),
                "`pgbackrest check`",
                Duration::from_secs(120),
            )
            .map_err(|e| fail(report, format!("{e}; nothing was stopped")))?;
    } else {
        stage(
            report,
            1,
            &format!(
                "no running primary to push the last WAL: recovery reaches at most the archive's end (`{}`); `pgbackrest info` on `{leader_host}`: it reaches the repository",
                repo.archive_max.as_deref().unwrap_or("none")
            ),
        );
        cluster
            .run_ok(
                &leader_host,
                &b.on_member("info"),
                "`pgbackrest info`",
                Duration::from_secs(120),
            )
            .map_err(|e| fail(report, format!("{e}; nothing was stopped")))?;
    }
    let others: Vec<String> = hosts
        .iter()
        .filter(|h| **h != leader_host)
        .cloned()
        .collect();
    report.plan(
        &format!(
            "restore cluster `{scope}` to {} from backup `{}` ({}, ended `{}`): stop Patroni on {}, restore `{leader_host}` ({}), \
             bootstrap the cluster from it, then erase and re-create {} as replicas",
            target.shown(),
            set.label,
            set.kind,
            backrest::utc(set.stop),
            hosts.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
            choice.why,
            if others.is_empty() {
                "no other member".to_string()
            } else {
                others.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
            }
        ),
        json!({"target": target.shown(), "backup": set, "restored_on": leader_host, "why": choice.why, "replicas": others}),
    );
    confirm(
        report,
        args.ops.yes,
        &format!(
            "Stop cluster `{scope}` and restore it to {}? Every change after it is lost.",
            target.shown()
        ),
    )?;

    // 2. Patroni stopped everywhere, replicas first.
    stage(report, 2, "Patroni stopped on every member, replicas first");
    for h in others.iter().chain(std::iter::once(&leader_host)) {
        let p = &all_paths
            .iter()
            .find(|(n, _)| n == h)
            .expect("paths of each host")
            .1;
        let script = format!(
            "systemctl stop patroni && if runuser -u postgres -- {bin}/pg_ctl -D {data} status >/dev/null 2>&1; then \
             runuser -u postgres -- {bin}/pg_ctl -D {data} -m fast -w -t 300 stop; fi",
            bin = quote(&p.bin_dir),
            data = quote(&p.data_dir)
        );
        cluster
            .run_ok(
                h,
                &script,
                "stopping Patroni and PostgreSQL",
                Duration::from_secs(360),
            )
            .map_err(|e| fail(report, e))?;
        report.progress(&format!("  `{h}` stopped"), json!({"host": h}));
    }

    // 3. The restore, and recovery up to the target.
    stage(
        report,
        3,
        &format!(
            "`pgbackrest restore` on `{leader_host}`, recovery to {}",
            target.shown()
        ),
    );
    let p = all_paths
        .iter()
        .find(|(n, _)| *n == leader_host)
        .expect("paths")
        .1
        .clone();
    let restore_started = Instant::now();
    cluster
        .run_ok(
            &leader_host,
            &b.on_member(&format!("--delta --set={} {} restore", quote(&set.label), target.options())),
            "`pgbackrest restore`",
            cluster.timeout.max(Duration::from_secs(86_400)),
        )
        .map_err(|e| fail(report, format!("{e}; Patroni is stopped on every member: fix the cause and run `restore` again")))?;
    let pg_ctl = format!(
        "runuser -u postgres -- {}/pg_ctl -D {}",
        quote(&p.bin_dir),
        quote(&p.data_dir)
    );
    let psql = format!("runuser -u postgres -- {}/psql -XAt", quote(&p.bin_dir));
    let log = "/var/log/pgbackrest/pgdeploy-restore-postgresql.log";
    // The restored `postgresql.conf` is the one Patroni wrote on the member the backup was
    // taken from: its certificate paths name that host. Started alone, PostgreSQL listens on
    // localhost without TLS; Patroni writes this member's own configuration at stage 4.
    let recover = format!(
        "{pg_ctl} -l {log} -w -t 3600 -o \"-c listen_addresses=localhost -c ssl=off\" start >/dev/null && \
         for i in $(seq 36000); do \
           r=$({psql} -c 'select pg_is_in_recovery()' 2>/dev/null); \
           [ \"$r\" = f ] && break; \
           {pg_ctl} status >/dev/null 2>&1 || {{ tail -n 5 {log} >&2; exit 1; }}; sleep 0.5; done; \
         [ \"$r\" = f ] || {{ tail -n 5 {log} >&2; exit 1; }}; \
         {psql} -c 'alter system reset restore_command' -c 'alter system reset recovery_target_time' \
           -c 'alter system reset recovery_target_lsn' -c 'alter system reset recovery_target_action' \
           -c 'alter system reset recovery_target_timeline' -c 'alter system reset recovery_target' >/dev/null && \
         {psql} -c 'checkpoint' >/dev/null && {pg_ctl} -m fast -w -t 300 stop >/dev/null"
    );
    cluster
        .run_ok(
            &leader_host,
            &recover,
            "recovery to the target",
            cluster.timeout.max(Duration::from_secs(18_000)),
        )
        .map_err(|e| fail(report, format!("{e}; Patroni is stopped on every member")))?;
    report.progress(
        &format!(
            "  `{leader_host}` restored and promoted in {:.1} s",
            restore_started.elapsed().as_secs_f64()
        ),
        json!({"seconds": restore_started.elapsed().as_secs_f64()}),
    );

    // 4. A new cluster in the DCS, led by the restored member.
    stage(
        report,
        4,
        &format!("cluster keys removed from the DCS, Patroni started on `{leader_host}`"),
    );
    let remove = format!("{}ctl remove {}", state::ctl_prefix(), quote(&scope));
    let answers = format!("{scope}\nYes I am aware\n").into_bytes();
    let out = cluster
        .run_on(
            &leader_host,
            &remove,
            Some(answers),
            Duration::from_secs(60),
        )
        .map_err(|e| fail(report, e))?;
    if out.status != 0 {
        return Err(fail(
            report,
            format!(
                "`patronictl remove {scope}` failed (exit {}): {}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or_default()
            ),
        ));
    }
    cluster
        .run_ok(
            &leader_host,
            "systemctl start patroni",
            "systemctl start patroni",
            Duration::from_secs(60),
        )
        .map_err(|e| fail(report, e))?;
    let leader_name = leader.clone();
    cluster
        .wait_for(
            report,
            &format!("`{leader_name}` to lead the restored cluster"),
            |s| s.healthy_leader().is_some_and(|l| l.name == leader_name),
        )
        .map_err(|e| fail(report, e))?;

    // 5. The others re-created as replicas.
    stage(
        report,
        5,
        "the other members erased and re-created as replicas (from the repository first)",
    );
    for h in &others {
        let p = &all_paths.iter().find(|(n, _)| n == h).expect("paths").1;
        let script = format!(
            "find {} -mindepth 1 -delete && systemctl start patroni",
            quote(&p.data_dir)
        );
        cluster
            .run_ok(
                h,
                &script,
                "erasing the data directory and starting Patroni",
                Duration::from_secs(600),
            )
            .map_err(|e| fail(report, e))?;
    }
    // The leader's timeline is read when settled, not at stage 4: Patroni may still move the
    // restored leader to a newer timeline after it first reports it leads.
    let count = hosts.len();
    cluster
        .wait_for(report, "every member to stream on the new timeline", |s| {
            s.settled() && s.members.len() == count
        })
        .map_err(|e| fail(report, e))?;
    let timeline = cluster.state.leader().and_then(|l| l.timeline);
    report.done(
        &format!(
            "cluster `{scope}` restored to {} in {:.1} s: `{leader}` leads on timeline {} ({})",
            target.shown(),
            started.elapsed().as_secs_f64(),
            timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            cluster.state.summary()
        ),
        json!({"seconds": started.elapsed().as_secs_f64(), "timeline": timeline, "members": cluster.state.members}),
    );
    Ok(())
}
