//! `pg_hba`: a plain (non-TLS) connection to a member's PostgreSQL is refused when its
//! `pg_hba.conf` (the one Patroni wrote, in the data directory) has only `hostssl` lines for
//! TCP: a real attempt (`psql` with `sslmode=disable`, no password) to the member's
//! `connect_address`, which must end in PostgreSQL's `no encryption` refusal. A `pg_hba`
//! with `host` lines accepts plain connections on purpose: said, not failed.

use super::{value, Finding, Gathered, Kind, Options, Outcome, Role};
use pgdeploy_core::locator::PATRONI;

pub(crate) const KIND: Kind = Kind {
    name: "pg_hba",
    about: "a plain (non-TLS) connection is refused where pg_hba requires TLS",
    probe: Some((Role::Member, probe)),
    evaluate,
};

fn probe() -> String {
    format!(
        "PATRONI_CONFIG=; if [ -r {PATRONI} ]; then . {PATRONI}; fi; \
         if [ ! -r \"$PATRONI_CONFIG\" ]; then echo config=none; exit 0; fi; \
         section() {{ awk -v k=\"$1:\" '/^[a-z]/{{p=($1==\"postgresql:\")}} p && $1==k {{print $2; exit}}' \"$PATRONI_CONFIG\" | tr -d \"'\\\"\"; }}; \
         data=$(section data_dir); bin=$(section bin_dir); ca=$(section connect_address); \
         echo \"address=$ca\"; \
         echo \"plain_lines=$(grep -cE '^[[:space:]]*host[[:space:]]' \"$data/pg_hba.conf\" 2>/dev/null || echo unreadable)\"; \
         psql=psql; [ -x \"$bin/psql\" ] && psql=\"$bin/psql\"; \
         echo '==attempt'; \
         env -u PGPASSWORD PGPASSFILE=/nonexistent/.pgpass PGCONNECT_TIMEOUT=5 \"$psql\" -w -Atc 'select 1' \
         \"host=${{ca%:*}} port=${{ca##*:}} dbname=postgres user=postgres sslmode=disable\" 2>&1 | head -n 3"
    )
}

fn evaluate(g: &Gathered, _: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in g.members() {
        let Some(text) = h.output(KIND.name) else {
            continue;
        };
        let (head, attempt) = text.split_once("==attempt\n").unwrap_or((text, ""));
        let finding = |o: Outcome, m: String| Finding::new(KIND.name, o, &h.name, m);
        let address = value(head, "address").unwrap_or("?");
        out.push(match value(head, "plain_lines") {
            _ if value(head, "config") == Some("none") => finding(
                Outcome::Fail,
                format!("no Patroni configuration through `{PATRONI}`"),
            ),
            Some(n) if n != "0" && n != "unreadable" => finding(
                Outcome::Pass,
                format!("TLS not required: `pg_hba.conf` has {n} `host` line(s)"),
            ),
            _ if attempt.contains("no encryption") => finding(
                Outcome::Pass,
                format!("plain connection to `{address}` refused (no encryption)"),
            ),
            _ if attempt.contains("Connection refused") || attempt.contains("timeout expired") => {
                finding(
                    Outcome::Fail,
                    format!(
                        "not checked: PostgreSQL does not answer on `{address}`: {}",
                        attempt.trim().lines().next().unwrap_or_default()
                    ),
                )
            }
            Some("unreadable") => finding(
                Outcome::Fail,
                "`pg_hba.conf` in the data directory could not be read".into(),
            ),
            _ => finding(
                Outcome::Fail,
                format!(
                    "a plain connection to `{address}` was not refused by pg_hba: {}",
                    attempt.trim().lines().next().unwrap_or("accepted")
                ),
            ),
        });
    }
    out
}
