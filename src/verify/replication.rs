//! `replication`: every replica streams from the leader on its timeline, within the lag
//! limit (`--max-lag-mb`; over it a warning, as Patroni would not promote a replica further
//! behind than `maximum_lag_on_failover`), and in synchronous mode one member is the
//! synchronous standby.

use super::{state_or_fail, Finding, Gathered, Kind, Options, Outcome};

pub(crate) const KIND: Kind = Kind {
    name: "replication",
    about: "replicas stream within the lag limit; a sync standby in synchronous mode",
    probe: None,
    evaluate,
};

fn evaluate(g: &Gathered, o: &Options) -> Vec<Finding> {
    let s = match state_or_fail(g, KIND.name) {
        Ok(s) => s,
        Err(f) => return f,
    };
    let leader_tl = s.leader().and_then(|l| l.timeline);
    let mut out = Vec::new();
    for m in s.members.iter().filter(|m| !m.is_leader()) {
        let lag = m
            .lag_mb
            .map(|l| format!(", lag {l} MB"))
            .unwrap_or_default();
        let f = if !m.streams(s.old_patroni()) {
            Finding::new(
                KIND.name,
                Outcome::Fail,
                &m.name,
                format!("`{}`, not streaming{lag}", m.state),
            )
        } else if leader_tl.is_some() && m.timeline != leader_tl {
            Finding::new(
                KIND.name,
                Outcome::Fail,
                &m.name,
                format!(
                    "timeline {} while the leader's is {}",
                    m.timeline.map(|t| t.to_string()).unwrap_or("?".into()),
                    leader_tl.unwrap_or_default()
                ),
            )
        } else if m.lag_mb.is_some_and(|l| l > o.max_lag_mb) {
            Finding::new(
                KIND.name,
                Outcome::Warn,
                &m.name,
                format!("streaming{lag}: over the limit of {} MB", o.max_lag_mb),
            )
        } else {
            Finding::new(KIND.name, Outcome::Pass, &m.name, format!("streaming{lag}"))
        };
        out.push(f);
    }
    let scope = s.scope.as_deref().unwrap_or("cluster");
    if s.synchronous_mode {
        let sync: Vec<&str> = s
            .members
            .iter()
            .filter(|m| m.role == "Sync Standby")
            .map(|m| m.name.as_str())
            .collect();
        out.push(if sync.is_empty() {
            Finding::new(
                KIND.name,
                Outcome::Fail,
                scope,
                "synchronous mode without a synchronous standby: commits wait or are not synchronous"
                    .into(),
            )
        } else {
            Finding::new(
                KIND.name,
                Outcome::Pass,
                scope,
                format!("synchronous standby: `{}`", sync.join("`, `")),
            )
        });
    }
    out
}
