//! `pgbackrest`: backups and WAL archiving with pgBackRest, the repository on one host of the
//! inventory (a balancer, a dedicated host) and the PostgreSQL members reaching it over mutual
//! TLS (`pgbackrest server` on both sides, with the `certificates` module's files: no SSH keys
//! to exchange). `state: configured` writes `pgbackrest.conf`, the server unit, the scheduled
//! backups' timers (repository host) and a locator; `state: stanza` (repository host, once
//! the cluster runs) creates the stanza and checks that archiving works.
//!
//! Patroni's side (`archive_command`, `restore_command`, `create_replica_methods`) is the
//! `patroni` task's (`dcs.parameters`, `dcs.recovery_conf`, `postgresql.create_replica_methods`),
//! converged through `PATCH /config` like every DCS setting.

mod params;
mod render;

use serde_json::Value;

pub(crate) use params::{Pgbackrest, State};
pub(crate) use render::{backup_unit, Peer, BINARY, CONFIG, SERVER_UNIT, TIMED};

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec::{self, Required};
use super::common::hosts;
use super::common::shell::quote;
use super::common::stat::{self, Kind};
use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

const UNIT_DIR: &str = "/etc/systemd/system";

/// What `apply` does, in this order.
#[derive(Debug, Default)]
struct Work {
    require: Option<Required>,
    create_user: Option<String>,
    dirs: Vec<String>,
    locator_dir: bool,
    files: Vec<ContentWork>,
    daemon_reload: bool,
    /// `systemctl` commands, in order.
    units: Vec<String>,
    /// `stanza-create` then `check`, as the repository user.
    stanza: bool,
}

/// `systemctl is-active` / `is-enabled` of each unit, from one probe.
fn unit_states(out: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let mut m = std::collections::BTreeMap::new();
    for line in out.lines() {
        let mut parts = line.splitn(3, '\t');
        if let (Some(u), Some(a), Some(e)) = (parts.next(), parts.next(), parts.next()) {
            m.insert(u.to_string(), (a.to_string(), e.to_string()));
        }
    }
    m
}

fn running(active: &str) -> bool {
    matches!(active, "active" | "activating" | "reloading")
}

/// The status codes of `pgbackrest info --output=json` that mean the stanza exists: `0` ok,
/// `2` no valid backup yet.
pub(crate) fn stanza_exists(info: &Value) -> bool {
    info.as_array()
        .and_then(|a| a.first())
        .and_then(|s| s["status"]["code"].as_i64())
        .is_some_and(|c| c == 0 || c == 2)
}

impl Pgbackrest {
    fn is_repo(&self, cx: &HostContext<'_>) -> bool {
        cx.host == self.repo_host
    }

    /// The members (inventory order), reached by their inventory names: pgBackRest checks a
    /// server's certificate against the name it connects to, among the DNS names of its
    /// SANs only (an IP address SAN never matches), and the `certificates` module puts the
    /// inventory name there.
    fn members(&self, cx: &HostContext<'_>) -> Result<Vec<Peer>, ModuleError> {
        Ok(hosts::group_members(cx, &self.group)?
            .into_iter()
            .map(|h| Peer {
                name: h.name.clone(),
                address: h.name.clone(),
            })
            .collect())
    }

    fn repo_address(&self, cx: &HostContext<'_>) -> Result<String, ModuleError> {
        if !cx
            .scope
            .shared()
            .inventory
            .hosts
            .contains_key(&self.repo_host)
        {
            return Err(ModuleError::Failed(format!(
                "`repo_host` `{}` is not a host of the inventory",
                self.repo_host
            )));
        }
        Ok(self.repo_host.clone())
    }

    /// As whom pgBackRest runs on this host.
    fn user(&self, cx: &HostContext<'_>) -> &str {
        if self.is_repo(cx) {
            &self.repo_user
        } else {
            "postgres"
        }
    }

    /// `pgbackrest ARGS` as this host's pgBackRest user.
    fn command(&self, cx: &HostContext<'_>, args: &str) -> String {
        format!(
            "runuser -u {} -- {BINARY} --stanza={} {args}",
            quote(self.user(cx)),
            self.stanza
        )
    }

    async fn plan_configured(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let repo = self.is_repo(cx);
        let members = self.members(cx)?;
        if !repo && !members.iter().any(|m| m.name == cx.host) {
            return Err(ModuleError::Failed(format!(
                "`{}` is neither the repository host `{}` nor a host of group `{}`",
                cx.host, self.repo_host, self.group
            )));
        }
        let user = self.user(cx).to_string();
        let mut changes = Vec::new();
        let mut notes = Vec::new();
        let mut work = Work::default();
        let peers: Vec<String> = if repo {
            members.iter().map(|m| m.address.clone()).collect()
        } else {
            vec![self.repo_address(cx)?]
        };
        let mut probe = format!(
            "test -x {BINARY} && echo binary=yes; id -u -- {} >/dev/null 2>&1 && echo user=yes; ",
            quote(&user)
        );
        for p in &peers {
            probe.push_str(&format!(
                "getent hosts -- {q} >/dev/null || echo unresolved={q}; ",
                q = quote(p)
            ));
        }
        probe.push_str("true");
        let out = exec::check(cx, &probe, "the `pgbackrest` probe").await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let unresolved: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("unresolved="))
            .map(|n| format!("`{n}`"))
            .collect();
        if !unresolved.is_empty() {
            return Err(ModuleError::Failed(format!(
                "{} does not resolve on `{}`: pgBackRest reaches its peers by inventory name, the DNS name their certificates carry (it never matches IP address SANs); add them to DNS or `/etc/hosts`",
                unresolved.join(", "),
                cx.host
            )));
        }
        if !text.lines().any(|l| l == "binary=yes") {
            let error = format!(
                "pgBackRest is not installed on `{}` (no `{BINARY}`): install the `pgbackrest` package",
                cx.host
            );
            notes.push(format!(
                "{error} (an earlier task is expected to; apply stops here if it has not)"
            ));
            work.require = Some(Required {
                path: BINARY.into(),
                error,
            });
        }
        if !text.lines().any(|l| l == "user=yes") {
            if !repo {
                // The members' PostgreSQL user comes with the server packages.
                notes.push(format!(
                    "user `postgres` does not exist on `{}` yet (the PostgreSQL packages create it)",
                    cx.host
                ));
            } else {
                changes.push(Change::new(format!(
                    "create system user `{user}` (owns the repository)"
                )));
                work.create_user = Some(format!(
                    "useradd --system --user-group --home-dir {} --shell /bin/sh -- {}",
                    quote(&self.repo_path),
                    quote(&user)
                ));
            }
        }
        let mut dirs = vec![
            ("/etc/pgbackrest".to_string(), "root", 0o755),
            ("/var/log/pgbackrest".to_string(), user.as_str(), 0o750),
        ];
        if repo {
            dirs.push((self.repo_path.clone(), user.as_str(), 0o750));
        }
        for (path, owner, mode) in &dirs {
            let state = stat::probe(cx, path, false).await?;
            let wanted = Wanted {
                owner: Some(owner),
                group: Some(owner),
                mode: Some(Mode(*mode)),
            };
            let install = format!(
                "install -d -o {owner} -g {owner} -m {:04o} -- {}",
                mode,
                quote(path)
            );
            match state.kind {
                Kind::Missing => {
                    changes.push(Change::new(format!(
                        "create directory `{path}`{}",
                        wanted.describe()
                    )));
                    work.dirs.push(install);
                }
                Kind::Directory => {
                    let fix = wanted.diff(&state.ownership.clone().unwrap_or_default());
                    if !fix.is_empty() {
                        changes.push(Change::new(format!("`{path}`: {}", fix.describe())));
                        work.dirs.push(install);
                    }
                }
                ref other => {
                    return Err(ModuleError::Failed(format!(
                        "`{path}` is {}, not a directory",
                        other.describe()
                    )))
                }
            }
        }

        let config = if repo {
            self.repo_config(&members)
        } else {
            self.member_config(&self.repo_address(cx)?)
        };
        let server = format!("{UNIT_DIR}/{SERVER_UNIT}");
        let mut files: Vec<(String, String, &str, Mode)> = vec![
            (CONFIG.into(), config, user.as_str(), Mode(0o640)),
            (server, self.server_unit(&user), "root", Mode(0o644)),
        ];
        let mut timers = Vec::new();
        if repo {
            for kind in TIMED {
                let cal = self.calendar(kind);
                if cal.is_empty() {
                    continue;
                }
                files.push((
                    format!("{UNIT_DIR}/{}", backup_unit(kind, "service")),
                    self.backup_service(kind),
                    "root",
                    Mode(0o644),
                ));
                files.push((
                    format!("{UNIT_DIR}/{}", backup_unit(kind, "timer")),
                    self.backup_timer(kind, cal),
                    "root",
                    Mode(0o644),
                ));
                timers.push(backup_unit(kind, "timer"));
            }
        }
        files.push((
            pgdeploy_core::locator::PGBACKREST.into(),
            self.locator(),
            "root",
            Mode(0o644),
        ));
        let mut restart_server = false;
        let mut changed_timers = Vec::new();
        for (path, text, group, mode) in &files {
            let desired = Desired {
                dest: path,
                content: text.clone().into_bytes(),
                wanted: Wanted {
                    owner: Some("root"),
                    group: Some(group),
                    mode: Some(*mode),
                },
                validate: None,
            };
            let state = stat::probe(cx, path, true).await?;
            if let Some((file_changes, file_work)) = content::decide(&desired, &state)? {
                for mut c in file_changes {
                    if let (Some(d), Some(p)) = (c.diff.as_mut(), &self.cipher_pass) {
                        d.before = d.before.as_deref().map(|t| p.mask_in(t));
                        d.after = d.after.as_deref().map(|t| p.mask_in(t));
                    }
                    changes.push(c);
                }
                if path.starts_with(UNIT_DIR) {
                    work.daemon_reload = true;
                }
                if path == CONFIG || path.ends_with(SERVER_UNIT) {
                    restart_server = true;
                } else if let Some(t) = timers.iter().find(|t| {
                    path.ends_with(&t.replace(".timer", ".service")) || path.ends_with(*t)
                }) {
                    changed_timers.push(t.clone());
                }
                if path == pgdeploy_core::locator::PGBACKREST && state.kind == Kind::Missing {
                    work.locator_dir = true;
                }
                work.files.push(file_work);
            }
        }

        let mut units = vec![SERVER_UNIT.to_string()];
        units.extend(timers.iter().cloned());
        let script: String = units
            .iter()
            .map(|u| {
                format!(
                    "printf '%s\\t%s\\t%s\\n' {u} \"$(systemctl is-active -- {u} 2>/dev/null)\" \"$(systemctl is-enabled -- {u} 2>/dev/null)\"; "
                )
            })
            .collect();
        let out = exec::run(cx, &script).await?;
        let states = unit_states(&String::from_utf8_lossy(&out.stdout));
        for u in &units {
            let (active, enabled) = states.get(u).cloned().unwrap_or_default();
            if enabled != "enabled" {
                changes.push(Change::new(format!("enable `{u}`")));
                work.units.push(format!("systemctl enable -- {u}"));
            }
            let changed = if u == SERVER_UNIT {
                restart_server
            } else {
                changed_timers.contains(u)
            };
            if !running(&active) {
                changes.push(Change::new(format!("start `{u}`")));
                work.units.push(format!("systemctl start -- {u}"));
            } else if changed {
                changes.push(Change::new(format!(
                    "restart `{u}` (its configuration changed)"
                )));
                work.units.push(format!("systemctl restart -- {u}"));
            }
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged().with_notes(notes));
        }
        Ok(Plan::changes(changes, work).with_notes(notes))
    }

    async fn plan_stanza(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        if !self.is_repo(cx) {
            return Err(ModuleError::Failed(format!(
                "`state: stanza` runs on the repository host `{}`, not on `{}`",
                self.repo_host, cx.host
            )));
        }
        let out = exec::run(cx, &self.command(cx, "--output=json info")).await?;
        let info: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if out.status == 0 && stanza_exists(&info) {
            return Ok(Plan::unchanged());
        }
        Ok(Plan::changes(
            vec![Change::new(format!(
                "create stanza `{}` (`stanza-create`) and check that WAL archiving reaches the repository (`check`)",
                self.stanza
            ))],
            Work {
                stanza: true,
                ..Work::default()
            },
        ))
    }
}

#[async_trait::async_trait]
impl Action for Pgbackrest {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        match self.state {
            State::Configured => self.plan_configured(cx).await,
            State::Stanza => self.plan_stanza(cx).await,
        }
    }

    /// Binary check, user, directories, files, units; or the stanza.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<Work>() else {
            return Ok(());
        };
        if let Some(r) = &work.require {
            r.check(cx).await?;
        }
        for cmd in work.create_user.iter().chain(&work.dirs) {
            exec::check(cx, cmd, cmd).await?;
        }
        if work.locator_dir {
            let cmd = format!("mkdir -p -- {}", pgdeploy_core::locator::DIR);
            exec::check(cx, &cmd, &cmd).await?;
        }
        let mask = |e: ModuleError| match (&self.cipher_pass, e) {
            (Some(p), ModuleError::Failed(m)) => ModuleError::Failed(p.mask_in(&m)),
            (
                Some(p),
                ModuleError::Command {
                    command,
                    status,
                    output,
                },
            ) => ModuleError::Command {
                command,
                status,
                output: p.mask_in(&output),
            },
            (_, other) => other,
        };
        for f in &work.files {
            content::apply(cx, f).await.map_err(mask)?;
        }
        if work.daemon_reload {
            exec::check(cx, "systemctl daemon-reload", "systemctl daemon-reload").await?;
        }
        for cmd in &work.units {
            exec::check(cx, cmd, cmd).await?;
        }
        if work.units.iter().any(|c| c.ends_with(SERVER_UNIT)) {
            // The server listens a moment after systemd starts it: the next task may reach it.
            let wait = format!(
                "for i in $(seq 50); do ss -Htln 'sport = :{}' | grep -q . && exit 0; sleep 0.2; done; exit 1",
                self.tls_port
            );
            exec::check(cx, &wait, &format!("wait for `{SERVER_UNIT}` to listen"))
                .await
                .map_err(|_| {
                    ModuleError::Failed(format!(
                        "`{SERVER_UNIT}` does not listen on port `{}` on `{}` after 10 s; see `journalctl -u {SERVER_UNIT}`",
                        self.tls_port, cx.host
                    ))
                })?;
        }
        if work.stanza {
            for step in ["stanza-create", "check"] {
                let cmd = self.command(cx, step);
                exec::check(
                    cx,
                    &cmd,
                    &format!("pgbackrest --stanza={} {step}", self.stanza),
                )
                .await
                .map_err(mask)?;
            }
        }
        Ok(())
    }
}

impl Params for Pgbackrest {
    const NAME: &'static str = "pgbackrest";
    const SUMMARY: &'static str =
        "pgBackRest: repository host and members over TLS, scheduled backups, the stanza";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        Pgbackrest::check(self)
    }
}

#[cfg(test)]
mod tests;
