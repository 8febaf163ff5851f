//! `etcd`: every endpoint of the etcd cluster healthy (`etcdctl endpoint health --cluster`
//! on each member, with its own certificates), and the quorum (more than half the members
//! healthy) said in the message when some are not.

use super::{Finding, Gathered, Kind, Options, Outcome};

pub(crate) const KIND: Kind = Kind {
    name: "etcd",
    about: "every etcd endpoint healthy; quorum",
    probe: Some((super::Role::Member, pgdeploy_modules::etcd::health::script)),
    evaluate,
};

fn evaluate(g: &Gathered, _: &Options) -> Vec<Finding> {
    // Read on the first member that has an answer with endpoints.
    let Some((host, rows)) = g
        .members()
        .filter_map(|h| {
            Some((
                h,
                pgdeploy_modules::etcd::health::parse_health(&h.name, h.output(KIND.name)?),
            ))
        })
        .find(|(_, rows)| rows.iter().any(|r| r.endpoint != "(etcd)"))
        .or_else(|| {
            g.members().find_map(|h| {
                Some((
                    h,
                    pgdeploy_modules::etcd::health::parse_health(&h.name, h.output(KIND.name)?),
                ))
            })
        })
    else {
        return vec![Finding::new(
            KIND.name,
            Outcome::Fail,
            "etcd",
            "no member answered".into(),
        )];
    };
    let total = rows.len();
    let healthy = rows.iter().filter(|r| r.health).count();
    let mut out: Vec<Finding> = rows
        .iter()
        .map(|r| {
            if r.health {
                Finding::new(KIND.name, Outcome::Pass, &r.endpoint, "healthy".into())
            } else {
                Finding::new(
                    KIND.name,
                    Outcome::Fail,
                    &r.endpoint,
                    format!(
                        "unhealthy{}{} (read on `{}`)",
                        member_at(g, &r.endpoint)
                            .map(|m| format!(" (member `{m}`)"))
                            .unwrap_or_default(),
                        r.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default(),
                        host.name
                    ),
                )
            }
        })
        .collect();
    let quorum = healthy * 2 > total;
    out.push(Finding::new(
        KIND.name,
        if quorum { Outcome::Pass } else { Outcome::Fail },
        "quorum",
        format!(
            "{healthy} of {total} members healthy: {}",
            if quorum { "quorum" } else { "NO quorum" }
        ),
    ));
    out
}

/// The inventory host an endpoint URL (`https://10.0.0.13:2379`) is on, by name or address:
/// an endpoint down is named as the host to look at.
fn member_at<'a>(g: &'a Gathered, endpoint: &str) -> Option<&'a str> {
    let authority = endpoint.split_once("://").map_or(endpoint, |(_, a)| a);
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_matches(['[', ']']);
    g.members()
        .find(|h| h.name == host || h.address.as_deref() == Some(host))
        .map(|h| h.name.as_str())
}
