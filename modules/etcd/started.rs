//! `state: started`: every member enabled and started (restarted when its fingerprint
//! changed, one at a time), healthy, then `new` turned into `existing`.

use pgdeploy_core::module::{Change, Diff, HostContext, ModuleError, Plan};

use super::super::common::exec;
use super::super::common::shell::quote;
use super::params::Etcd;
use super::render::STAMP;

/// Members restart one at a time (steps of one run share this process).
pub(super) static RESTART_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the `started` step will do.
#[derive(Debug)]
pub(super) struct StartWork {
    /// The environment file of this host.
    pub(super) config: String,
    pub(super) enable: bool,
    /// `start` or `restart`.
    pub(super) verb: Option<&'static str>,
    /// Turn `new` into `existing` once healthy.
    pub(super) flip: bool,
}

pub(super) const FLIP_FROM: &str = "ETCD_INITIAL_CLUSTER_STATE=\"new\"";
pub(super) const FLIP_TO: &str = "ETCD_INITIAL_CLUSTER_STATE=\"existing\"";

impl Etcd {
    /// What the `started` step reads: unit state, fingerprints, whether the file says `new`.
    pub(super) fn started_probe(&self, host: &str, config: &str) -> String {
        let unit = quote(&self.service);
        format!(
            "echo \"active=$(systemctl is-active {unit})\"; echo \"enabled=$(systemctl is-enabled {unit} 2>/dev/null)\"; \
             echo \"fingerprint=$({})\"; echo \"stamp=$(cat {STAMP} 2>/dev/null)\"; \
             if grep -qx {} {} 2>/dev/null; then echo fresh=yes; fi",
            self.fingerprint_script(host, config),
            quote(FLIP_FROM),
            quote(config)
        )
    }

    pub(super) async fn plan_started(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let unit = quote(&self.service);
        let config = self.config_path(cx.facts, cx.host)?;
        let probe = self.started_probe(cx.host, &config);
        let out = exec::check(cx, &probe, &format!("systemctl show {unit}")).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let running = matches!(
            get("active").as_str(),
            "active" | "activating" | "reloading"
        );
        let enabled = matches!(get("enabled").as_str(), "enabled" | "static" | "alias");
        let changed_since = get("fingerprint") != get("stamp");
        let fresh = get("fresh") == "yes";
        let name = &self.service;
        let mut changes = Vec::new();
        if !enabled {
            changes.push(Change::new(format!("enable `{name}`")));
        }
        let verb = if !running {
            changes.push(Change::new(format!("start `{name}`")));
            Some("start")
        } else if changed_since {
            changes.push(Change::new(format!(
                "restart `{name}`: `{config}` or its certificates changed since it started"
            )));
            Some("restart")
        } else {
            None
        };
        if fresh {
            changes.push(
                Change::new(format!(
                    "set `ETCD_INITIAL_CLUSTER_STATE` to `existing` in `{config}` once the cluster is healthy"
                ))
                .with_diff(Diff {
                    path: config.clone(),
                    before: Some(format!("{FLIP_FROM}\n")),
                    after: Some(format!("{FLIP_TO}\n")),
                }),
            );
        }
        let work = StartWork {
            config,
            enable: !enabled,
            verb,
            flip: fresh,
        };
        // Even with nothing to change, apply waits until every member is healthy.
        Ok(if changes.is_empty() {
            Plan::run_unchanged(work)
        } else {
            Plan::changes(changes, work)
        })
    }

    pub(super) async fn apply_started(
        &self,
        cx: &HostContext<'_>,
        w: &StartWork,
    ) -> Result<(), ModuleError> {
        let members = self.resolve(cx)?;
        let endpoints: Vec<String> = members.iter().map(|m| self.client_url(m)).collect();
        if w.verb == Some("restart") {
            // A rolling restart: one member at a time, each once the other members are
            // healthy, so that the cluster keeps its quorum (this member may be the unhealthy
            // one that the restart repairs).
            let _one_at_a_time = RESTART_LOCK.lock().await;
            let others: Vec<String> = members
                .iter()
                .filter(|m| m.name != cx.host)
                .map(|m| self.client_url(m))
                .collect();
            if !others.is_empty() {
                self.wait_healthy(cx, &others).await?;
            }
            self.start(cx, &w.config, "restart", w.enable).await?;
            self.wait_healthy(cx, &endpoints).await?;
        } else if let Some(verb) = w.verb {
            self.start(cx, &w.config, verb, w.enable).await?;
        } else if w.enable {
            let cmd = format!("systemctl enable {}", quote(&self.service));
            exec::check(cx, &cmd, &cmd).await?;
        }
        self.wait_healthy(cx, &endpoints).await?;
        if w.flip {
            let current = cx
                .transport
                .read_file(&w.config, &cx.become_)
                .await?
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&current);
            let flipped: String = text
                .lines()
                .map(|l| if l == FLIP_FROM { FLIP_TO } else { l })
                .flat_map(|l| [l, "\n"])
                .collect();
            self.write_config(cx, &w.config, &flipped).await?;
        }
        Ok(())
    }
}
