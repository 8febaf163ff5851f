//! `service`: a systemd unit started, stopped, restarted or reloaded, and enabled or not.

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Started,
    Stopped,
    /// Restarted on every run (use it in handlers).
    Restarted,
    /// Reloaded on every run (use it in handlers).
    Reloaded,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub state: Option<ServiceState>,
    pub enabled: Option<bool>,
    /// Run `systemctl daemon-reload` first when a unit file changed since systemd loaded it.
    #[serde(default)]
    pub daemon_reload: bool,
}

#[async_trait::async_trait]
impl Action for Service {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed(
            "module `service` cannot plan yet".into(),
        ))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed(
            "module `service` cannot apply yet".into(),
        ))
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
