//! The decisions of the day-2 commands, from a [`ClusterState`] alone (no I/O): which member
//! may become the leader and why another may not, in what order members restart.

use super::state::{ClusterState, Member};

/// Why `name` cannot become the leader by a switchover; `None` when it can.
pub(crate) fn switchover_refusal(s: &ClusterState, name: &str) -> Option<String> {
    let Some(m) = s.member(name) else {
        return Some(not_a_member(s, name));
    };
    if m.is_leader() {
        return Some(format!("`{name}` is already the leader"));
    }
    let Some(leader) = s.healthy_leader() else {
        return Some(format!(
            "there is no healthy leader to hand over from ({}): use `pgdeploy failover --to {name}`",
            s.summary()
        ));
    };
    if m.nofailover {
        return Some(format!(
            "`{name}` has the `nofailover` tag: Patroni never promotes it"
        ));
    }
    if !m.streams(s.old_patroni()) {
        return Some(format!(
            "`{name}` is not a streaming replica: its state is `{}` (role {})",
            m.state, m.role
        ));
    }
    if let (Some(t), Some(lt)) = (m.timeline, leader.timeline) {
        if t != lt {
            return Some(format!(
                "`{name}` is on timeline {t}, the leader `{}` on {lt}",
                leader.name
            ));
        }
    }
    if let Some(problem) = lag_problem(s, m) {
        return Some(problem);
    }
    if s.synchronous_mode && !m.role.contains("Sync") && !m.role.contains("Quorum") {
        return Some(format!(
            "synchronous mode is on and `{name}` is not a synchronous standby (role {}): \
             Patroni promotes only a synchronous standby",
            m.role
        ));
    }
    None
}

fn lag_problem(s: &ClusterState, m: &Member) -> Option<String> {
    let max_mb = s.maximum_lag_on_failover as f64 / 1_048_576.0;
    match m.lag_mb {
        None => Some(format!(
            "`{}`'s replication lag is unknown (state `{}`)",
            m.name, m.state
        )),
        Some(l) if l > max_mb => Some(format!(
            "`{}` lags {l} MB behind the leader, more than `maximum_lag_on_failover` ({max_mb} MB)",
            m.name
        )),
        Some(_) => None,
    }
}

fn not_a_member(s: &ClusterState, name: &str) -> String {
    let names: Vec<&str> = s.members.iter().map(|m| m.name.as_str()).collect();
    format!(
        "`{name}` is not a member of cluster `{}` (members: {})",
        s.scope.as_deref().unwrap_or("?"),
        names.join(", ")
    )
}

/// The switchover's candidate: `to` if it qualifies, else the qualifying replica with the
/// least lag (a synchronous standby first in synchronous mode: the rules above ask it);
/// otherwise every member's reason.
pub(crate) fn switchover_candidate(s: &ClusterState, to: Option<&str>) -> Result<String, String> {
    if let Some(to) = to {
        return match switchover_refusal(s, to) {
            None => Ok(to.to_string()),
            Some(why) => Err(why),
        };
    }
    let mut fit: Vec<&Member> = s
        .members
        .iter()
        .filter(|m| switchover_refusal(s, &m.name).is_none())
        .collect();
    fit.sort_by(|a, b| {
        a.lag_mb
            .unwrap_or(f64::MAX)
            .total_cmp(&b.lag_mb.unwrap_or(f64::MAX))
    });
    match fit.first() {
        Some(m) => Ok(m.name.clone()),
        None => {
            let why: Vec<String> = s
                .members
                .iter()
                .filter(|m| !m.is_leader())
                .filter_map(|m| switchover_refusal(s, &m.name))
                .collect();
            if why.is_empty() {
                Err("the cluster has no replica to switch over to".into())
            } else {
                Err(format!("no replica can take over: {}", why.join("; ")))
            }
        }
    }
}

/// Why `name` cannot be failed over to; `None` when it can. `with_leader`: the user asked for
/// a failover although a healthy leader runs.
pub(crate) fn failover_refusal(s: &ClusterState, name: &str, with_leader: bool) -> Option<String> {
    let Some(m) = s.member(name) else {
        return Some(not_a_member(s, name));
    };
    if m.is_leader() {
        return Some(format!("`{name}` is already the leader"));
    }
    if let Some(leader) = s.healthy_leader() {
        if !with_leader {
            return Some(format!(
                "`{}` is a healthy leader: a failover is for a cluster without one. Use \
                 `pgdeploy switchover --to {name}` for a clean handover (the leader stops \
                 first, nothing is lost), or add `--with-leader` to fail over anyway",
                leader.name
            ));
        }
    }
    if m.nofailover {
        return Some(format!(
            "`{name}` has the `nofailover` tag: Patroni never promotes it"
        ));
    }
    if !m.postgres_up() {
        return Some(format!(
            "PostgreSQL does not run on `{name}`: its state is `{}`",
            m.state
        ));
    }
    None
}

/// Why `name` cannot be reinitialised; `None` when it can.
pub(crate) fn reinit_refusal(s: &ClusterState, name: &str) -> Option<String> {
    let Some(m) = s.member(name) else {
        return Some(not_a_member(s, name));
    };
    if m.is_leader() {
        return Some(format!(
            "`{name}` is the leader: reinitialising it would erase the cluster's data \
             (switch over first: `pgdeploy switchover`)"
        ));
    }
    if s.leader().is_none() {
        return Some(format!(
            "the cluster has no leader to copy `{name}` from ({})",
            s.summary()
        ));
    }
    None
}

/// The members to restart, replicas first (in the cluster's order), the leader last: those
/// named (every member when none is), with `pending` only those waiting for a restart.
pub(crate) fn restart_order(
    s: &ClusterState,
    named: &[String],
    pending: bool,
) -> Result<Vec<String>, String> {
    for n in named {
        if s.member(n).is_none() {
            return Err(not_a_member(s, n));
        }
    }
    let chosen = |m: &&Member| {
        (named.is_empty() || named.contains(&m.name)) && (!pending || m.pending_restart)
    };
    let mut order: Vec<&Member> = s.members.iter().filter(chosen).collect();
    // stable: replicas keep their order, leaders move to the end
    order.sort_by_key(|m| m.is_leader());
    Ok(order.into_iter().map(|m| m.name.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::super::state::fixture::state;
    use super::*;

    #[test]
    fn a_switchover_candidate_must_be_a_healthy_streaming_replica() {
        let mut s = state();
        s.paused = false;
        assert_eq!(switchover_refusal(&s, "pg2"), None);
        assert_eq!(
            switchover_refusal(&s, "pg3").unwrap(),
            "`pg3` has the `nofailover` tag: Patroni never promotes it"
        );
        assert_eq!(
            switchover_refusal(&s, "pg1").unwrap(),
            "`pg1` is already the leader"
        );
        assert_eq!(
            switchover_refusal(&s, "pg9").unwrap(),
            "`pg9` is not a member of cluster `pgcluster` (members: pg1, pg2, pg3)"
        );
        s.members[2].nofailover = false;
        assert!(switchover_refusal(&s, "pg3")
            .unwrap()
            .starts_with("synchronous mode is on and `pg3` is not a synchronous standby"));
        s.synchronous_mode = false;
        assert_eq!(switchover_refusal(&s, "pg3"), None);
        s.members[2].lag_mb = Some(5.0);
        assert_eq!(
            switchover_refusal(&s, "pg3").unwrap(),
            "`pg3` lags 5 MB behind the leader, more than `maximum_lag_on_failover` (1 MB)"
        );
        s.members[2].state = "starting".into();
        assert_eq!(
            switchover_refusal(&s, "pg3").unwrap(),
            "`pg3` is not a streaming replica: its state is `starting` (role Replica)"
        );
        s.members[2].state = "streaming".into();
        s.members[2].lag_mb = Some(0.0);
        s.members[2].timeline = Some(1);
        assert_eq!(
            switchover_refusal(&s, "pg3").unwrap(),
            "`pg3` is on timeline 1, the leader `pg1` on 2"
        );
        s.members[0].state = "stopped".into();
        assert!(switchover_refusal(&s, "pg2")
            .unwrap()
            .starts_with("there is no healthy leader to hand over from"));
    }

    #[test]
    fn without_to_the_best_replica_is_chosen() {
        let s = state();
        assert_eq!(switchover_candidate(&s, None).unwrap(), "pg2");
        let mut s = state();
        s.members[1].state = "stopped".into();
        assert_eq!(
            switchover_candidate(&s, None).unwrap_err(),
            "no replica can take over: `pg2` is not a streaming replica: its state is \
             `stopped` (role Sync Standby); `pg3` has the `nofailover` tag: Patroni never promotes it"
        );
        let mut s = state();
        s.synchronous_mode = false;
        s.members[2].nofailover = false;
        s.members[1].lag_mb = Some(0.5);
        assert_eq!(switchover_candidate(&s, None).unwrap(), "pg3", "least lag");
    }

    #[test]
    fn a_failover_with_a_healthy_leader_is_refused_unless_asked() {
        let s = state();
        assert!(failover_refusal(&s, "pg2", false)
            .unwrap()
            .starts_with("`pg1` is a healthy leader: a failover is for a cluster without one"));
        assert_eq!(failover_refusal(&s, "pg2", true), None);
        let mut s = state();
        s.members[0].state = "stopped".into();
        // without a leader, replicas stream from no one: `running` is enough
        s.members[1].state = "running".into();
        assert_eq!(failover_refusal(&s, "pg2", false), None);
        assert!(failover_refusal(&s, "pg3", false)
            .unwrap()
            .contains("nofailover"));
        s.members[1].state = "stopped".into();
        assert_eq!(
            failover_refusal(&s, "pg2", false).unwrap(),
            "PostgreSQL does not run on `pg2`: its state is `stopped`"
        );
    }

    #[test]
    fn the_leader_is_never_reinitialised() {
        let s = state();
        assert!(reinit_refusal(&s, "pg1")
            .unwrap()
            .starts_with("`pg1` is the leader"));
        assert_eq!(reinit_refusal(&s, "pg3"), None);
        assert!(reinit_refusal(&s, "x").unwrap().contains("not a member"));
    }

    #[test]
    fn restarts_go_replicas_first_leader_last() {
        let s = state();
        let all = restart_order(&s, &[], false).unwrap();
        assert_eq!(all, ["pg2", "pg3", "pg1"]);
        let pending = restart_order(&s, &[], true).unwrap();
        assert_eq!(pending, ["pg3", "pg1"]);
        let named = restart_order(&s, &["pg1".into(), "pg2".into()], false).unwrap();
        assert_eq!(named, ["pg2", "pg1"]);
        assert!(restart_order(&s, &["pg7".into()], false).is_err());
        assert!(restart_order(&s, &["pg2".into()], true).unwrap().is_empty());
    }
}
