//! The cluster as the inventory and `etcdctl member list` see it, and the pure decisions
//! taken from it: `new` or `existing`, whether to add this host, whether a certificate covers
//! an address.

use serde::Deserialize;

/// `new` on a fresh cluster, `existing` once a member exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    New,
    Existing,
}

impl ClusterState {
    pub(super) fn as_str(self) -> &'static str {
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
pub(super) struct MemberList {
    #[serde(default)]
    members: Vec<Listed>,
}

/// Reads `etcdctl member list -w json`.
pub fn parse_member_list(json: &[u8]) -> Option<Vec<Listed>> {
    serde_json::from_slice::<MemberList>(json)
        .ok()
        .map(|l| l.members)
}

pub(super) fn url(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("https://[{address}]:{port}")
    } else {
        format!("https://{address}:{port}")
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
