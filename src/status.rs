//! `pgdeploy status`: the cluster as Patroni and etcd see it, read from one member over SSH
//! (`patronictl list` and `etcdctl endpoint health` run on the host, with its own
//! configuration and certificates, so no port needs to be open to the workstation), and
//! which host holds the VIP.
//!
//! Nothing is looked for at a fixed path: the modules leave locator files in
//! `/var/lib/pgdeploy` (`patroni.env`: `PATRONI_CONFIG`, `PATRONICTL`; `etcd.env`:
//! `ETCD_CONFIG`, `ETCDCTL`; `keepalived.env`: `VIP`), which the scripts here source.

use serde::Serialize;
use serde_json::Value;

use pgdeploy_core::transport::{Become, ExecRequest, Transport, TransportError};
use pgdeploy_modules::etcd::health::{parse_health, script as health_script, EtcdRow};
use pgdeploy_modules::patroni_state::{
    no_locator_error, split_version, status_list_script, status_pause_script, version_before,
    NO_PATRONI,
};

/// One row of `patronictl list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct MemberRow {
    pub member: String,
    pub host: String,
    pub role: String,
    pub state: String,
    /// Timeline; unknown while a member starts.
    pub timeline: Option<u64>,
    /// Replication lag in MB, for replicas.
    pub lag_mb: Option<f64>,
}

/// A VIP (from a `keepalived.env`) and the hosts that have it among their addresses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct VipRow {
    pub address: String,
    /// Exactly one when healthy.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Status {
    /// The member the status was read from.
    pub read_from: String,
    pub scope: Option<String>,
    pub members: Vec<MemberRow>,
    pub etcd: Vec<EtcdRow>,
    /// The VIPs the hosts' locators name; empty without keepalived.
    pub vips: Vec<VipRow>,
    /// `patroni --version` of the member read from (`3.0.2`), when it said.
    pub patroni_version: Option<String>,
    /// Maintenance mode (`pgdeploy pause`): Patroni does no automatic failover.
    pub paused: bool,
    /// The pgBackRest repository, when the member has the `pgbackrest` locator.
    pub backups: Option<Backups>,
}

/// The repository as the member read from sees it (`pgbackrest info` through its TLS link
/// to the repository host) and its own WAL archiver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Backups {
    pub stanza_status: String,
    pub last_full: Option<crate::ops::backrest::BackupSet>,
    /// The newest differential or incremental backup after the last full one.
    pub last_diff: Option<crate::ops::backrest::BackupSet>,
    pub archive_max: Option<String>,
    /// The leader's `pg_stat_archiver` (whatever member the status was read from):
    /// `Some(true)` when its last archive attempt succeeded; `None` when it could not be
    /// read ([`Backups::archiving_note`] says why).
    pub archiving_ok: Option<bool>,
    /// The host whose `pg_stat_archiver` gave [`Backups::archiving_ok`]: the leader's.
    pub archiving_on: Option<String>,
    /// Why archiving was not read (no leader, the leader's host unreachable, …).
    pub archiving_note: Option<String>,
    /// Unix time on the member, for the backups' ages.
    pub now: Option<i64>,
    pub error: Option<String>,
}

use pgdeploy_core::locator::{KEEPALIVED as KEEPALIVED_LOCATOR, PGBACKREST as PGBACKREST_LOCATOR};

/// What a host has of the VIP: the one its locator names, and its IPv4 addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HostAddresses {
    pub vip: Option<String>,
    pub addresses: Vec<String>,
}

impl Status {
    /// Healthy: one leader, every other member streaming, every etcd endpoint healthy.
    pub(crate) fn healthy(&self) -> bool {
        let leaders = self
            .members
            .iter()
            .filter(|m| m.role == "Leader" || m.role == "Standby Leader")
            .count();
        // Before Patroni 3.0.4 a replica's state is `running` whether it streams or not:
        // there, `running` with a known lag is as far as `patronictl` tells.
        let old = self
            .patroni_version
            .as_deref()
            .is_some_and(|v| version_before(v, [3, 0, 4]));
        leaders == 1
            && !self.paused
            && self.members.iter().all(|m| {
                m.role.contains("Leader")
                    || m.state == "streaming"
                    || (old && m.state == "running" && m.lag_mb.is_some())
            })
            && !self.etcd.is_empty()
            && self.etcd.iter().all(|e| e.health)
            && self.vips.iter().all(|v| v.hosts.len() == 1)
    }
}

/// The part every host runs: its VIP locator and its addresses (one command per host).
pub(crate) fn addresses_script() -> String {
    format!(
        "echo '==vip'; cat {KEEPALIVED_LOCATOR} 2>/dev/null; echo; echo '==addresses'; \
         ip -o -4 addr show 2>/dev/null; echo '==end-addresses'"
    )
}

/// Reads [`addresses_script`]'s output; returns it and what followed it.
pub(crate) fn parse_addresses(text: &str) -> (HostAddresses, &str) {
    let mut h = HostAddresses::default();
    let Some(start) = text.find("==vip\n") else {
        return (h, text);
    };
    let body = &text[start + "==vip\n".len()..];
    let (vip_part, rest) = body.split_once("==addresses\n").unwrap_or((body, ""));
    let (addr_part, after) = rest.split_once("==end-addresses\n").unwrap_or((rest, ""));
    h.vip = vip_part.lines().find_map(|l| {
        let v = l.trim().strip_prefix("VIP=")?;
        let v = v.trim_matches(|c| c == '\'' || c == '"');
        let v = v.split('/').next().unwrap_or(v);
        (!v.is_empty()).then(|| v.to_string())
    });
    // `2: host0    inet 10.213.7.11/24 brd 10.213.7.255 scope global host0 …`
    h.addresses = addr_part
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next().map(str::to_string)
        })
        .collect();
    (h, after)
}

/// Every VIP a host's locator names, with the hosts holding it (in the order given).
pub(crate) fn vips(hosts: &[(String, HostAddresses)]) -> Vec<VipRow> {
    let mut rows: Vec<VipRow> = Vec::new();
    for (_, h) in hosts {
        if let Some(v) = &h.vip {
            if !rows.iter().any(|r| &r.address == v) {
                rows.push(VipRow {
                    address: v.clone(),
                    hosts: Vec::new(),
                });
            }
        }
    }
    for row in &mut rows {
        row.hosts = hosts
            .iter()
            .filter(|(_, h)| h.addresses.contains(&row.address))
            .map(|(n, _)| n.clone())
            .collect();
    }
    rows
}

/// Runs [`addresses_script`] on a host.
pub(crate) async fn read_addresses(
    transport: &dyn Transport,
    become_: Become,
) -> Result<HostAddresses, TransportError> {
    let out = transport
        .exec(&ExecRequest {
            command: addresses_script(),
            stdin: None,
            become_,
            timeout: Some(std::time::Duration::from_secs(30)),
        })
        .await?;
    Ok(parse_addresses(&String::from_utf8_lossy(&out.stdout)).0)
}

/// Before the line `pause: true` of `patronictl show-config` when the cluster is paused.
const PAUSE_MARK: &str = "==pause";
/// Before `pgbackrest info`'s JSON, then the archiver's line (`f|0|f`: not in recovery, no
/// failure, last failure not after the last success) and the member's clock.
const BACKUPS_MARK: &str = "==backups";
const NO_BACKUPS: &str = "==no-pgbackrest";
const ARCHIVER_MARK: &str = "==archiver";

/// The script run on the member: its addresses, then both JSON documents, separated by a
/// marker line. `config_file` overrides the locator's `PATRONI_CONFIG`.
fn script(config_file: Option<&str>) -> String {
    format!(
        "{addresses}; {patroni} echo; echo '==etcd'; \
         {etcd} \
         echo; echo '{PAUSE_MARK}'; {pause} echo; echo '{BACKUPS_MARK}'; \
         if [ -r {PGBACKREST_LOCATOR} ]; then . {PGBACKREST_LOCATOR}; cd / && \
         runuser -u postgres -- \"$PGBACKREST\" --stanza=\"$PGBACKREST_STANZA\" --output=json info 2>&1; \
         echo; echo '{ARCHIVER_MARK}'; {archiver} \
         else echo '{NO_BACKUPS}'; fi",
        addresses = addresses_script(),
        patroni = status_list_script(config_file),
        pause = status_pause_script(),
        archiver = archiver_script(),
        etcd = health_script(),
    )
}

/// Shell that prints the archiver's line: `f|0|f|1764630700` (not in recovery, failures,
/// last failure after the last success, the host's clock).
fn archiver_script() -> String {
    "cd / && runuser -u postgres -- psql -XAtc \
     \"select pg_is_in_recovery(), failed_count, coalesce(last_failed_time > last_archived_time, failed_count > 0), extract(epoch from now())::bigint from pg_stat_archiver\" 2>/dev/null;"
        .to_string()
}

/// Reads [`archiver_script`]'s line: whether archiving works (`None` on a replica or
/// without an answer) and the host's clock.
fn parse_archiver(line: &str) -> (Option<bool>, Option<i64>) {
    let fields: Vec<&str> = line.trim().split('|').collect();
    match fields.as_slice() {
        [recovery, _, failed_last, now] => (
            (*recovery == "f").then_some(*failed_last == "f"),
            now.parse().ok(),
        ),
        _ => (None, None),
    }
}

/// The host that is the leader member: the one of that name, else the one having the
/// leader's address among its own (`hosts`: each reachable host and its addresses).
pub(crate) fn leader_host(status: &Status, hosts: &[(String, HostAddresses)]) -> Option<String> {
    let leader = status.members.iter().find(|m| m.role == "Leader")?;
    if let Some((h, _)) = hosts.iter().find(|(h, _)| *h == leader.member) {
        return Some(h.clone());
    }
    let address = leader.host.split(':').next().unwrap_or_default();
    hosts
        .iter()
        .find(|(_, a)| a.addresses.iter().any(|x| x == address))
        .map(|(h, _)| h.clone())
}

/// Makes the status's archiving state the leader's: WAL is archived by the primary only,
/// so a replica's `pg_stat_archiver` tells nothing. The status was read on `read_from`;
/// when the leader is another host, its archiver is read there (`leader`: that host's
/// transport and privilege, `None` when it is not reachable).
pub(crate) async fn archiving_from_leader(
    status: &mut Status,
    hosts: &[(String, HostAddresses)],
    leader: impl FnOnce(&str) -> Option<(std::sync::Arc<dyn Transport>, Become)>,
) {
    let found = leader_host(status, hosts);
    let has_leader = status.members.iter().any(|m| m.role == "Leader");
    let Some(b) = status.backups.as_mut() else {
        return;
    };
    let Some(host) = found else {
        b.archiving_ok = None;
        b.archiving_on = None;
        b.archiving_note = Some(if has_leader {
            "the leader is not a reachable host of the inventory".into()
        } else {
            "the cluster has no leader".into()
        });
        return;
    };
    if host == status.read_from {
        b.archiving_on = b.archiving_ok.map(|_| host.clone());
        if b.archiving_ok.is_none() {
            b.archiving_note = Some(format!(
                "`{host}`'s `pg_stat_archiver` did not answer as a primary"
            ));
        }
        return;
    }
    b.archiving_ok = None;
    b.archiving_on = None;
    let Some((transport, become_)) = leader(&host) else {
        b.archiving_note = Some(format!("the leader `{host}` is not reachable"));
        return;
    };
    let out = transport
        .exec(&ExecRequest {
            command: archiver_script(),
            stdin: None,
            become_,
            timeout: Some(std::time::Duration::from_secs(30)),
        })
        .await;
    match out {
        Ok(out) => match parse_archiver(&String::from_utf8_lossy(&out.stdout)) {
            (Some(ok), _) => {
                b.archiving_ok = Some(ok);
                b.archiving_on = Some(host);
            }
            (None, _) => {
                b.archiving_note = Some(format!(
                    "`{host}`'s `pg_stat_archiver` did not answer as a primary"
                ))
            }
        },
        Err(e) => b.archiving_note = Some(format!("on the leader `{host}`: {e}")),
    }
}

/// Reads the status through one member's transport; also returns the member's addresses.
pub(crate) async fn read(
    transport: &dyn Transport,
    config_file: Option<&str>,
    become_: Become,
) -> Result<(Status, HostAddresses), TransportError> {
    let out = transport
        .exec(&ExecRequest {
            command: script(config_file),
            stdin: None,
            become_,
            timeout: Some(std::time::Duration::from_secs(30)),
        })
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (addresses, rest) = parse_addresses(&text);
    let status = parse(transport.host(), rest).map_err(|message| TransportError::Remote {
        host: transport.host().to_string(),
        message: if rest.trim() == NO_PATRONI {
            message
        } else {
            format!(
                "{message}; stderr: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        },
    })?;
    Ok((status, addresses))
}

pub(crate) fn parse(host: &str, text: &str) -> Result<Status, String> {
    if text.trim() == NO_PATRONI {
        return Err(no_locator_error(host));
    }
    let (patroni_version, text) = split_version(text);
    let (text, backups) = match text.rsplit_once(&format!("\n{BACKUPS_MARK}\n")) {
        Some((t, b)) => (t, parse_backups(b)),
        None => (text, None),
    };
    let (text, paused) = match text.rsplit_once(&format!("\n{PAUSE_MARK}\n")) {
        Some((t, p)) => (t, p.trim().starts_with("pause:")),
        None => (text, false),
    };
    let (patroni, etcd) = text.split_once("\n==etcd\n").unwrap_or((text, ""));
    let rows: Vec<Value> = serde_json::from_str(patroni.trim())
        .map_err(|_| format!("`patronictl list` gave no JSON on `{host}`"))?;
    let members = rows
        .iter()
        .map(|r| {
            let m = pgdeploy_modules::patroni_state::member(r);
            MemberRow {
                member: m.name,
                host: m.host,
                role: m.role,
                state: m.state,
                timeline: m.timeline,
                lag_mb: m.lag_mb,
            }
        })
        .collect();
    let scope = rows
        .first()
        .and_then(|r| r["Cluster"].as_str())
        .map(str::to_string);
    let etcd = parse_health(host, etcd);
    Ok(Status {
        read_from: host.to_string(),
        scope,
        members,
        etcd,
        vips: Vec::new(),
        patroni_version,
        paused,
        backups,
    })
}

/// The section after [`BACKUPS_MARK`]: `None` without the `pgbackrest` locator.
fn parse_backups(text: &str) -> Option<Backups> {
    use crate::ops::backrest::parse_info;
    if text.trim() == NO_BACKUPS {
        return None;
    }
    let (info, archiver) = text
        .split_once(&format!("\n{ARCHIVER_MARK}\n"))
        .unwrap_or((text, ""));
    let (archiving_ok, now) = parse_archiver(archiver);
    Some(match parse_info(info) {
        Ok(i) => {
            let last_full_at = i.backups.iter().rposition(|b| b.kind == "full");
            Backups {
                stanza_status: i.status.clone(),
                last_full: last_full_at.map(|n| i.backups[n].clone()),
                last_diff: last_full_at.and_then(|n| i.backups[n + 1..].last().cloned()),
                archive_max: i.archive_max.clone(),
                archiving_ok,
                archiving_on: None,
                archiving_note: None,
                now,
                error: None,
            }
        }
        Err(e) => Backups {
            stanza_status: "unknown".into(),
            last_full: None,
            last_diff: None,
            archive_max: None,
            archiving_ok,
            archiving_on: None,
            archiving_note: None,
            now,
            error: Some(info.trim().lines().last().map(str::to_string).unwrap_or(e)),
        },
    })
}

/// The backups' lines of the text status.
fn backups_text(b: &Backups) -> String {
    use crate::ops::backrest::{age, utc};
    let mut out = format!("\nbackups (pgBackRest): {}\n", b.stanza_status);
    if let Some(e) = &b.error {
        out.push_str(&format!("  UNAVAILABLE: {e}\n"));
    }
    for (what, set) in [
        ("last full", &b.last_full),
        ("last diff/incr", &b.last_diff),
    ] {
        match set {
            Some(s) => out.push_str(&format!(
                "  {what}: `{}` at {}{}\n",
                s.label,
                utc(s.stop),
                b.now
                    .map(|n| format!(" ({} ago)", age(n - s.stop)))
                    .unwrap_or_default()
            )),
            None => out.push_str(&format!("  {what}: none\n")),
        }
    }
    let on = b
        .archiving_on
        .as_deref()
        .map(|h| format!(" (on the leader `{h}`)"))
        .unwrap_or_default();
    let archiving = match b.archiving_ok {
        Some(true) => format!("ok{on}"),
        Some(false) => format!("FAILING{on}: see its `pg_stat_archiver`"),
        None => format!(
            "not read: {}",
            b.archiving_note.as_deref().unwrap_or("no leader answered")
        ),
    };
    out.push_str(&format!(
        "  WAL archive up to {}; archiving: {archiving}\n",
        b.archive_max.as_deref().unwrap_or("(none)")
    ));
    out
}

/// The `patronictl list`-like table, then etcd's endpoints.
pub(crate) fn to_text(s: &Status) -> String {
    let mut rows = vec![[
        "Member".to_string(),
        "Host".into(),
        "Role".into(),
        "State".into(),
        "TL".into(),
        "Lag in MB".into(),
    ]];
    for m in &s.members {
        rows.push([
            m.member.clone(),
            m.host.clone(),
            m.role.clone(),
            m.state.clone(),
            m.timeline.map(|t| t.to_string()).unwrap_or_default(),
            m.lag_mb.map(|l| format!("{l}")).unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "cluster `{}` (read from `{}`)\n",
        s.scope.as_deref().unwrap_or("?"),
        s.read_from
    );
    if s.paused {
        out.push_str(
            "PAUSED: maintenance mode, no automatic failover (`pgdeploy resume` ends it)\n",
        );
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str("\netcd\n");
    for e in &s.etcd {
        let state = if e.health { "healthy" } else { "UNHEALTHY" };
        out.push_str(&format!("{}  {state}", e.endpoint));
        if let Some(err) = &e.error {
            out.push_str(&format!("  ({err})"));
        }
        out.push('\n');
    }
    if !s.vips.is_empty() {
        out.push('\n');
    }
    for v in &s.vips {
        let on = match v.hosts.as_slice() {
            [] => "no host (UNHEALTHY)".to_string(),
            [one] => one.clone(),
            many => format!("{} (UNHEALTHY: more than one host)", many.join(", ")),
        };
        out.push_str(&format!("VIP {} on {on}\n", v.address));
    }
    if let Some(b) = &s.backups {
        out.push_str(&backups_text(b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdeploy_core::locator::{ETCD as ETCD_LOCATOR, PATRONI as PATRONI_LOCATOR};
    use pgdeploy_modules::patroni_state::VERSION_MARK;

    const OUT: &str = r#"[{"Cluster": "pgcluster", "Member": "pg1", "Host": "10.0.0.11", "Role": "Leader", "State": "running", "TL": 1}, {"Cluster": "pgcluster", "Member": "pg2", "Host": "10.0.0.12", "Role": "Sync Standby", "State": "streaming", "TL": 1, "Receive LSN": "0/5000000", "Receive Lag": 0, "Replay LSN": "0/5000000", "Replay Lag": 0}]
==etcd
[{"endpoint":"http://10.0.0.11:2379","health":true,"took":"1.2ms"},{"endpoint":"http://10.0.0.12:2379","health":true,"took":"1.5ms"}]
"#;

    #[test]
    fn reads_patronictl_and_etcdctl_output() {
        let s = parse("pg1", OUT).unwrap();
        assert!(s.healthy());
        assert_eq!(s.members[1].role, "Sync Standby");
        assert_eq!(s.members[1].lag_mb, Some(0.0));
        insta::assert_snapshot!(to_text(&s), @r"
        cluster `pgcluster` (read from `pg1`)
        Member  Host       Role          State      TL  Lag in MB
        pg1     10.0.0.11  Leader        running    1
        pg2     10.0.0.12  Sync Standby  streaming  1   0

        etcd
        http://10.0.0.11:2379  healthy
        http://10.0.0.12:2379  healthy
        ");
    }

    #[test]
    fn replicas_of_patroni_before_3_0_4_are_running() {
        let old = OUT.replace("\"State\": \"streaming\"", "\"State\": \"running\"");
        let s = parse("pg1", &old).unwrap();
        assert!(!s.healthy(), "a running replica of an unknown Patroni");
        let s = parse("pg1", &format!("{VERSION_MARK}patroni 3.0.2\n{old}")).unwrap();
        assert_eq!(s.patroni_version.as_deref(), Some("3.0.2"));
        assert!(s.healthy());
        let s = parse("pg1", &format!("{VERSION_MARK}patroni 4.1.5\n{old}")).unwrap();
        assert!(!s.healthy(), "Patroni 4 says `streaming` when it streams");
        assert!(version_before("3.0.2", [3, 0, 4]) && !version_before("3.0.4", [3, 0, 4]));
        assert!(!version_before("10.0", [3, 0, 4]));
    }

    #[test]
    fn backups_are_read_with_their_ages() {
        let text = format!(
            "{OUT}\n{BACKUPS_MARK}\n{}\n{ARCHIVER_MARK}\nf|0|f|1764630700\n",
            r#"[{"archive":[{"max":"000000010000000000000007"}],"backup":[
              {"label":"F1","type":"full","timestamp":{"start":1764630000,"stop":1764630010},"lsn":{"start":"0/1","stop":"0/2"},"info":{"size":1,"repository":{"size":1}}},
              {"label":"F1_D1","type":"diff","timestamp":{"start":1764630600,"stop":1764630605},"lsn":{"start":"0/3","stop":"0/4"},"info":{"size":1,"repository":{"size":1}}}],
              "status":{"code":0,"message":"ok"}}]"#
        );
        let s = parse("pg1", &text).unwrap();
        let b = s.backups.as_ref().unwrap();
        assert_eq!(b.last_full.as_ref().unwrap().label, "F1");
        assert_eq!(b.last_diff.as_ref().unwrap().label, "F1_D1");
        assert_eq!(b.archiving_ok, Some(true));
        let shown = to_text(&s);
        assert!(
            shown.contains("last full: `F1` at 2025-12-01 23:00:10+00 (11 min ago)"),
            "{shown}"
        );
        assert!(
            shown.contains("WAL archive up to 000000010000000000000007; archiving: ok"),
            "{shown}"
        );
        let none = parse("pg1", &format!("{OUT}\n{BACKUPS_MARK}\n{NO_BACKUPS}\n")).unwrap();
        assert!(none.backups.is_none());
        let broken = parse(
            "pg1",
            &format!("{OUT}\n{BACKUPS_MARK}\nERROR: [039]: HTTP request failed\n{ARCHIVER_MARK}\nt|0|f|1\n"),
        )
        .unwrap();
        let b = broken.backups.unwrap();
        assert_eq!(
            b.error.as_deref(),
            Some("ERROR: [039]: HTTP request failed")
        );
        assert_eq!(b.archiving_ok, None);
    }

    #[test]
    fn a_paused_cluster_says_so() {
        let s = parse("pg1", &format!("{OUT}\n==pause\npause: true\n")).unwrap();
        assert!(s.paused);
        assert!(!s.healthy(), "no automatic failover while paused");
        assert!(s.etcd.iter().all(|e| e.health), "{:?}", s.etcd);
        assert!(to_text(&s).contains("\nPAUSED: maintenance mode, no automatic failover"));
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains(r#""paused":true"#));
        let s = parse("pg1", &format!("{OUT}\n==pause\n")).unwrap();
        assert!(!s.paused && s.healthy());
    }

    #[test]
    fn an_etcd_failure_is_unhealthy() {
        let text = OUT.split("==etcd").next().unwrap().to_string()
            + "==etcd\n{\"level\":\"warn\"}\nError: unhealthy cluster\n";
        let s = parse("pg1", &text).unwrap();
        assert!(!s.healthy());
        assert_eq!(s.etcd[0].error.as_deref(), Some("Error: unhealthy cluster"));
    }

    const ADDRESSES: &str = "==vip\n# Managed by pgdeploy\nVIP=10.213.7.100\n\n==addresses\n\
        1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
        2: host0    inet 10.213.7.21/24 brd 10.213.7.255 scope global host0\\       valid_lft forever\n\
        2: host0    inet 10.213.7.100/24 scope global secondary host0\\       valid_lft forever\n\
        ==end-addresses\n";

    #[test]
    fn the_vip_is_found_among_a_hosts_addresses() {
        let (lb1, rest) = parse_addresses(ADDRESSES);
        assert_eq!(rest, "");
        assert_eq!(lb1.vip.as_deref(), Some("10.213.7.100"));
        assert_eq!(lb1.addresses, ["127.0.0.1", "10.213.7.21", "10.213.7.100"]);
        let (lb2, _) =
            parse_addresses(&ADDRESSES.replace("    inet 10.213.7.100/24", "    inet6 x"));
        let (pg1, _) = parse_addresses(
            "==vip\n\n==addresses\n2: host0 inet 10.213.7.11/24\n==end-addresses\n",
        );
        let hosts = [
            ("lb1".to_string(), lb1),
            ("lb2".to_string(), lb2.clone()),
            ("pg1".to_string(), pg1),
        ];
        let rows = vips(&hosts);
        assert_eq!(
            rows,
            [VipRow {
                address: "10.213.7.100".into(),
                hosts: vec!["lb1".into()]
            }]
        );
        let mut s = parse("pg1", OUT).unwrap();
        s.vips = rows;
        assert!(s.healthy());
        assert!(
            to_text(&s).ends_with("\nVIP 10.213.7.100 on lb1\n"),
            "{}",
            to_text(&s)
        );
        assert!(serde_json::to_string(&s)
            .unwrap()
            .contains(r#""vips":[{"address":"10.213.7.100","hosts":["lb1"]}]"#));
        s.vips = vips(&[("lb2".to_string(), lb2)]);
        assert!(!s.healthy());
        assert!(to_text(&s).ends_with("VIP 10.213.7.100 on no host (UNHEALTHY)\n"));
    }

    #[test]
    fn a_host_without_locators_says_so() {
        let e = parse("pg1", "==no-patroni-locator\n").unwrap_err();
        assert_eq!(
            e,
            "`pg1` has no `/var/lib/pgdeploy/patroni.env`: was `playbooks/site.yml` applied?"
        );
        let text = OUT.split("==etcd").next().unwrap().to_string() + "==etcd\n==no-etcd-locator\n";
        let s = parse("pg1", &text).unwrap();
        assert!(!s.healthy());
        assert_eq!(
            s.etcd[0].error.as_deref(),
            Some("`pg1` has no `/var/lib/pgdeploy/etcd.env`: was `playbooks/site.yml` applied?")
        );
    }

    /// The member script in a real shell, with stand-ins for `patronictl` and `etcdctl`
    /// found through the locator files (here in a temporary directory).
    #[test]
    fn the_script_sources_the_locators() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let write = |name: &str, text: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        write(
            "patronictl",
            "#!/bin/sh\necho \"[{\\\"ctl\\\": \\\"$2\\\"}]\"\n",
        );
        // `patroni` beside `patronictl`, as every install method puts them
        write("patroni", "#!/bin/sh\necho patroni 3.0.2\n");
        write(
            "etcdctl",
            "#!/bin/sh\necho \"[{\\\"args\\\": \\\"$*\\\"}]\"\n",
        );
        write(
            "etcd.conf",
            "ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.11:2379\nETCD_TRUSTED_CA_FILE=/ca.crt\n",
        );
        write(
            "patroni.env",
            &format!("PATRONI_CONFIG=/etc/p.yml\nPATRONICTL={d}/patronictl\n"),
        );
        write(
            "etcd.env",
            &format!("ETCD_CONFIG={d}/etcd.conf\nETCDCTL={d}/etcdctl\n"),
        );
        let run = |over: Option<&str>| {
            let s = script(over)
                .replace(PATRONI_LOCATOR, &format!("{d}/patroni.env"))
                .replace(ETCD_LOCATOR, &format!("{d}/etcd.env"));
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(s)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let out = run(None);
        let (_, rest) = parse_addresses(&out);
        let (patroni, etcd) = rest.split_once("\n==etcd\n").unwrap();
        let (etcd, pause) = etcd.rsplit_once("\n==pause\n").unwrap();
        // without the `pgbackrest` locator (its path here is the host's own, absent), no
        // backups section
        assert_eq!(
            pause.trim(),
            format!("{BACKUPS_MARK}\n{NO_BACKUPS}"),
            "not paused"
        );
        assert_eq!(
            patroni.trim(),
            format!("{VERSION_MARK}patroni 3.0.2\n[{{\"ctl\": \"/etc/p.yml\"}}]")
        );
        assert_eq!(
            parse("pg1", rest).unwrap().patroni_version.as_deref(),
            Some("3.0.2")
        );
        assert_eq!(
            etcd.trim(),
            r#"[{"args": "--endpoints=https://10.0.0.11:2379 --cacert=/ca.crt endpoint health --cluster -w json"}]"#
        );
        assert!(run(Some("/other.yml")).contains(r#"[{"ctl": "/other.yml"}]"#));
        std::fs::remove_file(dir.path().join("patroni.env")).unwrap();
        let out = run(None);
        assert_eq!(parse_addresses(&out).1.trim(), "==no-patroni-locator");
    }

    /// The status read on a replica (`db-b`, in recovery), the leader `pg1` at `10.0.0.11`
    /// being inventory host `db-a`: archiving is the leader's, read there.
    #[tokio::test]
    async fn archiving_is_the_leaders_whatever_member_answers_first() {
        use pgdeploy_core::transport::ExecOutput;
        use pgdeploy_test_support::memory::MemoryTransport;
        use std::sync::Arc;
        let answer = |stdout: &str| ExecOutput {
            status: 0,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        };
        let info = r#"[{"archive":[{"max":"000000010000000000000007"}],"backup":[],"status":{"code":2,"message":"no valid backups"}}]"#;
        // on the replica: its archiver says nothing of archiving (`t`: in recovery)
        let replica = MemoryTransport::new("db-b").answer_exact(
            &script(None),
            answer(&format!(
                "==vip\n==addresses\n2: h0 inet 10.0.0.12/24 brd x\n==end-addresses\n{OUT}\n{BACKUPS_MARK}\n{info}\n{ARCHIVER_MARK}\nt|0|f|1764630700\n"
            )),
        );
        // on the leader: three failures, the last after the last success
        let leader: Arc<dyn Transport> = Arc::new(
            MemoryTransport::new("db-a")
                .answer_exact(&archiver_script(), answer("f|3|t|1764630700\n")),
        );
        let (mut s, replica_addresses) = read(&replica, None, Become::No).await.unwrap();
        assert_eq!(s.read_from, "db-b");
        let hosts = vec![
            (
                "db-a".to_string(),
                HostAddresses {
                    vip: None,
                    addresses: vec!["10.0.0.11".into()],
                },
            ),
            ("db-b".to_string(), replica_addresses),
        ];
        assert_eq!(leader_host(&s, &hosts).as_deref(), Some("db-a"));
        let mut asked = Vec::new();
        archiving_from_leader(&mut s, &hosts, |h| {
            asked.push(h.to_string());
            Some((leader.clone(), Become::No))
        })
        .await;
        assert_eq!(asked, ["db-a"]);
        let b = s.backups.as_ref().unwrap();
        assert_eq!(b.archiving_ok, Some(false), "{b:?}");
        assert_eq!(b.archiving_on.as_deref(), Some("db-a"));
        assert!(
            to_text(&s)
                .contains("archiving: FAILING (on the leader `db-a`): see its `pg_stat_archiver`"),
            "{}",
            to_text(&s)
        );
        // the leader unreachable, or no leader: not read, and said why
        let (mut s, _) = read(&replica, None, Become::No).await.unwrap();
        archiving_from_leader(&mut s, &hosts, |_| None).await;
        assert!(to_text(&s).contains("archiving: not read: the leader `db-a` is not reachable"));
        let (mut s, _) = read(&replica, None, Become::No).await.unwrap();
        s.members[0].role = "Replica".into();
        archiving_from_leader(&mut s, &hosts, |_| panic!("no leader to ask")).await;
        assert!(to_text(&s).contains("archiving: not read: the cluster has no leader"));
    }
}
