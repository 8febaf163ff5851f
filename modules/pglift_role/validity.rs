//! A role's `valid_until` compared with what `pglift role get` says: the parameter as written
//! (`2030-01-01T00:00`, `2030-01-01 00:00:00+02`) and pglift's ISO 8601 output
//! (`2030-01-01T00:00:00Z`). Two times with offsets are compared as instants; a time written
//! without one is what the server reads in its own time zone, which is also the zone of the
//! time pglift reports, so its wall-clock time is compared.

/// A date and time: its wall-clock seconds since 1970-01-01 and its offset, if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    wall: i64,
    offset: Option<i64>,
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Reads `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH[[:]MM]]`.
pub(super) fn parse(text: &str) -> Option<Stamp> {
    let t = text.trim();
    let (date, rest) = t.split_at(t.len().min(10));
    let mut d = date.split('-');
    let (y, m, dd) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&dd) {
        return None;
    }
    let mut secs = 0;
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix(['T', ' ']) {
        let end = r.find(['Z', '+', '-']).unwrap_or(r.len());
        let (time, zone) = r.split_at(end);
        let time = time.split('.').next()?;
        let mut parts = time.split(':');
        let h = num(parts.next()?)?;
        let mi = num(parts.next()?)?;
        let s = parts.next().map(num).unwrap_or(Some(0))?;
        if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs = h * 3600 + mi * 60 + s;
        rest = zone;
    }
    let offset = match rest {
        "" => None,
        "Z" => Some(0),
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if !z.starts_with(['+', '-']) || !(digits.len() == 2 || digits.len() == 4) {
                return None;
            }
            let h = num(&digits[..2])?;
            let mi = if digits.len() == 4 {
                num(&digits[2..])?
            } else {
                0
            };
            Some(sign * (h * 3600 + mi * 60))
        }
    };
    Some(Stamp {
        wall: days(y, m, dd) * 86_400 + secs,
        offset,
    })
}

/// Whether the parameter `given` names the time pglift reports as `current`.
pub(super) fn same(given: &str, current: &str) -> bool {
    match (parse(given), parse(current)) {
        (Some(g), Some(c)) => match (g.offset, c.offset) {
            (Some(go), Some(co)) => g.wall - go == c.wall - co,
            _ => g.wall == c.wall,
        },
        _ => given.trim() == current.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_match_pglifts_output() {
        assert!(same("2030-01-01T00:00", "2030-01-01T00:00:00Z"));
        assert!(same("2030-01-01", "2030-01-01T00:00:00Z"));
        assert!(same("2030-01-01 02:00:00+02", "2030-01-01T00:00:00Z"));
        assert!(same("2030-01-01T01:30+01:30", "2030-01-01T00:00:00Z"));
        assert!(!same("2030-01-02T00:00", "2030-01-01T00:00:00Z"));
        assert!(!same("2030-01-01T00:00Z", "2030-01-01T00:00:00+01:00"));
        assert!(same("2030-01-01T00:00", "2030-01-01T00:00:00+01:00"));
    }

    #[test]
    fn not_a_time() {
        for t in [
            "soon",
            "2030-13-01",
            "2030-01-01T25:00",
            "2030-01-01T00:00+5",
            "",
        ] {
            assert!(parse(t).is_none(), "{t}");
        }
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2000, 3, 1), 11_017);
    }
}
