//! `template`: a file rendered from a minijinja template on the workstation (`src`, relative
//! to the playbook's directory or its `templates/` folder) with the host's variables.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

use super::copy::Copy;

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

impl Template {
    /// The template rendered for this host. Errors name the template file and line, and the
    /// kind of error, but never the rendered text (it may hold secrets).
    async fn render(&self, cx: &HostContext<'_>) -> Result<String, ModuleError> {
        let parse_cx = ParseContext {
            playbook_dir: cx.playbook_dir,
            inventory: None,
        };
        let path = super::find_template(&self.src, &parse_cx)
            .map_err(|p| ModuleError::Failed(p.message))?;
        let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
            ModuleError::Failed(format!("cannot read template `{}`: {e}", path.display()))
        })?;
        pgdeploy_core::inputs::record(&path, text.as_bytes());
        render_text(&cx.scope.shared().env, &text, &cx.scope.context())
            .map_err(|e| ModuleError::Failed(format!("template `{}`: {e}", path.display())))
    }
}

/// Renders `text` with `ctx`; the error says where (line) and what went wrong.
fn render_text(
    env: &minijinja::Environment<'static>,
    text: &str,
    ctx: &minijinja::Value,
) -> Result<String, String> {
    env.render_str(text, ctx).map_err(|e| {
        let mut what = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        // The failing piece of the template source (not of the output, which may hold
        // secrets): `ansible_default_ipv4.address` says more than "undefined value".
        if let Some(src) = e.range().and_then(|r| text.get(r)) {
            if !src.is_empty() && src.len() <= 120 && !src.contains('\n') {
                what = format!("{what} in `{src}`");
            }
        }
        match e.line() {
            Some(line) => format!("line {line}: {what}"),
            None => what,
        }
    })
}

impl Template {
    /// The `copy` of `content` to the same destination with the same attributes: once
    /// rendered, a template is planned, probed and applied exactly as `copy` is.
    fn as_copy(&self, content: Option<String>) -> Copy {
        Copy {
            dest: self.dest.clone(),
            content,
            src: None,
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode,
            validate: self.validate.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Action for Template {
    /// One round trip, as `copy`: rendering is local, the probe reads `dest` in one exec.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let rendered = self.render(cx).await?;
        self.as_copy(Some(rendered)).plan(cx).await
    }
    fn probes(
        &self,
        cx: &pgdeploy_core::module::ProbeContext<'_>,
    ) -> Vec<pgdeploy_core::module::Probe> {
        self.as_copy(None).probes(cx)
    }
    /// Writes what was rendered at plan time: the applied file is exactly the planned one.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        self.as_copy(None).apply(cx, plan).await
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
                        pgdeploy_core::inputs::record(&path, text.as_bytes());
                        let env = pgdeploy_core::template::environment();
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

#[cfg(test)]
mod tests {
    use super::render_text;

    #[test]
    fn errors_name_the_line_and_the_failing_expression() {
        let env = pgdeploy_core::template::environment();
        let ctx = minijinja::context! { facts => minijinja::context! {} };
        let err = render_text(&env, "a\nb={{ facts.address }}\n", &ctx).unwrap_err();
        assert!(err.starts_with("line 2: undefined value"), "{err}");
        assert!(err.contains("`facts.address`"), "{err}");
    }

    /// Plan reads only the declared probes: the source is read on the control node.
    #[test]
    fn probes_cover_plan() {
        use crate::common::fake::*;
        use crate::common::probe_cover::assert_probes_cover;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.conf.j2"),
            "host={{ inventory_hostname }}\n",
        )
        .unwrap();
        let t: super::Template =
            serde_yaml_ng::from_str("{src: x.conf.j2, dest: /etc/x.conf, mode: '0644'}").unwrap();
        for out in [
            "missing\nnolink\n".to_string(),
            probe_file("644", "host=old\n"),
            probe_file("644", "host=h1\n"),
        ] {
            let mut h = Harness::new(
                MemoryTransport::default().answer("if [ -e", output(0, &out)),
                Default::default(),
            );
            h.playbook_dir = dir.path().to_path_buf();
            assert_probes_cover(&t, &h.cx());
        }
    }
}
