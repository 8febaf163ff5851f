//! `template`: a file rendered from a minijinja template on the workstation (`src`, relative
//! to the playbook's directory or its `templates/` folder) with the host's variables.

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};
use crate::params::Mode;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub src: String,
    pub dest: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
    /// A command run on the new file before it replaces `dest`; `%s` is its path.
    pub validate: Option<String>,
}

#[async_trait::async_trait]
impl Action for Template {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed(
            "module `template` cannot plan yet".into(),
        ))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed(
            "module `template` cannot apply yet".into(),
        ))
    }
}

impl Params for Template {
    const NAME: &'static str = "template";
    const SUMMARY: &'static str = "a file rendered from a local template, written atomically";

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = super::check_absolute("dest", &self.dest);
        match super::find_template(&self.src, cx) {
            Ok(path) => {
                if let Err(e) = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|text| {
                        let env = crate::template::environment();
                        env.template_from_str(&text)
                            .map(|_| ())
                            .map_err(|e| format!("{} at line {}", e.kind(), e.line().unwrap_or(0)))
                    })
                {
                    problems.push(Problem::field(
                        "src",
                        format!("template `{}` is invalid: {e}", path.display()),
                    ));
                }
            }
            Err(p) => problems.push(p),
        }
        problems.extend(super::check_validate(self.validate.as_deref()));
        problems
    }
}
