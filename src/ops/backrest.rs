//! What `backup`, `restore` and `status` share about pgBackRest: the stanza and repository
//! host a member's locator names (written by the `pgbackrest` module), `pgbackrest info`'s
//! JSON read into backup sets, and the pure decision of which backup a restore starts from.

use serde::Serialize;
use serde_json::Value;

use pgdeploy_core::locator::PGBACKREST as LOCATOR;
use pgdeploy_core::transport::shell::quote;

/// Where pgBackRest is, from a member's locator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backrest {
    pub stanza: String,
    /// The inventory name of the repository host.
    pub repo_host: String,
    pub repo_user: String,
    pub binary: String,
}

/// The script printing the locator's variables (nothing, exit 3, when there is none).
pub(crate) fn locator_script() -> String {
    format!(
        "test -r {LOCATOR} || exit 3; . {LOCATOR} && printf 'stanza=%s\\nrepo_host=%s\\nrepo_user=%s\\nbinary=%s\\n' \
         \"$PGBACKREST_STANZA\" \"$PGBACKREST_REPO_HOST\" \"$PGBACKREST_REPO_USER\" \"$PGBACKREST\""
    )
}

/// Reads [`locator_script`]'s output.
pub(crate) fn parse_locator(text: &str) -> Option<Backrest> {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    Some(Backrest {
        stanza: get("stanza")?,
        repo_host: get("repo_host")?,
        repo_user: get("repo_user")?,
        binary: get("binary")?,
    })
}

/// The error when no member has a locator.
pub(crate) fn no_locator(host: &str) -> String {
    format!(
        "no pgBackRest on `{host}` (no `{LOCATOR}`): deploy `playbooks/site.yml` with `pgbackrest_repo_host` (the `pgbackrest` module writes it)"
    )
}

impl Backrest {
    /// `pgbackrest --stanza=S ARGS` as `user`.
    pub(crate) fn command(&self, user: &str, args: &str) -> String {
        format!(
            "cd / && runuser -u {} -- {} --stanza={} {args}",
            quote(user),
            quote(&self.binary),
            quote(&self.stanza)
        )
    }
    /// On the repository host, as its pgBackRest user.
    pub(crate) fn on_repo(&self, args: &str) -> String {
        self.command(&self.repo_user, args)
    }
    /// On a member, as `postgres`.
    pub(crate) fn on_member(&self, args: &str) -> String {
        self.command("postgres", args)
    }
}

/// One backup of the repository, from `pgbackrest info --output=json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct BackupSet {
    pub label: String,
    /// `full`, `diff` or `incr`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix times.
    pub start: i64,
    pub stop: i64,
    pub lsn_start: String,
    pub lsn_stop: String,
    /// Bytes of the database it holds.
    pub size: u64,
    /// Bytes it takes in the repository.
    pub repo_size: u64,
}

/// The stanza's state: its backups (oldest first), its status message and WAL range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Info {
    pub backups: Vec<BackupSet>,
    pub status_code: i64,
    pub status: String,
    /// The newest WAL segment in the archive.
    pub archive_max: Option<String>,
}

/// Reads `pgbackrest --stanza=S info --output=json`.
pub(crate) fn parse_info(text: &str) -> Result<Info, String> {
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("`pgbackrest info` did not print JSON: {e}"))?;
    let stanza = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| "`pgbackrest info` lists no stanza".to_string())?;
    let backups = stanza["backup"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["error"] != Value::Bool(true))
        .filter_map(|b| {
            Some(BackupSet {
                label: b["label"].as_str()?.to_string(),
                kind: b["type"].as_str()?.to_string(),
                start: b["timestamp"]["start"].as_i64()?,
                stop: b["timestamp"]["stop"].as_i64()?,
                lsn_start: b["lsn"]["start"].as_str().unwrap_or_default().to_string(),
                lsn_stop: b["lsn"]["stop"].as_str().unwrap_or_default().to_string(),
                size: b["info"]["size"].as_u64().unwrap_or(0),
                repo_size: b["info"]["repository"]["size"].as_u64().unwrap_or(0),
            })
        })
        .collect();
    Ok(Info {
        backups,
        status_code: stanza["status"]["code"].as_i64().unwrap_or(-1),
        status: stanza["status"]["message"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        archive_max: stanza["archive"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|a| a["max"].as_str())
            .map(str::to_string),
    })
}

/// An LSN (`16/B374D848`) as a number, for comparisons.
pub(crate) fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX)).then_some((hi << 32) | lo)
}

/// What a restore recovers to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// A time, as given, and as Unix seconds (read by PostgreSQL, which recovery uses too).
    Time(String, f64),
    Lsn(String, u64),
    /// The end of the archived WAL.
    Latest,
}

impl Target {
    /// pgBackRest's `restore` options for it.
    pub(crate) fn options(&self) -> String {
        match self {
            Target::Time(t, _) => {
                format!("--type=time --target={} --target-action=promote", quote(t))
            }
            Target::Lsn(l, _) => {
                format!("--type=lsn --target={} --target-action=promote", quote(l))
            }
            Target::Latest => "--type=default".into(),
        }
    }
    pub(crate) fn shown(&self) -> String {
        match self {
            Target::Time(t, _) => format!("time `{t}`"),
            Target::Lsn(l, _) => format!("LSN `{l}`"),
            Target::Latest => "the end of the archived WAL".into(),
        }
    }
}

/// A `--target-time` read without PostgreSQL (no member runs one to ask): only the
/// unambiguous form, a date, a time and a UTC offset (`2026-12-01 22:54:45.5+00`,
/// `2026-12-01T22:54:45Z`, `+05:30`), as Unix seconds. Recovery reads the same text.
pub(crate) fn parse_time_with_offset(t: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "`--target-time` `{t}`: with no PostgreSQL running to read it, give a date, a time and a UTC offset (`2026-12-01 22:54:45+00`)"
        )
    };
    let s = t.trim();
    let (date, rest) = s.split_at_checked(10).ok_or_else(bad)?;
    let rest = rest.strip_prefix([' ', 'T']).ok_or_else(bad)?;
    let num = |x: &str| {
        (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse::<i64>().ok())
            .flatten()
    };
    let d: Vec<&str> = date.split('-').collect();
    let [Some(y), Some(mo), Some(day)] =
        [d.first(), d.get(1), d.get(2)].map(|p| p.and_then(|p| num(p)))
    else {
        return Err(bad());
    };
    let at = rest.find(['+', '-', 'Z', 'z']).ok_or_else(bad)?;
    let (clock, zone) = rest.split_at(at);
    let c: Vec<&str> = clock.trim_end().split(':').collect();
    let (h, mi, sec) = match c.as_slice() {
        [h, m] => (num(h), num(m), Some(0.0)),
        [h, m, s] => (
            num(h),
            num(m),
            s.split_once('.')
                .map_or(num(s).map(|v| v as f64), |(w, f)| {
                    num(w).and(num(f)).and(s.parse::<f64>().ok())
                }),
        ),
        _ => (None, None, None),
    };
    let (Some(h), Some(mi), Some(sec)) = (h, mi, sec) else {
        return Err(bad());
    };
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let z = zone[1..].replace(':', "");
            let (zh, zm) = match z.len() {
                2 => (num(&z), Some(0)),
                4 => (num(&z[..2]), num(&z[2..])),
                _ => (None, None),
            };
            let (Some(zh), Some(zm)) = (zh, zm) else {
                return Err(bad());
            };
            if zh > 15 || zm > 59 {
                return Err(bad());
            }
            sign * (zh * 3600 + zm * 60)
        }
    };
    let days_in = |y: i64, m: i64| match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&mo)
        || day < 1
        || day > days_in(y, mo)
        || h > 23
        || mi > 59
        || sec >= 60.0
    {
        return Err(bad());
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((days * 86_400 + h * 3600 + mi * 60 - offset) as f64 + sec)
}

/// The newest backup a restore to `target` can start from: one that ended before it (a time
/// target) or at or before it (an LSN); the newest one for `Latest`. `Err` says why there is
/// none.
pub(crate) fn backup_for<'a>(info: &'a Info, target: &Target) -> Result<&'a BackupSet, String> {
    let fit = |b: &&BackupSet| match target {
        Target::Time(_, t) => (b.stop as f64) < *t,
        Target::Lsn(_, l) => parse_lsn(&b.lsn_stop).is_some_and(|s| s <= *l),
        Target::Latest => true,
    };
    if let Some(b) = info.backups.iter().rev().find(fit) {
        return Ok(b);
    }
    Err(match (info.backups.first(), target) {
        (None, _) => "the repository holds no backup yet: take one with `pgdeploy backup`".into(),
        (Some(first), Target::Time(..)) => format!(
            "no backup ends before {}: the first one (`{}`) ended at `{}`",
            target.shown(),
            first.label,
            utc(first.stop)
        ),
        (Some(first), _) => format!(
            "no backup ends at or before {}: the first one (`{}`) ended at LSN `{}`",
            target.shown(),
            first.label,
            first.lsn_stop
        ),
    })
}

/// A Unix time as `2026-12-01 22:54:45+00`.
pub(crate) fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}+00",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `3 h 20 min`, `2 d 4 h`: how long ago, for `status`.
pub(crate) fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"[{"archive":[{"id":"15-1","max":"000000010000000000000007","min":"000000010000000000000001"}],
        "backup":[
          {"label":"20261201-230000F","type":"full","error":false,"timestamp":{"start":1764630000,"stop":1764630010},
           "lsn":{"start":"0/2000028","stop":"0/2000100"},"info":{"size":30000000,"repository":{"size":4000000}}},
          {"label":"20261201-230000F_20261201-231000D","type":"diff","error":false,"timestamp":{"start":1764630600,"stop":1764630605},
           "lsn":{"start":"0/5000028","stop":"0/5000138"},"info":{"size":30000000,"repository":{"size":100000}}}],
        "name":"pgcluster","status":{"code":0,"message":"ok"}}]"#;

    #[test]
    fn info_is_read() {
        let info = parse_info(INFO).unwrap();
        assert_eq!(info.backups.len(), 2);
        assert_eq!(info.backups[1].kind, "diff");
        assert_eq!(info.status, "ok");
        assert_eq!(
            info.archive_max.as_deref(),
            Some("000000010000000000000007")
        );
        assert!(parse_info("not json")
            .unwrap_err()
            .contains("did not print JSON"));
        assert!(parse_info("[]").unwrap_err().contains("no stanza"));
    }

    #[test]
    fn a_restore_starts_from_the_newest_backup_before_its_target() {
        let info = parse_info(INFO).unwrap();
        let at = |t: f64| backup_for(&info, &Target::Time("t".into(), t)).map(|b| b.label.clone());
        assert_eq!(
            at(1764630700.0).unwrap(),
            "20261201-230000F_20261201-231000D"
        );
        assert_eq!(at(1764630300.0).unwrap(), "20261201-230000F");
        let e = at(1764630005.0).unwrap_err();
        assert_eq!(
            e,
            "no backup ends before time `t`: the first one (`20261201-230000F`) ended at `2025-12-01 23:00:10+00`"
        );
        let lsn = |l: &str| backup_for(&info, &Target::Lsn(l.into(), parse_lsn(l).unwrap()));
        assert_eq!(lsn("0/2000100").unwrap().kind, "full");
        assert!(lsn("0/1000000")
            .unwrap_err()
            .contains("ended at LSN `0/2000100`"));
        assert_eq!(backup_for(&info, &Target::Latest).unwrap().kind, "diff");
        let empty = Info {
            backups: vec![],
            status_code: 2,
            status: "no valid backups".into(),
            archive_max: None,
        };
        assert!(backup_for(&empty, &Target::Latest)
            .unwrap_err()
            .contains("holds no backup yet"));
    }

    #[test]
    fn times_with_an_offset_are_read_without_postgresql() {
        let t = |s: &str| parse_time_with_offset(s);
        assert_eq!(t("2027-01-01 00:00:00+00").unwrap(), 1_798_761_600.0);
        assert_eq!(t("2027-01-01T00:00:00Z").unwrap(), 1_798_761_600.0);
        assert_eq!(t("2027-01-01 01:30+01:30").unwrap(), 1_798_761_600.0);
        assert_eq!(t("2026-12-31 19:00:00.25-0500").unwrap(), 1_798_761_600.25);
        assert_eq!(t("2024-02-29 12:00:00+00").unwrap(), 1_709_208_000.0);
        for bad in [
            "not a time",
            "2026-12-01 22:54:45",
            "2026-13-01 00:00:00+00",
            "2025-02-29 00:00:00+00",
            "2026-12-01 24:00:00+00",
            "2026-12-01 22:54:45+99",
            "2026-12-01 22:54:4x+00",
            "2026-12-01",
        ] {
            let e = t(bad).unwrap_err();
            assert!(
                e.contains("give a date, a time and a UTC offset"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn lsns_and_times() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("x/1"), None);
        assert_eq!(parse_lsn("12"), None);
        assert_eq!(utc(0), "1970-01-01 00:00:00+00");
        assert_eq!(utc(1_798_761_600), "2027-01-01 00:00:00+00");
        assert_eq!(age(30), "30 s");
        assert_eq!(age(3 * 3600 + 1200), "3 h 20 min");
    }

    #[test]
    fn the_locator_is_read() {
        let b = parse_locator(
            "stanza=pgcluster\nrepo_host=lb1\nrepo_user=postgres\nbinary=/usr/bin/pgbackrest\n",
        )
        .unwrap();
        assert_eq!(b.repo_host, "lb1");
        assert_eq!(
            b.on_repo("check"),
            "cd / && runuser -u postgres -- /usr/bin/pgbackrest --stanza=pgcluster check"
        );
        assert!(parse_locator("stanza=\nrepo_host=lb1\n").is_none());
        assert_eq!(
            Target::Time("2026-12-01 23:00:00+00".into(), 0.0).options(),
            "--type=time --target='2026-12-01 23:00:00+00' --target-action=promote"
        );
    }
}
