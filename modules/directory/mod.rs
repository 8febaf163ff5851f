//! `directory`: a directory and its owner, group and mode.

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};
use crate::params::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryState {
    #[default]
    Present,
    /// Removed with everything in it.
    Absent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub path: String,
    #[serde(default)]
    pub state: DirectoryState,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
}

#[async_trait::async_trait]
impl Action for Directory {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed(
            "module `directory` cannot plan yet".into(),
        ))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed(
            "module `directory` cannot apply yet".into(),
        ))
    }
}

impl Params for Directory {
    const NAME: &'static str = "directory";
    const SUMMARY: &'static str =
        "a directory (created with its parents) with owner, group and mode";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = super::check_absolute("path", &self.path);
        if self.state == DirectoryState::Absent && self.path.trim_end_matches('/').is_empty() {
            problems.push(Problem::field("path", "refusing to remove `/`"));
        }
        problems
    }
}
