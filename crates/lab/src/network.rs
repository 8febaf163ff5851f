//! The lab's bridge and the host side of each container's veth, driven through `ip`.
//!
//! nspawn creates the veth (`vb-MACHINE`) and enslaves it to the bridge; partitioning a host
//! detaches that veth from the bridge, which cuts the host off from every other host and from
//! this machine while the container keeps its address and carrier

use std::process::Command;

use anyhow::Context;
use serde::Deserialize;

use super::cmd;
use super::subnet::Subnet;

/// The subnet collides with a network this machine already routes
#[derive(Debug, thiserror::Error)]
#[error("subnet `{subnet}` overlaps the route `{route}` (dev `{dev}`) on this machine; choose another with `--subnet`")]
pub struct OverlapError {
    pub subnet: String,
    pub route: String,
    pub dev: String,
}

#[derive(Deserialize)]
struct Route {
    dst: String,
    #[serde(default)]
    dev: String,
}

#[derive(Deserialize)]
struct Link {
    ifname: String,
    #[serde(default)]
    master: Option<String>,
    #[serde(default)]
    operstate: Option<String>,
}

/// Refuses `subnet` when a route of the main table (other than the lab's own bridge) overlaps it
pub fn check_no_overlap(subnet: &Subnet, own_bridge: &str) -> anyhow::Result<()> {
    let out = cmd::run(Command::new("ip").args(["-j", "-4", "route", "show", "table", "main"]))?;
    let routes: Vec<Route> =
        serde_json::from_str(out.trim()).context("cannot parse `ip -j route` output")?;
    for r in routes {
        if r.dev == own_bridge || r.dst == "default" {
            continue;
        }
        if let Some(dst) = Subnet::parse_route(&r.dst) {
            if dst.overlaps(subnet) {
                return Err(OverlapError {
                    subnet: subnet.to_string(),
                    route: r.dst,
                    dev: r.dev,
                }
                .into());
            }
        }
    }
    Ok(())
}

fn link(name: &str) -> anyhow::Result<Option<Link>> {
    let out = cmd::output(Command::new("ip").args(["-j", "link", "show", "dev", name]))?;
    if !out.status.success() {
        return Ok(None);
    }
    let links: Vec<Link> = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("cannot parse `ip -j link show dev {name}` output"))?;
    Ok(links.into_iter().find(|l| l.ifname == name))
}

/// True when a network interface of that name exists
pub fn link_exists(name: &str) -> anyhow::Result<bool> {
    Ok(link(name)?.is_some())
}

/// Creates the bridge with the subnet's first address, or checks the existing one
pub fn ensure_bridge(name: &str, subnet: &Subnet) -> anyhow::Result<()> {
    if !link_exists(name)? {
        cmd::run(Command::new("ip").args(["link", "add", name, "type", "bridge"]))?;
        // no STP: a port forwards as soon as nspawn enslaves it
        cmd::run(Command::new("ip").args([
            "link",
            "set",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]))?;
    }
    let addr = format!("{}/{}", subnet.gateway(), subnet.prefix_len());
    let shown = cmd::run(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", name]))?;
    if !shown.split_whitespace().any(|w| w == addr) {
        cmd::run(Command::new("ip").args(["addr", "add", &addr, "dev", name]))?;
    }
    cmd::run(Command::new("ip").args(["link", "set", name, "up"]))?;
    Ok(())
}

/// Deletes an interface if it exists
pub fn delete_link(name: &str) -> anyhow::Result<()> {
    if link_exists(name)? {
        cmd::run(Command::new("ip").args(["link", "del", name]))?;
    }
    Ok(())
}

/// Names of existing interfaces that start with `prefix`
pub fn links_with_prefix(prefix: &str) -> anyhow::Result<Vec<String>> {
    let out = cmd::run(Command::new("ip").args(["-j", "link", "show"]))?;
    let links: Vec<Link> =
        serde_json::from_str(out.trim()).context("cannot parse `ip -j link show` output")?;
    Ok(links
        .into_iter()
        .map(|l| l.ifname)
        .filter(|n| n.starts_with(prefix))
        .collect())
}

/// How a host's veth is attached
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// No veth: the container is not running
    Absent,
    /// On the lab bridge
    Bridged,
    /// Present but detached from the bridge (partitioned)
    Detached,
}

/// Where the veth `veth` is attached, relative to `bridge`
pub fn attachment(veth: &str, bridge: &str) -> anyhow::Result<Attachment> {
    Ok(match link(veth)? {
        None => Attachment::Absent,
        Some(l) if l.master.as_deref() == Some(bridge) && l.operstate.is_some() => {
            Attachment::Bridged
        }
        Some(_) => Attachment::Detached,
    })
}

/// Detaches the veth from the bridge (partition) or attaches it back (heal)
pub fn set_attached(veth: &str, bridge: &str, attached: bool) -> anyhow::Result<()> {
    if attached {
        cmd::run(Command::new("ip").args(["link", "set", veth, "master", bridge, "up"]))?;
    } else {
        cmd::run(Command::new("ip").args(["link", "set", veth, "nomaster"]))?;
    }
    Ok(())
}
