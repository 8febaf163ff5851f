//! Patroni's REST API, reached from the host itself (`curl` to 127.0.0.1) so no port needs to
//! be open to the workstation, with the host's certificates when the API uses TLS.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::params::{RestApi, VerifyClient};
use crate::common::exec;
use crate::common::shell::quote;
use pgdeploy_core::module::{HostContext, ModuleError};
use pgdeploy_core::transport::ExecRequest;

pub(super) struct Rest {
    base: String,
    curl: String,
}

impl Rest {
    pub(super) fn new(r: &RestApi) -> Rest {
        let mut curl = String::from("curl -sS --max-time 10");
        let scheme = if r.certfile.is_some() {
            match &r.cafile {
                Some(ca) => curl.push_str(&format!(" --cacert {}", quote(ca))),
                // Without a CA to check against, the local API's own certificate is trusted.
                None => curl.push_str(" --insecure"),
            }
            if r.verify_client != VerifyClient::None {
                if let Some(c) = &r.certfile {
                    curl.push_str(&format!(" --cert {}", quote(c)));
                }
                if let Some(k) = &r.keyfile {
                    curl.push_str(&format!(" --key {}", quote(k)));
                }
            }
            "https"
        } else {
            "http"
        };
        Rest {
            base: format!("{scheme}://127.0.0.1:{}", r.port),
            curl,
        }
    }

    /// `GET /PATH` as JSON.
    pub(super) async fn get(&self, cx: &HostContext<'_>, path: &str) -> Result<Value, ModuleError> {
        let cmd = format!("{} {}/{path}", self.curl, self.base);
        let out = exec::check(cx, &cmd, &format!("GET /{path}")).await?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            ModuleError::Failed(format!(
                "Patroni `GET /{path}` on `{}`: not JSON: {e}",
                cx.host
            ))
        })
    }

    /// `PATCH /config` with `body`; the response is the new configuration.
    pub(super) async fn patch_config(
        &self,
        cx: &HostContext<'_>,
        body: &Value,
    ) -> Result<(), ModuleError> {
        let cmd = format!(
            "{} --fail-with-body -X PATCH -H 'Content-Type: application/json' --data-binary @- {}/config",
            self.curl, self.base
        );
        let out = cx
            .transport
            .exec(&ExecRequest {
                command: cmd,
                stdin: Some(body.to_string().into_bytes()),
                become_: cx.become_.clone(),
                timeout: None,
            })
            .await?;
        if out.status != 0 {
            return Err(exec::failure("PATCH /config", &out));
        }
        Ok(())
    }

    /// Waits until this member runs as the leader, or as a replica that streams from it.
    pub(super) async fn wait_ready(
        &self,
        cx: &HostContext<'_>,
        timeout: Duration,
    ) -> Result<(), ModuleError> {
        self.wait_url(cx, &self.base, cx.host, timeout).await
    }

    /// How many members `GET /cluster` lists.
    pub(super) async fn member_count(&self, cx: &HostContext<'_>) -> Result<usize, ModuleError> {
        let cluster = self.get(cx, "cluster").await?;
        Ok(cluster["members"].as_array().map_or(0, Vec::len))
    }

    /// The members waiting for a restart (`pending_restart` in `GET /cluster`): replicas
    /// first, the leader last, each with its REST API base URL.
    pub(super) async fn pending_restarts(
        &self,
        cx: &HostContext<'_>,
    ) -> Result<Vec<(String, String)>, ModuleError> {
        let cluster = self.get(cx, "cluster").await?;
        let members: Vec<(bool, String, String)> = cluster["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["pending_restart"] == Value::Bool(true))
            .filter_map(|m| {
                let name = m["name"].as_str()?.to_string();
                let base = m["api_url"]
                    .as_str()?
                    .trim_end_matches("/patroni")
                    .to_string();
                let leader = matches!(m["role"].as_str(), Some("leader" | "standby_leader"));
                Some((leader, name, base))
            })
            .collect();
        // `/cluster` comes from the DCS, updated once per HA loop: a member restarted a
        // moment ago may still be listed as pending there. Ask each listed member itself.
        let mut pending = Vec::new();
        for (leader, name, base) in members {
            let cmd = format!("{} {base}/patroni", self.curl);
            let out = exec::run(cx, &cmd).await?;
            let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if state["pending_restart"] == Value::Bool(true) {
                pending.push((leader, name, base));
            }
        }
        pending.sort_by_key(|(leader, _, _)| *leader);
        Ok(pending.into_iter().map(|(_, n, b)| (n, b)).collect())
    }

    /// Restarts each member in turn through its REST API (`POST /restart`, only if still
    /// pending), waiting for it to lead or stream again before the next.
    pub(super) async fn rolling_restart(
        &self,
        cx: &HostContext<'_>,
        members: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), ModuleError> {
        for (name, base) in members {
            let cmd = format!(
                "{} --max-time {} --fail-with-body -X POST -H 'Content-Type: application/json' \
                 --data '{{\"restart_pending\": true}}' {base}/restart",
                self.curl,
                // Patroni answers once PostgreSQL is back: the later `--max-time` wins.
                timeout.as_secs().max(10)
            );
            exec::check(cx, &cmd, &format!("POST /restart on `{name}`")).await?;
            self.wait_url(cx, base, name, timeout).await?;
        }
        Ok(())
    }

    /// Whether the cluster's leader (found through `base`'s `/cluster`) lists `member` among
    /// its streaming replication connections (the `replication` of its `/patroni`).
    async fn leader_streams_to(
        &self,
        cx: &HostContext<'_>,
        base: &str,
        member: &str,
    ) -> Result<bool, ModuleError> {
        let out = exec::run(cx, &format!("{} {base}/cluster", self.curl)).await?;
        let cluster: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let leader = cluster["members"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|m| {
                matches!(m["role"].as_str(), Some("leader" | "master" | "primary"))
                    .then(|| m["api_url"].as_str())
                    .flatten()
            });
        let Some(leader) = leader else {
            return Ok(false);
        };
        let out = exec::run(cx, &format!("{} {}", self.curl, quote(leader))).await?;
        let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Ok(streams_to(&state, member))
    }

    /// Waits until the member at `base` leads or streams.
    async fn wait_url(
        &self,
        cx: &HostContext<'_>,
        base: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), ModuleError> {
        let started = Instant::now();
        let cmd = format!("{} {base}/patroni", self.curl);
        let mut last = String::from("no answer from the REST API yet");
        loop {
            let out = exec::run(cx, &cmd).await?;
            if out.status == 0 {
                if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
                    let role = v["role"].as_str().unwrap_or("");
                    let state = v["state"].as_str().unwrap_or("");
                    let replication = v["replication_state"].as_str().unwrap_or("");
                    let member = v["name"].as_str().unwrap_or(name);
                    let ready = match (role, state) {
                        ("primary" | "master", "running") => true,
                        (_, "running" | "streaming") if replication == "streaming" => true,
                        // Patroni before 3.0.4 says neither: the leader's own view of its
                        // replication connections (pg_stat_replication) tells.
                        ("replica", "running") if v.get("replication_state").is_none() => {
                            self.leader_streams_to(cx, base, member).await?
                        }
                        _ => false,
                    };
                    if ready {
                        return Ok(());
                    }
                    last = format!("role `{role}`, state `{state}`, replication `{replication}`");
                }
            }
            if started.elapsed() >= timeout {
                return Err(ModuleError::Failed(format!(
                    "Patroni on `{}` neither leads nor streams after {} s ({last}); see `journalctl -u patroni`",
                    name,
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Whether a leader's `/patroni` lists `member` as a streaming replication connection.
fn streams_to(leader: &Value, member: &str) -> bool {
    leader["replication"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["application_name"] == member && r["state"] == "streaming")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_streaming_to_a_member() {
        let leader: Value = serde_json::from_str(
            r#"{"role": "master", "replication": [
                {"usename": "replicator", "application_name": "pg2", "client_addr": "10.0.0.12",
                 "state": "streaming", "sync_state": "async", "sync_priority": 0},
                {"application_name": "pg3", "state": "startup"}]}"#,
        )
        .unwrap();
        assert!(streams_to(&leader, "pg2"));
        assert!(!streams_to(&leader, "pg3"));
        assert!(!streams_to(&leader, "pg4"));
        assert!(!streams_to(&Value::Null, "pg2"));
    }
}
