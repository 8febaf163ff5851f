//! Host and group names as written in inventory files: ranges (`pg[01:10]`), `name:port`,
//! and the checks on names.

/// A problem in a host pattern, `offset` characters into it (to point at the bad part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameError {
    pub offset: usize,
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> NameError {
    NameError {
        offset,
        message: message.into(),
    }
}

/// A host pattern expands to at most this many hosts: a typo such as `[1:100000000]` must
/// fail fast rather than exhaust memory.
const MAX_EXPANSION: usize = 100_000;

/// Expands a host declaration: `pg[1:3]`, `db[a:c].example.com`, `pg1:2222`, `[::1]:22`.
/// Returns the host names and the port, if one was given.
pub(crate) fn expand_host_pattern(text: &str) -> Result<(Vec<String>, Option<u16>), NameError> {
    let (name, port) = split_port(text)?;
    let mut hosts = Vec::new();
    expand_ranges(name, 0, &mut hosts)?;
    Ok((hosts, port))
}

/// Splits `name:port`. IPv6 addresses (several colons) have no port unless bracketed:
/// `[2001:db8::1]:22`.
fn split_port(text: &str) -> Result<(&str, Option<u16>), NameError> {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(close) = rest.find(']') {
            let addr = &rest[..close];
            if addr.contains(':') {
                let after = &rest[close + 1..];
                return match after.strip_prefix(':') {
                    None if after.is_empty() => Ok((addr, None)),
                    Some(p) => Ok((addr, Some(parse_port(p, close + 3)?))),
                    None => Err(err(
                        close + 2,
                        format!("unexpected `{after}` after an IPv6 address"),
                    )),
                };
            }
        }
    }
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [i] => {
            let port = &text[i + 1..];
            let offset = text[..i + 1].chars().count();
            if port.is_empty() {
                return Err(err(
                    offset - 1,
                    format!("host `{text}` ends with `:`, which must be followed by a port number"),
                ));
            }
            Ok((&text[..*i], Some(parse_port(port, offset)?)))
        }
        _ => Ok((text, None)),
    }
}

fn parse_port(text: &str, offset: usize) -> Result<u16, NameError> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(err(
            offset,
            format!("port `{text}` must be a number from 1 to 65535"),
        )),
    }
}

/// Expands the first `[begin:end(:step)]` of `name` and recurses for the following ones.
/// `base` is the offset of `name` in the original pattern, for error positions.
fn expand_ranges(name: &str, base: usize, out: &mut Vec<String>) -> Result<(), NameError> {
    let Some(open) = name.find('[') else {
        if let Some(close) = name.find(']') {
            let at = base + name[..close].chars().count();
            return Err(err(at, "`]` without a matching `[`"));
        }
        out.push(name.to_string());
        return Ok(());
    };
    let open_at = base + name[..open].chars().count();
    let Some(len) = name[open..].find(']') else {
        return Err(err(open_at, "unclosed `[` in a host range"));
    };
    let (head, inner, tail) = (
        &name[..open],
        &name[open + 1..open + len],
        &name[open + len + 1..],
    );
    let values = range_values(inner).map_err(|m| err(open_at, m))?;
    let tail_at = base + name[..open + len + 1].chars().count();
    for v in values {
        let mut expanded = Vec::new();
        expand_ranges(tail, tail_at, &mut expanded)?;
        for t in expanded {
            if out.len() >= MAX_EXPANSION {
                return Err(err(
                    open_at,
                    format!("host range expands to more than {MAX_EXPANSION} hosts"),
                ));
            }
            out.push(format!("{head}{v}{t}"));
        }
    }
    Ok(())
}

/// The values of one range: numeric (`1:3`, zero-padded `01:10`), alphabetic (`a:c`), with
/// an optional step (`1:10:2`). Like Ansible, an empty begin means 0.
fn range_values(inner: &str) -> Result<Vec<String>, String> {
    let bounds: Vec<&str> = inner.split(':').collect();
    let usage = || format!("host range `[{inner}]` must be `[begin:end]` or `[begin:end:step]`");
    let (begin, end, step) = match bounds.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => return Err(usage()),
    };
    let begin = if begin.is_empty() { "0" } else { begin };
    if end.is_empty() {
        return Err(format!("host range `[{inner}]` has no end"));
    }
    let step: usize = match step.parse() {
        Ok(s) if s > 0 => s,
        _ => {
            return Err(format!(
                "host range step `{step}` must be a positive number"
            ))
        }
    };
    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if let (Some(b), Some(e)) = (LETTERS.find(begin), LETTERS.find(end)) {
        if begin.len() == 1 && end.len() == 1 {
            if b > e {
                return Err(format!("host range `[{inner}]` begins after its end"));
            }
            return Ok(LETTERS[b..=e]
                .chars()
                .step_by(step)
                .map(String::from)
                .collect());
        }
    }
    let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
        return Err(format!(
            "host range `[{inner}]` must be numbers (`[1:3]`) or single letters (`[a:c]`)"
        ));
    };
    if b > e {
        return Err(format!("host range `[{inner}]` begins after its end"));
    }
    if (e - b) as usize / step >= MAX_EXPANSION {
        return Err(format!(
            "host range `[{inner}]` expands to more than {MAX_EXPANSION} hosts"
        ));
    }
    let width = if begin.len() > 1 && begin.starts_with('0') {
        if begin.len() != end.len() {
            return Err(format!(
                "zero-padded host range `[{inner}]` must have a begin and end of the same width"
            ));
        }
        begin.len()
    } else {
        0
    };
    Ok((b..=e)
        .step_by(step)
        .map(|n| format!("{n:0width$}"))
        .collect())
}

/// Why `name` cannot be a host name, if it cannot.
pub(crate) fn host_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("host name is empty".to_string())
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!("host name `{name}` contains whitespace"))
    } else {
        None
    }
}

/// A problem with a group name: an error (unusable) or a warning (Ansible accepts it but
/// templates cannot use it as an identifier, e.g. `groups.web-servers`).
pub(crate) enum GroupNameProblem {
    Error(String),
    Warning { message: String, help: String },
}

pub(crate) fn group_name_problem(name: &str) -> Option<GroupNameProblem> {
    if name.is_empty() {
        return Some(GroupNameProblem::Error("group name is empty".to_string()));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(GroupNameProblem::Error(format!(
            "group name `{name}` contains whitespace"
        )));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if name.chars().all(valid) && !name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut safe: String = name
        .chars()
        .map(|c| if valid(c) { c } else { '_' })
        .collect();
    if safe.starts_with(|c: char| c.is_ascii_digit()) {
        safe.insert(0, '_');
    }
    Some(GroupNameProblem::Warning {
        message: format!(
            "group name `{name}` is not a valid identifier (letters, digits and `_`, not starting with a digit)"
        ),
        help: format!("Ansible warns about it too; rename it to `{safe}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(p: &str) -> Vec<String> {
        expand_host_pattern(p).unwrap().0
    }

    #[test]
    fn numeric_alpha_padded_and_stepped_ranges() {
        assert_eq!(hosts("pg[1:3]"), ["pg1", "pg2", "pg3"]);
        assert_eq!(hosts("pg[01:03].x"), ["pg01.x", "pg02.x", "pg03.x"]);
        assert_eq!(hosts("db-[a:c]"), ["db-a", "db-b", "db-c"]);
        assert_eq!(hosts("n[1:10:4]"), ["n1", "n5", "n9"]);
        assert_eq!(hosts("n[:2]"), ["n0", "n1", "n2"]);
        assert_eq!(hosts("r[1:2]c[a:b]"), ["r1ca", "r1cb", "r2ca", "r2cb"]);
        assert_eq!(hosts("plain"), ["plain"]);
    }

    #[test]
    fn ports() {
        assert_eq!(
            expand_host_pattern("pg1:2222").unwrap(),
            (vec!["pg1".to_string()], Some(2222))
        );
        assert_eq!(
            expand_host_pattern("pg[1:2]:22").unwrap(),
            (vec!["pg1".to_string(), "pg2".to_string()], Some(22))
        );
        assert_eq!(
            expand_host_pattern("[2001:db8::1]:22").unwrap(),
            (vec!["2001:db8::1".to_string()], Some(22))
        );
        assert_eq!(
            expand_host_pattern("2001:db8::1").unwrap(),
            (vec!["2001:db8::1".to_string()], None)
        );
        assert_eq!(expand_host_pattern("pg1:").unwrap_err().offset, 3);
        assert_eq!(
            expand_host_pattern("pg1:99999").unwrap_err().message,
            "port `99999` must be a number from 1 to 65535"
        );
    }

    #[test]
    fn bad_ranges() {
        let e = expand_host_pattern("pg[3:1]").unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (2, "host range `[3:1]` begins after its end")
        );
        assert!(expand_host_pattern("pg[1:3")
            .unwrap_err()
            .message
            .contains("unclosed"));
        assert!(expand_host_pattern("pg[1]")
            .unwrap_err()
            .message
            .contains("`[begin:end]`"));
        assert!(expand_host_pattern("pg[1:]")
            .unwrap_err()
            .message
            .contains("no end"));
        assert!(expand_host_pattern("pg[01:100]")
            .unwrap_err()
            .message
            .contains("same width"));
        assert!(expand_host_pattern("pg[1:x]")
            .unwrap_err()
            .message
            .contains("numbers"));
        assert!(expand_host_pattern("pg[1:5:0]")
            .unwrap_err()
            .message
            .contains("step"));
        assert!(expand_host_pattern("pg[0:999999999]")
            .unwrap_err()
            .message
            .contains("more than"));
    }

    #[test]
    fn name_checks() {
        assert!(host_name_problem("pg1.example.com").is_none());
        assert_eq!(host_name_problem("").unwrap(), "host name is empty");
        assert!(host_name_problem("pg 1").is_some());
        assert!(group_name_problem("postgres_14").is_none());
        assert!(matches!(
            group_name_problem("web-servers"),
            Some(GroupNameProblem::Warning { .. })
        ));
        assert!(matches!(
            group_name_problem("a b"),
            Some(GroupNameProblem::Error(_))
        ));
    }
}
