//! Other hosts of the inventory, as balancer and VIP modules need them: the members of a group
//! (in inventory order) and the IPv4 address other hosts reach a host at.

use std::net::Ipv4Addr;

use pgdeploy_core::diag::did_you_mean;
use pgdeploy_core::inventory::{Host, Inventory};
use pgdeploy_core::module::{HostContext, ModuleError, ParseContext, Problem};

/// A parameter that names inventory hosts (etcd `members`): each must be a host of the
/// inventory, or the name would be used as an address and add a member nobody runs.
/// Checked once the inventory is known (when compiling).
pub(crate) fn check_hosts_named(
    cx: &ParseContext<'_>,
    field: &'static str,
    names: &[String],
) -> Vec<Problem> {
    let Some(inventory) = cx.inventory else {
        return Vec::new();
    };
    names
        .iter()
        .filter(|n| !inventory.hosts.contains_key(n.as_str()))
        .map(|n| {
            let hint = did_you_mean(n, inventory.hosts.keys().map(String::as_str))
                .map(|b| format!(" (did you mean `{b}`?)"))
                .unwrap_or_default();
            Problem::field(field, format!("`{n}` is not a host of the inventory{hint}"))
        })
        .collect()
}

/// A parameter that names an inventory group (haproxy's and keepalived's `group`): it must
/// be a group of the inventory. Checked once the inventory is known (when compiling).
pub(crate) fn check_group_named(
    cx: &ParseContext<'_>,
    field: &'static str,
    group: &str,
) -> Vec<Problem> {
    let Some(inventory) = cx.inventory else {
        return Vec::new();
    };
    if inventory.groups.contains_key(group) || group.trim().is_empty() {
        return Vec::new();
    }
    let hint = group_hint(inventory, group);
    vec![Problem::field(
        field,
        format!("`{group}` is not a group of the inventory{hint}"),
    )]
}

fn group_hint(inventory: &Inventory, group: &str) -> String {
    did_you_mean(group, inventory.groups.keys().map(String::as_str))
        .map(|b| format!(" (did you mean `{b}`?)"))
        .unwrap_or_default()
}

/// The hosts of `group`, in inventory order; an error when the group is unknown or empty.
pub(crate) fn group_members<'a>(
    cx: &'a HostContext<'_>,
    group: &str,
) -> Result<Vec<&'a Host>, ModuleError> {
    let inventory = &cx.scope.shared().inventory;
    if !inventory.groups.contains_key(group) {
        let mut known: Vec<&str> = inventory
            .groups
            .keys()
            .map(String::as_str)
            .filter(|g| *g != "ungrouped")
            .collect();
        known.sort_unstable();
        return Err(ModuleError::Failed(format!(
            "group `{group}` is not in the inventory (groups: {})",
            known
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let hosts: Vec<&Host> = inventory
        .hosts
        .values()
        .filter(|h| h.groups.iter().any(|g| g == group))
        .collect();
    if hosts.is_empty() {
        return Err(ModuleError::Failed(format!("group `{group}` has no hosts")));
    }
    Ok(hosts)
}

/// The IPv4 address of `host`: `ansible_host` when it is an address, else the default IPv4
/// address of its gathered facts. `None` when neither is known.
pub(crate) fn ipv4_of(cx: &HostContext<'_>, host: &Host) -> Option<Ipv4Addr> {
    if let Ok(ip) = host.connection.address.parse::<Ipv4Addr>() {
        return Some(ip);
    }
    cx.scope
        .shared()
        .facts
        .as_ref()?
        .get(&host.name)?
        .get("ansible_default_ipv4")?
        .get("address")?
        .as_str()?
        .parse()
        .ok()
}

/// How other hosts reach `host`: its IPv4 address when known, else its `ansible_host` (or
/// inventory name), which must then resolve on the hosts that use it.
pub(crate) fn address_of(cx: &HostContext<'_>, host: &Host) -> String {
    match ipv4_of(cx, host) {
        Some(ip) => ip.to_string(),
        None => host.connection.address.clone(),
    }
}

/// The first IPv4 network (`address`, `prefix`) of an interface's facts (`ansible_<iface>`)
/// that contains `ip`, and the interface's primary address.
pub(crate) fn interface_ipv4(
    facts: &pgdeploy_core::template::Facts,
    iface: &str,
) -> Option<Vec<(Ipv4Addr, u8)>> {
    let key = format!("ansible_{}", iface.replace(['-', '.', ':'], "_"));
    let f = facts.get(&key)?;
    let mut out = Vec::new();
    let primary = f.get("ipv4").into_iter();
    let secondaries = f
        .get("ipv4_secondaries")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten();
    for a in primary.chain(secondaries) {
        let addr = a
            .get("address")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let prefix = a.get("prefix").and_then(|p| match p {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            _ => None,
        });
        if let (Some(addr), Some(prefix)) = (addr, prefix) {
            out.push((addr, prefix));
        }
    }
    Some(out)
}

/// Whether `ip` is in the network of `addr/prefix`.
pub(crate) fn in_network(ip: Ipv4Addr, addr: Ipv4Addr, prefix: u8) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    u32::from(ip) & mask == u32::from(addr) & mask
}

/// The network address of `addr/prefix`, for messages.
pub(crate) fn network(addr: Ipv4Addr, prefix: u8) -> String {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    format!("{}/{prefix}", Ipv4Addr::from(u32::from(addr) & mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let a: Ipv4Addr = "10.213.22.21".parse().unwrap();
        assert!(in_network("10.213.22.100".parse().unwrap(), a, 24));
        assert!(!in_network("10.213.23.100".parse().unwrap(), a, 24));
        assert!(in_network("10.213.23.100".parse().unwrap(), a, 16));
        assert_eq!(network(a, 24), "10.213.22.0/24");
    }

    #[test]
    fn interface_addresses_from_facts() {
        let mut f = pgdeploy_core::template::Facts::new();
        f.insert(
            "ansible_host0".into(),
            serde_json::json!({"ipv4": {"address": "10.0.0.5", "prefix": "24"},
                               "ipv4_secondaries": [{"address": "10.1.0.5", "prefix": "16"}]}),
        );
        assert_eq!(
            interface_ipv4(&f, "host0").unwrap(),
            vec![
                ("10.0.0.5".parse().unwrap(), 24),
                ("10.1.0.5".parse().unwrap(), 16)
            ]
        );
        assert!(interface_ipv4(&f, "eth0").is_none());
    }
}
