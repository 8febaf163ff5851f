//! The Ansible-format YAML inventory and the OpenSSH known_hosts that `lab up` writes, so that
//! `pgdeploy apply -i inventories/lab.yml` (and plain `ssh`) reach the hosts with verified keys

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use super::mirror::MirrorUrls;
use super::state::HostState;
use super::subnet::{Role, Subnet};

/// The lab's database passwords: made once per lab from the kernel's random source and kept
/// in its state directory (mode 0600), so every `up` writes the same ones.
pub(crate) fn passwords(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let path = dir.join("passwords");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let pairs: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if pairs.len() == PASSWORD_VARS.len() {
            return Ok(pairs);
        }
    }
    let mut bytes = vec![0u8; 12 * PASSWORD_VARS.len()];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let pairs: Vec<(String, String)> = PASSWORD_VARS
        .iter()
        .zip(bytes.chunks(12))
        .map(|(name, chunk)| {
            let hex: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
            (name.to_string(), hex)
        })
        .collect();
    let text: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    super::state::write_atomic(&path, text.as_bytes(), 0o600)?;
    Ok(pairs)
}

/// The secret variables the lab inventory defines (their names mark them secret in output).
const PASSWORD_VARS: &[&str] = &["pg_superuser_password", "pg_replication_password"];

/// The inventory text: connection variables for the lab, the lab mirror's URLs as the
/// variables the shipped playbooks read, and the `postgres`, `primary`, `replica` and
/// `balancers` groups (always present, so every shipped playbook loads whatever the lab's
/// shape)
pub(crate) fn render(
    key: &Path,
    known_hosts: &Path,
    subnet: &Subnet,
    mirror: &MirrorUrls,
    hosts: &[HostState],
    passwords: &[(String, String)],
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "# written by `pgdeploy lab up`; rewritten on every `up`\n\
         all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: {}\n    \
         pgdeploy_known_hosts_file: {}\n    lab_subnet: {}\n    lab_vip: {}\n    \
         leader_vip: {}\n\
         \x20   # the lab's package mirror (air-gapped: the hosts reach nothing else)\n    \
         lab_mirror: {}\n    pg_packages_source: pgdg\n    pgdg_mirror: {}\n    \
         pgdg_key_url: {}\n    pip_find_links: {}\n    pg_version: 15\n    \
         patroni_install: pip\n",
        key.display(),
        known_hosts.display(),
        subnet,
        subnet.vip(),
        subnet.leader_vip(),
        mirror.base,
        mirror.apt,
        mirror.apt_key,
        mirror.python,
    );
    for (name, value) in passwords {
        let _ = writeln!(out, "    {name}: {value}");
    }
    out.push_str("  children:\n");
    let postgres: Vec<&HostState> = hosts.iter().filter(|h| h.role == Role::Postgres).collect();
    let balancers: Vec<&HostState> = hosts.iter().filter(|h| h.role == Role::Balancer).collect();
    group(&mut out, "postgres", &postgres, true);
    // Seed 000's shape (`[primary]`, `[replica]`), for the playbooks written for it: the first
    // database host and the others.
    let (first, rest) = postgres.split_at(postgres.len().min(1));
    group(&mut out, "primary", first, false);
    group(&mut out, "replica", rest, false);
    group(&mut out, "balancers", &balancers, true);
    out
}

/// One group of the inventory: its hosts with their address where they are defined (`with_address`), else by name.
fn group(out: &mut String, name: &str, members: &[&HostState], with_address: bool) {
    if members.is_empty() {
        let _ = writeln!(out, "    {name}:");
        return;
    }
    let _ = writeln!(out, "    {name}:\n      hosts:");
    for h in members {
        if with_address {
            let _ = writeln!(out, "        {}: {{ ansible_host: {} }}", h.name, h.ip);
        } else {
            let _ = writeln!(out, "        {}:", h.name);
        }
    }
}

/// known_hosts lines, one per address and per name, for every host key type
pub(crate) fn known_hosts(entries: &[(String, Ipv4Addr, Vec<String>)]) -> String {
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

    /// A host of the 10.213.7.0/24 test subnet, not running.
    fn host(name: &str, role: Role, last: u8) -> HostState {
        HostState {
            name: name.into(),
            role,
            ip: Ipv4Addr::new(10, 213, 7, last),
            nspawn_pid: None,
            init_pid: None,
            pid_ns: None,
        }
    }

    #[test]
    fn renders_groups() {
        let subnet: Subnet = "10.213.7.0/24".parse().unwrap();
        let text = render(
            Path::new("/l/id_ed25519"),
            Path::new("/l/known_hosts"),
            &subnet,
            &MirrorUrls::new(subnet.gateway()),
            &[
                host("pg1", Role::Postgres, 11),
                host("lb1", Role::Balancer, 21),
            ],
            &[("pg_superuser_password".into(), "0a1b".into())],
        );
        assert!(text.contains("    pg_superuser_password: 0a1b\n  children:\n"));
        assert!(text
            .contains("    postgres:\n      hosts:\n        pg1: { ansible_host: 10.213.7.11 }\n"));
        assert!(text.contains(
            "    balancers:\n      hosts:\n        lb1: { ansible_host: 10.213.7.21 }\n"
        ));
        assert!(text.contains("    primary:\n      hosts:\n        pg1:\n    replica:\n"));
        assert!(text.contains("    lab_vip: 10.213.7.100\n"));
        assert!(text.contains("    leader_vip: 10.213.7.101\n"));
        assert!(text.contains("    pgdg_mirror: http://10.213.7.1:8480/apt\n"));
        assert!(text.contains("    pip_find_links: http://10.213.7.1:8480/python/\n"));
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            parsed["all"]["children"]["postgres"]["hosts"]["pg1"]["ansible_host"].as_str(),
            Some("10.213.7.11")
        );
    }

    #[test]
    fn an_empty_role_is_an_empty_group() {
        let subnet: Subnet = "10.213.7.0/24".parse().unwrap();
        let text = render(
            Path::new("/l/k"),
            Path::new("/l/kh"),
            &subnet,
            &MirrorUrls::new(subnet.gateway()),
            &[host("pg1", Role::Postgres, 11)],
            &[],
        );
        assert!(text.ends_with("    balancers:\n"), "{text}");
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert!(parsed["all"]["children"]["balancers"].is_null());
    }

    #[test]
    fn passwords_are_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = passwords(dir.path()).unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|(_, v)| v.len() == 24));
        assert_ne!(first[0].1, first[1].1);
        assert_eq!(passwords(dir.path()).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("passwords"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
