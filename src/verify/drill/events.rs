//! The drills' events, and how each victim is brought back afterwards.
//!
//! - `switchover`: `pgdeploy switchover`'s own code (Patroni's REST API through `patronictl`).
//! - `failover`: the leader's Patroni and PostgreSQL killed with SIGKILL (`systemctl kill`
//!   reaches every process of the unit, PostgreSQL included), systemd's `Restart=` held off
//!   for the drill by a runtime drop-in; on a lab with `--power-cut`, `lab kill`.
//! - `leader-partition`: the leader's network cut by `lab partition` (a lab only).
//! - `balancer-loss`: HAProxy and keepalived of the VIP's holder killed the same way (a
//!   keepalived killed so leaves the VIP on its interface: removed before it starts again),
//!   or `lab kill` of that balancer.
//!
//! Nothing here knows where a daemon was installed: units by name, the VIP from the locator
//! file keepalived's module wrote.

use std::time::Duration;

use crate::cli::DrillKind;
use crate::ops::{Cluster, Report};
use pgdeploy_core::locator::KEEPALIVED;

/// The runtime drop-in that keeps systemd from restarting a killed unit during the drill.
const DROP_IN: &str = "pgdeploy-drill.conf";

/// How the victim comes back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Back {
    /// Nothing to do (a switchover: the old leader rejoins by itself).
    Rejoins,
    /// The units killed on the host: started again (the drop-in removed first).
    Units { host: String, units: Vec<String> },
    /// The lab host powered on again.
    PowerOn { lab: String, host: String },
    /// The lab host's network attached again.
    Heal { lab: String, host: String },
}

/// What a drill hits and how.
pub(crate) struct Plan {
    pub kind: DrillKind,
    pub lab: Option<String>,
    pub power_cut: bool,
}

fn hold_restart(units: &[&str]) -> String {
    units
        .iter()
        .map(|u| {
            format!(
                "mkdir -p /run/systemd/system/{u}.service.d && \
                 printf '[Service]\\nRestart=no\\n' > /run/systemd/system/{u}.service.d/{DROP_IN}"
            )
        })
        .collect::<Vec<_>>()
        .join(" && ")
}

/// The command that kills `units` hard and leaves them down. `systemctl kill` may report a
/// failure for processes that died with the main one (seen in containers: "Failed to send
/// signal SIGKILL to auxiliary processes"), so what counts is that no unit is active after.
pub(crate) fn kill_script(units: &[&str]) -> String {
    let names = units.join(" ");
    format!(
        "set -e; {}; systemctl daemon-reload; systemctl kill --signal=SIGKILL {names} || true; \
         for i in $(seq 50); do systemctl is-active -q {names} || break; sleep 0.1; done; \
         for u in {names}; do if systemctl is-active -q \"$u\"; then echo \"$u still runs\" >&2; exit 1; fi; done",
        hold_restart(units),
    )
}

/// The command that starts `units` again (the drop-in gone; a VIP a killed keepalived left
/// on an interface removed first, so that keepalived's election decides where it goes).
pub(crate) fn start_script(units: &[String]) -> String {
    let drop: Vec<String> = units
        .iter()
        .map(|u| format!("/run/systemd/system/{u}.service.d/{DROP_IN}"))
        .collect();
    let vip = if units.iter().any(|u| u == "keepalived") {
        format!(
            "VIP=; if [ -r {KEEPALIVED} ]; then . {KEEPALIVED}; fi; \
             if [ -n \"$VIP\" ]; then ip -o -4 addr show | \
             awk -v a=\"${{VIP%/*}}\" '{{split($4, x, \"/\"); if (x[1] == a) print $2, $4}}' | \
             while read -r dev cidr; do ip addr del \"$cidr\" dev \"$dev\"; done; fi; "
        )
    } else {
        String::new()
    };
    format!(
        "rm -f {}; systemctl daemon-reload; {vip}systemctl start {}",
        drop.join(" "),
        units.join(" ")
    )
}

/// Which balancer holds the VIP (its keepalived's address on one of its interfaces).
pub(crate) fn holder_script() -> String {
    format!(
        "VIP=; if [ -r {KEEPALIVED} ]; then . {KEEPALIVED}; fi; \
         [ -n \"$VIP\" ] && ip -o -4 addr show | \
         awk -v a=\"${{VIP%/*}}\" '{{split($4, x, \"/\"); if (x[1] == a) f=1}} END {{print f ? \"holder\" : \"no\"}}'"
    )
}

fn lab_err(e: anyhow::Error) -> String {
    format!("{e:#}")
}

/// How the victim of `plan` comes back: known before the event, so that a failed event
/// (half done) is undone too.
pub(crate) fn back_of(plan: &Plan, victim: &str) -> Back {
    let host = victim.to_string();
    match (plan.kind, &plan.lab) {
        (DrillKind::Switchover, _) => Back::Rejoins,
        (DrillKind::LeaderPartition, Some(lab)) => Back::Heal {
            lab: lab.clone(),
            host,
        },
        // (refused before: `run` asks for `--lab`)
        (DrillKind::LeaderPartition, None) => Back::Rejoins,
        (_, Some(lab)) if plan.power_cut => Back::PowerOn {
            lab: lab.clone(),
            host,
        },
        (DrillKind::Failover, _) => Back::Units {
            host,
            units: vec!["patroni".into()],
        },
        (DrillKind::BalancerLoss, _) => Back::Units {
            host,
            units: vec!["keepalived".into(), "haproxy".into()],
        },
    }
}

/// Causes the event on `victim` (an inventory host: the leader's, or the VIP's balancer):
/// how it was done, and how to bring the victim back.
pub(crate) fn cause(
    plan: &Plan,
    cluster: &mut Cluster,
    victim: &str,
    report: &Report,
) -> Result<(String, Back), String> {
    let back = back_of(plan, victim);
    let how = match (&back, &plan.lab) {
        (Back::Rejoins, _) if plan.kind != DrillKind::Switchover => {
            return Err(format!("`{}` needs `--lab NAME`", plan.kind.name()));
        }
        (Back::Rejoins, _) => {
            let exit = crate::ops::switchover::switchover(cluster, None, None, true, report);
            if exit != pgdeploy_core::exit::Exit::Success {
                return Err(format!("the switchover failed (exit {})", exit as u8));
            }
            format!("switchover from `{victim}` (patronictl → REST API)")
        }
        (Back::PowerOn { lab, .. }, _) => {
            pgdeploy_lab::kill(lab, victim).map_err(lab_err)?;
            format!("power cut of `{victim}` (`pgdeploy lab kill {lab} {victim}`)")
        }
        (Back::Heal { lab, .. }, _) => {
            pgdeploy_lab::partition(lab, victim, false).map_err(lab_err)?;
            format!("network of `{victim}` cut (`pgdeploy lab partition {lab} {victim}`)")
        }
        (Back::Units { units, .. }, _) => {
            let names: Vec<&str> = units.iter().map(String::as_str).collect();
            cluster.run_ok(
                victim,
                &kill_script(&names),
                "the kill",
                Duration::from_secs(60),
            )?;
            format!(
                "SIGKILL of `{}` on `{victim}` (`systemctl kill`, no restart)",
                names.join("`, `")
            )
        }
    };
    Ok((how, back))
}

/// Brings the victim back.
pub(crate) fn bring_back(back: &Back, cluster: &mut Cluster) -> Result<(), String> {
    match back {
        Back::Rejoins => Ok(()),
        Back::Units { host, units } => cluster
            .run_ok(
                host,
                &start_script(units),
                "starting again",
                Duration::from_secs(120),
            )
            .map(|_| ()),
        Back::PowerOn { lab, host } => pgdeploy_lab::start(lab, host).map_err(lab_err),
        Back::Heal { lab, host } => pgdeploy_lab::partition(lab, host, true).map_err(lab_err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_holds_the_restart_then_kills_every_process_of_the_units() {
        let s = kill_script(&["keepalived", "haproxy"]);
        assert!(s.starts_with("set -e; mkdir -p /run/systemd/system/keepalived.service.d && "));
        assert!(s.contains("/run/systemd/system/haproxy.service.d/pgdeploy-drill.conf"));
        assert!(s.contains(
            "systemctl daemon-reload; systemctl kill --signal=SIGKILL keepalived haproxy || true; "
        ));
        // what counts: neither is active afterwards
        assert!(s.ends_with(
            "for u in keepalived haproxy; do if systemctl is-active -q \"$u\"; then \
             echo \"$u still runs\" >&2; exit 1; fi; done"
        ));
        let s = start_script(&["patroni".into()]);
        assert_eq!(
            s,
            "rm -f /run/systemd/system/patroni.service.d/pgdeploy-drill.conf; \
             systemctl daemon-reload; systemctl start patroni"
        );
        assert!(start_script(&["keepalived".into(), "haproxy".into()]).contains("ip addr del"));
    }
}
