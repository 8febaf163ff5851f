//! What leaving the cluster means for one host, decided from what was read (no I/O): the
//! changes to make, or the reason the removal is refused.

use crate::common::patroni_state::ClusterState;

/// This host's place in etcd, read through the members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EtcdView {
    /// This host's member ID, when it is still a member.
    pub my_id: Option<u64>,
    /// The cluster's members (this host included while it is one).
    pub members: usize,
    /// Client URLs of the other members that answer `endpoint health`.
    pub healthy_others: Vec<String>,
}

/// What the host runs and what the cluster says about it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    /// This host's member name (etcd and Patroni name it alike).
    pub name: String,
    pub patroni_active: bool,
    pub patroni_enabled: bool,
    pub etcd_active: bool,
    pub etcd_enabled: bool,
    /// Patroni's members, read through this host's `patronictl`; `None` without Patroni.
    pub patroni: Option<ClusterState>,
    /// `None` without etcd.
    pub etcd: Option<EtcdView>,
}

/// What leaving takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Leave {
    /// Stop and disable Patroni (its PostgreSQL stops with it), then wait until the member
    /// is gone from the DCS.
    pub patroni: bool,
    /// `member remove` of this ID through the healthy other members.
    pub etcd_remove: Option<u64>,
    /// Stop and disable etcd.
    pub etcd_stop: bool,
}

impl Leave {
    pub(crate) fn is_empty(&self) -> bool {
        !self.patroni && self.etcd_remove.is_none() && !self.etcd_stop
    }
}

/// Why removing etcd member `name` from a cluster of `members` is refused when `healthy` of the
/// members that stay answer: the removal is committed by a quorum of the cluster as it is now,
/// and the member removed may already be gone, so the healthy members that stay must be that
/// quorum on their own (a cluster of 2 never loses a member this way: 1 is no quorum of 2).
pub(crate) fn quorum_refusal(name: &str, members: usize, healthy: usize) -> Option<String> {
    let quorum = members / 2 + 1;
    (healthy < quorum).then(|| {
        format!(
            "removing etcd member `{name}` would leave {healthy} healthy member(s) of {members}: the removal needs a quorum of {quorum} healthy members that stay"
        )
    })
}

/// The removal this host's state calls for, or why it is refused. Checked in this order:
/// etcd's quorum (the members that stay must be a quorum of the cluster as it is now, counting
/// only the healthy ones: that quorum commits the removal, and this host may already be gone),
/// then Patroni: never the leader (a switchover first), never the last member, and never the
/// last replica when `synchronous_mode` needs one.
pub(crate) fn decide(f: &Found) -> Result<Leave, String> {
    let mut leave = Leave::default();
    if let Some(etcd) = &f.etcd {
        if let Some(id) = etcd.my_id {
            if let Some(refusal) = quorum_refusal(&f.name, etcd.members, etcd.healthy_others.len())
            {
                return Err(refusal);
            }
            leave.etcd_remove = Some(id);
        }
        leave.etcd_stop = f.etcd_active || f.etcd_enabled;
    }
    let listed = f.patroni.as_ref().and_then(|c| c.member(&f.name));
    if let (Some(cluster), Some(me)) = (&f.patroni, listed) {
        let scope = cluster.scope.as_deref().unwrap_or("the cluster");
        if me.is_leader() {
            let to = cluster
                .members
                .iter()
                .find(|m| !m.is_leader())
                .map_or("REPLICA".to_string(), |m| m.name.clone());
            return Err(format!(
                "`{}` is the leader of `{scope}`: switch over first (`pgdeploy switchover -i INVENTORY --to {to}`)",
                f.name
            ));
        }
        let others = cluster.members.iter().filter(|m| m.name != f.name).count();
        if others == 0 {
            return Err(format!("`{}` is the last member of `{scope}`", f.name));
        }
        let replicas_after = cluster
            .members
            .iter()
            .filter(|m| m.name != f.name && !m.is_leader())
            .count();
        if cluster.synchronous_mode && replicas_after == 0 {
            return Err(format!(
                "`{scope}` has `synchronous_mode` on: removing `{}` would leave no replica to be its synchronous standby",
                f.name
            ));
        }
    }
    leave.patroni = listed.is_some() || f.patroni_active || f.patroni_enabled;
    Ok(leave)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::patroni_state::Member;

    fn member(name: &str, role: &str) -> Member {
        Member {
            name: name.into(),
            host: name.into(),
            role: role.into(),
            state: if role == "Leader" {
                "running"
            } else {
                "streaming"
            }
            .into(),
            timeline: Some(1),
            lag_mb: Some(0.0),
            pending_restart: false,
            nofailover: false,
        }
    }

    fn cluster(members: Vec<Member>, sync: bool) -> ClusterState {
        ClusterState {
            read_from: "pg3".into(),
            scope: Some("pgcluster".into()),
            members,
            paused: false,
            synchronous_mode: sync,
            maximum_lag_on_failover: 1 << 20,
            patroni_version: Some("3.0.2".into()),
        }
    }

    fn found(name: &str, members: usize, healthy: usize, patroni: ClusterState) -> Found {
        Found {
            name: name.into(),
            patroni_active: true,
            patroni_enabled: true,
            etcd_active: true,
            etcd_enabled: true,
            patroni: Some(patroni),
            etcd: Some(EtcdView {
                my_id: Some(7),
                members,
                healthy_others: (0..healthy).map(|i| format!("https://h{i}:2379")).collect(),
            }),
        }
    }

    fn three() -> Vec<Member> {
        vec![
            member("pg1", "Leader"),
            member("pg2", "Replica"),
            member("pg3", "Replica"),
        ]
    }

    #[test]
    fn a_replica_of_three_leaves() {
        let leave = decide(&found("pg3", 3, 2, cluster(three(), false))).unwrap();
        assert_eq!(
            leave,
            Leave {
                patroni: true,
                etcd_remove: Some(7),
                etcd_stop: true
            }
        );
    }

    #[test]
    fn below_quorum_is_refused() {
        // Two members, one stays: one healthy member is no quorum of two.
        let two = vec![member("pg1", "Leader"), member("pg2", "Replica")];
        let err = decide(&found("pg2", 2, 1, cluster(two, false))).unwrap_err();
        assert_eq!(
            err,
            "removing etcd member `pg2` would leave 1 healthy member(s) of 2: the removal needs a quorum of 2 healthy members that stay"
        );
        // Three members, one of the two that stay is down.
        let err = decide(&found("pg3", 3, 1, cluster(three(), false))).unwrap_err();
        assert!(err.contains("1 healthy member(s) of 3"), "{err}");
    }

    #[test]
    fn the_leader_is_refused_with_the_switchover_to_run() {
        let err = decide(&found("pg1", 3, 2, cluster(three(), false))).unwrap_err();
        assert_eq!(
            err,
            "`pg1` is the leader of `pgcluster`: switch over first (`pgdeploy switchover -i INVENTORY --to pg2`)"
        );
    }

    #[test]
    fn synchronous_mode_keeps_one_replica() {
        let two = vec![member("pg1", "Leader"), member("pg2", "Sync Standby")];
        let mut f = found("pg2", 3, 2, cluster(two, true));
        let err = decide(&f).unwrap_err();
        assert!(err.contains("`synchronous_mode` on"), "{err}");
        f.patroni.as_mut().unwrap().synchronous_mode = false;
        assert!(decide(&f).is_ok());
    }

    #[test]
    fn a_host_that_left_has_nothing_to_do() {
        let two = vec![member("pg1", "Leader"), member("pg2", "Replica")];
        let f = Found {
            patroni_active: false,
            patroni_enabled: false,
            etcd_active: false,
            etcd_enabled: false,
            etcd: Some(EtcdView {
                my_id: None,
                members: 2,
                healthy_others: vec!["a".into(), "b".into()],
            }),
            ..found("pg3", 2, 2, cluster(two, false))
        };
        assert!(decide(&f).unwrap().is_empty());
    }
}
