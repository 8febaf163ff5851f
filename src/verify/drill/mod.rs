//! `pgdeploy verify --drill EVENT --yes`: the cluster under a small write load through the VIP
//! ([`load`]) while [`watch`] asks every member directly whether it is writable, then the event
//! ([`events`]), the victim brought back, the rows read back from the new leader, and
//! `verify`'s checks until they pass; [`report`] turns what was recorded into RTO, RPO, two
//! primaries or not, and the victim's return.
//!
//! The drill connects as the superuser (`postgres`, the password the inventory gives in
//! `pg_superuser_password`, never shown) over TLS checked against `--ca`. It never assumes a
//! lab: only `--lab NAME` lets it cut power or network with the lab's commands.

pub(crate) mod events;
pub(crate) mod load;
pub(crate) mod report;
pub(crate) mod tls;
pub(crate) mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{DrillKind, OpsArgs, SshArgs, VaultArgs, VerifyArgs};
use crate::ops::{confirm, Cluster, Report};
use events::{Back, Plan};
use load::Target;
use pgdeploy_core::exit::Exit;
use pgdeploy_core::inventory::{pattern, Inventory};
use report::Figures;
use watch::Watched;

/// Writes before the event, so the load is known to work through the VIP.
const WARM_UP: Duration = Duration::from_secs(3);
/// Writes after everything is back, so a late hiccup shows.
const COOL_DOWN: Duration = Duration::from_secs(2);
/// The superuser Patroni creates (`authentication.superuser`, its default name).
const USER: &str = "postgres";

/// An inventory variable as written, from the first of `hosts` that has it.
fn var(inventory: &Inventory, hosts: &[String], name: &str) -> Option<String> {
    hosts.iter().find_map(|h| {
        inventory
            .hosts
            .get(h)?
            .vars
            .get(name)?
            .value
            .as_str()
            .map(str::to_string)
    })
}

fn select(inventory: &Inventory, p: &str) -> Vec<String> {
    pattern::select(inventory, p)
        .map(|h| h.into_iter().map(str::to_string).collect())
        .unwrap_or_default()
}

pub(crate) fn run(args: &VerifyArgs, json: bool) -> anyhow::Result<Exit> {
    let kind = args.drill.expect("a drill");
    let report = Report {
        json,
        command: "verify",
    };
    if kind == DrillKind::LeaderPartition && args.lab.is_none() {
        return Ok(report.fail(
            "`--drill leader-partition` cuts the leader's network, which pgdeploy can do only \
             on a lab of its own: give `--lab NAME` (the `pgdeploy lab` the inventory's hosts are)",
            Exit::Usage,
        ));
    }
    let Some(ca) = &args.ca else {
        return Ok(report.fail(
            "a drill writes through the VIP over TLS: give `--ca FILE`, the CA that signed the \
             members' certificates (`pki/ca.crt` beside `playbooks/site.yml`)",
            Exit::Usage,
        ));
    };
    let tls = match tls::connector(ca) {
        Ok(t) => t,
        Err(e) => return Ok(report.fail(&format!("--ca {e}"), Exit::Usage)),
    };
    let ops = OpsArgs {
        inventory: args.inventory.clone(),
        hosts: args.hosts.clone(),
        yes: args.yes,
        timeout: args.timeout,
        ssh: SshArgs {
            accept_new_host_keys: args.ssh.accept_new_host_keys,
            ssh_config: args.ssh.ssh_config.clone(),
        },
        vault: VaultArgs {
            vault_password_file: args.vault.vault_password_file.clone(),
        },
    };
    let mut cluster = match Cluster::open(&ops, &report) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let exit = drill(args, kind, tls, &mut cluster, &report);
    cluster.close();
    Ok(exit)
}

fn drill(
    args: &VerifyArgs,
    kind: DrillKind,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    cluster: &mut Cluster,
    report: &Report,
) -> Exit {
    let inventory = cluster.inventory().clone();
    let members = cluster.host_names();
    let balancers = select(&inventory, &args.balancers);
    let everyone: Vec<String> = members.iter().chain(&balancers).cloned().collect();
    let Some(password) = var(&inventory, &members, "pg_superuser_password") else {
        return report.fail(
            &format!(
                "no `pg_superuser_password` for the hosts of `{}` in the inventory: the drill connects as the superuser",
                args.hosts
            ),
            Exit::Usage,
        );
    };
    let Some(vip) =
        var(&inventory, &everyone, "vip").or_else(|| var(&inventory, &everyone, "lab_vip"))
    else {
        return report.fail(
            "no `vip` (or `lab_vip`) in the inventory: the drill writes through the VIP",
            Exit::Usage,
        );
    };
    for (name, v) in [("pg_superuser_password", &password), ("vip", &vip)] {
        if v.contains("{{") {
            return report.fail(
                &format!("`{name}` is a template in the inventory: the drill reads it as written, give its value"),
                Exit::Usage,
            );
        }
    }
    let vip = vip.split('/').next().unwrap_or_default().to_string();
    let s = cluster.state.clone();
    let Some(leader) = s.healthy_leader().map(|m| m.name.clone()) else {
        return report.fail(
            &format!(
                "no healthy leader ({}): a drill starts from a healthy cluster",
                s.summary()
            ),
            Exit::Error,
        );
    };
    if !s.settled() {
        return report.fail(
            &format!(
                "the cluster is not settled ({}): a drill starts from a healthy cluster",
                s.summary()
            ),
            Exit::Error,
        );
    }
    let leader_host = cluster.host_of_member(&leader).unwrap_or(leader.clone());
    let victim = if kind == DrillKind::BalancerLoss {
        let mut holder = None;
        for b in &balancers {
            if let Err(e) = cluster.connect_host(b) {
                return report.fail(&e, Exit::Unreachable);
            }
            match cluster.run_ok(
                b,
                &events::holder_script(),
                "finding the VIP",
                Duration::from_secs(30),
            ) {
                Ok(out) if out.trim() == "holder" => holder = Some(b.clone()),
                Ok(_) => {}
                Err(e) => return report.fail(&e, Exit::Error),
            }
        }
        match holder {
            Some(h) => h,
            None => {
                return report.fail(
                    &format!("no balancer of `{}` holds the VIP `{vip}`", args.balancers),
                    Exit::Error,
                )
            }
        }
    } else {
        leader_host.clone()
    };
    report.plan(
        &format!(
            "drill `{}` on cluster `{}`: {} `{victim}` under a write load through `{vip}:5432` ({})",
            kind.name(),
            cluster.scope(),
            match kind {
                DrillKind::Switchover => "switchover from the leader",
                DrillKind::Failover if args.power_cut => "power cut of the leader",
                DrillKind::Failover => "SIGKILL of Patroni and PostgreSQL on the leader",
                DrillKind::LeaderPartition => "network cut of the leader",
                DrillKind::BalancerLoss if args.power_cut => "power cut of the VIP's balancer",
                DrillKind::BalancerLoss => "SIGKILL of HAProxy and keepalived on the VIP's balancer",
            },
            s.summary()
        ),
        json!({"drill": kind.name(), "victim": victim, "leader": leader, "vip": vip}),
    );
    if let Err(e) = confirm(report, args.yes, "Run the drill?") {
        return e;
    }
    cluster.avoid_control(&victim);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report.fail(&e.to_string(), Exit::Error),
    };
    let target = Arc::new(Target {
        host: vip.clone(),
        port: 5432,
        user: USER.into(),
        password,
        tls,
    });
    if let Err(e) = runtime.block_on(load::create_table(&target)) {
        return report.fail(&format!("through the VIP `{vip}:5432`: {e}"), Exit::Error);
    }
    let watched: Vec<Watched> = s
        .members
        .iter()
        .map(|m| {
            let (address, port) = match m.host.rsplit_once(':') {
                Some((a, p)) => (a.to_string(), p.parse().unwrap_or(5432)),
                None => (m.host.clone(), 5432),
            };
            Watched {
                member: m.name.clone(),
                host: cluster.host_of_member(&m.name).unwrap_or(m.name.clone()),
                address,
                port,
            }
        })
        .collect();
    let run_id = format!(
        "{}-{}",
        kind.name(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let start = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let last_ack = Arc::new(AtomicU64::new(0));
    let load_task = runtime.spawn(load::run(
        target.clone(),
        run_id.clone(),
        start,
        last_ack.clone(),
        stop_rx.clone(),
    ));
    let watch_task = runtime.spawn(watch::run(
        target.clone(),
        watched.clone(),
        args.lab.clone(),
        start,
        stop_rx,
    ));
    let since_ack = |ago: Duration| {
        let last = Duration::from_millis(last_ack.load(Ordering::SeqCst));
        last > Duration::ZERO && start.elapsed().saturating_sub(last) < ago
    };
    let mut problems = Vec::new();
    // the load works through the VIP before anything happens
    let deadline = start + Duration::from_secs(30);
    while !(start.elapsed() >= WARM_UP && since_ack(Duration::from_millis(500))) {
        if Instant::now() > deadline {
            problems.push(format!(
                "no write through `{vip}:5432` was acknowledged in 30 s: no event caused"
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let event_at = start.elapsed();
    let mut how = "not caused".to_string();
    let mut back = None;
    let mut new_leader = None;
    if problems.is_empty() {
        report.progress(
            &format!("  {:.1} s: the event on `{victim}`", event_at.as_secs_f64()),
            json!({"at_s": event_at.as_secs_f64()}),
        );
        let plan = Plan {
            kind,
            lab: args.lab.clone(),
            power_cut: args.power_cut,
        };
        match events::cause(&plan, cluster, &victim, report) {
            Ok((h, b)) => {
                how = h;
                back = Some(b);
            }
            Err(e) => {
                problems.push(format!("the event: {e}"));
                // half done, perhaps: undone all the same
                if let Err(e) = events::bring_back(&events::back_of(&plan, &victim), cluster) {
                    problems.push(format!("bringing `{victim}` back: {e}"));
                }
            }
        }
    }
    let event_done = Instant::now();
    if back.is_some() && kind != DrillKind::BalancerLoss {
        match cluster.wait_for(report, "another member to lead", |s| {
            s.healthy_leader().is_some_and(|m| m.name != leader)
        }) {
            Ok(_) => {
                new_leader = cluster.state.healthy_leader().map(|m| m.name.clone());
                report.progress(
                    &format!(
                        "  {:.1} s: `{}` leads",
                        start.elapsed().as_secs_f64(),
                        new_leader.as_deref().unwrap_or("?")
                    ),
                    json!({"leader": new_leader}),
                );
            }
            Err(e) => problems.push(e),
        }
    }
    // writes flow again: a commit acknowledged within the last 0.5 s, 2 s after the event
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while back.is_some()
        && !(event_done.elapsed() >= Duration::from_secs(2)
            && since_ack(Duration::from_millis(500)))
    {
        if Instant::now() > deadline {
            problems.push(format!(
                "writes through `{vip}:5432` did not come back within {} s",
                args.timeout
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut back_at = None;
    let mut verified: Option<(Vec<crate::verify::Finding>, Exit)> = None;
    let back_as = if kind == DrillKind::BalancerLoss {
        "a balancer again (`verify` passes)"
    } else {
        "a streaming replica"
    };
    if let Some(b) = &back {
        report.progress(
            &format!(
                "  {:.1} s: bringing `{victim}` back",
                start.elapsed().as_secs_f64()
            ),
            json!({}),
        );
        if let Err(e) = events::bring_back(b, cluster) {
            problems.push(format!("bringing `{victim}` back: {e}"));
        } else if kind == DrillKind::BalancerLoss {
            verified = verify_until_passed(args, &inventory, Duration::from_secs(args.timeout));
            if verified.as_ref().is_some_and(|(_, e)| *e == Exit::Success) {
                back_at = Some(start.elapsed());
            }
        } else {
            let member = cluster.member_name(&victim);
            match cluster.wait_for(report, &format!("`{member}` to stream as a replica"), |s| {
                s.member(&member)
                    .is_some_and(|m| m.streams(s.old_patroni()))
                    && s.settled()
            }) {
                Ok(_) => back_at = Some(start.elapsed()),
                Err(e) => problems.push(e),
            }
        }
        if matches!(b, Back::Rejoins) && back_at.is_none() && problems.is_empty() {
            problems.push(format!("`{victim}` did not rejoin"));
        }
    }
    std::thread::sleep(COOL_DOWN);
    let _ = stop_tx.send(true);
    let end = start.elapsed();
    let load = runtime.block_on(load_task).unwrap_or_default();
    let rounds = runtime.block_on(watch_task).unwrap_or_default();
    // the rows, from the leader now
    let mut present = Vec::new();
    let _ = cluster.refresh();
    match cluster.state.leader().map(|m| m.host.clone()) {
        Some(host) => {
            let (address, port) = match host.rsplit_once(':') {
                Some((a, p)) => (a.to_string(), p.parse().unwrap_or(5432)),
                None => (host.clone(), 5432),
            };
            match runtime.block_on(load::read_back(&target.at(&address, port), &run_id)) {
                Ok((rows, true)) => present = rows,
                Ok((_, false)) => problems.push(format!(
                    "the rows were read on `{address}`, which is no longer the primary"
                )),
                Err(e) => problems.push(format!("reading the rows back on `{address}`: {e}")),
            }
        }
        None => problems.push("no leader to read the rows back from".into()),
    }
    if new_leader.is_none() {
        new_leader = cluster.state.leader().map(|m| m.name.clone());
    }
    let verified = match verified {
        Some(v) if v.1 == Exit::Success => Some(v),
        _ => verify_until_passed(args, &inventory, Duration::from_secs(120)),
    };
    let (verify_exit, verify_failed) = match verified {
        Some((findings, exit)) => (
            exit as u8,
            findings
                .into_iter()
                .filter(|f| {
                    matches!(
                        f.outcome,
                        crate::verify::Outcome::Fail | crate::verify::Outcome::Warn
                    )
                })
                .collect(),
        ),
        None => {
            problems.push("`verify` could not run".into());
            (Exit::Error as u8, Vec::new())
        }
    };
    let gap = report::rto(&load.acks, end);
    let writes_resumed = gap.is_some_and(|(_, _, to)| to < end.as_secs_f64())
        && load.acks.last().is_some_and(|a| a.at > event_at);
    let lost = report::missing(&load.acks, &present);
    let (max_writable, twice) = report::primaries(&rounds);
    let names: Vec<String> = watched.iter().map(|w| w.member.clone()).collect();
    let figures = Figures {
        drill: kind.name(),
        event: how,
        victim: victim.clone(),
        new_leader,
        event_at_s: event_at.as_secs_f64(),
        attempts: load.attempts,
        commits: load.acks.len(),
        connections: load.connections,
        rto_s: gap.map(|g| g.0),
        gap_from_s: gap.map(|g| g.1),
        gap_to_s: gap.map(|g| g.2),
        writes_resumed,
        rpo_commits: lost.len(),
        missing: lost.iter().take(20).copied().collect(),
        watch_rounds: rounds.len(),
        max_writable,
        two_primaries: !twice.is_empty(),
        two_primaries_at_s: twice.into_iter().take(20).collect(),
        unobserved_rounds: report::unobserved(&rounds, &names),
        // from the outage's start as the client saw it (the last commit before the longest
        // gap): the event itself may wait (for the lab's lock, for `patronictl`)
        back_after_s: back_at
            .map(|b| b.as_secs_f64() - gap.map_or(event_at.as_secs_f64(), |g| g.1)),
        event_done_s: event_done.duration_since(start).as_secs_f64(),
        back_as: back_as.into(),
        verify_exit,
        verify_failed,
        problems,
        load_errors: load
            .errors
            .iter()
            .map(|(t, e)| (t.as_secs_f64(), e.clone()))
            .collect(),
    };
    let exit = if !figures.problems.is_empty() {
        Exit::Error
    } else if figures.passed() {
        Exit::Success
    } else {
        Exit::Changes
    };
    if report.json {
        pgdeploy_core::outln!(
            "{}",
            pgdeploy_core::secrets::mask_logged(&report::to_json(&figures, exit as u8).to_string())
        );
    } else {
        pgdeploy_core::out!(
            "{}",
            pgdeploy_core::secrets::mask_logged(&report::to_text(&figures))
        );
    }
    exit
}

/// `verify`'s checks again and again (every 2 s) until they pass or `within` is over: the
/// last result (`None` when they could not run at all). HAProxy sees a returned member up
/// only on its next checks, so the first run after a return may still fail.
fn verify_until_passed(
    args: &VerifyArgs,
    inventory: &Inventory,
    within: Duration,
) -> Option<(Vec<crate::verify::Finding>, Exit)> {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        if let Ok(r) = crate::commands::verify::check(args, inventory) {
            if r.1 == Exit::Success {
                return Some(r);
            }
            last = Some(r);
        }
        if Instant::now() > deadline {
            return last;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
