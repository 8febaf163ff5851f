//! `pgdeploy status`: the Patroni cluster and etcd health, read from the first member that
//! answers, and where the VIP is, checked on every host of the inventory. Exit 0 when
//! healthy (one leader, replicas streaming, etcd healthy, each VIP on exactly one host), 2
//! when degraded, 4 when no member could be reached.
//!
//! Every host is connected to at once and runs one command: the member asked for the
//! cluster's status runs the status script (which includes its addresses), the others only
//! list their addresses. When the backups are configured, the leader's host is then asked
//! for its WAL archiver's state (only the primary archives).

use super::connect_all::{connect_all, Connections};
use crate::cli::StatusArgs;
use crate::status::{HostAddresses, Status};
use pgdeploy_core::exit::Exit;
use pgdeploy_engine::run::connect::resolve_targets;

pub(crate) fn run(args: &StatusArgs, json: bool) -> anyhow::Result<Exit> {
    // `-v` logs and errors hold command lines and hosts' answers: masked like every output.
    let inventory = match super::connect_all::load_masked(&args.vault, &args.inventory) {
        Ok(i) => i,
        Err(diags) => {
            // With `--json`, as `validate --json` prints them.
            super::report_as(&diags.sorted(), json);
            return Ok(Exit::Error);
        }
    };
    let members =
        super::connect_all::select_hosts(&inventory, &args.hosts).map_err(anyhow::Error::msg)?;
    let all: Vec<String> = inventory.hosts.keys().cloned().collect();
    let settings = args.ssh.settings();
    let targets = resolve_targets(&inventory, &all, &settings, &Default::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let become_for = |h: &str| super::become_of(&inventory.hosts[h].connection);
    let config_file = args.config_file.as_deref();
    let (status, problems) = runtime.block_on(async {
        let Connections { up, failed } = connect_all(&all, &targets).await;
        let mut problems: Vec<String> = failed.iter().map(|(_, e)| e.to_string()).collect();
        let asked = members
            .iter()
            .find(|m| up.iter().any(|(h, _)| h == *m))
            .cloned();
        // One command per host, all at once.
        let reads = futures::future::join_all(up.iter().map(|(h, t)| {
            let asked = asked.as_deref() == Some(h.as_str());
            let become_ = become_for(h);
            async move {
                if asked {
                    match crate::status::read(t.as_ref(), config_file, become_).await {
                        Ok((s, a)) => (Some(Ok(s)), Ok(a)),
                        Err(e) => (Some(Err(e)), Ok(HostAddresses::default())),
                    }
                } else {
                    (
                        None,
                        crate::status::read_addresses(t.as_ref(), become_).await,
                    )
                }
            }
        }))
        .await;
        let mut status: Option<Status> = None;
        let mut addresses: Vec<(String, HostAddresses)> = Vec::new();
        for ((h, _), (s, a)) in up.iter().zip(reads) {
            match s {
                Some(Ok(s)) => status = Some(s),
                Some(Err(e)) => problems.push(e.to_string()),
                None => {}
            }
            match a {
                Ok(a) => addresses.push((h.clone(), a)),
                Err(e) => problems.push(e.to_string()),
            }
        }
        // The asked member failed (no locator, Patroni down): the next members, in turn.
        if status.is_none() {
            for m in members.iter().filter(|m| Some(*m) != asked.as_ref()) {
                let Some((_, t)) = up.iter().find(|(h, _)| h == m) else {
                    continue;
                };
                match crate::status::read(t.as_ref(), config_file, become_for(m)).await {
                    Ok((s, a)) => {
                        addresses.retain(|(h, _)| h != m);
                        addresses.push((m.clone(), a));
                        status = Some(s);
                        break;
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        if let Some(s) = status.as_mut() {
            addresses.sort_by(|a, b| a.0.cmp(&b.0));
            s.vips = crate::status::vips(&addresses);
            // WAL archiving is the leader's, whichever member answered first.
            crate::status::archiving_from_leader(s, &addresses, |h| {
                up.iter()
                    .find(|(n, _)| n == h)
                    .map(|(_, t)| (t.clone(), become_for(h)))
            })
            .await;
        }
        for (_, t) in &up {
            t.close().await;
        }
        (status, problems)
    });
    match status {
        Some(status) => {
            if json {
                pgdeploy_core::outln!("{}", serde_json::to_string(&status)?);
            } else {
                pgdeploy_core::out!("{}", crate::status::to_text(&status));
            }
            for p in problems {
                pgdeploy_core::eoutln!("warning: {p}");
            }
            Ok(if status.healthy() {
                Exit::Success
            } else {
                Exit::Changes
            })
        }
        None => {
            for p in &problems {
                pgdeploy_core::eoutln!("error: {p}");
            }
            Ok(Exit::Unreachable)
        }
    }
}
