//! `vip`: each VIP a balancer's `keepalived.env` names is on exactly one host, and answers
//! on the PostgreSQL port: every balancer opens a TCP connection to it (the one that does
//! not hold it goes over the network, as a client would).

use super::{value, Finding, Gathered, Kind, Options, Outcome, Role};
use crate::status::{addresses_script, parse_addresses, vips, HostAddresses};
use pgdeploy_core::locator::KEEPALIVED;

pub(crate) const KIND: Kind = Kind {
    name: "vip",
    about: "each VIP on exactly one host and answering on 5432",
    probe: Some((Role::Balancer, probe)),
    evaluate,
};

/// The port a client reaches the primary on through the VIP.
const PORT: u16 = 5432;

fn probe() -> String {
    format!(
        "{addresses}; VIP=; if [ -r {KEEPALIVED} ]; then . {KEEPALIVED}; fi; \
         if [ -n \"$VIP\" ]; then \
         if timeout 3 bash -c \": </dev/tcp/${{VIP%/*}}/{PORT}\" 2>/dev/null; \
         then echo tcp=open; else echo tcp=closed; fi; fi",
        addresses = addresses_script()
    )
}

fn evaluate(g: &Gathered, _: &Options) -> Vec<Finding> {
    let read: Vec<(String, HostAddresses, Option<&str>)> = g
        .hosts
        .iter()
        .filter_map(|h| {
            let text = h.output(KIND.name)?;
            let (a, rest) = parse_addresses(text);
            Some((h.name.clone(), a, value(rest, "tcp")))
        })
        .collect();
    let by_host: Vec<(String, HostAddresses)> = read
        .iter()
        .map(|(n, a, _)| (n.clone(), a.clone()))
        .collect();
    let rows = vips(&by_host);
    if rows.is_empty() {
        return if g.balancers().next().is_some() {
            vec![Finding::new(
                KIND.name,
                Outcome::Fail,
                "vip",
                format!(
                    "no balancer has a VIP in `{KEEPALIVED}`: was `playbooks/site.yml` applied?"
                ),
            )]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    for row in rows {
        out.push(match row.hosts.as_slice() {
            [one] => Finding::new(
                KIND.name,
                Outcome::Pass,
                &row.address,
                format!("on `{one}`"),
            ),
            [] => Finding::new(KIND.name, Outcome::Fail, &row.address, "on no host".into()),
            many => Finding::new(
                KIND.name,
                Outcome::Fail,
                &row.address,
                format!("on more than one host: `{}`", many.join("`, `")),
            ),
        });
        for (host, a, tcp) in &read {
            if a.vip.as_deref() != Some(row.address.as_str()) {
                continue;
            }
            let subject = format!("{}:{PORT}", row.address);
            out.push(match *tcp {
                Some("open") => Finding::new(
                    KIND.name,
                    Outcome::Pass,
                    &subject,
                    format!("answers (from `{host}`)"),
                ),
                _ => Finding::new(
                    KIND.name,
                    Outcome::Fail,
                    &subject,
                    format!("does not answer (from `{host}`)"),
                ),
            });
        }
    }
    out
}
