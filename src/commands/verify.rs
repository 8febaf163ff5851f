//! `pgdeploy verify`: every database host and balancer of the inventory connected at once,
//! each running one read-only command (the probes of `src/verify/`'s checks for its roles),
//! the cluster's state read from the first member that can tell (`patronictl`, as the day-2
//! commands read it), then every check judged and shown. Exit codes: `verify::exit`.

use std::time::Duration;

use super::connect_all::{connect_all, Connections};
use crate::cli::VerifyArgs;
use crate::verify::{self, Finding, Gathered, HostRead, Options};
use pgdeploy_core::exit::Exit;
use pgdeploy_core::inventory::{pattern, Inventory};
use pgdeploy_core::transport::{Become, ExecRequest, Transport};
use pgdeploy_engine::run::connect::resolve_targets;
use pgdeploy_modules::patroni_state as state;

fn hosts_of(inventory: &Inventory, p: &str, default: &str) -> anyhow::Result<Vec<String>> {
    match pattern::select(inventory, p) {
        Ok(h) => Ok(h.into_iter().map(str::to_string).collect()),
        // The default balancers' group may not exist: a cluster without balancers.
        Err(_) if p == default && !inventory.groups.contains_key(p) => Ok(Vec::new()),
        Err(e) => {
            let help = e
                .help()
                .map(|h| format!("\n  help: {h}"))
                .unwrap_or_default();
            anyhow::bail!("`{p}`: {e}{help}")
        }
    }
}

async fn exec(t: &dyn Transport, command: String, become_: Become) -> Result<String, String> {
    t.exec(&ExecRequest {
        command,
        stdin: None,
        become_,
        timeout: Some(Duration::from_secs(30)),
    })
    .await
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .map_err(|e| e.to_string())
}

pub(crate) fn run(args: &VerifyArgs, json: bool) -> anyhow::Result<Exit> {
    if args.drill.is_some() {
        return crate::verify::drill::run(args, json);
    }
    let inventory = match super::connect_all::load_masked(&args.vault, &args.inventory) {
        Ok(i) => i,
        Err(diags) => {
            super::report_as(&diags.sorted(), json);
            return Ok(Exit::Error);
        }
    };
    let (findings, exit) = check(args, &inventory)?;
    if json {
        let doc = verify::report::to_json(&findings, exit as u8);
        pgdeploy_core::outln!("{}", pgdeploy_core::secrets::mask_logged(&doc.to_string()));
    } else {
        pgdeploy_core::out!(
            "{}",
            pgdeploy_core::secrets::mask_logged(&verify::report::to_text(&findings))
        );
    }
    Ok(exit)
}

/// Every check on the hosts of `args` (the cluster read, judged): the findings and the exit
/// code. Also the last step of a drill.
pub(crate) fn check(
    args: &VerifyArgs,
    inventory: &Inventory,
) -> anyhow::Result<(Vec<Finding>, Exit)> {
    let members = hosts_of(inventory, &args.hosts, "postgres")?;
    let balancers = hosts_of(inventory, &args.balancers, "balancers")?;
    let all: Vec<String> = inventory
        .hosts
        .keys()
        .filter(|h| members.contains(h) || balancers.contains(h))
        .cloned()
        .collect();
    let targets = resolve_targets(inventory, &all, &args.ssh.settings(), &Default::default())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let become_for = |h: &str| super::become_of(&inventory.hosts[h].connection);
    let gathered = runtime.block_on(async {
        let Connections { up, failed } = connect_all(&all, &targets).await;
        let mut g = Gathered {
            state: None,
            state_error: None,
            hosts: Vec::new(),
            unreachable: failed
                .into_iter()
                .map(|(h, e)| (h, e.to_string()))
                .collect(),
        };
        let reads = futures::future::join_all(up.iter().map(|(h, t)| {
            let (m, b) = (members.contains(h), balancers.contains(h));
            exec(t.as_ref(), verify::script(m, b), become_for(h))
        }))
        .await;
        for ((h, _), r) in up.iter().zip(reads) {
            match r {
                Ok(text) => g.hosts.push(HostRead {
                    name: h.clone(),
                    address: inventory.hosts[h]
                        .vars
                        .get("ansible_host")
                        .and_then(|v| v.value.as_str())
                        .map(str::to_string),
                    member: members.contains(h),
                    balancer: balancers.contains(h),
                    outputs: verify::parse(&text),
                }),
                Err(e) => g.unreachable.push((h.clone(), e)),
            }
        }
        // The cluster's state, from the first member that can tell.
        let mut problems = Vec::new();
        for (h, t) in up.iter().filter(|(h, _)| members.contains(h)) {
            match exec(t.as_ref(), state::read_script(), become_for(h)).await {
                Ok(text) => match state::parse(h, &text) {
                    Ok(s) => {
                        g.state = Some(s);
                        break;
                    }
                    Err(e) => problems.push(e),
                },
                Err(e) => problems.push(e),
            }
        }
        if g.state.is_none() {
            g.state_error = Some(if problems.is_empty() {
                "no member could be reached".into()
            } else {
                problems.join("; ")
            });
        }
        for (_, t) in &up {
            t.close().await;
        }
        g
    });
    let options = Options {
        cert_warn_days: args.cert_warn_days,
        max_lag_mb: args.max_lag_mb,
    };
    let findings = verify::evaluate(&gathered, &options);
    let exit = verify::exit(&gathered, &findings);
    Ok((findings, exit))
}
