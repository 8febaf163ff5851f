//! Patroni's `pg_hba` list, shared by two modules that write it: `patroni` owns the site's
//! lines (`dcs.pg_hba`), `postgresql_pg_hba` adds one rule per task. A rule of the second kind
//! carries [`MARK`] as a trailing comment (PostgreSQL ignores text after `#`), which is how
//! each module tells the other's lines from its own: `patroni` keeps the marked lines when it
//! converges its own, `postgresql_pg_hba` never touches an unmarked one.
//!
//! Where marked lines go ([`merge`]): after the site's specific lines, before its first
//! catch-all (a line whose database and user are both `all`), so a rule for one role and
//! database is checked before `hostssl all all 0.0.0.0/0 …` admits or refuses everyone, and
//! `local all postgres peer` or the replication lines (never catch-alls) stay first.

/// The comment that marks a line as `postgresql_pg_hba`'s.
pub(crate) const MARK: &str = "# pgdeploy: postgresql_pg_hba";

/// Authentication methods refused in `pg_hba` lines for network connections.
const WEAK_METHODS: &[&str] = &["trust", "password", "md5", "ident"];

/// Whether `line` is one of `postgresql_pg_hba`'s.
pub(crate) fn is_managed(line: &str) -> bool {
    line.trim_end().ends_with(MARK)
}

/// The marked lines of `lines`, in their order.
pub(crate) fn managed(lines: &[String]) -> Vec<String> {
    lines.iter().filter(|l| is_managed(l)).cloned().collect()
}

/// The unmarked lines of `lines`, in their order.
pub(crate) fn unmanaged(lines: &[String]) -> Vec<String> {
    lines.iter().filter(|l| !is_managed(l)).cloned().collect()
}

/// The whole list: `base` with `managed` inserted before its first catch-all line (at the end
/// when it has none).
pub(crate) fn merge(base: &[String], managed: &[String]) -> Vec<String> {
    let at = base
        .iter()
        .position(|l| is_catch_all(l))
        .unwrap_or(base.len());
    let mut out = Vec::with_capacity(base.len() + managed.len());
    out.extend_from_slice(&base[..at]);
    out.extend_from_slice(managed);
    out.extend_from_slice(&base[at..]);
    out
}

/// A rule line (not a comment) whose database and user fields are both `all`.
fn is_catch_all(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    !words.first().is_some_and(|w| w.starts_with('#'))
        && words.len() >= 3
        && words[1] == "all"
        && words[2] == "all"
}

/// The rule's identity, as `community.postgresql.postgresql_pg_hba` has it: connection type,
/// databases, users and (for a network rule) address; the method and options are what a rule
/// with that identity says. `None` for a comment or a line too short to be a rule.
pub(crate) fn identity(line: &str) -> Option<Vec<String>> {
    let body = line.split('#').next().unwrap_or_default();
    let words: Vec<&str> = body.split_whitespace().collect();
    let n = if *words.first()? == "local" { 3 } else { 4 };
    (words.len() > n).then(|| words[..n].iter().map(|w| w.to_string()).collect())
}

/// Why a `pg_hba` line is refused, if it is: an unknown connection type, a method that sends
/// or accepts passwords weakly (`trust`, `password`, `md5`, `ident`), or a network rule that
/// accepts connections without TLS. `local` rules may use `peer` and `scram-sha-256`; any
/// rule may `reject`.
pub(crate) fn weak_line(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let kind = *words.first()?;
    // host DATABASE USER ADDRESS METHOD [options]; local DATABASE USER METHOD [options]
    let method_at = match kind {
        "local" => 3,
        "host" | "hostssl" | "hostnossl" | "hostgssenc" | "hostnogssenc" => {
            // ADDRESS may be followed by a separate netmask
            if words
                .get(4)
                .is_some_and(|w| w.contains('.') && !w.contains('/'))
                && words.len() > 5
            {
                5
            } else {
                4
            }
        }
        _ => {
            return Some(format!(
                "`pg_hba` line `{line}`: unknown connection type `{kind}`"
            ))
        }
    };
    let method = words.get(method_at)?;
    if kind == "local" && (*method == "peer" || *method == "scram-sha-256" || *method == "reject") {
        return None;
    }
    if WEAK_METHODS.contains(method) {
        return Some(format!(
            "`pg_hba` line `{line}` uses `{method}`: use `scram-sha-256` (or `cert`)"
        ));
    }
    if kind == "hostnossl" && *method != "reject" {
        return Some(format!(
            "`pg_hba` line `{line}` accepts connections without TLS: use `hostssl`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const SITE: &[&str] = &[
        "local all postgres peer",
        "hostssl replication replicator 10.0.0.0/24 scram-sha-256",
        "hostssl all all 127.0.0.1/32 scram-sha-256",
        "hostssl all all 0.0.0.0/0 scram-sha-256",
    ];

    #[test]
    fn managed_lines_go_before_the_first_catch_all_and_split_back() {
        let rule = format!("hostssl db1 bob 0.0.0.0/0 reject  {MARK}");
        let all = merge(&lines(SITE), std::slice::from_ref(&rule));
        assert_eq!(all[2], rule);
        assert_eq!(all.len(), 5);
        assert_eq!(managed(&all), vec![rule.clone()]);
        assert_eq!(unmanaged(&all), lines(SITE));
        // no catch-all: at the end
        let all = merge(&lines(&SITE[..2]), std::slice::from_ref(&rule));
        assert_eq!(all.last(), Some(&rule));
        // a commented catch-all is not one
        let all = merge(
            &lines(&["# all all x", "local all all peer"]),
            std::slice::from_ref(&rule),
        );
        assert_eq!(all[1], rule);
    }

    #[test]
    fn identity_is_type_databases_users_address() {
        assert_eq!(
            identity(&format!("hostssl db1 bob 10.0.0.0/8 scram-sha-256 {MARK}")).unwrap(),
            lines(&["hostssl", "db1", "bob", "10.0.0.0/8"])
        );
        assert_eq!(
            identity("local db1 bob peer").unwrap(),
            lines(&["local", "db1", "bob"])
        );
        assert_eq!(identity("# comment"), None);
        assert_eq!(identity("hostssl db1 bob"), None);
    }

    #[test]
    fn pg_hba_lines_must_use_scram_or_certificates() {
        assert!(weak_line("hostssl all all 0.0.0.0/0 scram-sha-256").is_none());
        assert!(weak_line("hostssl replication replicator 10.0.0.1/32 scram-sha-256").is_none());
        assert!(weak_line("local all postgres peer").is_none());
        assert!(weak_line("hostssl all all 10.0.0.0 255.0.0.0 cert").is_none());
        assert!(weak_line("hostnossl all all 0.0.0.0/0 reject").is_none());
        assert!(weak_line("host all all 0.0.0.0/0 md5")
            .unwrap()
            .contains("`md5`"));
        assert!(weak_line("local all all trust")
            .unwrap()
            .contains("`trust`"));
        assert!(weak_line("hostnossl all all 0.0.0.0/0 scram-sha-256")
            .unwrap()
            .contains("hostssl"));
        assert!(weak_line("hots all all 0.0.0.0/0 md5")
            .unwrap()
            .contains("`hots`"));
    }
}
