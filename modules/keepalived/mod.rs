//! `keepalived`: a virtual IP address held by one host of a group, moved by VRRP when that
//! host fails its check. Two topologies: `mode: haproxy` on the balancers (healthy while
//! HAProxy runs and listens) and `mode: patroni` on the PostgreSQL hosts (healthy on the
//! Patroni primary only, so the VIP follows the leader).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem, TaskRef,
};
use pgdeploy_core::params::Mode;
use pgdeploy_core::secrets::MASK;
use pgdeploy_core::yaml::DeError;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec;
use super::common::hosts;
use super::common::secret::Secret;
use super::common::shell::quote;
use super::common::stat::{self, Kind};
use super::service::Service;

const CONFIG: &str = "/etc/keepalived/keepalived.conf";
/// Checks a candidate configuration. In its own session: keepalived 2.2.7 (Debian 12) ends
/// its config test by signalling its process group in some cases, which would also kill the
/// shell that runs the check.
const VALIDATE: &str = "setsid -w keepalived -t -f %s";
/// keepalived 2.2.7's config test is killed (status 143) whenever scripts run as a user other
/// than root (keepalived issue 2617, fixed in 2.2.8); so the copy that is checked names root
/// as `script_user`, and the rest of the file is checked as it is.
const VALIDATE_AS_ROOT: &str = "t=$(mktemp) && sed 's/^    script_user .*$/    script_user root/' %s > \"$t\" && setsid -w keepalived -t -f \"$t\"; rc=$?; rm -f -- \"$t\"; exit $rc";
/// Root-owned, not writable by anyone else: `enable_script_security` runs nothing else.
const SCRIPT_DIR: &str = "/etc/keepalived/scripts";
/// Where `pgdeploy status` finds the VIP to look for on the hosts (see `src/status.rs`).
pub(crate) use pgdeploy_core::locator::KEEPALIVED as LOCATOR;

/// The locator's content: the VIP, shell-sourceable.
pub(crate) fn locator(vip: Ipv4Addr) -> String {
    pgdeploy_core::locator::render("keepalived", "the VIP", &[("VIP", &vip.to_string())])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KeepalivedMode {
    /// On the HAProxy hosts: the VIP stays where HAProxy runs and listens.
    Haproxy,
    /// On the PostgreSQL hosts: the VIP is on the host whose Patroni answers `/primary`.
    Patroni,
}

/// TLS of the local Patroni REST API, for the `patroni` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatroniTls {
    pub ca_file: String,
    /// Client certificate and key, when the REST API asks for one; readable by `script_user`.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

fn d_advert() -> u32 {
    1
}
fn d_haproxy_port() -> u16 {
    5432
}
fn d_patroni_port() -> u16 {
    8008
}
fn d_script_user() -> String {
    "root".into()
}
fn d_config() -> String {
    CONFIG.into()
}
fn d_wait() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keepalived {
    pub mode: KeepalivedMode,
    /// The virtual IPv4 address, optionally with its prefix (`10.0.0.100/24`); without one,
    /// the interface's prefix is used.
    pub vip: String,
    /// The interface carrying VRRP and the VIP; default: the host's default IPv4 interface.
    pub interface: Option<String>,
    /// 1–255, the same on every host of the group, unique on the network.
    pub virtual_router_id: u32,
    /// VRRP password: 1 to 8 characters (keepalived ignores the rest).
    pub auth_pass: Secret,
    /// The inventory group of the hosts sharing the VIP: peers, and priorities by their
    /// order. A group rather than the play's hosts, so that `--limit` never shrinks the peers.
    pub group: String,
    /// This host's priority (1–254); default: 150 for the first host of the group, 10 less
    /// for each next one.
    pub priority: Option<u32>,
    #[serde(default = "d_advert")]
    pub advert_int: u32,
    /// Unique per host; default: the inventory name.
    pub router_id: Option<String>,
    /// The user that runs the check script (default `root`: the script and its directory
    /// are root-owned and not writable by others, which `enable_script_security` accepts);
    /// another user is created (system user, no login) if missing.
    #[serde(default = "d_script_user")]
    pub script_user: String,
    /// Seconds between checks; default 2 (`haproxy`) or 1 (`patroni`: Patroni already
    /// decided, so the VIP should follow at once).
    pub check_interval: Option<u32>,
    /// Failed checks before the host gives the VIP up; default 2 (`haproxy`) or 1 (`patroni`).
    pub check_fall: Option<u32>,
    /// Passed checks before the host may take the VIP; default 2 (`haproxy`) or 1 (`patroni`).
    pub check_rise: Option<u32>,
    /// `haproxy` mode: the port HAProxy must listen on.
    #[serde(default = "d_haproxy_port")]
    pub haproxy_port: u16,
    /// `patroni` mode: the local Patroni REST API port.
    #[serde(default = "d_patroni_port")]
    pub patroni_port: u16,
    /// `patroni` mode: set when the REST API serves TLS.
    pub patroni_tls: Option<PatroniTls>,
    #[serde(default = "d_config")]
    pub config: String,
    /// Seconds `apply` waits, after it started or reloaded keepalived, until the VIP answers
    /// from this host (held here, or answering ping/ARP from another host of the group);
    /// `0`: do not wait. An `apply` that returns has a VIP clients can use.
    #[serde(default = "d_wait")]
    pub wait_timeout: u64,
}

/// Everything per host the files are made of, resolved from facts and the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub router_id: String,
    pub interface: String,
    pub src_ip: Ipv4Addr,
    pub peers: Vec<Ipv4Addr>,
    pub priority: u32,
    pub vip: Ipv4Addr,
    pub prefix: u8,
}

/// `10.0.0.1` or `10.0.0.1/24`.
fn parse_vip(v: &str) -> Result<(Ipv4Addr, Option<u8>), String> {
    let (ip, prefix) = match v.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (v, None),
    };
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("`{v}` is not an IPv4 address"))?;
    let prefix = match prefix {
        Some(p) => match p.parse::<u8>() {
            Ok(n) if (1..=32).contains(&n) => Some(n),
            _ => return Err(format!("`{v}`: `/{p}` is not a prefix length (1–32)")),
        },
        None => None,
    };
    Ok((ip, prefix))
}

impl Keepalived {
    fn script_name(&self) -> &'static str {
        match self.mode {
            KeepalivedMode::Haproxy => "check_haproxy",
            KeepalivedMode::Patroni => "check_patroni",
        }
    }

    /// `interval`, `fall`, `rise` of the check.
    fn rhythm(&self) -> (u32, u32, u32) {
        let d = match self.mode {
            KeepalivedMode::Haproxy => 2,
            KeepalivedMode::Patroni => 1,
        };
        (
            self.check_interval.unwrap_or(d),
            self.check_fall.unwrap_or(d),
            self.check_rise.unwrap_or(d),
        )
    }

    fn script_path(&self) -> String {
        format!("{SCRIPT_DIR}/{}.sh", self.script_name())
    }

    /// Peers, priority, addresses: from the group, facts and the inventory.
    fn resolve(&self, cx: &HostContext<'_>) -> Result<Resolved, ModuleError> {
        let members = hosts::group_members(cx, &self.group)?;
        let index = members.iter().position(|h| h.name == cx.host);
        let Some(index) = index else {
            return Err(ModuleError::Failed(format!(
                "host `{}` is not in group `{}`, whose hosts share the VIP",
                cx.host, self.group
            )));
        };
        let interface = match &self.interface {
            Some(i) => i.clone(),
            None => cx
                .facts
                .get("ansible_default_ipv4")
                .and_then(|d| d.get("interface"))
                .and_then(|i| i.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    ModuleError::Failed(
                        "no default IPv4 interface in the facts: set `interface`".into(),
                    )
                })?,
        };
        let addrs = hosts::interface_ipv4(cx.facts, &interface).ok_or_else(|| {
            ModuleError::Failed(format!(
                "interface `{interface}` is not on host `{}` (facts `ansible_interfaces`)",
                cx.host
            ))
        })?;
        let (vip, vip_prefix) = parse_vip(&self.vip).map_err(ModuleError::Failed)?;
        // The host holding the VIP has it among the interface's addresses: skip it.
        let Some(&(src_ip, if_prefix)) = addrs.iter().find(|(a, _)| *a != vip) else {
            return Err(ModuleError::Failed(format!(
                "interface `{interface}` has no IPv4 address"
            )));
        };
        let prefix = vip_prefix.unwrap_or(if_prefix);
        if !addrs
            .iter()
            .any(|(a, p)| *a != vip && hosts::in_network(vip, *a, *p))
        {
            return Err(ModuleError::Failed(format!(
                "`vip` `{vip}` is not in the subnet of interface `{interface}` (`{}`)",
                hosts::network(src_ip, if_prefix)
            )));
        }
        let mut peers = Vec::new();
        for h in members.iter().filter(|h| h.name != cx.host) {
            let ip = hosts::ipv4_of(cx, h).ok_or_else(|| {
                ModuleError::Failed(format!(
                    "no IPv4 address for peer `{}`: set its `ansible_host` to its address",
                    h.name
                ))
            })?;
            if ip == vip {
                return Err(ModuleError::Failed(format!(
                    "`vip` `{vip}` is the address of host `{}`",
                    h.name
                )));
            }
            peers.push(ip);
        }
        let priority = self
            .priority
            .unwrap_or_else(|| 150u32.saturating_sub(10 * index as u32).max(1));
        Ok(Resolved {
            router_id: self
                .router_id
                .clone()
                .unwrap_or_else(|| cx.host.to_string()),
            interface,
            src_ip,
            peers,
            priority,
            vip,
            prefix,
        })
    }

    /// The check script: exit 0 when this host may hold the VIP.
    pub(crate) fn render_script(&self, r: &Resolved) -> String {
        let mut o = String::from("#!/bin/sh\n");
        let _ = writeln!(
            o,
            "# Managed by pgdeploy (`keepalived` module): changes made here are overwritten"
        );
        match self.mode {
            KeepalivedMode::Haproxy => {
                let port = self.haproxy_port;
                let _ = writeln!(
                    o,
                    "# Healthy while HAProxy runs and listens on port {port}."
                );
                o.push_str("pidof haproxy >/dev/null || exit 1\n");
                let _ = writeln!(o, "ss -Hltn 'sport = :{port}' | grep -q . || exit 2");
                o.push_str("exit 0\n");
            }
            KeepalivedMode::Patroni => {
                let scheme = if self.patroni_tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                o.push_str(
                    "# Healthy only on the Patroni primary (HTTP 200 on /primary; 503 elsewhere).\n",
                );
                o.push_str("exec curl --silent --fail --max-time 2 --output /dev/null \\\n");
                if let Some(tls) = &self.patroni_tls {
                    let _ = writeln!(o, "  --cacert {} \\", quote(&tls.ca_file));
                    if let Some(c) = &tls.cert_file {
                        let _ = writeln!(o, "  --cert {} \\", quote(c));
                    }
                    if let Some(k) = &tls.key_file {
                        let _ = writeln!(o, "  --key {} \\", quote(k));
                    }
                }
                let _ = writeln!(o, "  {scheme}://{}:{}/primary", r.src_ip, self.patroni_port);
            }
        }
        o
    }

    /// keepalived.conf; the password is in it (the file is root-only, its diff is masked).
    pub(crate) fn render_config(&self, r: &Resolved) -> String {
        let mut o = String::new();
        let mode = match self.mode {
            KeepalivedMode::Haproxy => "haproxy",
            KeepalivedMode::Patroni => "patroni",
        };
        let _ = writeln!(
            o,
            "# Managed by pgdeploy (`keepalived` module, mode `{mode}`): changes made here are overwritten\n"
        );
        o.push_str("global_defs {\n");
        let _ = writeln!(o, "    router_id {}", r.router_id);
        o.push_str("    enable_script_security\n");
        let _ = writeln!(o, "    script_user {}", self.script_user);
        o.push_str("}\n\n");
        let name = self.script_name();
        let _ = writeln!(o, "vrrp_script {name} {{");
        let _ = writeln!(o, "    script \"{}\"", self.script_path());
        let (interval, fall, rise) = self.rhythm();
        let _ = writeln!(o, "    interval {interval}");
        let _ = writeln!(o, "    timeout {}", interval.max(2));
        let _ = writeln!(o, "    fall {fall}");
        let _ = writeln!(o, "    rise {rise}");
        o.push_str("}\n\n");
        let _ = writeln!(o, "vrrp_instance VI_{} {{", self.virtual_router_id);
        o.push_str("    state BACKUP\n");
        let _ = writeln!(o, "    interface {}", r.interface);
        let _ = writeln!(o, "    virtual_router_id {}", self.virtual_router_id);
        let _ = writeln!(o, "    priority {}", r.priority);
        let _ = writeln!(o, "    advert_int {}", self.advert_int);
        let _ = writeln!(o, "    unicast_src_ip {}", r.src_ip);
        o.push_str("    unicast_peer {\n");
        for p in &r.peers {
            let _ = writeln!(o, "        {p}");
        }
        o.push_str("    }\n");
        o.push_str("    authentication {\n");
        o.push_str("        auth_type PASS\n");
        let _ = writeln!(o, "        auth_pass {}", self.auth_pass.expose());
        o.push_str("    }\n");
        o.push_str("    virtual_ipaddress {\n");
        let _ = writeln!(o, "        {}/{} dev {}", r.vip, r.prefix, r.interface);
        o.push_str("    }\n");
        o.push_str("    track_script {\n");
        let _ = writeln!(o, "        {name}");
        o.push_str("    }\n");
        o.push_str("}\n");
        o
    }
}

/// `text` with the value of every `auth_pass` line masked, for diffs. The current file may
/// hold another password than `wanted`: its line then says so, so that a changed password
/// still shows in the diff without showing either value.
pub(crate) fn mask_auth_pass(text: &str, wanted: &Secret) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("auth_pass") {
            if rest.starts_with(char::is_whitespace) {
                let indent = &line[..line.len() - trimmed.len()];
                let nl = if line.ends_with('\n') { "\n" } else { "" };
                let note = if rest.trim() == wanted.expose() {
                    ""
                } else {
                    " (another password)"
                };
                let _ = write!(out, "{indent}auth_pass {MASK}{note}{nl}");
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// What `apply` does, decided by `plan`, in this order.
struct KeepalivedWork {
    create_user: Option<String>,
    script_dir: Option<String>,
    script: Option<ContentWork>,
    config: Option<ContentWork>,
    /// The locator, and whether its directory is to be created first.
    locator: Option<(ContentWork, bool)>,
    service: Option<(Service, Plan)>,
    /// The VIP, as the plan resolved it: what `apply` waits for.
    vip: Ipv4Addr,
}

#[async_trait::async_trait]
impl Action for Keepalived {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let r = self.resolve(cx)?;
        let mut changes = Vec::new();
        let mut work = KeepalivedWork {
            create_user: None,
            script_dir: None,
            script: None,
            config: None,
            locator: None,
            service: None,
            vip: r.vip,
        };
        let user = &self.script_user;
        if user != "root" {
            let out = exec::run(cx, &format!("id -u -- {}", quote(user))).await?;
            if out.status != 0 {
                changes.push(Change::new(format!(
                    "create system user `{user}` (runs the check script)"
                )));
                work.create_user = Some(format!(
                    "useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -- {}",
                    quote(user)
                ));
            }
        }
        let dir = stat::probe(cx, SCRIPT_DIR, false).await?;
        let root_dir = Wanted {
            owner: Some("root"),
            group: Some("root"),
            mode: Some(Mode(0o755)),
        };
        let install_dir = format!("install -d -o root -g root -m 0755 -- {SCRIPT_DIR}");
        match dir.kind {
            Kind::Missing => {
                changes.push(Change::new(format!(
                    "create directory `{SCRIPT_DIR}`{}",
                    root_dir.describe()
                )));
                work.script_dir = Some(install_dir);
            }
            Kind::Directory => {
                let fix = root_dir.diff(&dir.ownership.clone().unwrap_or_default());
                if !fix.is_empty() {
                    changes.push(Change::new(format!("`{SCRIPT_DIR}`: {}", fix.describe())));
                    work.script_dir = Some(install_dir);
                }
            }
            ref other => {
                return Err(ModuleError::Failed(format!(
                    "`{SCRIPT_DIR}` is {}, not a directory",
                    other.describe()
                )))
            }
        }
        let script_path = self.script_path();
        let script = content::plan(
            cx,
            &Desired {
                dest: &script_path,
                content: self.render_script(&r).into_bytes(),
                wanted: Wanted {
                    owner: Some("root"),
                    group: Some("root"),
                    mode: Some(Mode(0o755)),
                },
                validate: None,
            },
        )
        .await?;
        changes.extend(script.changes.iter().cloned());
        work.script = script.work::<ContentWork>().cloned();
        let config = content::plan(
            cx,
            &Desired {
                dest: &self.config,
                content: self.render_config(&r).into_bytes(),
                wanted: Wanted {
                    owner: Some("root"),
                    group: Some("root"),
                    mode: Some(Mode(0o640)),
                },
                validate: Some(if self.script_user == "root" {
                    VALIDATE
                } else {
                    VALIDATE_AS_ROOT
                }),
            },
        )
        .await?;
        let config_changed = config.is_changed();
        for mut c in config.changes.iter().cloned() {
            if let Some(d) = c.diff.as_mut() {
                let mask = |t: &str| mask_auth_pass(t, &self.auth_pass);
                d.before = d.before.as_deref().map(mask);
                d.after = d.after.as_deref().map(mask);
            }
            changes.push(c);
        }
        work.config = config.work::<ContentWork>().cloned();
        let state = stat::probe(cx, LOCATOR, true).await?;
        let desired = Desired {
            dest: LOCATOR,
            content: locator(r.vip).into_bytes(),
            wanted: Wanted {
                owner: Some("root"),
                group: Some("root"),
                mode: Some(Mode(0o644)),
            },
            validate: None,
        };
        if let Some((c, w)) = content::decide(&desired, &state)? {
            changes.extend(c);
            work.locator = Some((w, state.kind == Kind::Missing));
        }
        // keepalived re-reads its configuration on reload; a check script is run afresh each
        // time, so a new script needs no reload.
        work.service =
            Service::plan_reload_on_change(cx, "keepalived", config_changed, &mut changes).await?;
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan::changes(changes, work))
    }

    /// User, directory, script, then the configuration (checked by `keepalived -t` first;
    /// the script it names exists by then), then enable/start/reload.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<KeepalivedWork>() else {
            return Ok(());
        };
        let mask = |e: ModuleError| match e {
            ModuleError::Failed(m) => ModuleError::Failed(self.auth_pass.mask_in(&m)),
            ModuleError::Command {
                command,
                status,
                output,
            } => ModuleError::Command {
                command,
                status,
                output: self.auth_pass.mask_in(&output),
            },
            other => other,
        };
        for cmd in [&work.create_user, &work.script_dir].into_iter().flatten() {
            exec::check(cx, cmd, cmd).await?;
        }
        if let Some(s) = &work.script {
            content::apply(cx, s).await?;
        }
        if let Some(c) = &work.config {
            content::apply(cx, c).await.map_err(mask)?;
        }
        if let Some((w, create_dir)) = &work.locator {
            if *create_dir {
                let cmd = format!("mkdir -p -- {}", pgdeploy_core::locator::DIR);
                exec::check(cx, &cmd, &cmd).await?;
            }
            content::apply(cx, w).await?;
        }
        if let Some((service, p)) = &work.service {
            service.apply(cx, p).await?;
        }
        // A new check script or configuration, or a start, may move the VIP (or leave no
        // host fit to hold it): wait until it answers again.
        let moved = work.script.is_some() || work.config.is_some() || work.service.is_some();
        if moved && self.wait_timeout > 0 {
            self.wait_for_vip(cx, work.vip).await?;
        }
        Ok(())
    }
}

impl Keepalived {
    /// Waits until the VIP answers from this host (see [`vip_answers_script`]).
    async fn wait_for_vip(&self, cx: &HostContext<'_>, vip: Ipv4Addr) -> Result<(), ModuleError> {
        // Long enough for a holder whose check now fails to give the VIP up (the check's
        // interval × fall) and for a backup to take it over (one advertisement later).
        let (interval, fall, _) = self.rhythm();
        let settle = u64::from(interval * fall + self.advert_int);
        let script = vip_answers_script(vip, settle, self.wait_timeout);
        let out = exec::run(cx, &script).await?;
        if out.status == 0 {
            return Ok(());
        }
        let why = match self.mode {
            KeepalivedMode::Haproxy => "only a host whose HAProxy runs and listens may hold it",
            KeepalivedMode::Patroni => "only the host whose Patroni answers `/primary` may hold it",
        };
        Err(ModuleError::Failed(format!(
            "VIP `{}` does not answer from `{}` {} s after keepalived was started or reloaded: no host of group `{}` holds it ({why}); see `journalctl -u keepalived` on the group's hosts",
            vip, cx.host, self.wait_timeout, self.group
        )))
    }
}

/// After `settle` seconds, exits 0 as soon as `vip` answers from this host, 1 after `timeout`
/// more seconds: the VIP is one of the host's addresses, or another host answers for it — to
/// `ping` where there is one, else to a TCP connection to its SSH port (connected or refused
/// both prove a holder: without one the connection times out, ARP unanswered).
pub(crate) fn vip_answers_script(vip: Ipv4Addr, settle: u64, timeout: u64) -> String {
    format!(
        "sleep {settle}; end=$(( $(date +%s) + {timeout} )); while :; do \
         ip -4 -o addr show | grep -qw -- {vip} && exit 0; \
         if command -v ping >/dev/null 2>&1; then ping -n -c 1 -W 1 {vip} >/dev/null 2>&1 && exit 0; \
         else out=$(timeout 2 bash -c 'exec 3<>/dev/tcp/{vip}/22' 2>&1) && exit 0; \
         case $out in *refused*) exit 0;; esac; fi; \
         [ $(date +%s) -ge $end ] && exit 1; sleep 0.5; done"
    )
}

impl Params for Keepalived {
    const NAME: &'static str = "keepalived";
    const SUMMARY: &'static str =
        "a VRRP virtual IP on the HAProxy hosts or following the Patroni primary";

    /// Two keepalived tasks of a playbook with the same literal `virtual_router_id` would
    /// fight over one VRRP group: refused, pointing at the second. (Templated ids are only
    /// known per host, and are not compared.)
    fn check_tasks(tasks: &[TaskRef<'_>]) -> Vec<DeError> {
        let mut seen: Vec<(u64, String)> = Vec::new();
        let mut errors = Vec::new();
        for t in tasks {
            let Some(node) = t.params.get("virtual_router_id") else {
                continue;
            };
            if node.has_template() {
                continue;
            }
            let Some(id) = node.as_str().and_then(|s| s.trim().parse::<u64>().ok()) else {
                continue;
            };
            match seen.iter().find(|(v, _)| *v == id) {
                Some((_, first)) => {
                    let mut e = DeError::new(format!(
                        "`virtual_router_id` `{id}` is already used by `{first}`"
                    ))
                    .at(node.mark, &t.path.key("virtual_router_id"));
                    e.help =
                        Some("each VIP needs its own VRRP router id (1–255) on its network".into());
                    errors.push(e);
                }
                None => seen.push((id, t.path.to_string())),
            }
        }
        errors
    }

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut p = super::check_absolute("config", &self.config);
        p.extend(super::common::hosts::check_group_named(
            cx,
            "group",
            &self.group,
        ));
        if let Err(e) = parse_vip(&self.vip) {
            p.push(Problem::field("vip", e));
        }
        if !(1..=255).contains(&self.virtual_router_id) {
            p.push(Problem::field(
                "virtual_router_id",
                format!(
                    "`{}` is not a VRRP router id (1–255)",
                    self.virtual_router_id
                ),
            ));
        }
        let pass = self.auth_pass.expose();
        let n = pass.chars().count();
        if n == 0 {
            p.push(Problem::field("auth_pass", "the VRRP password is empty"));
        } else if n > 8 {
            p.push(Problem::field(
                "auth_pass",
                format!("the VRRP password has {n} characters; keepalived uses at most 8"),
            ));
        }
        if pass
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"#!{}".contains(c))
        {
            p.push(Problem::field(
                "auth_pass",
                "the VRRP password must not hold spaces, quotes, braces, `#` or `!`",
            ));
        }
        if let Some(pr) = self.priority {
            if !(1..=254).contains(&pr) {
                p.push(Problem::field(
                    "priority",
                    format!("`{pr}` is not a VRRP priority (1–254)"),
                ));
            }
        }
        if !(1..=255).contains(&self.advert_int) {
            p.push(Problem::field(
                "advert_int",
                format!(
                    "`{}` is not an advertisement interval (1–255 s)",
                    self.advert_int
                ),
            ));
        }
        for (field, v) in [
            ("check_interval", self.check_interval),
            ("check_fall", self.check_fall),
            ("check_rise", self.check_rise),
        ] {
            if v == Some(0) {
                p.push(Problem::field(field, "must be at least 1"));
            }
        }
        let word = |field: &'static str, v: &str, p: &mut Vec<Problem>| {
            if v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
            {
                p.push(Problem::field(field, format!("`{v}` is not a plain name")));
            }
        };
        word("script_user", &self.script_user, &mut p);
        if let Some(i) = &self.interface {
            word("interface", i, &mut p);
        }
        if let Some(r) = &self.router_id {
            word("router_id", r, &mut p);
        }
        if self.group.trim().is_empty() {
            p.push(Problem::field("group", "the group name is empty"));
        }
        match (self.mode, &self.patroni_tls) {
            (KeepalivedMode::Haproxy, Some(_)) => {
                p.push(Problem::field("patroni_tls", "only for `mode: patroni`"))
            }
            (KeepalivedMode::Patroni, Some(tls)) => {
                for f in [
                    Some(&tls.ca_file),
                    tls.cert_file.as_ref(),
                    tls.key_file.as_ref(),
                ]
                .into_iter()
                .flatten()
                {
                    p.extend(super::check_absolute("patroni_tls", f));
                }
                if tls.cert_file.is_some() != tls.key_file.is_some() {
                    p.push(Problem::field(
                        "patroni_tls",
                        "give both `cert_file` and `key_file`, or neither",
                    ));
                }
            }
            _ => {}
        }
        if self.haproxy_port == 0 || self.patroni_port == 0 {
            p.push(Problem::general("port `0` is not a port"));
        }
        p
    }
}

#[cfg(test)]
mod tests;
