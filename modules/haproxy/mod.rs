//! `haproxy`: `/etc/haproxy/haproxy.cfg` routing PostgreSQL clients to the Patroni primary
//! (writer frontend) and to the replicas (reader frontend), checked on Patroni's REST API;
//! validated with `haproxy -c` before it replaces the running file, applied by a reload.

use std::fmt::Write as _;

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::hosts;
use super::service::Service;

const CONFIG: &str = "/etc/haproxy/haproxy.cfg";

fn d_writer() -> u16 {
    5432
}
fn d_reader() -> Option<u16> {
    Some(5433)
}
fn d_rest() -> u16 {
    8008
}
fn d_bind() -> String {
    "*".into()
}
fn d_maxconn() -> u32 {
    1000
}
fn d_config() -> String {
    CONFIG.into()
}

/// TLS of the Patroni REST API, for the health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestApiTls {
    /// The CA that signed the REST API's certificates; checks verify against it.
    pub ca_file: String,
    /// A PEM file with a client certificate and its key, when the REST API asks for one.
    pub crt: Option<String>,
}

/// Timeouts, in HAProxy's syntax (`5s`, `30m`, `500ms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Timeouts {
    pub connect: String,
    pub client: String,
    pub server: String,
    pub check: String,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: "5s".into(),
            client: "30m".into(),
            server: "30m".into(),
            check: "5s".into(),
        }
    }
}

/// Health check rhythm of every server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Checks {
    pub interval: String,
    pub fall: u32,
    pub rise: u32,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            interval: "3s".into(),
            fall: 3,
            rise: 2,
        }
    }
}

/// The statistics page (`listen stats`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Stats {
    #[serde(default = "d_bind")]
    pub bind: String,
    pub port: u16,
    #[serde(default = "d_stats_uri")]
    pub uri: String,
}

fn d_stats_uri() -> String {
    "/".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Haproxy {
    /// The inventory group of the PostgreSQL (Patroni) hosts: one server each.
    pub group: String,
    /// Address the frontends listen on (`*`: every address, so also the VIP).
    #[serde(default = "d_bind")]
    pub bind: String,
    #[serde(default = "d_writer")]
    pub writer_port: u16,
    /// `null` for no reader frontend.
    #[serde(default = "d_reader")]
    pub reader_port: Option<u16>,
    /// PostgreSQL's port on the servers.
    #[serde(default = "d_writer")]
    pub postgres_port: u16,
    /// Patroni's REST API port on the servers, where the checks go.
    #[serde(default = "d_rest")]
    pub rest_api_port: u16,
    /// Set when the REST API serves TLS: checks use `check-ssl` and verify with `ca_file`.
    pub rest_api_tls: Option<RestApiTls>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub checks: Checks,
    #[serde(default = "d_maxconn")]
    pub maxconn: u32,
    /// The statistics page; none by default.
    pub stats: Option<Stats>,
    /// Path of an admin socket (`stats socket … level admin`); none by default.
    pub stats_socket: Option<String>,
    /// Lines added as they are to `global` (checked by `haproxy -c` only).
    #[serde(default)]
    pub global_extra: Vec<String>,
    /// Lines added as they are to `defaults` (checked by `haproxy -c` only).
    #[serde(default)]
    pub defaults_extra: Vec<String>,
    #[serde(default = "d_config")]
    pub config: String,
}

/// One backend server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub name: String,
    pub address: String,
}

/// Whether `t` is an HAProxy time (`10`, `500ms`, `5s`, `30m`, `1h`, `1d`).
fn is_time(t: &str) -> bool {
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["", "us", "ms", "s", "m", "h", "d"].contains(&unit)
}

impl Haproxy {
    /// The servers: the group's hosts with the address others reach them at.
    fn servers(&self, cx: &HostContext<'_>) -> Result<Vec<Server>, ModuleError> {
        hosts::group_members(cx, &self.group)?
            .into_iter()
            .map(|h| {
                if h.name.is_empty()
                    || !h
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
                {
                    return Err(ModuleError::Failed(format!(
                        "host `{}` of group `{}` has a name HAProxy cannot use as a server name",
                        h.name, self.group
                    )));
                }
                Ok(Server {
                    name: h.name.clone(),
                    address: hosts::address_of(cx, h),
                })
            })
            .collect()
    }

    /// The configuration file for these servers.
    pub(crate) fn render(&self, servers: &[Server]) -> String {
        let mut o = String::new();
        let t = &self.timeouts;
        let _ = writeln!(
            o,
            "# Managed by pgdeploy (`haproxy` module): changes made here are overwritten\n"
        );
        o.push_str("global\n");
        o.push_str("    log /dev/log local0\n");
        o.push_str("    log /dev/log local1 notice\n");
        o.push_str("    chroot /var/lib/haproxy\n");
        o.push_str("    user haproxy\n");
        o.push_str("    group haproxy\n");
        o.push_str("    daemon\n");
        let _ = writeln!(o, "    maxconn {}", self.maxconn);
        if let Some(sock) = &self.stats_socket {
            let _ = writeln!(o, "    stats socket {sock} mode 660 level admin");
        }
        for l in &self.global_extra {
            let _ = writeln!(o, "    {l}");
        }
        o.push_str("\ndefaults\n");
        o.push_str("    log global\n");
        o.push_str("    mode tcp\n");
        o.push_str("    option tcplog\n");
        o.push_str("    option dontlognull\n");
        o.push_str("    retries 2\n");
        for l in &self.defaults_extra {
            let _ = writeln!(o, "    {l}");
        }
        if let Some(s) = &self.stats {
            o.push_str("\nlisten stats\n");
            o.push_str("    mode http\n");
            let _ = writeln!(o, "    bind {}:{}", s.bind, s.port);
            o.push_str("    stats enable\n");
            let _ = writeln!(o, "    stats uri {}", s.uri);
            o.push_str("    stats refresh 10s\n");
            o.push_str("    timeout client 30s\n");
            let _ = writeln!(o, "    timeout connect {}", t.connect);
            o.push_str("    timeout server 30s\n");
        }
        let mut sides = vec![("postgres_writer", self.writer_port, "/primary", true)];
        if let Some(port) = self.reader_port {
            sides.push(("postgres_readers", port, "/replica", false));
        }
        for (name, port, endpoint, writer) in sides {
            let _ = writeln!(o, "\nfrontend {name}");
            let _ = writeln!(o, "    bind {}:{port}", self.bind);
            let _ = writeln!(o, "    timeout client {}", t.client);
            let _ = writeln!(o, "    default_backend {name}");
            let _ = writeln!(o, "\nbackend {name}");
            if !writer {
                o.push_str("    balance roundrobin\n");
            }
            let _ = writeln!(o, "    option httpchk GET {endpoint}");
            o.push_str("    http-check expect status 200\n");
            let _ = writeln!(o, "    timeout connect {}", t.connect);
            let _ = writeln!(o, "    timeout server {}", t.server);
            let _ = writeln!(o, "    timeout check {}", t.check);
            let c = &self.checks;
            let _ = write!(
                o,
                "    default-server inter {} fall {} rise {} on-marked-down shutdown-sessions",
                c.interval, c.fall, c.rise
            );
            if let Some(tls) = &self.rest_api_tls {
                let _ = write!(o, " check-ssl verify required ca-file {}", tls.ca_file);
                if let Some(crt) = &tls.crt {
                    let _ = write!(o, " crt {crt}");
                }
            }
            o.push('\n');
            for s in servers {
                let _ = writeln!(
                    o,
                    "    server {} {}:{} port {} check",
                    s.name, s.address, self.postgres_port, self.rest_api_port
                );
            }
        }
        o
    }
}

/// What `apply` does, decided by `plan`.
struct HaproxyWork {
    config: Option<ContentWork>,
    service: Option<(Service, Plan)>,
}

#[async_trait::async_trait]
impl Action for Haproxy {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let servers = self.servers(cx)?;
        let desired = Desired {
            dest: &self.config,
            content: self.render(&servers).into_bytes(),
            wanted: Wanted {
                owner: Some("root"),
                group: Some("root"),
                mode: Some(Mode(0o644)),
            },
            validate: Some("haproxy -c -q -f %s"),
        };
        let file = content::plan(cx, &desired).await?;
        let config_changed = file.is_changed();
        let mut changes = file.changes.clone();
        // A new configuration is applied by a reload (a stopped HAProxy is started instead),
        // never a restart: established sessions survive.
        let service =
            Service::plan_reload_on_change(cx, "haproxy", config_changed, &mut changes).await?;
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        let work = HaproxyWork {
            config: file.work::<ContentWork>().cloned(),
            service,
        };
        Ok(Plan::changes(changes, work))
    }

    /// The file first (validated; an invalid one stops here and the running HAProxy keeps
    /// its configuration), then enable/start/reload.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<HaproxyWork>() else {
            return Ok(());
        };
        if let Some(c) = &work.config {
            content::apply(cx, c).await?;
        }
        if let Some((service, p)) = &work.service {
            service.apply(cx, p).await?;
        }
        Ok(())
    }
}

impl Params for Haproxy {
    const NAME: &'static str = "haproxy";
    const SUMMARY: &'static str =
        "HAProxy routing to the Patroni primary and replicas, validated and reloaded";

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut p = super::check_absolute("config", &self.config);
        p.extend(super::common::hosts::check_group_named(
            cx,
            "group",
            &self.group,
        ));
        if self.group.trim().is_empty() {
            p.push(Problem::field(
                "group",
                "the group of the PostgreSQL hosts is empty",
            ));
        }
        let mut ports = vec![("writer_port", self.writer_port)];
        if let Some(r) = self.reader_port {
            ports.push(("reader_port", r));
        }
        if let Some(s) = &self.stats {
            ports.push(("stats", s.port));
        }
        for (i, (field, port)) in ports.iter().enumerate() {
            if *port == 0 {
                p.push(Problem::field(field, "port `0` is not a port"));
            } else if let Some((other, _)) = ports[..i].iter().find(|(_, q)| q == port) {
                p.push(Problem::field(
                    field,
                    format!("port `{port}` is already used by `{other}`"),
                ));
            }
        }
        for (field, port) in [
            ("postgres_port", self.postgres_port),
            ("rest_api_port", self.rest_api_port),
        ] {
            if port == 0 {
                p.push(Problem::field(field, "port `0` is not a port"));
            }
        }
        let t = &self.timeouts;
        for (name, v) in [
            ("connect", &t.connect),
            ("client", &t.client),
            ("server", &t.server),
            ("check", &t.check),
        ] {
            if !is_time(v) {
                p.push(Problem::field(
                    "timeouts",
                    format!("`{name}`: `{v}` is not a time such as `5s`, `500ms` or `30m`"),
                ));
            }
        }
        if !is_time(&self.checks.interval) {
            p.push(Problem::field(
                "checks",
                format!(
                    "`interval`: `{}` is not a time such as `3s` or `500ms`",
                    self.checks.interval
                ),
            ));
        }
        if self.checks.fall == 0 || self.checks.rise == 0 {
            p.push(Problem::field(
                "checks",
                "`fall` and `rise` must be at least 1",
            ));
        }
        if self.maxconn == 0 {
            p.push(Problem::field("maxconn", "must be at least 1"));
        }
        if let Some(tls) = &self.rest_api_tls {
            p.extend(super::check_absolute("rest_api_tls", &tls.ca_file));
            if let Some(crt) = &tls.crt {
                p.extend(super::check_absolute("rest_api_tls", crt));
            }
        }
        if let Some(s) = &self.stats_socket {
            p.extend(super::check_absolute("stats_socket", s));
        }
        for (field, lines) in [
            ("global_extra", &self.global_extra),
            ("defaults_extra", &self.defaults_extra),
        ] {
            if lines.iter().any(|l| l.contains(['\n', '\r'])) {
                p.push(Problem::field(field, "each entry must be one line"));
            }
        }
        for (field, v) in [("bind", &self.bind)]
            .into_iter()
            .chain(self.stats.as_ref().map(|s| ("stats", &s.bind)))
            .chain(self.stats.as_ref().map(|s| ("stats", &s.uri)))
        {
            if v.is_empty() || v.contains(char::is_whitespace) {
                p.push(Problem::field(field, format!("`{v}` must be one word")));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests;
