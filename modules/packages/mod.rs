//! `packages`: distribution packages installed, removed or upgraded in one batch (apt or dnf,
//! chosen from the host's facts).

use serde::Deserialize;

use crate::module::{Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem};
use crate::params::OneOrMany;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    #[default]
    Present,
    Absent,
    Latest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    pub name: OneOrMany<String>,
    #[serde(default)]
    pub state: PackageState,
    /// Refresh the package index first (`apt-get update`), only when something is to install.
    #[serde(default)]
    pub update_cache: bool,
}

#[async_trait::async_trait]
impl Action for Packages {
    async fn plan(&self, _cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        Err(ModuleError::Failed(
            "module `packages` cannot plan yet".into(),
        ))
    }
    async fn apply(&self, _cx: &HostContext<'_>, _plan: &Plan) -> Result<(), ModuleError> {
        Err(ModuleError::Failed(
            "module `packages` cannot apply yet".into(),
        ))
    }
}

impl Params for Packages {
    const NAME: &'static str = "packages";
    const SUMMARY: &'static str =
        "distribution packages (apt/dnf), batched: present, absent or latest";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.name.0.is_empty() {
            problems.push(Problem::field("name", "no package named"));
        }
        for n in &self.name.0 {
            let valid = !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._:=*~".contains(c));
            if !valid {
                problems.push(Problem::field(
                    "name",
                    format!("`{n}` is not a package name"),
                ));
            }
        }
        problems
    }
}
