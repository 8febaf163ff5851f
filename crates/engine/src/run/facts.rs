//! Facts: what a host is (OS, package and service manager, names, addresses), gathered in
//! one round trip and shaped like Ansible's so templates written for it keep working.

use serde_json::{json, Map, Value};

use super::readahead::{find, Batch, Found};
use pgdeploy_core::template::Facts;
use pgdeploy_core::transport::{Become, ExecOutput, ExecRequest, Transport, TransportError};

/// One POSIX shell script printing every section the parser reads; a missing tool leaves
/// its section empty rather than failing the whole gathering. Files are read with the shell's
/// own `read` where that gives the same answer as a tool: every process started here is paid
/// once per host per run.
const SCRIPT: &str = r#"
echo '==os-release'; while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done </etc/os-release 2>/dev/null
echo '==hostname'; read -r h </proc/sys/kernel/hostname 2>/dev/null && printf '%s\n' "$h" || hostname 2>/dev/null
echo '==fqdn'; hostname -f 2>/dev/null
echo '==addr'; ip -j addr show 2>/dev/null
echo '==route4'; ip -j -4 route show default 2>/dev/null
echo '==route6'; ip -j -6 route show default 2>/dev/null
echo '==pkg'; for m in apt-get dnf yum zypper; do if command -v $m >/dev/null 2>&1; then echo $m; break; fi; done
echo '==service'; if [ -d /run/systemd/system ]; then echo systemd; else read -r c </proc/1/comm 2>/dev/null && printf '%s\n' "$c"; fi
echo '==arch'; read -r a </proc/sys/kernel/arch 2>/dev/null && printf '%s\n' "$a" || uname -m 2>/dev/null
echo '==nproc'; nproc 2>/dev/null
echo '==mem'; while read -r k v u; do if [ "$k" = MemTotal: ]; then printf '%s\n' "$v"; break; fi; done </proc/meminfo 2>/dev/null
echo '==user'; id -un 2>/dev/null
"#;

/// Gathers the facts of one host.
pub async fn gather(transport: &dyn Transport) -> Result<Facts, TransportError> {
    Ok(gather_with(transport, None).await?.0)
}

/// Gathers the facts of one host and, in the same round trip, runs `probes` (probes of the
/// steps known before the facts are: they run as the login user, as the facts do). What the
/// probes found is `None` when their output does not parse; the facts are there anyway.
pub async fn gather_with(
    transport: &dyn Transport,
    probes: Option<Batch>,
) -> Result<(Facts, Option<Vec<Found>>), TransportError> {
    let Some(batch) = probes.filter(|b| !b.is_empty()) else {
        let out = transport.exec(&request(SCRIPT.to_string())).await?;
        return Ok((parse(&String::from_utf8_lossy(&out.stdout)), None));
    };
    // The facts run in a subshell (their variables do not reach the probes), their errors
    // go to /dev/null: stderr carries only the batch's frames.
    let marker = format!("--{}-end-of-facts\n", batch.boundary());
    let command = format!(
        "(\n{SCRIPT}\n) </dev/null 2>/dev/null\nprintf '%s' '{marker}'\n{}",
        batch.script()
    );
    let out = transport.exec(&request(command)).await?;
    let Some(at) = find(&out.stdout, marker.as_bytes()) else {
        return Ok((parse(&String::from_utf8_lossy(&out.stdout)), None));
    };
    let facts = parse(&String::from_utf8_lossy(&out.stdout[..at]));
    let rest = ExecOutput {
        status: out.status,
        stdout: out.stdout[at + marker.len()..].to_vec(),
        stderr: out.stderr,
    };
    Ok((facts, batch.read(&rest)))
}

/// For a host whose facts no play sees (`gather_facts: false`): only the probes, in one
/// round trip (none when there is no probe). The host's facts are then empty.
pub async fn probes_only(
    transport: &dyn Transport,
    probes: Option<Batch>,
) -> Result<(Facts, Option<Vec<Found>>), TransportError> {
    let Some(batch) = probes.filter(|b| !b.is_empty()) else {
        return Ok((Facts::new(), None));
    };
    let out = transport.exec(&request(batch.script())).await?;
    Ok((Facts::new(), batch.read(&out)))
}

fn request(command: String) -> ExecRequest {
    ExecRequest {
        command,
        stdin: None,
        become_: Become::No,
        timeout: None,
    }
}

fn sections(text: &str) -> std::collections::HashMap<&str, String> {
    let mut out = std::collections::HashMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("==") {
            current = Some(name.trim());
            out.entry(name.trim()).or_insert_with(String::new);
            continue;
        }
        if let Some(name) = current {
            let s = out.entry(name).or_insert_with(String::new);
            s.push_str(line);
            s.push('\n');
        }
    }
    out
}

fn os_release(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// Ansible's `ansible_distribution` for an os-release `ID`.
fn distribution(id: &str) -> String {
    match id {
        "debian" => "Debian".into(),
        "ubuntu" => "Ubuntu".into(),
        "rhel" => "RedHat".into(),
        "centos" => "CentOS".into(),
        "rocky" => "Rocky".into(),
        "almalinux" => "AlmaLinux".into(),
        "fedora" => "Fedora".into(),
        "ol" => "OracleLinux".into(),
        "sles" | "opensuse-leap" => "SLES".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

fn os_family(id: &str, id_like: &str) -> &'static str {
    let all = format!("{id} {id_like}");
    if all.contains("debian") || all.contains("ubuntu") {
        "Debian"
    } else if ["rhel", "fedora", "centos", "rocky", "almalinux", "ol"]
        .iter()
        .any(|f| all.split_whitespace().any(|w| w == *f))
    {
        "RedHat"
    } else if all.contains("suse") {
        "Suse"
    } else {
        "Linux"
    }
}

fn prefix_to_netmask(prefix: u32) -> String {
    let mask: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    std::net::Ipv4Addr::from(mask).to_string()
}

fn network_of(addr: &str, prefix: u32) -> Option<String> {
    let a: std::net::Ipv4Addr = addr.parse().ok()?;
    let mask: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    Some(std::net::Ipv4Addr::from(u32::from(a) & mask).to_string())
}

/// Turns the script's output into facts.
pub fn parse(text: &str) -> Facts {
    let s = sections(text);
    let get = |k: &str| s.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let mut f = Facts::new();
    let osr = os_release(s.get("os-release").map(String::as_str).unwrap_or(""));
    let id = osr.get("ID").cloned().unwrap_or_default();
    let version = osr.get("VERSION_ID").cloned().unwrap_or_default();
    f.insert("ansible_distribution".into(), json!(distribution(&id)));
    f.insert("ansible_distribution_version".into(), json!(version));
    f.insert(
        "ansible_distribution_major_version".into(),
        json!(version.split('.').next().unwrap_or_default()),
    );
    f.insert(
        "ansible_distribution_release".into(),
        json!(osr.get("VERSION_CODENAME").cloned().unwrap_or_default()),
    );
    f.insert(
        "ansible_os_family".into(),
        json!(os_family(
            &id,
            osr.get("ID_LIKE").map(String::as_str).unwrap_or("")
        )),
    );
    let pkg = match get("pkg").as_str() {
        "apt-get" => "apt".to_string(),
        other => other.to_string(),
    };
    f.insert("ansible_pkg_mgr".into(), json!(pkg));
    f.insert("ansible_service_mgr".into(), json!(get("service")));
    let hostname = get("hostname");
    let fqdn = match get("fqdn") {
        f if f.is_empty() => hostname.clone(),
        f => f,
    };
    f.insert(
        "ansible_hostname".into(),
        json!(hostname.split('.').next().unwrap_or_default()),
    );
    f.insert("ansible_nodename".into(), json!(hostname));
    f.insert("ansible_fqdn".into(), json!(fqdn));
    f.insert("ansible_architecture".into(), json!(get("arch")));
    if let Ok(n) = get("nproc").parse::<u64>() {
        f.insert("ansible_processor_vcpus".into(), json!(n));
    }
    if let Ok(kb) = get("mem").parse::<u64>() {
        f.insert("ansible_memtotal_mb".into(), json!(kb / 1024));
    }
    f.insert("ansible_user_id".into(), json!(get("user")));
    interfaces(&mut f, &get("addr"), &get("route4"), &get("route6"));
    f
}

/// `ansible_interfaces`, `ansible_<iface>`, `ansible_default_ipv4/6`, `ansible_all_ipv*`.
fn interfaces(f: &mut Facts, addr_json: &str, route4: &str, route6: &str) {
    let links: Vec<Value> = serde_json::from_str(addr_json).unwrap_or_default();
    let mut names = Vec::new();
    let mut all4 = Vec::new();
    let mut all6 = Vec::new();
    let mut by_name: Map<String, Value> = Map::new();
    for link in &links {
        let Some(name) = link.get("ifname").and_then(Value::as_str) else {
            continue;
        };
        names.push(json!(name));
        let mut v4: Vec<Value> = Vec::new();
        let mut v6: Vec<Value> = Vec::new();
        for a in link
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(local) = a.get("local").and_then(Value::as_str) else {
                continue;
            };
            let prefix = a.get("prefixlen").and_then(Value::as_u64).unwrap_or(0) as u32;
            match a.get("family").and_then(Value::as_str) {
                Some("inet") => {
                    v4.push(json!({
                        "address": local,
                        "prefix": prefix.to_string(),
                        "netmask": prefix_to_netmask(prefix),
                        "network": network_of(local, prefix),
                        "broadcast": a.get("broadcast").cloned().unwrap_or(Value::Null),
                    }));
                    if name != "lo" {
                        all4.push(json!(local));
                    }
                }
                Some("inet6") => {
                    v6.push(json!({
                        "address": local,
                        "prefix": prefix.to_string(),
                        "scope": a.get("scope").cloned().unwrap_or(Value::Null),
                    }));
                    if name != "lo" {
                        all6.push(json!(local));
                    }
                }
                _ => {}
            }
        }
        let flags: Vec<&str> = link
            .get("flags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut iface = json!({
            "device": name,
            "active": flags.contains(&"UP"),
            "type": if flags.contains(&"LOOPBACK") { "loopback" } else { "ether" },
            "macaddress": link.get("address").cloned().unwrap_or(Value::Null),
            "mtu": link.get("mtu").cloned().unwrap_or(Value::Null),
            "ipv6": v6,
        });
        if let Some(first) = v4.first() {
            iface["ipv4"] = first.clone();
            iface["ipv4_secondaries"] = Value::Array(v4[1..].to_vec());
        }
        by_name.insert(name.to_string(), iface);
    }
    f.insert("ansible_interfaces".into(), Value::Array(names));
    f.insert("ansible_all_ipv4_addresses".into(), Value::Array(all4));
    f.insert("ansible_all_ipv6_addresses".into(), Value::Array(all6));
    for (family, routes, key) in [
        ("ipv4", route4, "ansible_default_ipv4"),
        ("ipv6", route6, "ansible_default_ipv6"),
    ] {
        let routes: Vec<Value> = serde_json::from_str(routes).unwrap_or_default();
        let default = routes.first().and_then(|r| {
            let dev = r.get("dev")?.as_str()?;
            let iface = by_name.get(dev)?;
            let mut d = match family {
                "ipv4" => iface.get("ipv4")?.clone(),
                _ => iface
                    .get("ipv6")?
                    .as_array()?
                    .iter()
                    .find(|a| a["scope"] == "global")?
                    .clone(),
            };
            d["interface"] = json!(dev);
            d["gateway"] = r.get("gateway").cloned().unwrap_or(Value::Null);
            d["macaddress"] = iface["macaddress"].clone();
            Some(d)
        });
        // Without a default route (an isolated network such as the lab's bridge) Ansible
        // leaves `ansible_default_ipv4` empty; templates that address a host by it would then
        // fail, so take the first non-loopback interface with an IPv4 address instead.
        let default = default.or_else(|| {
            (family == "ipv4")
                .then(|| {
                    by_name.iter().find_map(|(dev, iface)| {
                        (iface["type"] != "loopback").then(|| {
                            let mut d = iface.get("ipv4")?.clone();
                            d["interface"] = json!(dev);
                            d["gateway"] = Value::Null;
                            d["macaddress"] = iface["macaddress"].clone();
                            Some(d)
                        })?
                    })
                })
                .flatten()
        });
        f.insert(key.into(), default.unwrap_or_else(|| json!({})));
    }
    for (name, iface) in by_name {
        // Ansible's fact names replace characters that are not valid in variable names.
        let key = format!("ansible_{}", name.replace(['-', '.', ':'], "_"));
        f.insert(key, iface);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batcher answering `cat FILE` probes with one `cat` per file in one command (the
    /// modules' path-state batcher is theirs: the engine's tests cannot name it).
    struct Cats;
    static CATS: Cats = Cats;
    impl pgdeploy_core::module::Batcher for Cats {
        fn name(&self) -> &'static str {
            "cats"
        }
        fn script(&self, items: &[String]) -> String {
            items
                .iter()
                .map(|f| format!("cat {f}; echo '==cat-end'"))
                .collect::<Vec<_>>()
                .join("; ")
        }
        fn split(&self, items: &[String], out: &ExecOutput) -> Vec<Option<ExecOutput>> {
            let text = String::from_utf8_lossy(&out.stdout);
            let mut parts = text.split("==cat-end\n");
            items
                .iter()
                .map(|_| {
                    parts.next().map(|p| ExecOutput {
                        status: 0,
                        stdout: p.as_bytes().to_vec(),
                        stderr: Vec::new(),
                    })
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn probes_run_in_the_facts_round_trip_answer_as_alone() {
        use pgdeploy_core::module::{Probe, ProbeGroup};
        use pgdeploy_core::transport::LocalTransport;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f").display().to_string();
        std::fs::write(&file, "==addr\ncontent\n").unwrap();
        let local = LocalTransport::new("here");
        let probes = vec![
            Probe::command("echo out; echo err >&2; exit 4"),
            Probe {
                command: format!("cat {file}"),
                group: Some(ProbeGroup {
                    batcher: &CATS,
                    item: file.clone(),
                }),
            },
        ];
        let commands: Vec<String> = probes.iter().map(|p| p.command.clone()).collect();
        let batch = Batch::new(Become::No, probes);
        let (facts, found) = gather_with(&local, Some(batch)).await.unwrap();
        assert!(facts.get("ansible_hostname").is_some(), "{facts:?}");
        let found = found.expect("the probes' output parses");
        assert_eq!(found.len(), 2);
        for ((key, answer), command) in found.into_iter().zip(commands) {
            assert_eq!(key, (Become::No, command.clone()));
            let alone = local.exec(&request(command)).await.unwrap();
            assert_eq!(answer, Some(alone));
        }
    }

    const SAMPLE: &str = r#"==os-release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
==hostname
pg1
==fqdn
pg1.lab
==addr
[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},{"ifindex":2,"ifname":"host0","flags":["BROADCAST","UP"],"mtu":1500,"address":"aa:bb:cc:dd:ee:ff","addr_info":[{"family":"inet","local":"10.213.7.11","prefixlen":24,"broadcast":"10.213.7.255","scope":"global"},{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]
==route4
[{"dst":"default","gateway":"10.213.7.1","dev":"host0","flags":[]}]
==route6
==pkg
apt-get
==service
systemd
==arch
x86_64
==nproc
2
==mem
2048000
==user
root
"#;

    #[test]
    fn without_default_route_the_first_real_interface_is_the_default() {
        let f = parse(&SAMPLE.replace(
            r#"[{"dst":"default","gateway":"10.213.7.1","dev":"host0","flags":[]}]"#,
            "[]",
        ));
        assert_eq!(f["ansible_default_ipv4"]["address"], "10.213.7.11");
        assert_eq!(f["ansible_default_ipv4"]["interface"], "host0");
        assert_eq!(f["ansible_default_ipv4"]["gateway"], Value::Null);
        assert_eq!(f["ansible_lo"]["type"], "loopback");
    }

    #[test]
    fn parses_debian_facts() {
        let f = parse(SAMPLE);
        assert_eq!(f["ansible_distribution"], "Debian");
        assert_eq!(f["ansible_distribution_release"], "bookworm");
        assert_eq!(f["ansible_distribution_major_version"], "12");
        assert_eq!(f["ansible_os_family"], "Debian");
        assert_eq!(f["ansible_pkg_mgr"], "apt");
        assert_eq!(f["ansible_service_mgr"], "systemd");
        assert_eq!(f["ansible_hostname"], "pg1");
        assert_eq!(f["ansible_fqdn"], "pg1.lab");
        assert_eq!(f["ansible_default_ipv4"]["address"], "10.213.7.11");
        assert_eq!(f["ansible_default_ipv4"]["interface"], "host0");
        assert_eq!(f["ansible_default_ipv4"]["netmask"], "255.255.255.0");
        assert_eq!(f["ansible_default_ipv4"]["network"], "10.213.7.0");
        assert_eq!(f["ansible_host0"]["ipv4"]["address"], "10.213.7.11");
        assert_eq!(f["ansible_all_ipv4_addresses"], json!(["10.213.7.11"]));
        assert_eq!(f["ansible_memtotal_mb"], 2000);
    }

    #[test]
    fn families() {
        assert_eq!(os_family("rocky", "rhel centos fedora"), "RedHat");
        assert_eq!(os_family("ubuntu", "debian"), "Debian");
        assert_eq!(distribution("almalinux"), "AlmaLinux");
    }
}
