//! `pgdeploy status`: the cluster as Patroni and etcd see it, read from one member over SSH
//! (`patronictl list` and `etcdctl endpoint health` run on the host, with its own
//! configuration and certificates, so no port needs to be open to the workstation).

use serde::Serialize;
use serde_json::Value;

use crate::transport::{Become, ExecRequest, Transport, TransportError};

/// One row of `patronictl list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRow {
    pub member: String,
    pub host: String,
    pub role: String,
    pub state: String,
    /// Timeline; unknown while a member starts.
    pub timeline: Option<u64>,
    /// Replication lag in MB, for replicas.
    pub lag_mb: Option<f64>,
}

/// One etcd endpoint's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EtcdRow {
    pub endpoint: String,
    pub health: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The member the status was read from.
    pub read_from: String,
    pub scope: Option<String>,
    pub members: Vec<MemberRow>,
    pub etcd: Vec<EtcdRow>,
}

impl Status {
    /// Healthy: one leader, every other member streaming, every etcd endpoint healthy.
    pub fn healthy(&self) -> bool {
        let leaders = self
            .members
            .iter()
            .filter(|m| m.role == "Leader" || m.role == "Standby Leader")
            .count();
        leaders == 1
            && self
                .members
                .iter()
                .all(|m| m.role.contains("Leader") || m.state == "streaming")
            && !self.etcd.is_empty()
            && self.etcd.iter().all(|e| e.health)
    }
}

/// The script run on the member: both JSON documents, separated by a marker line.
fn script(config_file: &str) -> String {
    let config = crate::transport::shell::quote(config_file);
    format!(
        "patronictl -c {config} list -f json; echo; echo '==etcd'; \
         . /etc/default/etcd 2>/dev/null; \
         ETCDCTL_API=3 etcdctl --endpoints=\"${{ETCD_ADVERTISE_CLIENT_URLS:-http://127.0.0.1:2379}}\" \
         ${{ETCD_TRUSTED_CA_FILE:+--cacert=$ETCD_TRUSTED_CA_FILE}} \
         ${{ETCD_CERT_FILE:+--cert=$ETCD_CERT_FILE}} ${{ETCD_KEY_FILE:+--key=$ETCD_KEY_FILE}} \
         endpoint health --cluster -w json 2>&1"
    )
}

/// Reads the status through one member's transport.
pub async fn read(
    transport: &dyn Transport,
    config_file: &str,
    become_: Become,
) -> Result<Status, TransportError> {
    let out = transport
        .exec(&ExecRequest {
            command: script(config_file),
            stdin: None,
            become_,
            timeout: Some(std::time::Duration::from_secs(30)),
        })
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse(transport.host(), &text).map_err(|message| TransportError::Remote {
        host: transport.host().to_string(),
        message: format!(
            "{message}; stderr: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

pub fn parse(host: &str, text: &str) -> Result<Status, String> {
    let (patroni, etcd) = text.split_once("\n==etcd\n").unwrap_or((text, ""));
    let rows: Vec<Value> = serde_json::from_str(patroni.trim())
        .map_err(|_| format!("`patronictl list` gave no JSON on `{host}`"))?;
    let members = rows
        .iter()
        .map(|r| MemberRow {
            member: r["Member"].as_str().unwrap_or_default().to_string(),
            host: r["Host"].as_str().unwrap_or_default().to_string(),
            role: r["Role"].as_str().unwrap_or_default().to_string(),
            state: r["State"].as_str().unwrap_or_default().to_string(),
            timeline: r["TL"].as_u64(),
            lag_mb: r
                .get("Lag in MB")
                .or_else(|| r.get("Replay Lag"))
                .and_then(Value::as_f64),
        })
        .collect();
    let scope = rows
        .first()
        .and_then(|r| r["Cluster"].as_str())
        .map(str::to_string);
    let etcd = match serde_json::from_str::<Vec<Value>>(etcd.trim()) {
        Ok(eps) => eps
            .iter()
            .map(|e| EtcdRow {
                endpoint: e["endpoint"].as_str().unwrap_or_default().to_string(),
                health: e["health"].as_bool().unwrap_or(false),
                error: e["error"].as_str().map(str::to_string),
            })
            .collect(),
        Err(_) => vec![EtcdRow {
            endpoint: "(etcd)".into(),
            health: false,
            error: Some(
                etcd.trim()
                    .lines()
                    .last()
                    .unwrap_or("no answer")
                    .to_string(),
            ),
        }],
    };
    Ok(Status {
        read_from: host.to_string(),
        scope,
        members,
        etcd,
    })
}

/// The `patronictl list`-like table, then etcd's endpoints.
pub fn to_text(s: &Status) -> String {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_etcd_failure_is_unhealthy() {
        let text = OUT.split("==etcd").next().unwrap().to_string()
            + "==etcd\n{\"level\":\"warn\"}\nError: unhealthy cluster\n";
        let s = parse("pg1", &text).unwrap();
        assert!(!s.healthy());
        assert_eq!(s.etcd[0].error.as_deref(), Some("Error: unhealthy cluster"));
    }
}
