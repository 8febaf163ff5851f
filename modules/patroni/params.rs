//! The `patroni` task's parameters, as written in a playbook, and their checks.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use super::install::Install;
use crate::common::hba;
use crate::common::secret::Secret;
use pgdeploy_core::module::Problem;
use pgdeploy_core::params::OneOrMany;

fn default_namespace() -> String {
    "/service/".into()
}
fn default_group() -> String {
    "postgres".into()
}
fn default_config_file() -> String {
    "/etc/patroni/config.yml".into()
}
fn one() -> usize {
    1
}
fn default_rest_port() -> u16 {
    8008
}
fn default_pg_port() -> u16 {
    5432
}
fn default_superuser() -> String {
    "postgres".into()
}
fn default_replication_user() -> String {
    "replicator".into()
}
fn default_wait() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Patroni {
    /// The cluster name (Patroni's `scope`), the same on every member.
    pub scope: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// This member's name; default: the inventory host name.
    pub name: Option<String>,
    /// The inventory group of the cluster's members. Its host marked `patroni_primary: true`,
    /// else its first host, is the intended primary: it bootstraps the cluster alone.
    #[serde(default = "default_group")]
    pub group: String,
    /// Replicas started at once after the primary answers.
    #[serde(default = "one")]
    pub replicas_at_once: usize,
    /// The address other members, HAProxy and clients use for this host; default: the
    /// host's `ansible_default_ipv4.address` fact.
    pub address: Option<String>,
    pub etcd: Etcd,
    #[serde(default)]
    pub restapi: RestApi,
    #[serde(default)]
    pub postgresql: Postgresql,
    pub authentication: Authentication,
    #[serde(default)]
    pub dcs: Dcs,
    #[serde(default)]
    pub tags: IndexMap<String, Value>,
    #[serde(default = "default_config_file")]
    pub config_file: String,
    /// Seconds to wait for the primary to lead, or a replica to stream.
    #[serde(default = "default_wait")]
    pub wait_timeout: u64,
    /// Restart members whose PostgreSQL waits for a restart (a changed setting such as
    /// `max_connections`): replicas first, the leader last, one at a time, through the REST
    /// API. Without it, a pending restart is only reported.
    #[serde(default)]
    pub allow_restart: bool,
    /// How Patroni gets onto the host (packages, a pip venv, or already there); the unit,
    /// the config's validation and `pgdeploy status` use the binaries it puts there.
    #[serde(default)]
    pub install: Install,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Etcd {
    /// `host:port` of the etcd members' client URLs.
    pub hosts: OneOrMany<String>,
    /// `https` when `cacert` is given, else `http`.
    pub protocol: Option<String>,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum VerifyClient {
    #[default]
    None,
    Optional,
    Required,
}

impl VerifyClient {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VerifyClient::None => "none",
            VerifyClient::Optional => "optional",
            VerifyClient::Required => "required",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestApi {
    #[serde(default = "default_rest_port")]
    pub port: u16,
    /// A certificate enables TLS on the REST API (HAProxy then checks with `check-ssl`).
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    /// CA that client certificates are verified against.
    pub cafile: Option<String>,
    #[serde(default)]
    pub verify_client: VerifyClient,
}

impl Default for RestApi {
    fn default() -> Self {
        RestApi {
            port: default_rest_port(),
            certfile: None,
            keyfile: None,
            cafile: None,
            verify_client: VerifyClient::None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Postgresql {
    /// The major version; default: the highest installed (`/usr/lib/postgresql/N` on
    /// Debian/Ubuntu, `/usr/pgsql-N` on EL).
    pub version: Option<u32>,
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// Default: `/var/lib/postgresql/VERSION/SCOPE` (EL: `/var/lib/pgsql/VERSION/SCOPE`).
    /// Patroni creates it at bootstrap; pgdeploy never writes into it.
    pub data_dir: Option<String>,
    /// Default: `/usr/lib/postgresql/VERSION/bin` (EL: `/usr/pgsql-VERSION/bin`).
    pub bin_dir: Option<String>,
    /// Settings of this member only (the cluster-wide ones go in `dcs.parameters`).
    #[serde(default)]
    pub parameters: IndexMap<String, Value>,
    /// How a new or re-initialised replica gets its data, in order of preference (Patroni's
    /// `create_replica_methods`; default: `basebackup` from the primary).
    #[serde(default)]
    pub create_replica_methods: Vec<String>,
    /// The `pgbackrest` replica method (Patroni's `postgresql.pgbackrest`: `command`,
    /// `keep_data`, `no_params`).
    pub pgbackrest: Option<IndexMap<String, Value>>,
}

impl Default for Postgresql {
    fn default() -> Self {
        Postgresql {
            version: None,
            port: default_pg_port(),
            data_dir: None,
            bin_dir: None,
            parameters: IndexMap::new(),
            create_replica_methods: Vec::new(),
            pgbackrest: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Authentication {
    pub superuser: Credentials,
    pub replication: Credentials,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    pub username: Option<String>,
    /// Recorded as a secret when read: masked in all output whatever variable it came from.
    pub password: Secret,
}

impl Authentication {
    pub(crate) fn superuser_name(&self) -> String {
        self.superuser
            .username
            .clone()
            .unwrap_or_else(default_superuser)
    }
    pub(crate) fn replication_name(&self) -> String {
        self.replication
            .username
            .clone()
            .unwrap_or_else(default_replication_user)
    }
}

/// The cluster-wide settings Patroni keeps in etcd: used at bootstrap, then converged with
/// `PATCH /config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dcs {
    #[serde(default = "ttl")]
    pub ttl: u64,
    #[serde(default = "ten")]
    pub loop_wait: u64,
    #[serde(default = "ten")]
    pub retry_timeout: u64,
    #[serde(default = "max_lag")]
    pub maximum_lag_on_failover: u64,
    #[serde(default)]
    pub synchronous_mode: bool,
    #[serde(default)]
    pub parameters: IndexMap<String, Value>,
    #[serde(default)]
    pub pg_hba: Vec<String>,
    /// Recovery settings (`restore_command`, …), Patroni's `postgresql.recovery_conf`.
    #[serde(default)]
    pub recovery_conf: IndexMap<String, Value>,
}

fn ttl() -> u64 {
    30
}
fn ten() -> u64 {
    10
}
fn max_lag() -> u64 {
    1024 * 1024
}

impl Default for Dcs {
    fn default() -> Self {
        Dcs {
            ttl: ttl(),
            loop_wait: ten(),
            retry_timeout: ten(),
            maximum_lag_on_failover: max_lag(),
            synchronous_mode: false,
            parameters: IndexMap::new(),
            pg_hba: Vec::new(),
            recovery_conf: IndexMap::new(),
        }
    }
}

/// Settings pgdeploy always sets, because failover depends on them: `pg_rewind` needs
/// `wal_log_hints`, and passwords are stored as SCRAM.
pub(super) const ENFORCED_PARAMETERS: &[(&str, &str)] = &[
    ("password_encryption", "scram-sha-256"),
    ("wal_log_hints", "on"),
];

impl Patroni {
    pub(crate) fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let d = &self.dcs;
        if d.ttl < 20 {
            problems.push(Problem::field(
                "dcs",
                format!("`ttl` is {}; Patroni needs at least 20", d.ttl),
            ));
        }
        if d.loop_wait == 0 {
            problems.push(Problem::field("dcs", "`loop_wait` must be at least 1"));
        }
        if d.retry_timeout < 3 {
            problems.push(Problem::field(
                "dcs",
                format!(
                    "`retry_timeout` is {}; Patroni needs at least 3",
                    d.retry_timeout
                ),
            ));
        }
        if d.loop_wait + 2 * d.retry_timeout > d.ttl {
            problems.push(Problem::field(
                "dcs",
                format!(
                    "`loop_wait` + 2 × `retry_timeout` ({} + 2 × {} = {}) must not exceed `ttl` ({}): \
                     the leader could lose its lock while it still retries",
                    d.loop_wait,
                    d.retry_timeout,
                    d.loop_wait + 2 * d.retry_timeout,
                    d.ttl
                ),
            ));
        }
        if d.maximum_lag_on_failover == 0 {
            problems.push(Problem::field(
                "dcs",
                "`maximum_lag_on_failover` of 0 bytes forbids every failover",
            ));
        }
        for (name, wanted) in ENFORCED_PARAMETERS {
            for (field, params) in [
                ("dcs", &d.parameters),
                ("postgresql", &self.postgresql.parameters),
            ] {
                if let Some(v) = params.get(*name) {
                    let given = match v {
                        Value::String(s) => s.clone(),
                        Value::Bool(true) => "on".into(),
                        Value::Bool(false) => "off".into(),
                        other => other.to_string(),
                    };
                    if given != *wanted {
                        problems.push(Problem::field(
                            field,
                            format!(
                                "`{name}` must be `{wanted}` (pgdeploy sets it), found `{given}`"
                            ),
                        ));
                    }
                }
            }
        }
        for line in &d.pg_hba {
            if let Some(p) = hba::weak_line(line) {
                problems.push(Problem::field("dcs", p));
            } else if hba::is_managed(line) {
                problems.push(Problem::field(
                    "dcs",
                    format!(
                        "`pg_hba` line `{line}` ends with `{}`, which marks the lines of `postgresql_pg_hba` tasks: remove the comment",
                        hba::MARK
                    ),
                ));
            }
        }
        for (field, password) in [
            ("authentication", &self.authentication.superuser.password),
            ("authentication", &self.authentication.replication.password),
        ] {
            if password.expose().is_empty() {
                problems.push(Problem::field(field, "a password is empty"));
            } else if password.expose().contains(['\n', '\r']) {
                // Patroni writes the passwords into its `.pgpass`, one line per entry.
                problems.push(Problem::field(
                    field,
                    "a password holds a line break: Patroni's `.pgpass` cannot hold one",
                ));
            }
        }
        if self.etcd.hosts.0.is_empty() {
            problems.push(Problem::field("etcd", "`hosts` lists no etcd member"));
        }
        let tls = [&self.etcd.cacert, &self.etcd.cert, &self.etcd.key];
        if self.etcd.cert.is_some() != self.etcd.key.is_some() {
            problems.push(Problem::field(
                "etcd",
                "give both `cert` and `key`, or neither",
            ));
        }
        if self.etcd.protocol.as_deref() == Some("http") && tls.iter().any(|t| t.is_some()) {
            problems.push(Problem::field(
                "etcd",
                "`protocol: http` with certificates: use `https`",
            ));
        }
        if let Some(p) = self.etcd.protocol.as_deref() {
            if p != "http" && p != "https" {
                problems.push(Problem::field(
                    "etcd",
                    format!("`protocol` is `http` or `https`, found `{p}`"),
                ));
            }
        }
        let r = &self.restapi;
        if r.certfile.is_none() && (r.keyfile.is_some() || r.cafile.is_some()) {
            problems.push(Problem::field(
                "restapi",
                "`keyfile`/`cafile` without `certfile`: TLS needs a certificate",
            ));
        }
        if r.verify_client != VerifyClient::None && r.cafile.is_none() {
            problems.push(Problem::field(
                "restapi",
                "`verify_client` needs `cafile` to verify client certificates against",
            ));
        }
        let methods = &self.postgresql.create_replica_methods;
        if methods.iter().any(|m| m == "pgbackrest") && self.postgresql.pgbackrest.is_none() {
            problems.push(Problem::field(
                "postgresql",
                "`create_replica_methods` names `pgbackrest` without a `pgbackrest` section (its `command`)",
            ));
        }
        problems.extend(self.install.check());
        if self.replicas_at_once == 0 {
            problems.push(Problem::field("replicas_at_once", "must be at least 1"));
        }
        for (field, path) in [
            ("config_file", Some(&self.config_file)),
            ("postgresql", self.postgresql.data_dir.as_ref()),
            ("postgresql", self.postgresql.bin_dir.as_ref()),
        ] {
            if let Some(p) = path {
                if !p.starts_with('/') {
                    problems.push(Problem::field(
                        field,
                        format!("`{p}` is not an absolute path"),
                    ));
                }
            }
        }
        problems
    }
}
