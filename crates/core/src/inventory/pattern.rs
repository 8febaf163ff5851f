//! Host patterns, Ansible's syntax for choosing hosts (`hosts:` of a play, `--limit`).
//!
//! - a host or group name; `all` or `*` for every host;
//! - a glob on host and group names: `pg*`, `*.example.com`, `db[12]x` (fnmatch classes);
//! - unions `a:b` or `a,b`, intersections `a:&b`, exclusions `a:!b`; like Ansible, unions are
//!   applied first, then intersections, then exclusions, whatever their order in the pattern
//!   (a pattern of only `&`/`!` terms starts from `all`);
//! - subscripts of what a name matches: `pg[0]`, `pg[-1]`, `pg[1:]`, `pg[0:2]` (inclusive end,
//!   as in Ansible).
//!
//! Regular expressions (`~pg[0-9]+`) are not supported. Results are in inventory order without
//! duplicates; subscripts count in inventory order too. A name that matches nothing is an
//! error (Ansible only warns): in a deployment tool a typo must not silently skip hosts.

use std::collections::HashSet;

use super::Inventory;
use crate::diag::did_you_mean;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty host pattern")]
    Empty,
    /// `suggestion` is the closest host or group name, for a "did you mean" hint.
    #[error("pattern `{pattern}` matches no host or group")]
    NoMatch {
        pattern: String,
        suggestion: Option<String>,
    },
    /// An operator with no name after it, as in `postgres:&` or `all:!`.
    #[error("`{operator}` in pattern `{pattern}` is followed by no host or group name")]
    DanglingOperator { pattern: String, operator: char },
    #[error("bad subscript in pattern `{pattern}`: {reason}")]
    BadSubscript { pattern: String, reason: String },
    #[error("regular expression patterns such as `{pattern}` are not supported; use a glob such as `pg*`")]
    Regex { pattern: String },
}

impl PatternError {
    /// A hint for the user, such as "did you mean `postgres`?".
    pub fn help(&self) -> Option<String> {
        match self {
            PatternError::NoMatch {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean `{s}`?")),
            _ => None,
        }
    }
}

/// The hosts matching `pattern`, in inventory order.
pub fn select<'a>(inv: &'a Inventory, pattern: &str) -> Result<Vec<&'a str>, PatternError> {
    let terms = split(pattern);
    if terms.is_empty() {
        return Err(PatternError::Empty);
    }
    let (mut unions, mut intersections, mut exclusions) = (Vec::new(), Vec::new(), Vec::new());
    for t in terms {
        if let Some(operator) = t.chars().next().filter(|c| matches!(c, '!' | '&')) {
            if t[1..].trim().is_empty() {
                return Err(PatternError::DanglingOperator {
                    pattern: pattern.to_string(),
                    operator,
                });
            }
        }
        if let Some(rest) = t.strip_prefix('!') {
            exclusions.push(rest);
        } else if let Some(rest) = t.strip_prefix('&') {
            intersections.push(rest);
        } else {
            unions.push(t);
        }
    }
    if unions.is_empty() {
        unions.push("all");
    }
    let mut selected = vec![false; inv.hosts.len()];
    for t in unions {
        for i in term(inv, t)? {
            selected[i] = true;
        }
    }
    for t in intersections {
        let mut keep = vec![false; inv.hosts.len()];
        for i in term(inv, t)? {
            keep[i] = true;
        }
        selected.iter_mut().zip(keep).for_each(|(s, k)| *s &= k);
    }
    for t in exclusions {
        for i in term(inv, t)? {
            selected[i] = false;
        }
    }
    Ok(inv
        .hosts
        .keys()
        .zip(selected)
        .filter_map(|(name, s)| s.then_some(name.as_str()))
        .collect())
}

/// Splits on `,` and on `:` outside brackets (so `pg[1:3]` stays whole). Ansible splits on
/// `:` only when there is no `,`; splitting on both accepts its patterns and mixed ones.
fn split(pattern: &str) -> Vec<&str> {
    let pieces = pattern.split(',').flat_map(|pattern| {
        let mut pieces = Vec::new();
        let (mut depth, mut start) = (0usize, 0);
        for (i, c) in pattern.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ':' if depth == 0 => {
                    pieces.push(&pattern[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        pieces.push(&pattern[start..]);
        pieces
    });
    pieces.map(str::trim).filter(|p| !p.is_empty()).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscript {
    Index(i64),
    /// Inclusive; `None` is up to the end.
    Range(usize, Option<usize>),
}

/// The indices (in inventory order) of the hosts one term matches.
fn term(inv: &Inventory, t: &str) -> Result<Vec<usize>, PatternError> {
    if t.starts_with('~') {
        return Err(PatternError::Regex {
            pattern: t.to_string(),
        });
    }
    let (base, subscript) = split_subscript(t)?;
    let Some(hosts) = matches(inv, base) else {
        let names = inv
            .groups
            .keys()
            .chain(inv.hosts.keys())
            .map(String::as_str);
        let suggestion = if is_glob(base) {
            None
        } else {
            did_you_mean(base, names)
        };
        return Err(PatternError::NoMatch {
            pattern: base.to_string(),
            suggestion: suggestion.map(str::to_string),
        });
    };
    match subscript {
        None => Ok(hosts),
        Some(s) => apply_subscript(t, base, hosts, s),
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `name[...]` with Ansible's subscript forms; anything else in brackets is a glob class.
fn split_subscript(t: &str) -> Result<(&str, Option<Subscript>), PatternError> {
    let bad = |reason: String| PatternError::BadSubscript {
        pattern: t.to_string(),
        reason,
    };
    let Some(body) = t.strip_suffix(']') else {
        return Ok((t, None));
    };
    let Some(open) = body.rfind('[').filter(|&o| o > 0) else {
        return Ok((t, None));
    };
    let (base, inner) = (&t[..open], &body[open + 1..]);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| bad(format!("`{s}` is too large")))
    };
    if digits(inner.strip_prefix('-').unwrap_or(inner)) {
        let i = inner
            .parse::<i64>()
            .map_err(|_| bad(format!("`{inner}` is too large")))?;
        return Ok((base, Some(Subscript::Index(i))));
    }
    if let Some((start, end)) = inner.split_once([':', '-']) {
        if digits(start) && (end.is_empty() || digits(end)) {
            let start = number(start)?;
            let end = if end.is_empty() {
                None
            } else {
                Some(number(end)?)
            };
            if end.is_some_and(|e| e < start) {
                return Err(bad(format!("`[{inner}]` ends before it starts")));
            }
            return Ok((base, Some(Subscript::Range(start, end))));
        }
        if inner.contains(':') && !is_glob(base) {
            return Err(bad(format!(
                "`[{inner}]` must be `[index]`, `[start:]` or `[start:end]`"
            )));
        }
    }
    Ok((t, None))
}

fn apply_subscript(
    t: &str,
    base: &str,
    hosts: Vec<usize>,
    s: Subscript,
) -> Result<Vec<usize>, PatternError> {
    let n = hosts.len();
    let out_of_range = |i: i64| PatternError::BadSubscript {
        pattern: t.to_string(),
        reason: format!(
            "index `{i}` is out of range: `{base}` matches {n} host{}",
            if n == 1 { "" } else { "s" }
        ),
    };
    match s {
        Subscript::Index(i) => {
            let at = if i < 0 { i + n as i64 } else { i };
            usize::try_from(at)
                .ok()
                .and_then(|a| hosts.get(a).copied())
                .map(|h| vec![h])
                .ok_or_else(|| out_of_range(i))
        }
        Subscript::Range(start, end) => {
            if start >= n {
                return Err(out_of_range(start as i64));
            }
            let end = end.map_or(n - 1, |e| e.min(n - 1));
            Ok(hosts[start..=end].to_vec())
        }
    }
}

/// The hosts a name or glob matches (through groups and host names), or `None` when it
/// matches no group and no host. A group that exists but is empty matches, with no hosts.
fn matches(inv: &Inventory, name: &str) -> Option<Vec<usize>> {
    let glob = if is_glob(name) {
        Some(glob::Pattern::new(name).ok()?)
    } else {
        None
    };
    let is_match = |candidate: &str| match &glob {
        Some(g) => g.matches(candidate),
        None => candidate == name,
    };
    let groups: HashSet<&str> = inv
        .groups
        .keys()
        .map(String::as_str)
        .filter(|g| is_match(g))
        .collect();
    // Like Ansible: a plain name that is a group is not also looked up as a host.
    let look_at_hosts = groups.is_empty() || glob.is_some() || name.contains('.');
    let mut found = !groups.is_empty();
    let mut hosts = Vec::new();
    for (i, h) in inv.hosts.values().enumerate() {
        let by_group = !groups.is_empty() && h.groups.iter().any(|g| groups.contains(g.as_str()));
        let by_name = look_at_hosts && is_match(&h.name);
        found |= by_name;
        if by_group || by_name {
            hosts.push(i);
        }
    }
    found.then_some(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::build::Builder;
    use crate::inventory::structure::finish;

    fn inv() -> Inventory {
        let mut b = Builder::new();
        crate::inventory::ini::parse(
            &crate::diag::SourceFile::new("hosts"),
            "bastion\n[primary]\npg1\n[replica]\npg2\npg3\n[pg:children]\nprimary\nreplica\n\
             [etcd]\npg1\npg2\ne1.example.com\n[empty]\n",
            &mut b,
        );
        let (inv, diags) = finish(b);
        assert!(diags.is_empty(), "{diags}");
        inv
    }

    fn sel(p: &str) -> Vec<String> {
        select(&inv(), p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn err(p: &str) -> PatternError {
        select(&inv(), p).unwrap_err()
    }

    #[test]
    fn names_groups_and_all() {
        assert_eq!(sel("pg2"), ["pg2"]);
        assert_eq!(sel("pg"), ["pg1", "pg2", "pg3"]);
        assert_eq!(sel("replica"), ["pg2", "pg3"]);
        assert_eq!(
            sel("all"),
            ["bastion", "pg1", "pg2", "pg3", "e1.example.com"]
        );
        assert_eq!(sel("*"), sel("all"));
        assert_eq!(sel("ungrouped"), ["bastion"]);
        assert!(sel("empty").is_empty());
    }

    #[test]
    fn globs() {
        assert_eq!(sel("pg*"), ["pg1", "pg2", "pg3"]);
        assert_eq!(sel("*.example.com"), ["e1.example.com"]);
        assert_eq!(sel("pg[!2]"), ["pg1", "pg3"]);
        assert_eq!(sel("pg?"), ["pg1", "pg2", "pg3"]);
        assert_eq!(sel("rep*"), ["pg2", "pg3"]);
    }

    #[test]
    fn unions_intersections_exclusions() {
        assert_eq!(sel("replica:bastion"), ["bastion", "pg2", "pg3"]);
        assert_eq!(sel("bastion,replica"), ["bastion", "pg2", "pg3"]);
        assert_eq!(sel("pg:&etcd"), ["pg1", "pg2"]);
        assert_eq!(sel("pg:!replica"), ["pg1"]);
        // Exclusions apply last whatever their place.
        assert_eq!(sel("!replica:pg"), ["pg1"]);
        assert_eq!(sel("etcd:!pg:&all"), ["e1.example.com"]);
        // Only exclusions: start from all.
        assert_eq!(sel("!pg"), ["bastion", "e1.example.com"]);
        assert_eq!(sel("pg1:pg1:primary"), ["pg1"]);
    }

    #[test]
    fn subscripts() {
        assert_eq!(sel("pg[0]"), ["pg1"]);
        assert_eq!(sel("pg[-1]"), ["pg3"]);
        assert_eq!(sel("pg[1:]"), ["pg2", "pg3"]);
        assert_eq!(sel("pg[0:1]"), ["pg1", "pg2"]);
        assert_eq!(sel("pg[1:9]"), ["pg2", "pg3"]);
        assert_eq!(sel("pg[0]:pg[2]"), ["pg1", "pg3"]);
    }

    #[test]
    fn errors() {
        assert_eq!(err("  "), PatternError::Empty);
        assert_eq!(err(":,"), PatternError::Empty);
        let e = err("replicas");
        assert_eq!(e.to_string(), "pattern `replicas` matches no host or group");
        assert_eq!(e.help().as_deref(), Some("did you mean `replica`?"));
        assert_eq!(
            err("pg:!nope").to_string(),
            "pattern `nope` matches no host or group"
        );
        assert_eq!(
            err("zz*"),
            PatternError::NoMatch {
                pattern: "zz*".into(),
                suggestion: None
            }
        );
        assert_eq!(
            err("pg[3]").to_string(),
            "bad subscript in pattern `pg[3]`: index `3` is out of range: `pg` matches 3 hosts"
        );
        assert_eq!(
            err("pg[2:1]").to_string(),
            "bad subscript in pattern `pg[2:1]`: `[2:1]` ends before it starts"
        );
        assert_eq!(
            err("pg[1:x]").to_string(),
            "bad subscript in pattern `pg[1:x]`: `[1:x]` must be `[index]`, `[start:]` or `[start:end]`"
        );
        assert!(matches!(err("~pg.*"), PatternError::Regex { .. }));
    }
}
