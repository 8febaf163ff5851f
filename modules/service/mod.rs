//! `service`: a systemd unit started, stopped, restarted or reloaded, and enabled or not.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};

use super::common::exec;
use super::common::shell::quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ServiceState {
    Started,
    Stopped,
    /// Restarted on every run (use it in handlers).
    Restarted,
    /// Reloaded on every run (use it in handlers).
    Reloaded,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Service {
    pub name: String,
    pub state: Option<ServiceState>,
    pub enabled: Option<bool>,
    /// Run `systemctl daemon-reload` first when a unit file changed since systemd loaded it.
    #[serde(default)]
    pub daemon_reload: bool,
}

/// What systemd says about the unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct UnitState {
    /// `systemctl is-active`: `active`, `inactive`, `failed`, `activating`, …
    pub active: String,
    /// `systemctl is-enabled`: `enabled`, `disabled`, `static`, `masked`, … ("" if unknown).
    pub enabled: String,
    /// `LoadState` is not `not-found`.
    pub loaded: bool,
    /// The unit file changed on disk since systemd loaded it.
    pub need_daemon_reload: bool,
}

impl UnitState {
    fn running(&self) -> bool {
        matches!(self.active.as_str(), "active" | "reloading" | "activating")
    }
    /// States where `enabled: true` has nothing to do (static units cannot be enabled).
    fn enabled(&self) -> bool {
        matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "static" | "indirect" | "generated" | "alias"
        )
    }
    /// States where `enabled: false` has something to do.
    fn disableable(&self) -> bool {
        matches!(self.enabled.as_str(), "enabled" | "enabled-runtime")
    }
}

/// The one script that reads everything `plan` needs.
fn probe_script(unit: &str) -> String {
    let u = quote(unit);
    format!(
        "printf 'active=%s\\n' \"$(systemctl is-active -- {u} 2>/dev/null)\"; \
         printf 'enabled=%s\\n' \"$(systemctl is-enabled -- {u} 2>/dev/null)\"; \
         systemctl show -p LoadState -p NeedDaemonReload -- {u}"
    )
}

fn parse_probe(stdout: &str) -> UnitState {
    let mut state = UnitState {
        loaded: true,
        ..UnitState::default()
    };
    for line in stdout.lines() {
        match line.split_once('=') {
            Some(("active", v)) => state.active = v.trim().to_string(),
            Some(("enabled", v)) => state.enabled = v.trim().to_string(),
            Some(("LoadState", v)) => state.loaded = v.trim() != "not-found",
            Some(("NeedDaemonReload", v)) => state.need_daemon_reload = v.trim() == "yes",
            _ => {}
        }
    }
    state
}

/// One `systemctl` step of `apply`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    DaemonReload,
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl Step {
    fn command(self, unit: &str) -> String {
        let verb = match self {
            Step::DaemonReload => return "systemctl daemon-reload".to_string(),
            Step::Enable => "enable",
            Step::Disable => "disable",
            Step::Start => "start",
            Step::Stop => "stop",
            Step::Restart => "restart",
            Step::Reload => "reload",
        };
        format!("systemctl {verb} -- {}", quote(unit))
    }
}

/// The steps `apply` runs, decided by `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceWork(pub Vec<Step>);

impl Service {
    /// A daemon whose configuration a module manages (`haproxy`, `keepalived`): enabled and
    /// running, reloaded — never restarted, so established sessions survive — when its
    /// configuration changed (a stopped one is started instead).
    pub(crate) fn reloaded_on_change(name: &str, config_changed: bool) -> Self {
        Service {
            name: name.into(),
            state: Some(if config_changed {
                ServiceState::Reloaded
            } else {
                ServiceState::Started
            }),
            enabled: Some(true),
            daemon_reload: false,
        }
    }

    /// [`Service::reloaded_on_change`] planned: its changes go to `changes`; the service
    /// and its plan come back when there is something to do.
    pub(crate) async fn plan_reload_on_change(
        cx: &HostContext<'_>,
        name: &str,
        config_changed: bool,
        changes: &mut Vec<Change>,
    ) -> Result<Option<(Service, Plan)>, ModuleError> {
        let service = Service::reloaded_on_change(name, config_changed);
        let plan = service.plan(cx).await?;
        changes.extend(plan.changes.iter().cloned());
        Ok(plan.is_changed().then_some((service, plan)))
    }

    fn decide(&self, unit: &UnitState) -> (Vec<Change>, Vec<Step>) {
        let name = &self.name;
        let note = if unit.loaded {
            ""
        } else {
            " (unit not found yet)"
        };
        let mut changes = Vec::new();
        let mut steps = Vec::new();
        let action = match self.state {
            Some(ServiceState::Started) if !unit.running() => Some(Step::Start),
            Some(ServiceState::Stopped) if unit.running() => Some(Step::Stop),
            Some(ServiceState::Restarted) => Some(Step::Restart),
            Some(ServiceState::Reloaded) if unit.running() => Some(Step::Reload),
            // A stopped daemon has no configuration to reload: starting it reads it.
            Some(ServiceState::Reloaded) => Some(Step::Start),
            _ => None,
        };
        let starts = matches!(action, Some(Step::Start | Step::Restart | Step::Reload));
        if unit.need_daemon_reload && (self.daemon_reload || starts) {
            steps.push(Step::DaemonReload);
            changes.push(Change::new(format!(
                "reload systemd units (`{name}` changed on disk)"
            )));
        }
        match self.enabled {
            Some(true) if !unit.enabled() => {
                steps.push(Step::Enable);
                changes.push(Change::new(format!("enable `{name}`{note}")));
            }
            Some(false) if unit.disableable() => {
                steps.push(Step::Disable);
                changes.push(Change::new(format!("disable `{name}`")));
            }
            _ => {}
        }
        if let Some(step) = action {
            let summary = match step {
                Step::Start if self.state == Some(ServiceState::Reloaded) => {
                    format!("start `{name}` (not running, so not reloaded){note}")
                }
                Step::Start => format!("start `{name}`{note}"),
                Step::Stop => format!("stop `{name}`"),
                Step::Restart => format!("restart `{name}`{note}"),
                _ => format!("reload `{name}`"),
            };
            steps.push(step);
            changes.push(Change::new(summary));
        }
        (changes, steps)
    }
}

#[async_trait::async_trait]
impl Action for Service {
    /// One round trip: `is-active`, `is-enabled` and `show` in one script. A unit that does
    /// not exist yet is planned as if stopped and disabled (an earlier task may install it);
    /// `systemctl` then fails in apply if it still does not.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let script = probe_script(&self.name);
        let shown = format!("systemctl show {}", quote(&self.name));
        let out = exec::check(cx, &script, &shown).await?;
        let unit = parse_probe(&String::from_utf8_lossy(&out.stdout));
        let (changes, steps) = self.decide(&unit);
        Ok(if steps.is_empty() {
            Plan::unchanged()
        } else {
            Plan::changes(changes, ServiceWork(steps))
        })
    }

    fn probes(
        &self,
        _cx: &pgdeploy_core::module::ProbeContext<'_>,
    ) -> Vec<pgdeploy_core::module::Probe> {
        vec![pgdeploy_core::module::Probe::command(probe_script(
            &self.name,
        ))]
    }

    /// One round trip: the steps joined with `&&`, so a failure stops the rest.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        if let Some(ServiceWork(steps)) = plan.work::<ServiceWork>() {
            if !steps.is_empty() {
                let command = steps
                    .iter()
                    .map(|s| s.command(&self.name))
                    .collect::<Vec<_>>()
                    .join(" && ");
                exec::check(cx, &command, &command).await?;
            }
        }
        Ok(())
    }
}

impl Params for Service {
    const NAME: &'static str = "service";
    const SUMMARY: &'static str = "a systemd unit: started/stopped/restarted/reloaded, enabled";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.state.is_none() && self.enabled.is_none() && !self.daemon_reload {
            problems.push(Problem::general(
                "nothing to do: give `state`, `enabled` or `daemon_reload`",
            ));
        }
        if self.name.is_empty() || self.name.contains(['/', ' ']) {
            problems.push(Problem::field(
                "name",
                format!("`{}` is not a unit name", self.name),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fake::*;

    fn service(state: Option<ServiceState>, enabled: Option<bool>, daemon_reload: bool) -> Service {
        Service {
            name: "etcd".into(),
            state,
            enabled,
            daemon_reload,
        }
    }

    fn probe(active: &str, enabled: &str, load: &str, reload: &str) -> String {
        format!("active={active}\nenabled={enabled}\nLoadState={load}\nNeedDaemonReload={reload}\n")
    }

    fn run(s: &Service, probe_out: &str) -> (Plan, Vec<String>) {
        let h = Harness::new(
            // The probe, then every action `apply` may take (the tests assert which ran).
            MemoryTransport::default()
                .answer("is-active", output(0, probe_out))
                .answer("systemctl daemon-reload", output(0, ""))
                .answer("systemctl enable -- etcd", output(0, ""))
                .answer("systemctl disable -- etcd", output(0, ""))
                .answer("systemctl start -- etcd", output(0, ""))
                .answer("systemctl stop -- etcd", output(0, ""))
                .answer("systemctl restart -- etcd", output(0, ""))
                .answer("systemctl reload -- etcd", output(0, "")),
            Default::default(),
        );
        let plan = block_on(s.plan(&h.cx())).unwrap();
        let plan_trips = h.transport.commands().len();
        assert_eq!(plan_trips, 1, "one round trip to plan");
        block_on(s.apply(&h.cx(), &plan)).unwrap();
        let applied = h.transport.commands().split_off(1);
        (plan, applied)
    }

    #[test]
    fn started_and_enabled_is_a_no_op_when_running() {
        let s = service(Some(ServiceState::Started), Some(true), true);
        let (plan, applied) = run(&s, &probe("active", "enabled", "loaded", "no"));
        assert!(!plan.is_changed());
        assert!(applied.is_empty());
    }

    #[test]
    fn starts_enables_and_reloads_units_in_order() {
        let s = service(Some(ServiceState::Started), Some(true), false);
        let (plan, applied) = run(&s, &probe("inactive", "disabled", "loaded", "yes"));
        let summaries: Vec<_> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "reload systemd units (`etcd` changed on disk)",
                "enable `etcd`",
                "start `etcd`"
            ]
        );
        assert_eq!(
            applied,
            ["systemctl daemon-reload && systemctl enable -- etcd && systemctl start -- etcd"]
        );
    }

    #[test]
    fn daemon_reload_only_when_systemd_needs_it() {
        let s = service(None, None, true);
        assert!(!run(&s, &probe("active", "enabled", "loaded", "no"))
            .0
            .is_changed());
        let (_, applied) = run(&s, &probe("active", "enabled", "loaded", "yes"));
        assert_eq!(applied, ["systemctl daemon-reload"]);
    }

    #[test]
    fn restarted_and_reloaded_always_change() {
        let s = service(Some(ServiceState::Restarted), None, false);
        let (_, applied) = run(&s, &probe("active", "enabled", "loaded", "no"));
        assert_eq!(applied, ["systemctl restart -- etcd"]);
        let s = service(Some(ServiceState::Reloaded), None, false);
        let (_, applied) = run(&s, &probe("active", "enabled", "loaded", "no"));
        assert_eq!(applied, ["systemctl reload -- etcd"]);
        let (plan, applied) = run(&s, &probe("failed", "enabled", "loaded", "no"));
        assert_eq!(applied, ["systemctl start -- etcd"]);
        assert_eq!(
            plan.changes[0].summary,
            "start `etcd` (not running, so not reloaded)"
        );
    }

    #[test]
    fn stopped_disabled_and_missing_units() {
        let s = service(Some(ServiceState::Stopped), Some(false), false);
        assert!(!run(&s, &probe("inactive", "static", "loaded", "no"))
            .0
            .is_changed());
        let (_, applied) = run(&s, &probe("active", "enabled", "loaded", "no"));
        assert_eq!(
            applied,
            ["systemctl disable -- etcd && systemctl stop -- etcd"]
        );
        let s = service(Some(ServiceState::Started), None, false);
        let (plan, _) = run(&s, &probe("inactive", "", "not-found", "no"));
        assert_eq!(plan.changes[0].summary, "start `etcd` (unit not found yet)");
    }

    #[test]
    fn probe_script_runs_in_a_real_shell() {
        let fake = "systemctl() { case \"$1\" in is-active) echo activating;; \
                    is-enabled) echo nope >&2; return 1;; \
                    show) echo LoadState=loaded; echo NeedDaemonReload=yes;; esac; }; ";
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{fake}{}", probe_script("it's.service")))
            .output()
            .unwrap();
        let state = parse_probe(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            state,
            UnitState {
                active: "activating".into(),
                enabled: "".into(),
                loaded: true,
                need_daemon_reload: true,
            }
        );
    }

    #[test]
    fn probe_script_reads_everything_at_once() {
        let s = probe_script("a b.service");
        assert!(s.contains("is-active -- 'a b.service'"));
        assert!(s.contains("show -p LoadState -p NeedDaemonReload -- 'a b.service'"));
    }

    /// Plan reads only the declared probe, running or stopped, loaded or not.
    #[test]
    fn probes_cover_plan() {
        use crate::common::probe_cover::assert_probes_cover;
        for (s, out) in [
            (
                service(Some(ServiceState::Started), Some(true), true),
                probe("active", "enabled", "loaded", "no"),
            ),
            (
                service(Some(ServiceState::Restarted), Some(false), false),
                probe("inactive", "enabled", "loaded", "yes"),
            ),
            (
                service(Some(ServiceState::Stopped), None, false),
                probe("inactive", "", "not-found", "no"),
            ),
        ] {
            let h = Harness::new(
                MemoryTransport::default().answer("is-active", output(0, &out)),
                Default::default(),
            );
            assert_probes_cover(&s, &h.cx());
        }
    }
}
