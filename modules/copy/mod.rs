//! `copy`: a file whose content is given inline (`content`) or read from the workstation
//! (`src`, relative to the playbook's directory).

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};

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

impl Copy {
    /// The wanted bytes: `content` as given, or the local `src` file read now (so a plan
    /// always compares against the file as it is on the workstation).
    async fn content(&self, cx: &HostContext<'_>) -> Result<Vec<u8>, ModuleError> {
        match (&self.content, &self.src) {
            (Some(c), _) => Ok(c.clone().into_bytes()),
            (None, Some(src)) => {
                let path = cx.playbook_dir.join(src);
                let bytes = tokio::fs::read(&path).await.map_err(|e| {
                    ModuleError::Failed(format!("cannot read `{}`: {e}", path.display()))
                })?;
                pgdeploy_core::inputs::record(&path, &bytes);
                Ok(bytes)
            }
            (None, None) => Err(ModuleError::Failed(
                "missing field `content` or `src`".into(),
            )),
        }
    }
}

#[async_trait::async_trait]
impl Action for Copy {
    /// One round trip: the probe reads `dest`'s type, owner, mode and bytes together.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let desired = Desired {
            dest: &self.dest,
            content: self.content(cx).await?,
            wanted: Wanted {
                owner: self.owner.as_deref(),
                group: self.group.as_deref(),
                mode: self.mode,
            },
            validate: self.validate.as_deref(),
        };
        content::plan(cx, &desired).await
    }
    fn probes(
        &self,
        _cx: &pgdeploy_core::module::ProbeContext<'_>,
    ) -> Vec<pgdeploy_core::module::Probe> {
        content::probes(&self.dest)
    }
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        match plan.work::<ContentWork>() {
            Some(work) => content::apply(cx, work).await,
            None => Ok(()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fake::*;
    use crate::common::probe_cover::assert_probes_cover;

    /// Plan reads only the declared probes: the file missing, different or the same.
    #[test]
    fn probes_cover_plan() {
        let c: Copy =
            serde_yaml_ng::from_str("{dest: /etc/x.conf, content: \"a\\n\", mode: '0644'}")
                .unwrap();
        for out in [
            "missing\nnolink\n".to_string(),
            probe_file("644", "old\n"),
            probe_file("644", "a\n"),
        ] {
            let h = Harness::new(
                MemoryTransport::default().answer("if [ -e", output(0, &out)),
                Default::default(),
            );
            assert_probes_cover(&c, &h.cx());
        }
    }
}
