//! The cluster as the day-2 commands see it: `patronictl list -e -f json` (members, roles,
//! states, lag, pending restarts, tags) and `patronictl show-config` (maintenance mode,
//! synchronous mode, `maximum_lag_on_failover`), read in one command on one member.

use serde::Serialize;
use serde_json::Value;

use pgdeploy_core::locator::PATRONI as PATRONI_LOCATOR;

/// One member, as `patronictl list -e` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub name: String,
    pub host: String,
    /// `Leader`, `Replica`, `Sync Standby`, `Standby Leader`, …
    pub role: String,
    /// `running`, `streaming`, `stopped`, `starting`, `creating replica`, …
    pub state: String,
    pub timeline: Option<u64>,
    pub lag_mb: Option<f64>,
    pub pending_restart: bool,
    /// The `nofailover` tag: Patroni never promotes this member.
    pub nofailover: bool,
}

impl Member {
    pub fn is_leader(&self) -> bool {
        self.role == "Leader" || self.role == "Standby Leader"
    }
    /// A leader that runs: PostgreSQL up and accepting writes.
    pub fn healthy_leader(&self) -> bool {
        self.is_leader() && self.state == "running"
    }
    /// A replica that streams from the leader (Patroni before 3.0.4 says `running` for one
    /// that does; there a known lag is as far as `patronictl` tells).
    pub fn streams(&self, old_patroni: bool) -> bool {
        !self.is_leader()
            && (self.state == "streaming"
                || (old_patroni && self.state == "running" && self.lag_mb.is_some()))
    }
    /// PostgreSQL runs on the member (as a leader or a replica, streaming or not).
    pub fn postgres_up(&self) -> bool {
        matches!(self.state.as_str(), "running" | "streaming")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterState {
    /// The member this was read from.
    pub read_from: String,
    pub scope: Option<String>,
    pub members: Vec<Member>,
    /// Maintenance mode (`pause: true` in the DCS configuration).
    pub paused: bool,
    pub synchronous_mode: bool,
    /// `maximum_lag_on_failover`, in bytes (Patroni's default: 1 MB).
    pub maximum_lag_on_failover: u64,
    pub patroni_version: Option<String>,
}

impl ClusterState {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
    pub fn leader(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.is_leader())
    }
    pub fn healthy_leader(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.healthy_leader())
    }
    pub fn old_patroni(&self) -> bool {
        self.patroni_version
            .as_deref()
            .is_some_and(|v| version_before(v, [3, 0, 4]))
    }
    /// Settled: exactly one leader, running; every other member streaming on its timeline.
    pub fn settled(&self) -> bool {
        let leaders: Vec<&Member> = self.members.iter().filter(|m| m.is_leader()).collect();
        let [leader] = leaders.as_slice() else {
            return false;
        };
        leader.healthy_leader()
            && self.members.iter().filter(|m| !m.is_leader()).all(|m| {
                m.streams(self.old_patroni())
                    && (leader.timeline.is_none() || m.timeline == leader.timeline)
            })
    }
    /// One line per member, for progress and errors.
    pub fn summary(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let mut s = format!("{} {} {}", m.name, m.role, m.state);
                if let Some(t) = m.timeline {
                    s.push_str(&format!(" TL {t}"));
                }
                if let Some(l) = m.lag_mb {
                    s.push_str(&format!(" lag {l} MB"));
                }
                if m.pending_restart {
                    s.push_str(" (pending restart)");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const CONFIG_MARK: &str = "==config";

/// Sources the Patroni locator and defines `ctl` (`patronictl` with its configuration);
/// without the locator the script prints [`NO_PATRONI`] and ends.
pub fn ctl_prefix() -> String {
    ctl_prefix_for(None)
}

/// [`ctl_prefix`] with `config_file` overriding the locator's `PATRONI_CONFIG`; with it, a
/// host without the locator is asked with the default `patronictl`.
fn ctl_prefix_for(config_file: Option<&str>) -> String {
    let set = config_file
        .map(|c| {
            format!(
                "PATRONI_CONFIG={}; ",
                pgdeploy_core::transport::shell::quote(c)
            )
        })
        .unwrap_or_default();
    let missing = if config_file.is_some() {
        set.clone()
    } else {
        format!("echo '{NO_PATRONI}'; exit 3; ")
    };
    format!(
        "PATRONI_CONFIG=; PATRONICTL=; \
         if [ -r {PATRONI_LOCATOR} ]; then . {PATRONI_LOCATOR}; {set}else {missing}fi; \
         ctl() {{ \"${{PATRONICTL:-patronictl}}\" -c \"$PATRONI_CONFIG\" \"$@\"; }}; "
    )
}

/// The script that reads the state: version, `list -e -f json`, then `show-config`.
pub fn read_script() -> String {
    format!(
        "{}{}ctl list -e -f json; echo; echo '{CONFIG_MARK}'; ctl show-config",
        ctl_prefix(),
        version_line_script()
    )
}

/// `pgdeploy status`'s Patroni part: the locator sourced (`config_file` overrides its
/// `PATRONI_CONFIG`; without either the script prints [`NO_PATRONI`] and ends), the version
/// line, then `patronictl list -f json`. Leaves `ctl` defined for
/// [`status_pause_script`].
pub fn status_list_script(config_file: Option<&str>) -> String {
    format!(
        "{}{}ctl list -f json;",
        ctl_prefix_for(config_file),
        version_line_script()
    )
}

/// The line `pause: true` of `patronictl show-config` when the cluster is in maintenance
/// mode, nothing otherwise (after [`status_list_script`]).
pub fn status_pause_script() -> String {
    "ctl show-config 2>/dev/null | grep -x 'pause: *true';".to_string()
}

/// Whether an exec's stdout says the host has no Patroni locator.
pub fn no_locator(stdout: &str) -> bool {
    stdout.trim() == NO_PATRONI
}

/// Reads [`read_script`]'s output.
pub fn parse(host: &str, text: &str) -> Result<ClusterState, String> {
    if no_locator(text) {
        return Err(no_locator_error(host));
    }
    let (patroni_version, text) = split_version(text);
    let (list, config) = text
        .split_once(&format!("\n{CONFIG_MARK}\n"))
        .unwrap_or((text, ""));
    let rows: Vec<Value> = serde_json::from_str(list.trim())
        .map_err(|_| format!("`patronictl list` gave no JSON on `{host}`"))?;
    let members = rows.iter().map(member).collect();
    let scope = rows
        .first()
        .and_then(|r| r["Cluster"].as_str())
        .map(str::to_string);
    let config: serde_json::Value = serde_yaml_ng::from_str(config).unwrap_or(Value::Null);
    Ok(ClusterState {
        read_from: host.to_string(),
        scope,
        members,
        paused: truthy(&config["pause"]),
        synchronous_mode: truthy(&config["synchronous_mode"]),
        maximum_lag_on_failover: config["maximum_lag_on_failover"]
            .as_u64()
            .unwrap_or(1_048_576),
        patroni_version,
    })
}

/// The DCS configuration (`patronictl show-config`) in [`read_script`]'s output; `Null` when
/// the output has none.
pub(crate) fn dcs_config(text: &str) -> Value {
    let (_, text) = split_version(text);
    text.split_once(&format!("\n{CONFIG_MARK}\n"))
        .and_then(|(_, config)| serde_yaml_ng::from_str(config).ok())
        .unwrap_or(Value::Null)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "on" | "yes"),
        _ => false,
    }
}

/// One row of `patronictl list -f json` (with `-e`, its extra columns are read too).
pub fn member(r: &Value) -> Member {
    let tags = &r["Tags"];
    let nofailover = match tags {
        Value::Object(_) => truthy(&tags["nofailover"]),
        // `patronictl` 3 shows tags as YAML text in some formats
        Value::String(s) => s
            .lines()
            .any(|l| l.replace(' ', "").eq_ignore_ascii_case("nofailover:true")),
        _ => false,
    };
    Member {
        name: r["Member"].as_str().unwrap_or_default().to_string(),
        host: r["Host"].as_str().unwrap_or_default().to_string(),
        role: r["Role"].as_str().unwrap_or_default().to_string(),
        state: r["State"].as_str().unwrap_or_default().to_string(),
        timeline: r["TL"].as_u64(),
        lag_mb: r
            .get("Lag in MB")
            .or_else(|| r.get("Replay Lag"))
            .and_then(Value::as_f64),
        pending_restart: match &r["Pending restart"] {
            Value::String(s) => !s.trim().is_empty(),
            Value::Bool(b) => *b,
            _ => false,
        },
        nofailover,
    }
}

/// What the member prints instead of Patroni's state when it has no Patroni locator.
pub const NO_PATRONI: &str = "==no-patroni-locator";

/// Whether a dotted version (`3.0.2`) is older than `than`.
pub fn version_before(version: &str, than: [u64; 3]) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let v = [
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    ];
    v < than
}

/// The line of the status script that gives Patroni's version (`patroni` is beside
/// `patronictl`, as every install method puts them).
/// Before the output of `patroni --version` (see [`version_line_script`]).
pub const VERSION_MARK: &str = "==patroni-version ";

/// Shell that prints [`VERSION_MARK`] and Patroni's version, once the locator is sourced
/// (`patroni` beside the `patronictl` it names).
pub fn version_line_script() -> String {
    format!("p=\"${{PATRONICTL:-patronictl}}\"; echo \"{VERSION_MARK}$(\"${{p%ctl}}\" --version 2>/dev/null)\"; ")
}

/// The version [`version_line_script`] printed at the start of `text`, and the rest.
pub fn split_version(text: &str) -> (Option<String>, &str) {
    match text.strip_prefix(VERSION_MARK) {
        Some(rest) => {
            let (line, rest) = rest.split_once('\n').unwrap_or((rest, ""));
            let v = line.trim().rsplit(' ').next().unwrap_or("").to_string();
            ((!v.is_empty()).then_some(v), rest)
        }
        None => (None, text),
    }
}

/// The error for a member without the Patroni locator file.
pub fn no_locator_error(host: &str) -> String {
    format!("`{host}` has no `{PATRONI_LOCATOR}`: was `playbooks/site.yml` applied?")
}

/// A three-member cluster's `patronictl` output, for the day-2 commands' tests too (feature
/// `fixtures`, on in tests only).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixture {
    use super::*;

    /// Three members: pg1 the leader, pg2 a sync standby, pg3 an async replica.
    pub const LIST: &str = r#"==patroni-version patroni 4.0.4
[{"Cluster": "pgcluster", "Member": "pg1", "Host": "10.0.0.11", "Role": "Leader", "State": "running", "TL": 2, "Pending restart": "*", "Pending restart reason": "max_connections", "Scheduled restart": "", "Tags": ""},
 {"Cluster": "pgcluster", "Member": "pg2", "Host": "10.0.0.12", "Role": "Sync Standby", "State": "streaming", "TL": 2, "Receive Lag": 0, "Replay Lag": 0, "Pending restart": "", "Tags": ""},
 {"Cluster": "pgcluster", "Member": "pg3", "Host": "10.0.0.13", "Role": "Replica", "State": "streaming", "TL": 2, "Replay Lag": 0, "Pending restart": "*", "Tags": {"nofailover": true}}]

==config
loop_wait: 10
maximum_lag_on_failover: 1048576
pause: true
synchronous_mode: true
ttl: 30
"#;

    pub fn state() -> ClusterState {
        parse("pg1", LIST).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;

    #[test]
    fn reads_list_and_config() {
        let s = state();
        assert_eq!(s.scope.as_deref(), Some("pgcluster"));
        assert_eq!(s.patroni_version.as_deref(), Some("4.0.4"));
        assert!(s.paused && s.synchronous_mode);
        assert_eq!(s.maximum_lag_on_failover, 1_048_576);
        assert_eq!(s.leader().unwrap().name, "pg1");
        let pending: Vec<&str> = s
            .members
            .iter()
            .filter(|m| m.pending_restart)
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(pending, ["pg1", "pg3"]);
        assert!(s.member("pg3").unwrap().nofailover);
        assert!(!s.member("pg2").unwrap().nofailover);
        assert!(s.settled());
        assert!(s
            .summary()
            .contains("pg3 Replica streaming TL 2 lag 0 MB (pending restart)"));
    }

    #[test]
    fn unsettled_clusters() {
        let mut s = state();
        s.members[2].state = "starting".into();
        assert!(!s.settled(), "a replica starting");
        let mut s = state();
        s.members[2].timeline = Some(1);
        assert!(!s.settled(), "a replica on an older timeline");
        let mut s = state();
        s.members[1].role = "Leader".into();
        assert!(!s.settled(), "two leaders");
        let mut s = state();
        s.members[0].state = "stopped".into();
        assert!(!s.settled(), "the leader stopped");
    }

    #[test]
    fn without_config_the_defaults_hold() {
        let text = LIST.split("==config").next().unwrap();
        let s = parse("pg1", text).unwrap();
        assert!(!s.paused && !s.synchronous_mode);
        assert_eq!(s.maximum_lag_on_failover, 1_048_576);
        assert!(parse("pg1", "==no-patroni-locator\n")
            .unwrap_err()
            .contains("has no `/var/lib/pgdeploy/patroni.env`"));
        assert!(parse("pg1", "Traceback").is_err());
    }
}
