//! The parameters of `etcd`, their defaults and their checks at load.

use serde::Deserialize;

use pgdeploy_core::module::{HostOrdering, OrderingContext, Params, ParseContext, Problem};

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

pub(super) fn default_token() -> String {
    "pgdeploy-etcd".into()
}
pub(super) fn default_data_dir() -> String {
    "/var/lib/etcd/default".into()
}
pub(super) fn default_executable() -> String {
    "/usr/bin/etcd".into()
}
pub(super) fn default_etcdctl() -> String {
    "/usr/bin/etcdctl".into()
}
pub(super) fn default_user() -> String {
    "etcd".into()
}
pub(super) fn default_pki_dir() -> String {
    "/etc/etcd/pki".into()
}
pub(super) fn default_client_port() -> u16 {
    2379
}
pub(super) fn default_peer_port() -> u16 {
    2380
}
pub(super) fn default_service() -> String {
    "etcd".into()
}
pub(super) fn default_timeout() -> u64 {
    120
}

impl Params for Etcd {
    const NAME: &'static str = "etcd";
    const SUMMARY: &'static str =
        "an etcd cluster with mutual TLS: new/existing computed, members joined one at a time";

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems =
            super::super::common::hosts::check_hosts_named(cx, "members", &self.members);
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
                problems.extend(super::super::check_absolute(field, path));
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
