//! `etcd`: an etcd cluster with peer and client mutual TLS, configured through the
//! environment file its unit reads (`/etc/default/etcd` on Debian, `/etc/etcd/etcd.conf` on
//! RedHat), with the package's unit or, when no package ships one (upstream release
//! tarballs), a unit of its own, in two tasks of the same module:
//!
//! - `state: configured` writes the environment file (and the unit, the user and the data
//!   directory when missing, and the locator `pgdeploy status` reads). Hosts run it one at a time (the first
//!   member first), so that a host added to the inventory joins alone: it is added with
//!   `etcdctl member add` through a healthy member, then started, then waited for, before the
//!   next host is looked at. `ETCD_INITIAL_CLUSTER_STATE` is computed, never set by hand: `new`
//!   only when no member exists yet (no `member` directory in the data directory and no member
//!   answering `member list`), `existing` otherwise.
//! - `state: started` runs once every host is configured (a barrier): it enables and starts
//!   etcd (all members of a fresh cluster start together), restarts it only when its
//!   configuration or certificates changed since it last started, waits until every member
//!   reports `endpoint health`, and then turns `new` into `existing` in the file.
//!
//! Whether a restart is due is decided by a fingerprint (SHA-256 of the environment file
//! without its `ETCD_INITIAL_CLUSTER*` lines, and of the certificate, key and CA files) written
//! when the module starts etcd: bootstrap-only settings, which etcd ignores once it has data,
//! never restart it.

use std::time::{Duration, Instant};

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, HostOrdering, ModuleError, OrderingContext, Params,
    ParseContext, Plan, Probe, ProbeContext, Problem,
};
use pgdeploy_core::params::Mode;

use super::certificates::pki;
use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec::{self, Required};
use super::common::shell::quote;
use super::common::stat;

pub mod health;
mod host;
mod removal;
pub mod unit;
use unit::LOCATOR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EtcdState {
    /// The environment file written; hosts joining an existing cluster are added and started.
    Configured,
    /// Running, restarted when its configuration changed, healthy on every member.
    #[default]
    Started,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Etcd {
    #[serde(default)]
    pub state: EtcdState,
    /// The cluster's members: inventory host names (their `ansible_host` is their address).
    pub members: Vec<String>,
    #[serde(default = "default_token")]
    pub cluster_token: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// The environment file the etcd unit reads; by default from the OS family
    /// ([`config_for`]).
    #[serde(default)]
    pub config: Option<String>,
    /// The etcd binary, for the unit the module writes when no package ships one.
    #[serde(default = "default_executable")]
    pub executable: String,
    /// The `etcdctl` the module (and `pgdeploy status`) runs.
    #[serde(default = "default_etcdctl")]
    pub etcdctl: String,
    /// The system user etcd runs as, created (with its group) when missing.
    #[serde(default = "default_user")]
    pub user: String,
    /// Where `certificates` installed `NAME.crt`, `NAME.key` and `ca.crt`.
    #[serde(default = "default_pki_dir")]
    pub pki_dir: String,
    #[serde(default = "default_client_port")]
    pub client_port: u16,
    #[serde(default = "default_peer_port")]
    pub peer_port: u16,
    #[serde(default = "default_service")]
    pub service: String,
    /// How long to wait for the members to be healthy, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_token() -> String {
    "pgdeploy-etcd".into()
}
fn default_data_dir() -> String {
    "/var/lib/etcd/default".into()
}
fn default_executable() -> String {
    "/usr/bin/etcd".into()
}
fn default_etcdctl() -> String {
    "/usr/bin/etcdctl".into()
}
fn default_user() -> String {
    "etcd".into()
}

/// The environment file of `host` when `config` is not set: where the OS family's packages
/// have their unit read it.
pub fn config_for(
    facts: &pgdeploy_core::template::Facts,
    host: &str,
) -> Result<String, ModuleError> {
    match facts.get("ansible_os_family").and_then(|v| v.as_str()) {
        Some("Debian") => Ok("/etc/default/etcd".into()),
        Some("RedHat") => Ok("/etc/etcd/etcd.conf".into()),
        Some(other) => Err(ModuleError::Failed(format!(
            "`{host}` is of OS family `{other}`: set `config` (the environment file etcd's unit reads)"
        ))),
        None => Err(ModuleError::Failed(format!(
            "`{host}` has no `ansible_os_family` fact: set `config` (the environment file etcd's unit reads)"
        ))),
    }
}
fn default_pki_dir() -> String {
    "/etc/etcd/pki".into()
}
fn default_client_port() -> u16 {
    2379
}
fn default_peer_port() -> u16 {
    2380
}
fn default_service() -> String {
    "etcd".into()
}
fn default_timeout() -> u64 {
    120
}

/// Where the fingerprint of the configuration etcd was last started with is kept.
pub const STAMP: &str = "/var/lib/pgdeploy/etcd.started";

/// `new` on a fresh cluster, `existing` once a member exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

impl ClusterState {
    fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

/// A member as the inventory names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub address: String,
}

/// A member as `etcdctl member list -w json` reports it (a member added but not started yet
/// has no name and no client URLs).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Listed {
    #[serde(rename = "ID")]
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<Listed>,
}

/// Reads `etcdctl member list -w json`.
pub fn parse_member_list(json: &[u8]) -> Option<Vec<Listed>> {
    serde_json::from_slice::<MemberList>(json)
        .ok()
        .map(|l| l.members)
}

fn url(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("https://[{address}]:{port}")
    } else {
        format!("https://{address}:{port}")
    }
}

impl Etcd {
    fn peer_url(&self, m: &Member) -> String {
        url(&m.address, self.peer_port)
    }
    fn client_url(&self, m: &Member) -> String {
        url(&m.address, self.client_port)
    }
    fn cert(&self, host: &str) -> String {
        format!("{}/{host}.crt", self.pki_dir.trim_end_matches('/'))
    }
    fn key(&self, host: &str) -> String {
        format!("{}/{host}.key", self.pki_dir.trim_end_matches('/'))
    }
    fn ca(&self) -> String {
        format!("{}/ca.crt", self.pki_dir.trim_end_matches('/'))
    }

    /// The members with their addresses from the inventory; duplicate URLs are errors.
    fn resolve(&self, cx: &HostContext<'_>) -> Result<Vec<Member>, ModuleError> {
        let inventory = &cx.scope.shared().inventory;
        let members: Vec<Member> = self
            .members
            .iter()
            .map(|name| Member {
                name: name.clone(),
                address: inventory
                    .hosts
                    .get(name)
                    .map_or_else(|| name.clone(), |h| h.connection.address.clone()),
            })
            .collect();
        for (i, m) in members.iter().enumerate() {
            if let Some(other) = members[..i].iter().find(|o| o.address == m.address) {
                return Err(ModuleError::Failed(format!(
                    "members `{}` and `{}` have the same address `{}`: their etcd URLs would clash",
                    other.name, m.name, m.address
                )));
            }
        }
        Ok(members)
    }

    /// The environment file of this host: `config`, else the OS family's.
    fn config_path(
        &self,
        facts: &pgdeploy_core::template::Facts,
        host: &str,
    ) -> Result<String, ModuleError> {
        match &self.config {
            Some(c) => Ok(c.clone()),
            None => config_for(facts, host),
        }
    }

    /// `etcdctl` (the v3 API, which etcd 3.4 and 3.5 both default to, said anyway) over https
    /// with this host's client certificate.
    fn ctl(&self, host: &str, endpoints: &[String], args: &str) -> String {
        format!(
            "ETCDCTL_API=3 {} --endpoints={} --cacert={} --cert={} --key={} \
             --dial-timeout=2s --command-timeout=5s {args}",
            quote(&self.etcdctl),
            quote(&endpoints.join(",")),
            quote(&self.ca()),
            quote(&self.cert(host)),
            quote(&self.key(host)),
        )
    }

    /// The environment file.
    pub fn render(
        &self,
        me: &Member,
        initial_cluster: &[(String, String)],
        state: ClusterState,
    ) -> String {
        let cluster = initial_cluster
            .iter()
            .map(|(n, u)| format!("{n}={u}"))
            .collect::<Vec<_>>()
            .join(",");
        let (cert, key, ca) = (self.cert(&me.name), self.key(&me.name), self.ca());
        let lines = [
            ("ETCD_NAME", me.name.clone()),
            ("ETCD_DATA_DIR", self.data_dir.clone()),
            ("ETCD_LISTEN_PEER_URLS", url("0.0.0.0", self.peer_port)),
            ("ETCD_LISTEN_CLIENT_URLS", url("0.0.0.0", self.client_port)),
            ("ETCD_INITIAL_ADVERTISE_PEER_URLS", self.peer_url(me)),
            ("ETCD_ADVERTISE_CLIENT_URLS", self.client_url(me)),
            ("ETCD_INITIAL_CLUSTER", cluster),
            ("ETCD_INITIAL_CLUSTER_TOKEN", self.cluster_token.clone()),
            ("ETCD_INITIAL_CLUSTER_STATE", state.as_str().to_string()),
            ("ETCD_CLIENT_CERT_AUTH", "true".into()),
            ("ETCD_TRUSTED_CA_FILE", ca.clone()),
            ("ETCD_CERT_FILE", cert.clone()),
            ("ETCD_KEY_FILE", key.clone()),
            ("ETCD_PEER_CLIENT_CERT_AUTH", "true".into()),
            ("ETCD_PEER_TRUSTED_CA_FILE", ca),
            ("ETCD_PEER_CERT_FILE", cert),
            ("ETCD_PEER_KEY_FILE", key),
        ];
        let mut out = String::from(
            "# Written by pgdeploy (module `etcd`): changes made here are overwritten.\n\
             # ETCD_INITIAL_CLUSTER_STATE is computed from the cluster, never set by hand.\n",
        );
        for (k, v) in lines {
            out.push_str(&format!("{k}=\"{v}\"\n"));
        }
        out
    }

    fn file_attrs(&self) -> Wanted<'static> {
        Wanted {
            owner: Some("root"),
            group: Some("root"),
            mode: Some(Mode(0o644)),
        }
    }

    /// Replaces the environment file with `text` (atomically, with its owner and mode), for
    /// the rewrites after a start: the list after a join, `new` turned into `existing`.
    async fn write_config(
        &self,
        cx: &HostContext<'_>,
        config: &str,
        text: &str,
    ) -> Result<(), ModuleError> {
        cx.transport
            .write_file(
                config,
                text.as_bytes(),
                &self.file_attrs().for_write(None),
                &cx.become_,
            )
            .await?;
        Ok(())
    }

    /// Shell that prints the fingerprint of what etcd runs with: the environment file, the
    /// certificates, and the unit when the module wrote it (absent otherwise, so a host
    /// with the package's unit keeps the fingerprint it had before units were written).
    fn fingerprint_script(&self, host: &str, config: &str) -> String {
        format!(
            "{{ grep -v '^ETCD_INITIAL_CLUSTER' {}; cat {} {} {} {}; }} 2>/dev/null | sha256sum | cut -c1-64",
            quote(config),
            quote(&self.cert(host)),
            quote(&self.key(host)),
            quote(&self.ca()),
            quote(&unit::unit_path(&self.service))
        )
    }

    /// Starts (or restarts) etcd without waiting for it, after recording the fingerprint.
    async fn start(
        &self,
        cx: &HostContext<'_>,
        config: &str,
        verb: &str,
        enable: bool,
    ) -> Result<(), ModuleError> {
        let members = self.resolve(cx)?;
        if let Some(me) = members.iter().find(|m| m.name == cx.host) {
            if let Some(problem) = self.certificate_problem(cx, me).await? {
                return Err(ModuleError::Failed(format!(
                    "{problem}: not starting `{}` (reissue it with the certificates task)",
                    self.service
                )));
            }
        }
        let unit = quote(&self.service);
        let mut cmd = String::new();
        if enable {
            cmd.push_str(&format!("systemctl enable {unit} && "));
        }
        cmd.push_str(&format!(
            "mkdir -p /var/lib/pgdeploy && {} > {STAMP} && systemctl {verb} --no-block {unit}",
            self.fingerprint_script(cx.host, config)
        ));
        exec::check(cx, &cmd, &format!("systemctl {verb} {unit}")).await?;
        Ok(())
    }

    /// Waits until every endpoint in `endpoints` answers `endpoint health`.
    async fn wait_healthy(
        &self,
        cx: &HostContext<'_>,
        endpoints: &[String],
    ) -> Result<(), ModuleError> {
        // When the local unit has failed (etcd exits at once on a bad certificate or a
        // cluster mismatch), say why now instead of waiting for the timeout.
        let unit = quote(&self.service);
        let cmd = format!(
            "{}; rc=$?; if [ $rc -ne 0 ] && systemctl is-failed -q {unit}; then echo {UNIT_FAILED}; \
             journalctl -u {unit} -n 5 --no-pager -o cat 2>/dev/null; fi; exit $rc",
            self.ctl(cx.host, endpoints, "endpoint health")
        );
        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        loop {
            let out = exec::run(cx, &cmd).await?;
            if out.status == 0 {
                return Ok(());
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            if let Some((_, journal)) = stdout.split_once(UNIT_FAILED) {
                let last: Vec<&str> = journal.trim().lines().collect();
                return Err(ModuleError::Failed(format!(
                    "`{}` failed on `{}`; its last messages: {}",
                    self.service,
                    cx.host,
                    last.join(" | ")
                )));
            }
            if Instant::now() >= deadline {
                let e = exec::failure("etcdctl endpoint health", &out);
                return Err(ModuleError::Failed(format!(
                    "etcd members not healthy after {} s: {e}",
                    self.timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// What the `configured` step found and will do.
#[derive(Debug)]
struct ConfigWork {
    /// The environment file of this host.
    config: String,
    /// Creates what is missing before anything is written: user, data directory, the
    /// directories of the files.
    prepare: Option<String>,
    /// The module's own unit, then `systemctl daemon-reload`.
    unit: Option<ContentWork>,
    /// `/var/lib/pgdeploy/etcd.env`.
    locator: Option<ContentWork>,
    /// `member add` through these client URLs.
    add: Option<Vec<String>>,
    file: Option<ContentWork>,
    /// Start etcd now (a host joining an existing cluster).
    join: bool,
    /// Planned without the member list (no client certificate on the host yet).
    guessed: bool,
    /// After joining, the file with every inventory member in `ETCD_INITIAL_CLUSTER`, when
    /// that differs from the list the join needed (another host joins after this one).
    settle: Option<String>,
    /// Binaries missing at plan time, checked again before anything is written.
    missing: Vec<Required>,
    /// A member no host of the inventory is, removed (`--allow-removal`, first member only).
    removal: Option<StaleRemoval>,
    /// Sets aside the data of a member the cluster removed, before it joins again.
    set_aside: Option<String>,
}

/// `member remove` of a member the inventory does not have, through the healthy members.
#[derive(Debug, Clone)]
struct StaleRemoval {
    name: String,
    id: u64,
    through: Vec<String>,
}

/// Whose unit runs etcd on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Install {
    /// A unit the module did not write (the package's, or the administrator's): used as is.
    Package,
    /// No other unit: the module writes (and keeps) its own.
    Own,
}

/// The directory of an absolute path.
fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// Members restart one at a time (steps of one run share this process).
static RESTART_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the `started` step will do.
#[derive(Debug)]
struct StartWork {
    /// The environment file of this host.
    config: String,
    enable: bool,
    /// `start` or `restart`.
    verb: Option<&'static str>,
    /// Turn `new` into `existing` once healthy.
    flip: bool,
}

/// Printed by the health probe when the local unit has failed.
const UNIT_FAILED: &str = "@pgdeploy-unit-failed@";

const FLIP_FROM: &str = "ETCD_INITIAL_CLUSTER_STATE=\"new\"";
const FLIP_TO: &str = "ETCD_INITIAL_CLUSTER_STATE=\"existing\"";

impl Etcd {
    async fn plan_configured(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let members = self.resolve(cx)?;
        let me = members
            .iter()
            .find(|m| m.name == cx.host)
            .ok_or_else(|| {
                ModuleError::Failed(format!(
                    "host `{}` is not in `members` ({})",
                    cx.host,
                    self.members.join(", ")
                ))
            })?
            .clone();
        let config = self.config_path(cx.facts, cx.host)?;
        // Things to tell the user that are not changes: shown in the output and the JSON
        // events (plan and apply), never counted as changed.
        let mut notes = Vec::new();
        // Which members accept connections on their client port (a quick TCP connect), so
        // that `etcdctl` is not left waiting for members that do not run yet.
        let mut probe = format!(
            "if [ -d {} ]; then echo member; fi; if [ -f {} ] && [ -f {} ] && [ -f {} ]; then echo certs; fi",
            quote(&format!("{}/member", self.data_dir.trim_end_matches('/'))),
            quote(&self.cert(cx.host)),
            quote(&self.key(cx.host)),
            quote(&self.ca())
        );
        probe.push_str("; ");
        probe.push_str(&host::probe_lines(
            &self.executable,
            &self.etcdctl,
            &self.user,
            &self.data_dir,
            STAMP,
            &self.service,
        ));
        for (i, m) in members.iter().enumerate() {
            let tcp = format!("exec 3<>/dev/tcp/{}/{}", m.address, self.client_port);
            probe.push_str(&format!(
                "; if timeout 2 bash -c {} 2>/dev/null; then echo open={i}; fi",
                quote(&tcp)
            ));
        }
        let out = exec::check(cx, &probe, "probe etcd data directory").await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let local_member = text.lines().any(|l| l == "member");
        let certs = text.lines().any(|l| l == "certs");
        let provided = host::parse(&text);
        let unit_path = unit::unit_path(&self.service);
        let [config_state, unit_state, locator_state]: [stat::PathState; 3] =
            stat::probe_files(cx, &[&config, &unit_path, LOCATOR])
                .await?
                .try_into()
                .map_err(|_| ModuleError::Failed("unexpected answer of the path probe".into()))?;
        let (installs, missing) = self.check_install(
            cx,
            &config,
            &provided,
            &unit_state,
            local_member,
            &config_state,
        )?;
        if !missing.is_empty() {
            // A dry run on a bare host, before the packages task has run: say so and plan the
            // rest; apply stops before writing anything if they are still missing by then.
            let paths: Vec<String> = missing.iter().map(|m| format!("`{}`", m.path)).collect();
            notes.push(format!(
                "etcd is not installed on `{}` yet ({} missing): an earlier task must install it; apply stops here if it has not",
                cx.host,
                paths.join(", ")
            ));
        }
        let endpoints: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("open="))
            .filter_map(|i| i.parse::<usize>().ok())
            .filter_map(|i| members.get(i))
            .map(|m| self.client_url(m))
            .collect();
        // Without its client certificate (a dry run before the certificates task has installed
        // it) the host cannot ask the cluster: the members that answer on their client port
        // stand in for the member list, and apply asks the real one.
        let guessed = !certs && !local_member && !endpoints.is_empty();
        let listed = if guessed {
            let listening = members
                .iter()
                .filter(|m| m.name != me.name && endpoints.contains(&self.client_url(m)));
            Some(
                listening
                    .map(|m| Listed {
                        id: 0,
                        name: m.name.clone(),
                        peer_urls: vec![self.peer_url(m)],
                        client_urls: vec![self.client_url(m)],
                    })
                    .collect(),
            )
        } else if certs && !endpoints.is_empty() {
            let out = exec::run(cx, &self.ctl(cx.host, &endpoints, "member list -w json")).await?;
            let listed = if out.status == 0 {
                parse_member_list(&out.stdout)
            } else {
                None
            };
            if listed.is_none() && !local_member {
                // Members answer but cannot say who they are: deciding `new` here could start
                // a second cluster, so stop.
                return Err(ModuleError::Failed(format!(
                    "members answer on their client port ({}) but `etcdctl member list` failed: cannot tell whether `{}` must join the running cluster; {}",
                    endpoints.join(", "),
                    me.name,
                    exec::failure("etcdctl member list", &out)
                )));
            }
            listed
        } else {
            None
        };
        // Member data of a host that the running cluster no longer lists (it was removed):
        // etcd refuses to start on it, so it is set aside and the host joins again.
        let my_peer = self.peer_url(&me);
        let removed_data = local_member
            && listed.as_ref().is_some_and(|l| {
                !l.is_empty() && !l.iter().any(|m| m.peer_urls.contains(&my_peer))
            });
        let local_member = local_member && !removed_data;
        let decision = decide(&members, &me, local_member, listed.as_deref(), |m| {
            self.peer_url(m)
        });
        let removal = self
            .stale_removal(cx, &members, &decision.stale, listed.as_deref(), &mut notes)
            .await?;
        if certs {
            if let Some(problem) = self.certificate_problem(cx, &me).await? {
                notes.push(format!(
                    "{problem}: etcd will not be started with it; the certificates task must reissue it"
                ));
            }
        }
        let mut changes = Vec::new();
        if guessed {
            notes.push(format!(
                "`{}` is not installed yet: the member addition is planned from the members that answer ({}); apply checks `etcdctl member list` first and never adds a member twice",
                self.cert(cx.host),
                endpoints.join(", ")
            ));
        }
        let add = if decision.add {
            let through: Vec<String> = listed
                .iter()
                .flatten()
                .flat_map(|l| l.client_urls.iter().cloned())
                .collect();
            changes.push(Change::new(format!(
                "add etcd member `{}` (`{}`) to the cluster through `{}`",
                me.name,
                self.peer_url(&me),
                through.join("`, `")
            )));
            Some(through)
        } else {
            None
        };
        if let Some(r) = &removal {
            changes.push(Change::new(format!(
                "remove etcd member `{}` (`{:x}`) through `{}`",
                r.name,
                r.id,
                r.through.join("`, `")
            )));
        }
        let set_aside = removed_data.then(|| {
            let data = format!("{}/member", self.data_dir.trim_end_matches('/'));
            changes.push(Change::new(format!(
                "set `{data}` aside (`{data}.removed-TIME`): the running cluster no longer lists `{}` (it was removed) and etcd refuses to start on a removed member's data; it joins again",
                me.name
            )));
            format!(
                "systemctl stop {} && mv -- {} \"{}.removed-$(date +%Y%m%dT%H%M%S)\"",
                quote(&self.service),
                quote(&data),
                data
            )
        });
        let prepare = self.prepare(&provided, &mut changes);
        let content_text = self.render(&me, &decision.initial_cluster, decision.state);
        let file = self.decide_file(&config, content_text, &config_state, &mut changes)?;
        let unit = match installs {
            Install::Package => None,
            Install::Own => {
                let text = unit::render_unit(&self.executable, &config, &self.user);
                let work = self.decide_file(&unit_path, text, &unit_state, &mut changes)?;
                if matches!(work, Some(ContentWork::Write { .. })) {
                    changes.push(Change::new(
                        "reload systemd's units (`systemctl daemon-reload`)",
                    ));
                }
                work
            }
        };
        let locator_text = unit::render_locator(&config, &self.etcdctl);
        let locator = self.decide_file(LOCATOR, locator_text, &locator_state, &mut changes)?;
        let mut dirs: Vec<&str> = Vec::new();
        if file.is_some() {
            dirs.push(parent(&config));
        }
        if locator.is_some() {
            dirs.push(parent(LOCATOR));
        }
        let prepare = match (prepare, dirs.is_empty()) {
            (None, true) => None,
            (p, _) => {
                let mut cmds: Vec<String> = Vec::new();
                if !dirs.is_empty() {
                    cmds.push(format!(
                        "mkdir -p -- {}",
                        super::common::shell::quote_all(&dirs)
                    ));
                }
                cmds.extend(p);
                Some(cmds.join(" && "))
            }
        };
        let mut settle = None;
        if decision.join {
            changes.push(Change::new(format!(
                "start `{}` to join the existing cluster and wait until it is healthy",
                self.service
            )));
            // etcd reads ETCD_INITIAL_CLUSTER only at a member's first start; afterwards the
            // file lists the inventory's members, as every later run renders it.
            let inventory: Vec<(String, String)> = members
                .iter()
                .map(|m| (m.name.clone(), self.peer_url(m)))
                .collect();
            if decision.initial_cluster != inventory {
                changes.push(Change::new(format!(
                    "then list every inventory member in `ETCD_INITIAL_CLUSTER` of `{config}`"
                )));
                settle = Some(self.render(&me, &inventory, ClusterState::Existing));
            }
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged().with_notes(notes));
        }
        Ok(Plan::changes(
            changes,
            ConfigWork {
                config,
                prepare,
                unit,
                locator,
                add,
                file,
                join: decision.join,
                guessed,
                removal,
                set_aside,
                settle,
                missing,
            },
        )
        .with_notes(notes))
    }

    async fn apply_configured(
        &self,
        cx: &HostContext<'_>,
        w: &ConfigWork,
    ) -> Result<(), ModuleError> {
        let members = self.resolve(cx)?;
        let me = members.iter().find(|m| m.name == cx.host).ok_or_else(|| {
            ModuleError::Failed(format!("host `{}` is not in `members`", cx.host))
        })?;
        if w.guessed {
            // Never add a member on a guess: plan again, now that the certificates task of
            // this run may have installed the certificate, and apply that plan.
            let plan = self.plan_configured(cx).await?;
            return match plan.work::<ConfigWork>() {
                Some(work) if work.guessed => Err(ModuleError::Failed(format!(
                    "`{}` is missing: cannot ask the running cluster whether `{}` is a member (run the certificates task first)",
                    self.cert(cx.host),
                    cx.host
                ))),
                Some(work) => Box::pin(self.apply_configured(cx, work)).await,
                None => Ok(()),
            };
        }
        for m in &w.missing {
            m.check(cx).await?;
        }
        if let Some(r) = &w.removal {
            let args = format!("member remove {:x}", r.id);
            exec::check(
                cx,
                &self.ctl(cx.host, &r.through, &args),
                &format!("etcdctl {args}"),
            )
            .await?;
            self.wait_healthy(cx, &r.through).await?;
        }
        if let Some(cmd) = &w.set_aside {
            exec::check(cx, cmd, "set the removed member's data aside").await?;
        }
        if let Some(cmd) = &w.prepare {
            exec::check(cx, cmd, cmd).await?;
        }
        if let Some(unit) = &w.unit {
            content::apply(cx, unit).await?;
            if matches!(unit, ContentWork::Write { .. }) {
                let cmd = "systemctl daemon-reload";
                exec::check(cx, cmd, cmd).await?;
            }
        }
        if let Some(through) = &w.add {
            let args = format!(
                "member add {} --peer-urls={}",
                quote(&me.name),
                quote(&self.peer_url(me))
            );
            let cmd = self.ctl(cx.host, through, &args);
            // etcd refuses to add a voting member ("unhealthy cluster") unless every member
            // has been connected for the last 5 s: after a member restarted, wait it out.
            // Only the inventory's members are waited for (a stale member may be down).
            let inventory: Vec<String> = members.iter().map(|m| self.client_url(m)).collect();
            let healthy: Vec<String> = through
                .iter()
                .filter(|u| inventory.contains(u))
                .cloned()
                .collect();
            if !healthy.is_empty() {
                self.wait_healthy(cx, &healthy).await?;
            }
            let deadline = Instant::now() + Duration::from_secs(self.timeout);
            loop {
                let out = exec::run(cx, &cmd).await?;
                if out.status == 0 {
                    break;
                }
                let unhealthy = String::from_utf8_lossy(&out.stderr).contains("unhealthy cluster")
                    || String::from_utf8_lossy(&out.stdout).contains("unhealthy cluster");
                if !unhealthy || Instant::now() >= deadline {
                    return Err(exec::failure(&format!("etcdctl {args}"), &out));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if let Some(file) = &w.file {
            content::apply(cx, file).await?;
        }
        if let Some(locator) = &w.locator {
            content::apply(cx, locator).await?;
        }
        if w.join {
            self.start(cx, &w.config, "start", true).await?;
            self.wait_healthy(cx, &[self.client_url(me)]).await?;
            if let Some(text) = &w.settle {
                self.write_config(cx, &w.config, text).await?;
            }
        }
        Ok(())
    }

    /// Whether this host runs etcd with the package's unit or the module's, and the errors
    /// that stop the step before it writes anything: a binary missing, or member data that
    /// the package's own start left (see [`host::package_default_data`]).
    fn check_install(
        &self,
        cx: &HostContext<'_>,
        config: &str,
        provided: &host::Provided,
        unit_state: &stat::PathState,
        local_member: bool,
        config_state: &stat::PathState,
    ) -> Result<(Install, Vec<Required>), ModuleError> {
        let unit_path = unit::unit_path(&self.service);
        let ours = unit_state.link.is_none()
            && unit_state
                .content
                .as_deref()
                .is_some_and(|c| c.starts_with(unit::UNIT_HEADER.as_bytes()));
        let none_other = unit_state.kind == stat::Kind::Missing
            && provided.units.iter().all(|u| *u == unit_path);
        let install = if ours || none_other {
            Install::Own
        } else {
            Install::Package
        };
        let required = |path: &str, hint: String| Required {
            path: path.to_string(),
            error: format!("`{path}` is not an executable on `{}`: {hint}", cx.host),
        };
        let mut missing = Vec::new();
        if install == Install::Own && !provided.executable {
            missing.push(required(
                &self.executable,
                format!(
                    "no unit `{}` is installed either: install `etcd-server` or set `executable`",
                    unit::unit_name(&self.service)
                ),
            ));
        }
        if !provided.etcdctl {
            missing.push(required(
                &self.etcdctl,
                "install `etcd-client` or set `etcdctl`".into(),
            ));
        }
        if host::package_default_data(
            local_member,
            provided.stamped,
            config_state.content.as_deref(),
        ) {
            let member = format!("{}/member", self.data_dir.trim_end_matches('/'));
            return Err(ModuleError::Failed(format!(
                "`{member}` on `{}` was not made by pgdeploy: etcd was started with the package's defaults (`{config}` has no `ETCD_INITIAL_CLUSTER` and pgdeploy never started etcd here, no `{STAMP}`), which makes a lone single-member cluster, not a member of this one; pgdeploy never deletes data: if the host holds nothing of value, run `systemctl stop {} && rm -rf {}` on it and apply again, and install etcd with `packages: {{start_services: false}}`",
                cx.host,
                quote(&self.service),
                quote(&member)
            )));
        }
        Ok((install, missing))
    }

    /// The system user and the data directory, when missing: their changes, and the command
    /// creating them.
    fn prepare(&self, provided: &host::Provided, changes: &mut Vec<Change>) -> Option<String> {
        let mut cmds = Vec::new();
        if !provided.user {
            changes.push(Change::new(format!(
                "create the system user `{}` (group `{}`, no login)",
                self.user, self.user
            )));
            cmds.push(unit::user_script(&self.user, &self.data_dir));
        }
        if !provided.data_dir {
            changes.push(Change::new(format!(
                "create `{}` (owner `{}`, mode `0700`)",
                self.data_dir, self.user
            )));
            cmds.push(unit::data_dir_script(&self.user, &self.data_dir));
        }
        (!cmds.is_empty()).then(|| cmds.join(" && "))
    }

    /// A root-owned 0644 file with `text`: its changes (with the diff) and work.
    fn decide_file(
        &self,
        dest: &str,
        text: String,
        state: &stat::PathState,
        changes: &mut Vec<Change>,
    ) -> Result<Option<ContentWork>, ModuleError> {
        let desired = Desired {
            dest,
            content: text.into_bytes(),
            wanted: self.file_attrs(),
            validate: None,
        };
        Ok(content::decide(&desired, state)?.map(|(c, work)| {
            changes.extend(c);
            work
        }))
    }

    /// What the `started` step reads: unit state, fingerprints, whether the file says `new`.
    fn started_probe(&self, host: &str, config: &str) -> String {
        let unit = quote(&self.service);
        format!(
            "echo \"active=$(systemctl is-active {unit})\"; echo \"enabled=$(systemctl is-enabled {unit} 2>/dev/null)\"; \
             echo \"fingerprint=$({})\"; echo \"stamp=$(cat {STAMP} 2>/dev/null)\"; \
             if grep -qx {} {} 2>/dev/null; then echo fresh=yes; fi",
            self.fingerprint_script(host, config),
            quote(FLIP_FROM),
            quote(config)
        )
    }

    /// Why this host's installed certificate cannot serve etcd: it does not cover the address
    /// etcd advertises for the host (peers and clients would refuse it), or it is not a
    /// certificate. `None` when it is fine or not installed.
    async fn certificate_problem(
        &self,
        cx: &HostContext<'_>,
        me: &Member,
    ) -> Result<Option<String>, ModuleError> {
        let cert = self.cert(cx.host);
        let Some(pem) = stat::probe(cx, &cert, true).await?.content else {
            return Ok(None);
        };
        let info = match pki::inspect(&pem) {
            Ok(info) => info,
            Err(e) => return Ok(Some(format!("`{cert}` is not a certificate ({e})"))),
        };
        if covers(&info.sans, &me.address) {
            return Ok(None);
        }
        Ok(Some(format!(
            "`{cert}` does not cover `{}`, the address etcd advertises for `{}` (its SANs: {})",
            me.address,
            me.name,
            info.sans.iter().cloned().collect::<Vec<_>>().join(", ")
        )))
    }

    async fn plan_started(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let unit = quote(&self.service);
        let config = self.config_path(cx.facts, cx.host)?;
        let probe = self.started_probe(cx.host, &config);
        let out = exec::check(cx, &probe, &format!("systemctl show {unit}")).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let running = matches!(
            get("active").as_str(),
            "active" | "activating" | "reloading"
        );
        let enabled = matches!(get("enabled").as_str(), "enabled" | "static" | "alias");
        let changed_since = get("fingerprint") != get("stamp");
        let fresh = get("fresh") == "yes";
        let name = &self.service;
        let mut changes = Vec::new();
        if !enabled {
            changes.push(Change::new(format!("enable `{name}`")));
        }
        let verb = if !running {
            changes.push(Change::new(format!("start `{name}`")));
            Some("start")
        } else if changed_since {
            changes.push(Change::new(format!(
                "restart `{name}`: `{config}` or its certificates changed since it started"
            )));
            Some("restart")
        } else {
            None
        };
        if fresh {
            changes.push(
                Change::new(format!(
                    "set `ETCD_INITIAL_CLUSTER_STATE` to `existing` in `{config}` once the cluster is healthy"
                ))
                .with_diff(Diff {
                    path: config.clone(),
                    before: Some(format!("{FLIP_FROM}\n")),
                    after: Some(format!("{FLIP_TO}\n")),
                }),
            );
        }
        let work = StartWork {
            config,
            enable: !enabled,
            verb,
            flip: fresh,
        };
        // Even with nothing to change, apply waits until every member is healthy.
        Ok(if changes.is_empty() {
            Plan::run_unchanged(work)
        } else {
            Plan::changes(changes, work)
        })
    }

    async fn apply_started(&self, cx: &HostContext<'_>, w: &StartWork) -> Result<(), ModuleError> {
        let members = self.resolve(cx)?;
        let endpoints: Vec<String> = members.iter().map(|m| self.client_url(m)).collect();
        if w.verb == Some("restart") {
            // A rolling restart: one member at a time, each once the other members are
            // healthy, so that the cluster keeps its quorum (this member may be the unhealthy
            // one that the restart repairs).
            let _one_at_a_time = RESTART_LOCK.lock().await;
            let others: Vec<String> = members
                .iter()
                .filter(|m| m.name != cx.host)
                .map(|m| self.client_url(m))
                .collect();
            if !others.is_empty() {
                self.wait_healthy(cx, &others).await?;
            }
            self.start(cx, &w.config, "restart", w.enable).await?;
            self.wait_healthy(cx, &endpoints).await?;
        } else if let Some(verb) = w.verb {
            self.start(cx, &w.config, verb, w.enable).await?;
        } else if w.enable {
            let cmd = format!("systemctl enable {}", quote(&self.service));
            exec::check(cx, &cmd, &cmd).await?;
        }
        self.wait_healthy(cx, &endpoints).await?;
        if w.flip {
            let current = cx
                .transport
                .read_file(&w.config, &cx.become_)
                .await?
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&current);
            let flipped: String = text
                .lines()
                .map(|l| if l == FLIP_FROM { FLIP_TO } else { l })
                .flat_map(|l| [l, "\n"])
                .collect();
            self.write_config(cx, &w.config, &flipped).await?;
        }
        Ok(())
    }
}

/// Whether a certificate with `sans` is valid for `address`: the same IP address, or a DNS
/// name equal to it (case aside) or matched by a `*.` wildcard for one label, as TLS clients
/// check it.
pub fn covers(sans: &std::collections::BTreeSet<String>, address: &str) -> bool {
    if let Ok(ip) = address.parse::<std::net::IpAddr>() {
        return sans.iter().any(|s| s.parse::<std::net::IpAddr>() == Ok(ip));
    }
    let address = address.trim_end_matches('.').to_ascii_lowercase();
    sans.iter().any(|s| {
        let s = s.trim_end_matches('.').to_ascii_lowercase();
        match s.strip_prefix("*.") {
            Some(suffix) => address
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => s == address,
        }
    })
}

/// What the `configured` step decides from the host and the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub state: ClusterState,
    /// `ETCD_INITIAL_CLUSTER` as `(name, peer URL)`.
    pub initial_cluster: Vec<(String, String)>,
    /// Run `member add` for this host.
    pub add: bool,
    /// This host joins a running cluster: start it in the `configured` step, alone.
    pub join: bool,
    /// Members of the cluster that the inventory does not list.
    pub stale: Vec<Listed>,
}

/// `new` only when this host has no member data and no member answers; a host that is not a
/// member yet and finds a cluster joins it (added unless it already is, by peer URL).
pub fn decide(
    members: &[Member],
    me: &Member,
    local_member: bool,
    listed: Option<&[Listed]>,
    peer_url: impl Fn(&Member) -> String,
) -> Decision {
    let inventory_cluster: Vec<(String, String)> = members
        .iter()
        .map(|m| (m.name.clone(), peer_url(m)))
        .collect();
    let my_peer = peer_url(me);
    let stale: Vec<Listed> = listed
        .unwrap_or_default()
        .iter()
        .filter(|l| {
            !l.peer_urls
                .iter()
                .any(|u| inventory_cluster.iter().any(|(_, p)| p == u))
        })
        .cloned()
        .collect();
    let Some(listed) = listed.filter(|_| !local_member) else {
        let state = if local_member || listed.is_some() {
            ClusterState::Existing
        } else {
            ClusterState::New
        };
        return Decision {
            state,
            initial_cluster: inventory_cluster,
            add: false,
            join: false,
            stale,
        };
    };
    // Joining: ETCD_INITIAL_CLUSTER must list exactly the cluster's members after the add.
    let already = listed.iter().any(|l| l.peer_urls.contains(&my_peer));
    let mut cluster: Vec<(String, String)> = listed
        .iter()
        .filter_map(|l| {
            let url = l.peer_urls.first()?.clone();
            let name = if l.peer_urls.contains(&my_peer) {
                me.name.clone()
            } else if !l.name.is_empty() {
                l.name.clone()
            } else {
                inventory_cluster
                    .iter()
                    .find(|(_, u)| *u == url)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default()
            };
            Some((name, url))
        })
        .collect();
    if !already {
        cluster.push((me.name.clone(), my_peer));
    }
    // In inventory order (`member list` sorts by ID), so that the next run writes the same.
    cluster.sort_by_key(|(_, url)| {
        inventory_cluster
            .iter()
            .position(|(_, u)| u == url)
            .unwrap_or(usize::MAX)
    });
    Decision {
        state: ClusterState::Existing,
        initial_cluster: cluster,
        add: !already,
        join: true,
        stale,
    }
}

#[async_trait::async_trait]
impl Action for Etcd {
    fn probes(&self, cx: &ProbeContext<'_>) -> Vec<Probe> {
        match self.state {
            // `configured` first asks which members answer (not a probe: it changes on its
            // own), which drops kept answers anyway.
            EtcdState::Configured => Vec::new(),
            EtcdState::Started => match self.config_path(cx.facts, cx.host) {
                Ok(config) => vec![Probe::command(self.started_probe(cx.host, &config))],
                // `plan` says why.
                Err(_) => Vec::new(),
            },
        }
    }

    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        match self.state {
            EtcdState::Configured => self.plan_configured(cx).await,
            EtcdState::Started => self.plan_started(cx).await,
        }
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        if let Some(w) = plan.work::<ConfigWork>() {
            self.apply_configured(cx, w).await?;
        }
        if let Some(w) = plan.work::<StartWork>() {
            self.apply_started(cx, w).await?;
        }
        Ok(())
    }
}

impl Params for Etcd {
    const NAME: &'static str = "etcd";
    const SUMMARY: &'static str =
        "an etcd cluster with mutual TLS: new/existing computed, members joined one at a time";

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = super::common::hosts::check_hosts_named(cx, "members", &self.members);
        if self.members.is_empty() {
            problems.push(Problem::field("members", "at least one member is needed"));
        }
        let n = self.members.len();
        if n % 2 == 0 && n > 0 && self.state == EtcdState::Configured {
            problems.push(Problem::field_warning(
                "members",
                format!(
                    "etcd has {n} members: quorum is {}, so it tolerates {} failure(s), no more than {} members would; an odd count is better",
                    n / 2 + 1,
                    (n - 1) / 2,
                    n - 1
                ),
            ));
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members[..i].contains(m) {
                problems.push(Problem::field(
                    "members",
                    format!("member `{m}` is listed twice: etcd member names must be unique"),
                ));
            }
            if m.is_empty() || m.contains(['=', ',', ' ']) {
                problems.push(Problem::field(
                    "members",
                    format!("`{m}` cannot be an etcd member name"),
                ));
            }
        }
        if self.client_port == self.peer_port {
            problems.push(Problem::field(
                "peer_port",
                format!(
                    "`peer_port` and `client_port` are both `{}`",
                    self.peer_port
                ),
            ));
        }
        for (field, path) in [
            ("data_dir", Some(&self.data_dir)),
            ("config", self.config.as_ref()),
            ("pki_dir", Some(&self.pki_dir)),
            ("executable", Some(&self.executable)),
            ("etcdctl", Some(&self.etcdctl)),
        ] {
            if let Some(path) = path {
                problems.extend(super::check_absolute(field, path));
            }
        }
        let user_ok = self
            .user
            .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && self
                .user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
            && self.user.len() <= 32;
        if !user_ok {
            problems.push(Problem::field(
                "user",
                format!("`{}` is not a system user name", self.user),
            ));
        }
        if self.cluster_token.is_empty() || self.cluster_token.contains(['"', '\n']) {
            problems.push(Problem::field(
                "cluster_token",
                format!("`{}` is not a usable cluster token", self.cluster_token),
            ));
        }
        problems
    }

    /// `configured`: the first host, then the others one at a time (a joining host is added,
    /// started and healthy before the next is looked at). `started`: every host configured
    /// before any starts.
    fn ordering(cx: &OrderingContext<'_>) -> HostOrdering {
        let state = cx.params.get("state").and_then(|n| n.as_str());
        match (state, cx.hosts.first()) {
            (Some("configured"), Some(first)) => HostOrdering::FirstThenRolling {
                first: first.name.clone(),
                then_at_most: 1,
            },
            (Some("configured"), None) => HostOrdering::Independent,
            _ => HostOrdering::BarrierBefore,
        }
    }
}

#[cfg(test)]
mod tests;
