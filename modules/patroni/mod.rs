//! `patroni`: a PostgreSQL cluster member run by Patroni. Patroni installed (packages, a pip
//! venv, or already there), config file and systemd unit, the distribution's own PostgreSQL
//! service kept off, start primary first then replicas, and, on a running cluster, the DCS
//! settings converged through the REST API (`PATCH /config`). A locator file tells
//! `pgdeploy status` where the config and `patronictl` are.
//!
//! pgdeploy never writes into the data directory: Patroni creates it at bootstrap (a config
//! file written there first is what keeps `initdb` from running, seed 001).

mod config;
mod install;
mod params;
mod platform;
mod rest;
mod rotate;

use std::time::Duration;

use serde_json::Value;

#[cfg(test)]
pub(crate) use config::locator;
pub(crate) use config::Member;
#[cfg(test)]
use config::{mask_passwords, unit};
#[cfg(test)]
use install::Install;
pub(crate) use params::Patroni;
pub(crate) use platform::Family;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec::{self, Required};
use super::common::shell::quote;
use super::common::stat;
use pgdeploy_core::module::{
    Action, Change, HostContext, HostOrdering, ModuleError, OrderingContext, Params, ParseContext,
    Plan, Probe as ReadAhead, ProbeContext, Problem,
};
use pgdeploy_core::params::Mode;
use rest::Rest;

const UNIT_PATH: &str = "/etc/systemd/system/patroni.service";
/// Where `pgdeploy status` looks for the config file and `patronictl` (see `src/status.rs`).
use pgdeploy_core::locator::{DIR as LOCATOR_DIR, PATRONI as LOCATOR};

/// What `apply` does, in this order.
#[derive(Debug, Default)]
struct Work {
    /// PostgreSQL's server binary, missing when the step planned (a dry run on a bare host),
    /// and the error if it still is at apply time.
    require_postgres: Option<Required>,
    /// Patroni installed first: the config is validated with the installed binary.
    install: Option<install::InstallWork>,
    /// The configuration's directory (owned by `postgres`, mode 0750).
    create_dir: Option<String>,
    /// The locator's directory is created before the locator is (`/var/lib/pgdeploy`).
    state_dir: bool,
    files: Vec<ContentWork>,
    unit_changed: bool,
    config_changed: bool,
    /// The distribution's PostgreSQL service to stop and disable.
    disable_dist: Option<String>,
    enable: bool,
    start: bool,
    reload: bool,
    /// The roles' new passwords, set on the leader before any file is written.
    rotate: Option<rotate::Rotation>,
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
    /// The distribution's PostgreSQL services: (active, enabled), by major version on EL
    /// (`postgresql-N`), under `""` on Debian (one `postgresql` service).
    dist: std::collections::BTreeMap<String, (bool, bool)>,
    config_dir_exists: bool,
    install: install::Found,
}

impl Probe {
    fn dist(&self, family: Family, version: u32) -> (bool, bool) {
        let key = match family {
            Family::Debian => String::new(),
            Family::RedHat => version.to_string(),
        };
        self.dist.get(&key).copied().unwrap_or_default()
    }
}

fn active(v: &str) -> bool {
    matches!(v, "active" | "reloading" | "activating")
}

fn parse_probe(out: &str) -> Probe {
    let mut p = Probe {
        install: install::parse(out),
        ..Probe::default()
    };
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
            "patroni_active" => p.patroni_active = active(v),
            "patroni_enabled" => p.patroni_enabled = v == "enabled",
            "confdir" => p.config_dir_exists = v == "yes",
            _ => {
                if let Some(n) = k.strip_prefix("dist_active") {
                    let key = n.trim_start_matches('_').to_string();
                    p.dist.entry(key).or_default().0 = active(v);
                } else if let Some(n) = k.strip_prefix("dist_enabled") {
                    let key = n.trim_start_matches('_').to_string();
                    p.dist.entry(key).or_default().1 = v == "enabled";
                }
            }
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

    /// The directory of `config_file`.
    fn config_dir(&self) -> String {
        self.config_file
            .rsplit_once('/')
            .map(|(d, _)| if d.is_empty() { "/" } else { d })
            .unwrap_or("/")
            .to_string()
    }

    /// The one read-only script of `plan`: the config directory, PostgreSQL's versions, the
    /// units, and what is installed of Patroni.
    fn probe_script(&self, family: Family) -> String {
        let mut s = format!(
            "printf 'confdir=%s\\n' \"$(test -d {d} && echo yes)\"; \
             printf 'versions=%s\\n' \"$({versions})\"; \
             printf 'patroni_active=%s\\n' \"$(systemctl is-active patroni 2>/dev/null)\"; \
             printf 'patroni_enabled=%s\\n' \"$(systemctl is-enabled patroni 2>/dev/null)\"; ",
            d = quote(&self.config_dir()),
            versions = family.versions_command(),
        );
        match family {
            Family::Debian => s.push_str(
                "printf 'dist_active=%s\\n' \"$(systemctl is-active postgresql 2>/dev/null)\"; \
                 printf 'dist_enabled=%s\\n' \"$(systemctl is-enabled postgresql 2>/dev/null)\"; ",
            ),
            Family::RedHat => s.push_str(
                "for v in $(cd /usr && ls -d pgsql-* 2>/dev/null | sed 's/^pgsql-//'); do \
                 printf 'dist_active_%s=%s\\n' \"$v\" \"$(systemctl is-active postgresql-$v 2>/dev/null)\"; \
                 printf 'dist_enabled_%s=%s\\n' \"$v\" \"$(systemctl is-enabled postgresql-$v 2>/dev/null)\"; \
                 done; ",
            ),
        }
        s.push_str(&self.install.probe_script(family));
        s.push_str("echo ==done");
        s
    }

    fn member(
        &self,
        cx: &HostContext<'_>,
        family: Family,
        probe: &Probe,
    ) -> Result<(Member, Option<String>), ModuleError> {
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
                    "no PostgreSQL under `{}` on `{}`: install the server package first (`{}`)",
                    family.versions_path(),
                    cx.host,
                    family.server_package("N")
                )))
            }
        };
        let mut missing = None;
        if let Some(v) = self.postgresql.version {
            if self.postgresql.bin_dir.is_none() && !probe.versions.contains(&v) {
                let found: Vec<String> = probe.versions.iter().map(|v| format!("`{v}`")).collect();
                // Not an error yet: on a bare host a dry run plans before the packages task
                // has run. Apply checks again before it changes anything.
                missing = Some(format!(
                    "PostgreSQL {v} is not installed on `{}` (under `{}`: {}): install `{}`",
                    cx.host,
                    family.versions_path(),
                    if found.is_empty() {
                        "none".to_string()
                    } else {
                        found.join(", ")
                    },
                    family.server_package(&v.to_string())
                ));
            }
        }
        Ok((
            Member {
                name: self.name.clone().unwrap_or_else(|| cx.host.to_string()),
                address,
                version,
                family,
            },
            missing,
        ))
    }

    fn rest(&self) -> Rest {
        Rest::new(&self.restapi)
    }

    /// The roles whose passwords the task gives, superuser first.
    fn roles(&self) -> Vec<rotate::Role> {
        let a = &self.authentication;
        vec![
            rotate::Role {
                name: a.superuser_name(),
                kind: "superuser",
                password: a.superuser.password.clone(),
            },
            rotate::Role {
                name: a.replication_name(),
                kind: "replication",
                password: a.replication.password.clone(),
            },
        ]
    }
}

#[async_trait::async_trait]
impl Action for Patroni {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let family = Family::from_facts(cx)?;
        self.intended_primary(cx)?;
        let config_dir = self.config_dir();
        let out = exec::check(cx, &self.probe_script(family), "the `patroni` probe").await?;
        let probe = parse_probe(&String::from_utf8_lossy(&out.stdout));
        let (member, missing) = self.member(cx, family, &probe)?;
        let mut changes = Vec::new();
        let mut notes = Vec::new();
        let mut work = Work::default();
        if let Some(problem) = missing {
            notes.push(format!(
                "{problem} (an earlier task is expected to; apply stops here if it has not)"
            ));
            work.require_postgres = Some(Required {
                path: format!("{}/postgres", self.bin_dir(&member)),
                error: problem,
            });
        }
        let (install_changes, install_work) =
            self.install.decide(cx.host, family, &probe.install)?;
        changes.extend(install_changes);
        let binaries = self.install.binaries();
        // Checked at apply time, after the install: a host without Patroni yet plans fine.
        let validate = install::validate_command(
            &binaries.patroni,
            self.install
                .version_after(&probe.install, install_work.as_ref())
                .as_ref(),
        );
        work.install = install_work;
        if !probe.config_dir_exists {
            changes.push(Change::new(format!(
                "create directory `{config_dir}` (owner `postgres`, mode `0750`)"
            )));
            work.create_dir = Some(config_dir);
        }

        // The rotation of passwords, if any, is shown where it runs: before the files.
        let files_at = changes.len();
        let mut config_before: Option<Vec<u8>> = None;
        for (path, text, mode, owner, validate) in [
            (
                UNIT_PATH.to_string(),
                config::unit(&binaries.patroni, &self.config_file),
                "0644",
                "root",
                None,
            ),
            (
                self.config_file.clone(),
                self.render(&member, false),
                "0600",
                "postgres",
                Some(validate.as_str()),
            ),
            (
                LOCATOR.to_string(),
                config::locator(&self.config_file, &binaries.patronictl),
                "0644",
                "root",
                None,
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
            let is_config = path == self.config_file;
            let state = if probe.config_dir_exists || !is_config {
                stat::probe(cx, &path, true).await?
            } else {
                stat::PathState::missing()
            };
            if is_config {
                config_before = state.content.clone();
            }
            if let Some((file_changes, file_work)) = content::decide(&desired, &state)? {
                for mut c in file_changes {
                    if let Some(d) = c.diff.as_mut() {
                        let (before, after) = config::mask_password_pair(
                            d.before.as_deref().unwrap_or_default(),
                            d.after.as_deref().unwrap_or_default(),
                        );
                        d.before = d.before.as_ref().map(|_| before);
                        d.after = d.after.as_ref().map(|_| after);
                    }
                    changes.push(c);
                }
                if path == UNIT_PATH {
                    work.unit_changed = true;
                } else if is_config {
                    work.config_changed = true;
                } else if state.kind == stat::Kind::Missing {
                    work.state_dir = true;
                }
                work.files.push(file_work);
            }
        }
        let (dist_active, dist_enabled) = probe.dist(family, member.version);
        if dist_active || dist_enabled {
            changes.push(Change::new(format!(
                "stop and disable {} (Patroni runs PostgreSQL)",
                family.dist_service_shown(member.version)
            )));
            work.disable_dist = Some(family.dist_service(member.version));
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
            let local = rotate::Local {
                psql: format!("{}/psql", self.bin_dir(&member)),
                port: self.postgresql.port,
                config_file: &self.config_file,
                config: config_before.as_deref(),
            };
            let (rotation, note) = rotate::plan(cx, &self.rest(), &local, &self.roles()).await?;
            notes.extend(note);
            if let Some((change, rotation)) = rotation {
                changes.insert(files_at, change);
                work.rotate = Some(rotation);
            }
            if work.config_changed {
                changes.push(Change::new("reload `patroni` (configuration changed)"));
                work.reload = true;
            }
            let current = self.rest().get(cx, "config").await?;
            let diff = config::dcs_diff(&current, &config::keep_managed_hba(self.dcs(), &current));
            if !diff.is_empty() {
                let lines: Vec<String> = diff
                    .iter()
                    .map(|(k, c, w)| format!("{}: {} → {}", config::show_path(k), show(c), show(w)))
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

    /// The probe script and the three files' states, read ahead (the REST API's answers are
    /// cluster state, never declared).
    fn probes(&self, cx: &ProbeContext<'_>) -> Vec<ReadAhead> {
        let Some(family) = Family::of(cx.facts) else {
            return Vec::new();
        };
        let mut p = vec![ReadAhead::command(self.probe_script(family))];
        for path in [UNIT_PATH, self.config_file.as_str(), LOCATOR] {
            p.extend(content::probes(path));
        }
        p
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<Work>() else {
            return Ok(());
        };
        if let Some(postgres) = &work.require_postgres {
            postgres.check(cx).await?;
        }
        if let Some(w) = &work.install {
            install::apply(cx, &self.install, w).await?;
        }
        if let Some(dir) = &work.create_dir {
            let cmd = format!(
                "install -d -m 0750 -o postgres -g postgres -- {}",
                quote(dir)
            );
            exec::check(cx, &cmd, &cmd).await?;
        }
        if work.state_dir {
            let cmd = format!("mkdir -p -- {}", quote(LOCATOR_DIR));
            exec::check(cx, &cmd, &cmd).await?;
        }
        if let Some(rotation) = &work.rotate {
            rotate::apply(cx, &self.rest(), rotation).await?;
        }
        for f in &work.files {
            content::apply(cx, f).await?;
        }
        if work.unit_changed {
            exec::check(cx, "systemctl daemon-reload", "systemctl daemon-reload").await?;
        }
        if let Some(service) = &work.disable_dist {
            let cmd = format!("systemctl disable --now {}", quote(service));
            exec::check(cx, &cmd, &cmd).await?;
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

#[cfg(test)]
mod install_tests;

#[cfg(test)]
mod rotate_tests;
