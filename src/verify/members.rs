//! `members`: every database host of the inventory is a Patroni member that runs, and the
//! cluster has exactly one leader (not in maintenance mode: no automatic failover then).
//! A member whose Patroni stopped leaves `patronictl list`, so the inventory says who is
//! missing.

use super::{state_or_fail, Finding, Gathered, Kind, Options, Outcome};

pub(crate) const KIND: Kind = Kind {
    name: "members",
    about: "every database host is a running member; exactly one leader",
    probe: None,
    evaluate,
};

fn evaluate(g: &Gathered, _: &Options) -> Vec<Finding> {
    let s = match state_or_fail(g, KIND.name) {
        Ok(s) => s,
        Err(f) => return f,
    };
    let mut out = Vec::new();
    for h in g.members() {
        let found = s.members.iter().find(|m| {
            m.name == h.name
                || h.address
                    .as_deref()
                    .is_some_and(|a| m.host.split(':').next() == Some(a))
        });
        out.push(match found {
            None => Finding::new(
                KIND.name,
                Outcome::Fail,
                &h.name,
                "not a member of the cluster (is Patroni running? `systemctl status patroni`)"
                    .into(),
            ),
            Some(m) if m.is_leader() && m.state != "running" => Finding::new(
                KIND.name,
                Outcome::Fail,
                &m.name,
                format!("{} `{}` (not running)", m.role, m.state),
            ),
            Some(m) if !m.postgres_up() => Finding::new(
                KIND.name,
                Outcome::Fail,
                &m.name,
                format!("{} `{}`: PostgreSQL does not run", m.role, m.state),
            ),
            Some(m) => Finding::new(
                KIND.name,
                Outcome::Pass,
                &m.name,
                format!("{} {}", m.role, m.state),
            ),
        });
    }
    let leaders: Vec<&str> = s
        .members
        .iter()
        .filter(|m| m.is_leader())
        .map(|m| m.name.as_str())
        .collect();
    let scope = s.scope.as_deref().unwrap_or("cluster");
    out.push(match leaders.as_slice() {
        [one] => Finding::new(
            KIND.name,
            Outcome::Pass,
            scope,
            format!("one leader: `{one}`"),
        ),
        [] => Finding::new(KIND.name, Outcome::Fail, scope, "no leader".into()),
        many => Finding::new(
            KIND.name,
            Outcome::Fail,
            scope,
            format!("{} leaders: `{}`", many.len(), many.join("`, `")),
        ),
    });
    if s.paused {
        out.push(Finding::new(
            KIND.name,
            Outcome::Warn,
            scope,
            "maintenance mode: no automatic failover (`pgdeploy resume` ends it)".into(),
        ));
    }
    out
}
