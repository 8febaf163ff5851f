//! `command`: a command run on the host, made idempotent by guards (`creates`, `removes`,
//! `unless`) and told whether it changed anything (`changed_when`).

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};

/// `changed_when`: a fixed answer, or an expression over `rc`, `stdout` and `stderr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedWhen {
    Always(bool),
    Expression(String),
}

impl<'de> Deserialize<'de> for ChangedWhen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ChangedWhen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean or an expression")
            }
            fn visit_bool<E>(self, b: bool) -> Result<ChangedWhen, E> {
                Ok(ChangedWhen::Always(b))
            }
            fn visit_str<E>(self, s: &str) -> Result<ChangedWhen, E> {
                Ok(ChangedWhen::Expression(s.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// A shell command line (run by `/bin/sh -c`).
    pub cmd: String,
    /// Skip when this path exists.
    pub creates: Option<String>,
    /// Skip when this path does not exist.
    pub removes: Option<String>,
    /// Skip when this command succeeds (exit status 0).
    pub unless: Option<String>,
    pub changed_when: Option<ChangedWhen>,
    pub chdir: Option<String>,
}

#[async_trait::async_trait]
impl Action for Command {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed(
            "module `command` cannot plan yet".into(),
        ))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed(
            "module `command` cannot apply yet".into(),
        ))
    }
}

impl Params for Command {
    const NAME: &'static str = "command";
    const SUMMARY: &'static str = "a command, with creates/removes/unless guards and changed_when";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.cmd.trim().is_empty() {
            problems.push(Problem::field("cmd", "empty command"));
        }
        if let Some(ChangedWhen::Expression(e)) = &self.changed_when {
            if let Err(err) = crate::template::environment().compile_expression(e) {
                problems.push(Problem::field(
                    "changed_when",
                    format!("invalid expression `{e}`: {}", err.kind()),
                ));
            }
        }
        problems
    }
}
