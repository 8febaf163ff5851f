//! `patroni`: a PostgreSQL cluster member run by Patroni. Config file and systemd unit,
//! Debian's own `postgresql` service kept off, start primary first then replicas, and, on a
//! running cluster, the DCS settings converged through the REST API (`PATCH /config`).
//!
//! pgdeploy never writes into the data directory: Patroni creates it at bootstrap (a config
//! file written there first is what keeps `initdb` from running, seed 001).

mod config;
mod params;
mod rest;

use std::time::Duration;

use serde_json::Value;

pub use config::{dcs_diff, mask_passwords, patch_body, unit, Member};
pub use params::Patroni;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::shell::quote;
use super::common::{exec, stat};
use crate::module::{
    Action, Change, HostContext, HostOrdering, ModuleError, OrderingContext, Params, ParseContext,
    Plan, Problem,
};
use crate::params::Mode;
use rest::Rest;

const UNIT_PATH: &str = "/etc/systemd/system/patroni.service";

/// What `apply` does, in this order.
#[derive(Debug, Default)]
struct Work {
    /// The configuration's directory, created first (owned by `postgres`, mode 0750).
    create_dir: Option<String>,
    files: Vec<ContentWork>,
    unit_changed: bool,
    config_changed: bool,
    disable_debian: bool,
    enable: bool,
    start: bool,
    reload: bool,
    patch: Option<Value>,
    /// Members to restart, replicas first; `Some(empty)`: look again after the patch.
    restart: Option<Vec<(String, String)>>,
}

/// What the host runs now.
#[derive(Debug, Default)]
struct Probe {
    versions: Vec<u32>,
    patroni_active: bool,
    patroni_enabled: bool,
    debian_active: bool,
    debian_enabled: bool,
    config_dir_exists: bool,
}

fn probe_script(config_dir: &str) -> String {
    format!(
        "printf 'confdir=%s\\n' \"$(test -d {d} && echo yes)\"; ",
        d = quote(config_dir)
    ) + "printf 'versions=%s\\n' \"$(ls /usr/lib/postgresql 2>/dev/null | tr '\\n' ' ')\"; \
     printf 'patroni_active=%s\\n' \"$(systemctl is-active patroni 2>/dev/null)\"; \
     printf 'patroni_enabled=%s\\n' \"$(systemctl is-enabled patroni 2>/dev/null)\"; \
     printf 'debian_active=%s\\n' \"$(systemctl is-active postgresql 2>/dev/null)\"; \
     printf 'debian_enabled=%s\\n' \"$(systemctl is-enabled postgresql 2>/dev/null)\""
}

fn parse_probe(out: &str) -> Probe {
    let mut p = Probe::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k {
            "versions" => {
                p.versions = v
                    .split_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect();
                p.versions.sort_unstable();
            }
            "patroni_active" => {
                p.patroni_active = matches!(v, "active" | "reloading" | "activating")
            }
            "patroni_enabled" => p.patroni_enabled = v == "enabled",
            "debian_active" => p.debian_active = matches!(v, "active" | "reloading" | "activating"),
            "debian_enabled" => p.debian_enabled = v == "enabled",
            "confdir" => p.config_dir_exists = v == "yes",
            _ => {}
        }
    }
    p
}

impl Patroni {
    /// The intended primary among `group`'s hosts: the one marked `patroni_primary: true`,
    /// else the first. Several marked hosts are an error.
    fn intended_primary(&self, cx: &HostContext<'_>) -> Result<Option<String>, ModuleError> {
        let ctx = cx.scope.context();
        let hosts: Vec<String> = ctx
            .get_attr("groups")
            .and_then(|g| g.get_item(&minijinja::Value::from(self.group.as_str())))
            .ok()
            .and_then(|v| {
                v.try_iter()
                    .ok()
                    .map(|it| it.map(|h| h.to_string()).collect())
            })
            .unwrap_or_default();
        let hostvars = ctx.get_attr("hostvars").ok();
        let marked: Vec<&String> = hosts
            .iter()
            .filter(|h| {
                hostvars
                    .as_ref()
                    .and_then(|hv| hv.get_item(&minijinja::Value::from(h.as_str())).ok())
                    .and_then(|v| v.get_attr("patroni_primary").ok())
                    .is_some_and(|v| v.is_true())
            })
            .collect();
        match marked.as_slice() {
            [] => Ok(hosts.first().cloned()),
            [one] => Ok(Some((*one).clone())),
            many => Err(ModuleError::Failed(format!(
                "hosts {} of group `{}` are all marked `patroni_primary`: mark exactly one",
                many.iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.group
            ))),
        }
    }

    fn member(&self, cx: &HostContext<'_>, probe: &Probe) -> Result<Member, ModuleError> {
        let address = match &self.address {
            Some(a) => a.clone(),
            None => cx
                .facts
                .get("ansible_default_ipv4")
                .and_then(|d| d.get("address"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "host `{}` has no `ansible_default_ipv4.address` fact: set `address`",
                        cx.host
                    ))
                })?,
        };
        let version = match (self.postgresql.version, probe.versions.last()) {
            (Some(v), _) => v,
            (None, Some(v)) => *v,
            (None, None) => {
                return Err(ModuleError::Failed(format!(
                    "no PostgreSQL under `/usr/lib/postgresql` on `{}`: install the server packages first",
                    cx.host
                )))
            }
        };
        if let Some(v) = self.postgresql.version {
            if self.postgresql.bin_dir.is_none() && !probe.versions.contains(&v) {
                return Err(ModuleError::Failed(format!(
                    "PostgreSQL {v} is not installed on `{}` (found: {:?})",
                    cx.host, probe.versions
                )));
            }
        }
        Ok(Member {
            name: self.name.clone().unwrap_or_else(|| cx.host.to_string()),
            address,
            version,
        })
    }

    fn rest(&self) -> Rest {
        Rest::new(&self.restapi)
    }
}

#[async_trait::async_trait]
impl Action for Patroni {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        self.intended_primary(cx)?;
        let config_dir = self
            .config_file
            .rsplit_once('/')
            .map(|(d, _)| if d.is_empty() { "/" } else { d })
            .unwrap_or("/")
            .to_string();
        let out = exec::check(
            cx,
            &probe_script(&config_dir),
            "systemctl is-active patroni",
        )
        .await?;
        let probe = parse_probe(&String::from_utf8_lossy(&out.stdout));
        let member = self.member(cx, &probe)?;
        let mut changes = Vec::new();
        let mut notes = Vec::new();
        let mut work = Work::default();
        if !probe.config_dir_exists {
            changes.push(Change::new(format!(
                "create directory `{config_dir}` (owner `postgres`, mode `0750`)"
            )));
            work.create_dir = Some(config_dir);
        }

        for (path, text, mode, owner, validate) in [
            (
                UNIT_PATH.to_string(),
                config::unit(&self.config_file),
                "0644",
                "root",
                None,
            ),
            (
                self.config_file.clone(),
                self.render(&member, false),
                "0600",
                "postgres",
                Some("/usr/local/bin/patroni --validate-config --ignore-listen-port %s"),
            ),
        ] {
            let mode: Mode =
                serde_json::from_value(Value::String(mode.into())).expect("valid mode");
            let desired = Desired {
                dest: &path,
                content: text.into_bytes(),
                wanted: Wanted {
                    owner: Some(owner),
                    group: Some(owner),
                    mode: Some(mode),
                },
                validate,
            };
            let state = if probe.config_dir_exists || path == UNIT_PATH {
                stat::probe(cx, &path, true).await?
            } else {
                stat::PathState::missing()
            };
            if let Some((file_changes, file_work)) = content::decide(&desired, &state)? {
                for mut c in file_changes {
                    if let Some(d) = c.diff.as_mut() {
                        d.before = d.before.as_deref().map(mask_passwords);
                        d.after = d.after.as_deref().map(mask_passwords);
                    }
                    changes.push(c);
                }
                if path == UNIT_PATH {
                    work.unit_changed = true;
                } else {
                    work.config_changed = true;
                }
                work.files.push(file_work);
            }
        }
        if probe.debian_active || probe.debian_enabled {
            changes.push(Change::new(
                "stop and disable Debian's `postgresql` service (Patroni runs PostgreSQL)",
            ));
            work.disable_debian = true;
        }
        if !probe.patroni_enabled {
            changes.push(Change::new("enable `patroni`"));
            work.enable = true;
        }
        if !probe.patroni_active {
            changes.push(Change::new(format!(
                "start `patroni` (member `{}`); wait until it leads or streams",
                member.name
            )));
            work.start = true;
        } else {
            if work.config_changed {
                changes.push(Change::new("reload `patroni` (configuration changed)"));
                work.reload = true;
            }
            let current = self.rest().get(cx, "config").await?;
            let diff = config::dcs_diff(&current, &self.dcs());
            if !diff.is_empty() {
                let lines: Vec<String> = diff
                    .iter()
                    .map(|(k, c, w)| format!("{k}: {} → {}", show(c), show(w)))
                    .collect();
                changes.push(Change::new(format!(
                    "PATCH /config (cluster `{}`): {}",
                    self.scope,
                    lines.join(", ")
                )));
                work.patch = Some(config::patch_body(&diff));
                if self.allow_restart {
                    // A patched setting may need a restart: known once Patroni applied it.
                    work.restart = Some(Vec::new());
                }
            }
            let pending = self.rest().pending_restarts(cx).await?;
            if !pending.is_empty() {
                let names: Vec<String> = pending.iter().map(|(n, _)| format!("`{n}`")).collect();
                if self.allow_restart {
                    changes.push(Change::new(format!(
                        "restart PostgreSQL (pending restart) through the REST API, replicas first, leader last: {}",
                        names.join(", ")
                    )));
                    work.restart = Some(pending);
                } else {
                    notes.push(format!(
                        "PostgreSQL waits for a restart on {} (a changed setting needs it); \
                         set `allow_restart: true` to restart replicas first, leader last",
                        names.join(", ")
                    ));
                }
            }
        }
        Ok(if changes.is_empty() {
            Plan::unchanged()
        } else {
            Plan::changes(changes, work)
        }
        .with_notes(notes))
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<Work>() else {
            return Ok(());
        };
        if let Some(dir) = &work.create_dir {
            let cmd = format!(
                "install -d -m 0750 -o postgres -g postgres -- {}",
                quote(dir)
            );
            exec::check(cx, &cmd, &cmd).await?;
        }
        for f in &work.files {
            content::apply(cx, f).await?;
        }
        if work.unit_changed {
            exec::check(cx, "systemctl daemon-reload", "systemctl daemon-reload").await?;
        }
        if work.disable_debian {
            exec::check(
                cx,
                "systemctl disable --now postgresql",
                "systemctl disable --now postgresql",
            )
            .await?;
        }
        if work.enable {
            exec::check(cx, "systemctl enable patroni", "systemctl enable patroni").await?;
        }
        let rest = self.rest();
        if work.start {
            exec::check(cx, "systemctl start patroni", "systemctl start patroni").await?;
            rest.wait_ready(cx, Duration::from_secs(self.wait_timeout))
                .await?;
        } else if work.reload {
            exec::check(cx, "systemctl reload patroni", "systemctl reload patroni").await?;
        }
        if let Some(body) = &work.patch {
            rest.patch_config(cx, body).await?;
        }
        if let Some(planned) = &work.restart {
            let timeout = Duration::from_secs(self.wait_timeout);
            let mut members = planned.clone();
            // Each member's Patroni applies a changed setting and flags its own pending
            // restart in its HA loop, and `/cluster` shows it one loop later: a setting
            // changed a moment ago (by this run's patch or the previous run) may be flagged
            // on some members only. Restart once the flags have settled: every member
            // flagged, or no new flag for a whole loop (two after a patch in this run).
            let total = rest.member_count(cx).await?;
            let quiet = Duration::from_secs(
                self.dcs.loop_wait * if members.is_empty() { 2 } else { 1 } + 3,
            );
            let mut since_change = std::time::Instant::now();
            while members.len() < total && since_change.elapsed() < quiet {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = rest.pending_restarts(cx).await?;
                if now.len() > members.len() {
                    members = now;
                    since_change = std::time::Instant::now();
                }
            }
            rest.rolling_restart(cx, &members, timeout).await?;
            // A setting lowered below the leader's (`max_connections`, …) can only be taken
            // by a replica once the leader runs with it: those replicas stay pending after
            // the first pass and need a second one.
            let again = rest.pending_restarts(cx).await?;
            if !again.is_empty() {
                rest.rolling_restart(cx, &again, timeout).await?;
            }
        }
        Ok(())
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

impl Params for Patroni {
    const NAME: &'static str = "patroni";
    const SUMMARY: &'static str =
        "a Patroni cluster member: config, unit, primary-first start, DCS settings converged";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        Patroni::check(self)
    }

    /// The intended primary bootstraps alone; replicas follow, a few at a time.
    fn ordering(cx: &OrderingContext<'_>) -> HostOrdering {
        let marked = cx.hosts.iter().find(|h| {
            h.vars
                .get("patroni_primary")
                .is_some_and(|v| v.value == Value::Bool(true))
        });
        let Some(first) = marked.or(cx.hosts.first()) else {
            return HostOrdering::Independent;
        };
        let then_at_most = cx
            .params
            .get("replicas_at_once")
            .and_then(|n| n.as_str())
            .and_then(|t| t.parse().ok())
            .unwrap_or(1);
        HostOrdering::FirstThenRolling {
            first: first.name.clone(),
            then_at_most,
        }
    }
}

#[cfg(test)]
mod tests;
