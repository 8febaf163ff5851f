//! `pgdeploy verify`: read-only health checks of a deployed cluster (seed 003 §12's list),
//! each a [`Kind`] of [`KINDS`], the one table of checks: members and one leader, replication
//! (lag, the synchronous standby), etcd health and quorum, the VIP (on one host, answering on
//! 5432), HAProxy's backends, certificates' expiry, `pg_hba` refusing plain connections, and the postgres_exporters
//! answering with `pg_up 1`.
//!
//! A kind says what to read on which hosts ([`Kind::probe`]: shell run on the members or the
//! balancers, every kind's probe of a host in one command) and how to judge what was read
//! ([`Kind::evaluate`]: pure, on [`Gathered`], so every check is unit-tested on text). The
//! probes only read: nothing on a host changes.

pub(crate) mod certificates;
pub(crate) mod drill;
pub(crate) mod etcd;
pub(crate) mod exporter;
pub(crate) mod haproxy;
pub(crate) mod members;
pub(crate) mod pg_hba;
pub(crate) mod replication;
pub(crate) mod report;
pub(crate) mod vip;

use std::collections::BTreeMap;

use serde::Serialize;

use pgdeploy_modules::patroni_state::ClusterState;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    Pass,
    /// Nothing to check (no host of the check's role: no balancers).
    Skip,
    /// Works now, needs attention soon (a certificate near its expiry, lag over the limit).
    Warn,
    Fail,
}

/// One verdict of one check, about one subject (a member, an endpoint, a file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Finding {
    pub check: &'static str,
    pub outcome: Outcome,
    /// What it is about (`pg2`, `lb1:/etc/haproxy/pki/ca.crt`, `cluster`).
    pub subject: String,
    pub message: String,
}

impl Finding {
    pub(crate) fn new(
        check: &'static str,
        outcome: Outcome,
        subject: &str,
        message: String,
    ) -> Self {
        Finding {
            check,
            outcome,
            subject: subject.to_string(),
            message,
        }
    }
}

/// Which hosts a probe runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The PostgreSQL/Patroni/etcd hosts (`--hosts`).
    Member,
    /// The HAProxy/keepalived hosts (`--balancers`).
    Balancer,
    /// Both.
    Any,
}

/// A host of the inventory, what it is and what its probes printed (by kind name).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct HostRead {
    pub name: String,
    /// `ansible_host`, when the inventory gives one (members are matched by it too).
    pub address: Option<String>,
    pub member: bool,
    pub balancer: bool,
    pub outputs: BTreeMap<String, String>,
}

impl HostRead {
    pub(crate) fn output(&self, kind: &str) -> Option<&str> {
        self.outputs.get(kind).map(String::as_str)
    }
}

/// Everything read from the cluster, for [`Kind::evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gathered {
    /// The cluster as Patroni sees it, read from the first member that could tell.
    pub state: Option<ClusterState>,
    /// Why no member could tell, when none could.
    pub state_error: Option<String>,
    /// Every host reached, in inventory order.
    pub hosts: Vec<HostRead>,
    /// Hosts that could not be reached, with the reason.
    pub unreachable: Vec<(String, String)>,
}

impl Gathered {
    pub(crate) fn members(&self) -> impl Iterator<Item = &HostRead> {
        self.hosts.iter().filter(|h| h.member)
    }
    pub(crate) fn balancers(&self) -> impl Iterator<Item = &HostRead> {
        self.hosts.iter().filter(|h| h.balancer)
    }
}

/// Thresholds of the checks (`verify`'s flags).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    /// A certificate expiring in fewer days is a warning.
    pub cert_warn_days: u64,
    /// A replica further behind (MB) is a warning.
    pub max_lag_mb: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cert_warn_days: 30,
            max_lag_mb: 16.0,
        }
    }
}

/// One kind of check: its name, what it reads and how it judges.
pub(crate) struct Kind {
    pub name: &'static str,
    /// What it checks, for `verify --help`.
    pub about: &'static str,
    /// Shell run on the hosts of `role` (read-only); `None`: judged on the cluster state.
    pub probe: Option<(Role, fn() -> String)>,
    pub evaluate: fn(&Gathered, &Options) -> Vec<Finding>,
}

/// The one table of checks, in the order they are shown.
pub(crate) const KINDS: &[Kind] = &[
    members::KIND,
    replication::KIND,
    etcd::KIND,
    vip::KIND,
    haproxy::KIND,
    certificates::KIND,
    pg_hba::KIND,
    exporter::KIND,
];

/// The checks, a line each, for `verify --help`.
pub(crate) fn kinds_help() -> String {
    let width = KINDS.iter().map(|k| k.name.len()).max().unwrap_or(0);
    let mut text = String::from("Checks:\n");
    for k in KINDS {
        text.push_str(&format!("  {:width$}  {}\n", k.name, k.about));
    }
    text
}

const MARK: &str = "==verify ";

/// The one command a host runs: every probe for its roles, each after a marker line.
pub(crate) fn script(member: bool, balancer: bool) -> String {
    let mut out = String::new();
    for k in KINDS {
        let Some((role, probe)) = k.probe else {
            continue;
        };
        let runs = match role {
            Role::Member => member,
            Role::Balancer => balancer,
            Role::Any => member || balancer,
        };
        if runs {
            out.push_str(&format!(
                "echo; echo '{MARK}{}'; ( {} ) 2>&1; ",
                k.name,
                probe()
            ));
        }
    }
    out.push_str("true");
    out
}

/// [`script`]'s output, by kind name.
pub(crate) fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix(MARK) {
            if let Some((n, t)) = current.take() {
                out.insert(n, t);
            }
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, t)) = current.as_mut() {
            t.push_str(line);
            t.push('\n');
        }
    }
    if let Some((n, t)) = current {
        out.insert(n, t);
    }
    out
}

/// Every kind's findings, in table order; a kind with nothing to say about a cluster it
/// could not read says so once.
pub(crate) fn evaluate(g: &Gathered, o: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, reason) in &g.unreachable {
        out.push(Finding::new(
            "reach",
            Outcome::Fail,
            name,
            format!("unreachable: {reason}"),
        ));
    }
    for k in KINDS {
        let found = (k.evaluate)(g, o);
        if found.is_empty() {
            out.push(Finding::new(
                k.name,
                Outcome::Skip,
                "-",
                "nothing to check here".into(),
            ));
        }
        out.extend(found);
    }
    out
}

/// The exit code of a verification: 0 when every check passed (or had nothing to check),
/// 2 when one failed or warned (a warning is for now still working, but CI should see it:
/// an expiring certificate is found before it breaks), 4 when no member could be reached
/// at all (nothing could be checked).
pub(crate) fn exit(g: &Gathered, findings: &[Finding]) -> pgdeploy_core::exit::Exit {
    use pgdeploy_core::exit::Exit;
    if g.members().next().is_none() && !g.unreachable.is_empty() {
        Exit::Unreachable
    } else if findings
        .iter()
        .any(|f| matches!(f.outcome, Outcome::Fail | Outcome::Warn))
    {
        Exit::Changes
    } else {
        Exit::Success
    }
}

/// The state of the cluster a check needs, or the finding that says it could not be read.
pub(crate) fn state_or_fail<'a>(
    g: &'a Gathered,
    check: &'static str,
) -> Result<&'a ClusterState, Vec<Finding>> {
    g.state.as_ref().ok_or_else(|| {
        vec![Finding::new(
            check,
            Outcome::Fail,
            "cluster",
            format!(
                "not checked: {}",
                g.state_error
                    .as_deref()
                    .unwrap_or("no member could read the cluster")
            ),
        )]
    })
}

/// The text after `name=` on a line of `text` (probes print `key=value` lines).
pub(crate) fn value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .map(str::trim)
}

#[cfg(test)]
pub(crate) mod tests;
