//! `file`: a file's existence, type and attributes (not its content: see `copy`, `template`).

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};
use crate::params::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// The file must exist; its attributes are set.
    #[default]
    File,
    /// Created empty when missing; attributes set.
    Touch,
    /// Removed when present.
    Absent,
    /// A symbolic link to `src`.
    Link,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    #[serde(default)]
    pub state: FileState,
    pub src: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
}

#[async_trait::async_trait]
impl Action for File {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed("module `file` cannot plan yet".into()))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed("module `file` cannot apply yet".into()))
    }
}

impl Params for File {
    const NAME: &'static str = "file";
    const SUMMARY: &'static str = "existence, type, owner, group and mode of a file or link";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = super::check_absolute("path", &self.path);
        match (self.state, &self.src) {
            (FileState::Link, None) => problems.push(Problem::field(
                "src",
                "`state: link` needs `src`, the link target",
            )),
            (FileState::Link, Some(_)) | (_, None) => {}
            (_, Some(_)) => problems.push(Problem::field(
                "src",
                "`src` is only used with `state: link`",
            )),
        }
        problems
    }
}
