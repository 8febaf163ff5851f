//! The Ansible-format YAML inventory and the OpenSSH known_hosts that `lab up` writes, so that
//! `pgdeploy apply -i inventories/lab.yml` (and plain `ssh`) reach the hosts with verified keys

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use super::state::HostState;
use super::subnet::{Role, Subnet};

/// The inventory text: connection variables for the lab, `postgres` and `balancers` groups
pub fn render(key: &Path, known_hosts: &Path, subnet: &Subnet, hosts: &[HostState]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# written by `pgdeploy lab up`; rewritten on every `up`\n\
         all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {}\n    \
         pgdeploy_known_hosts_file: {}\n    lab_subnet: {}\n    lab_vip: {}\n  children:\n",
        key.display(),
        known_hosts.display(),
        subnet,
        subnet.vip()
    );
    for (group, role) in [("postgres", Role::Postgres), ("balancers", Role::Balancer)] {
        let members: Vec<&HostState> = hosts.iter().filter(|h| h.role == role).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    {group}:\n      hosts:");
        for h in members {
            let _ = writeln!(out, "        {}: {{ ansible_host: {} }}", h.name, h.ip);
        }
    }
    out
}

/// known_hosts lines, one per address and per name, for every host key type
pub fn known_hosts(entries: &[(String, Ipv4Addr, Vec<String>)]) -> String {
    let mut out = String::new();
    for (name, ip, keys) in entries {
        for key in keys {
            let _ = writeln!(out, "{ip} {key}");
            let _ = writeln!(out, "{name} {key}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_groups() {
        let subnet: Subnet = "10.213.7.0/24".parse().unwrap();
        let host = |name: &str, role, last| HostState {
            name: name.into(),
            role,
            ip: Ipv4Addr::new(10, 213, 7, last),
            nspawn_pid: None,
            init_pid: None,
            pid_ns: None,
        };
        let text = render(
            Path::new("/l/id_ed25519"),
            Path::new("/l/known_hosts"),
            &subnet,
            &[
                host("pg1", Role::Postgres, 11),
                host("lb1", Role::Balancer, 21),
            ],
        );
        assert!(text
            .contains("    postgres:\n      hosts:\n        pg1: { ansible_host: 10.213.7.11 }\n"));
        assert!(text.contains(
            "    balancers:\n      hosts:\n        lb1: { ansible_host: 10.213.7.21 }\n"
        ));
        assert!(text.contains("    lab_vip: 10.213.7.100\n"));
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            parsed["all"]["children"]["postgres"]["hosts"]["pg1"]["ansible_host"].as_str(),
            Some("10.213.7.11")
        );
    }
}
