//! Which member `restore` restores on, decided before anything stops. With a running leader,
//! the leader. Without one (every Patroni stopped, the leader's host lost), a reachable
//! member that Patroni may let lead: the last leader when the DCS still names it or when its
//! PostgreSQL was last shut down as the primary (`pg_controldata`), else the first in
//! inventory order; the reason is given with the choice. The data comes from the repository,
//! so any member may be restored on; what would make the restore unsafe is a Patroni that
//! `restore` cannot stop (a member in the DCS, not stopped, on no reachable host): once the
//! cluster's keys are removed, it could take the cluster over before the restored member.

use super::state::ClusterState;

/// A reachable member, as its own configuration and data directory tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The inventory host.
    pub host: String,
    /// Patroni's `name` for it.
    pub member: String,
    /// The `nofailover` tag: Patroni never lets it lead.
    pub nofailover: bool,
    /// `pg_controldata`'s `Database cluster state` (`shut down`, `shut down in recovery`,
    /// `in production`, …), when it could be read.
    pub pg_state: Option<String>,
}

/// The member chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    pub host: String,
    pub member: String,
    /// Its PostgreSQL leads now (the WAL can be pushed and the target read through it).
    pub running_leader: bool,
    pub why: String,
}

/// The states `pg_controldata` gives a primary's data directory (shut down cleanly, or
/// stopped without a clean shutdown).
fn was_primary(c: &Candidate) -> bool {
    matches!(c.pg_state.as_deref(), Some("shut down" | "in production"))
}

/// Chooses among `candidates` (the reachable members, in inventory order); `host_of` maps a
/// DCS member name to its inventory host among them. `Err` says why no choice is safe.
pub(crate) fn choose(
    state: &ClusterState,
    candidates: &[Candidate],
    host_of: impl Fn(&str) -> Option<String>,
) -> Result<Choice, String> {
    let ours = |m: &str| {
        host_of(m)
            .or_else(|| {
                candidates
                    .iter()
                    .find(|c| c.member == m)
                    .map(|c| c.host.clone())
            })
            .filter(|h| candidates.iter().any(|c| c.host == *h))
    };
    let unstoppable: Vec<String> = state
        .members
        .iter()
        .filter(|m| m.state != "stopped" && ours(&m.name).is_none())
        .map(|m| format!("`{}` ({}, {})", m.name, m.host, m.state))
        .collect();
    if !unstoppable.is_empty() {
        return Err(format!(
            "{} in the DCS and not stopped, on no reachable host of `--hosts`: `restore` could not stop its Patroni, \
             which could take the cluster over once its keys are removed; stop it (or reach it) and run `restore` again",
            unstoppable.join(", ")
        ));
    }
    let by_host = |h: &str| candidates.iter().find(|c| c.host == h);
    if let Some(l) = state.healthy_leader() {
        let Some(c) = ours(&l.name).and_then(|h| by_host(&h)) else {
            return Err(format!(
                "the leader `{}` is not a connected host of `--hosts`",
                l.name
            ));
        };
        return Ok(Choice {
            host: c.host.clone(),
            member: l.name.clone(),
            running_leader: true,
            why: "the running leader".into(),
        });
    }
    let eligible: Vec<&Candidate> = candidates.iter().filter(|c| !c.nofailover).collect();
    let Some(first) = eligible.first() else {
        return Err(if candidates.is_empty() {
            "no member of `--hosts` could be reached".to_string()
        } else {
            "every reachable member has the `nofailover` tag: Patroni would let none of them lead the restored cluster"
                .to_string()
        });
    };
    let pick = |c: &Candidate, why: String| Choice {
        host: c.host.clone(),
        member: c.member.clone(),
        running_leader: false,
        why,
    };
    let mut lost = String::new();
    if let Some(l) = state.leader() {
        match ours(&l.name).and_then(|h| by_host(&h)) {
            Some(c) if !c.nofailover => {
                return Ok(pick(
                    c,
                    format!(
                        "no running leader; the DCS still names it leader (state `{}`)",
                        l.state
                    ),
                ))
            }
            Some(_) => lost = format!("; the last leader `{}` has `nofailover`", l.name),
            None => lost = format!("; the last leader `{}` is not reachable", l.name),
        }
    }
    let primaries: Vec<&&Candidate> = eligible.iter().filter(|c| was_primary(c)).collect();
    if let Some(c) = primaries.first() {
        let others = if primaries.len() > 1 {
            format!(
                " (so were {}: the first in inventory order)",
                primaries[1..]
                    .iter()
                    .map(|c| format!("`{}`", c.host))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        return Ok(pick(
            c,
            format!(
                "no running leader{lost}; its PostgreSQL was last a primary (`pg_controldata`: `{}`){others}",
                c.pg_state.as_deref().unwrap_or_default()
            ),
        ));
    }
    Ok(pick(
        first,
        format!(
            "no running leader{lost}; no member is known as the last one (none in the DCS, none shut down as a primary): \
             the first reachable member in inventory order"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::state::fixture::state;
    use super::*;

    fn candidates() -> Vec<Candidate> {
        ["pg1", "pg2", "pg3"]
            .iter()
            .map(|h| Candidate {
                host: h.to_string(),
                member: h.to_string(),
                nofailover: false,
                pg_state: Some("shut down in recovery".into()),
            })
            .collect()
    }

    fn host_of(m: &str) -> Option<String> {
        Some(m.to_string())
    }

    /// Every Patroni stopped: the members still in the DCS, stopped, no leader key.
    fn stopped() -> ClusterState {
        let mut s = state();
        for m in &mut s.members {
            m.state = "stopped".into();
            m.role = "Replica".into();
        }
        s
    }

    #[test]
    fn the_running_leader_when_there_is_one() {
        let c = choose(&state(), &candidates(), host_of).unwrap();
        assert_eq!((c.host.as_str(), c.running_leader), ("pg1", true));
        let e = choose(&state(), &candidates()[1..], |_| None).unwrap_err();
        assert!(
            e.contains("`pg1` (10.0.0.11, running) in the DCS and not stopped"),
            "{e}"
        );
    }

    #[test]
    fn without_a_leader_the_last_one_is_preferred() {
        // the DCS still names pg2 leader (Patroni killed, its key not expired yet)
        let mut s = stopped();
        s.members[1].role = "Leader".into();
        let c = choose(&s, &candidates(), host_of).unwrap();
        assert_eq!((c.host.as_str(), c.running_leader), ("pg2", false));
        assert!(
            c.why
                .contains("the DCS still names it leader (state `stopped`)"),
            "{}",
            c.why
        );
        // no leader in the DCS: the one shut down as a primary
        let mut cs = candidates();
        cs[2].pg_state = Some("shut down".into());
        let c = choose(&stopped(), &cs, host_of).unwrap();
        assert_eq!(c.host, "pg3");
        assert!(
            c.why
                .contains("last a primary (`pg_controldata`: `shut down`)"),
            "{}",
            c.why
        );
        // nothing known: the first in inventory order, said so
        let mut none = stopped();
        none.members.clear();
        let c = choose(&none, &candidates(), host_of).unwrap();
        assert_eq!(c.host, "pg1");
        assert!(
            c.why
                .contains("the first reachable member in inventory order"),
            "{}",
            c.why
        );
    }

    #[test]
    fn a_lost_leader_or_nofailover_member_is_passed_over() {
        // the leader's host lost: its key still there, stopped, on no reachable host
        let mut s = stopped();
        s.members[0].role = "Leader".into();
        let c = choose(&s, &candidates()[1..], |m| (m != "pg1").then(|| m.into())).unwrap();
        assert_eq!(c.host, "pg2");
        assert!(
            c.why.contains("the last leader `pg1` is not reachable"),
            "{}",
            c.why
        );
        let mut cs = candidates();
        cs[0].nofailover = true;
        cs[0].pg_state = Some("shut down".into());
        let c = choose(&stopped(), &cs, host_of).unwrap();
        assert_eq!(c.host, "pg2", "never a member Patroni would not let lead");
        for c in &mut cs {
            c.nofailover = true;
        }
        assert!(choose(&stopped(), &cs, host_of)
            .unwrap_err()
            .contains("every reachable member has the `nofailover` tag"));
    }

    #[test]
    fn a_patroni_restore_cannot_stop_is_refused() {
        // pg3 unreachable, its Patroni still running as a replica: it could take over
        let mut s = stopped();
        s.members[2].state = "streaming".into();
        let e = choose(&s, &candidates()[..2], |m| (m != "pg3").then(|| m.into())).unwrap_err();
        assert!(
            e.starts_with(
                "`pg3` (10.0.0.13, streaming) in the DCS and not stopped, on no reachable host"
            ),
            "{e}"
        );
        // stopped there: nothing to fear
        let c = choose(&stopped(), &candidates()[..2], |m| {
            (m != "pg3").then(|| m.into())
        });
        assert_eq!(c.unwrap().host, "pg1");
    }
}
