//! `postgres_exporter`: every exporter a member's locators name (`postgres_exporter` module,
//! `/var/lib/pgdeploy/postgres_exporter-NAME.env`) answers its `/metrics` from the member with
//! `pg_up 1` (it reaches its PostgreSQL). A cluster without exporters has nothing to check;
//! a member without one while other members have one fails.

use super::{Finding, Gathered, Kind, Options, Outcome, Role};
use pgdeploy_core::locator::POSTGRES_EXPORTER_GLOB;

pub(crate) const KIND: Kind = Kind {
    name: "postgres_exporter",
    about: "each postgres_exporter answers /metrics with pg_up 1",
    probe: Some((Role::Member, probe)),
    evaluate,
};

/// One line per exporter: `exporter<TAB>NAME<TAB>URL<TAB>PG_UP` (`none`: no answer).
fn probe() -> String {
    format!(
        "fetch() {{ if command -v curl >/dev/null 2>&1; then curl -s --max-time 5 \"$1\"; \
         else python3 -c 'import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())' \"$1\"; fi; }}; \
         for f in {POSTGRES_EXPORTER_GLOB}; do [ -r \"$f\" ] || continue; \
         ( EXPORTER_NAME=; EXPORTER_URL=; . \"$f\"; \
         up=$(fetch \"$EXPORTER_URL\" 2>/dev/null | awk '$1==\"pg_up\" {{print $2; exit}}'); \
         printf 'exporter\\t%s\\t%s\\t%s\\n' \"$EXPORTER_NAME\" \"$EXPORTER_URL\" \"${{up:-none}}\" ); done"
    )
}

fn evaluate(g: &Gathered, _: &Options) -> Vec<Finding> {
    let read: Vec<(&str, Vec<Vec<&str>>)> = g
        .members()
        .filter_map(|h| {
            let text = h.output(KIND.name)?;
            let rows = text
                .lines()
                .filter_map(|l| l.strip_prefix("exporter\t"))
                .map(|l| l.split('\t').collect::<Vec<_>>())
                .filter(|f| f.len() == 3)
                .collect();
            Some((h.name.as_str(), rows))
        })
        .collect();
    let with = read.iter().filter(|(_, r)| !r.is_empty()).count();
    let mut out = Vec::new();
    if with == 0 {
        return out;
    }
    for (host, rows) in &read {
        if rows.is_empty() {
            out.push(Finding::new(
                KIND.name,
                Outcome::Fail,
                host,
                format!("no postgres_exporter here ({with} other member(s) have one)"),
            ));
        }
        for f in rows {
            let (name, url, up) = (f[0], f[1], f[2]);
            let subject = format!("{host}:{name}");
            out.push(match up {
                "1" => Finding::new(
                    KIND.name,
                    Outcome::Pass,
                    &subject,
                    format!("`{url}` answers with pg_up 1"),
                ),
                "none" => Finding::new(
                    KIND.name,
                    Outcome::Fail,
                    &subject,
                    format!("`{url}` does not answer with metrics"),
                ),
                other => Finding::new(
                    KIND.name,
                    Outcome::Fail,
                    &subject,
                    format!("`{url}` answers with pg_up {other}: the exporter cannot connect to PostgreSQL (see `journalctl -u pgdeploy-postgres-exporter@{name}`)"),
                ),
            });
        }
    }
    out
}
