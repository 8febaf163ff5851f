//! `copy`: a file whose content is given inline (`content`) or read from the workstation
//! (`src`, relative to the playbook's directory).

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};
use crate::params::Mode;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    pub dest: String,
    pub content: Option<String>,
    pub src: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
    /// A command run on the new file before it replaces `dest`; `%s` is its path.
    pub validate: Option<String>,
}

#[async_trait::async_trait]
impl Action for Copy {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed("module `copy` cannot plan yet".into()))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed("module `copy` cannot apply yet".into()))
    }
}

impl Params for Copy {
    const NAME: &'static str = "copy";
    const SUMMARY: &'static str = "a file with inline or local content, written atomically";

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = super::check_absolute("dest", &self.dest);
        match (&self.content, &self.src) {
            (Some(_), Some(_)) => problems.push(Problem::field(
                "src",
                "give either `content` or `src`, not both",
            )),
            (None, None) => problems.push(Problem::general("missing field `content` or `src`")),
            (None, Some(src)) => problems.extend(super::check_local_file("src", src, cx)),
            (Some(_), None) => {}
        }
        problems.extend(super::check_validate(self.validate.as_deref()));
        problems
    }
}
