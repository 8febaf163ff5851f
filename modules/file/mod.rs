//! `file`: a file's existence, type and attributes (not its content: see `copy`, `template`).

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

use super::common::attrs::Wanted;
use super::common::exec;
use super::common::shell::quote;
use super::common::stat::{self, Kind, PathState};

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

/// What `apply` runs, decided by `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileWork {
    /// One shell command (create, remove, link, chown/chmod), paths quoted.
    Run(String),
    /// `state: file` on a path missing at plan time: an earlier task of the same run may
    /// create it, so apply looks again and fails only if it is still missing.
    AttrsOfExisting,
}

impl File {
    fn wanted(&self) -> Wanted<'_> {
        Wanted {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode,
        }
    }

    /// The change and work that bring `state` to what is wanted; `None` when it already is.
    fn decide(&self, state: &PathState) -> Result<Option<(Change, FileWork)>, ModuleError> {
        let path = &self.path;
        let p = quote(path);
        let wanted = self.wanted();
        let exists = state.kind != Kind::Missing || state.link.is_some();
        match self.state {
            FileState::Absent => {
                if !exists {
                    return Ok(None);
                }
                if state.kind == Kind::Directory && state.link.is_none() {
                    return Err(ModuleError::Failed(format!(
                        "`{path}` is a directory: remove it with the `directory` module"
                    )));
                }
                Ok(Some((
                    Change::new(format!("remove `{path}`")),
                    FileWork::Run(format!("rm -f -- {p}")),
                )))
            }
            FileState::File | FileState::Touch => match &state.kind {
                Kind::Missing if self.state == FileState::Touch => {
                    let create = match wanted.mode {
                        // Created private, then opened up by chmod: never readable in between.
                        Some(_) => format!("( umask 077 && touch -- {p} )"),
                        None => format!("touch -- {p}"),
                    };
                    let command = match wanted.as_fix().command(path, false) {
                        Some(fix) => format!("{create} && {fix}"),
                        None => create,
                    };
                    Ok(Some((
                        Change::new(format!("create empty `{path}`{}", wanted.describe())),
                        FileWork::Run(command),
                    )))
                }
                Kind::Missing => Ok(Some((
                    Change::new(format!(
                        "`{path}` is missing: it must exist (created by an earlier task), \
                         else apply fails"
                    )),
                    FileWork::AttrsOfExisting,
                ))),
                Kind::Directory => Err(ModuleError::Failed(format!(
                    "`{path}` is a directory, not a file"
                ))),
                _ => {
                    let current = state.ownership.clone().unwrap_or_default();
                    let fix = wanted.diff(&current);
                    Ok(fix.command(path, false).map(|command| {
                        (
                            Change::new(format!("`{path}`: {}", fix.describe())),
                            FileWork::Run(command),
                        )
                    }))
                }
            },
            FileState::Link => {
                let src = self.src.as_deref().unwrap_or_default();
                match &state.link {
                    Some(link) if link.target == src => {
                        let fix = wanted.diff(&link.ownership);
                        Ok(fix.command(path, true).map(|command| {
                            (
                                Change::new(format!("link `{path}`: {}", fix.describe())),
                                FileWork::Run(command),
                            )
                        }))
                    }
                    Some(link) => Ok(Some((
                        Change::new(format!("link `{path}` → `{src}` (was → `{}`)", link.target)),
                        FileWork::Run(self.link_command()),
                    ))),
                    None if state.kind == Kind::Missing => Ok(Some((
                        Change::new(format!("create link `{path}` → `{src}`")),
                        FileWork::Run(self.link_command()),
                    ))),
                    None => Err(ModuleError::Failed(format!(
                        "`{path}` is {}, not a link: remove it first",
                        state.kind.describe()
                    ))),
                }
            }
        }
    }

    /// `ln -sfn` replaces an existing link (even one to a directory) instead of creating the
    /// new link inside the directory it points to.
    fn link_command(&self) -> String {
        let src = self.src.as_deref().unwrap_or_default();
        let ln = format!("ln -sfn -- {} {}", quote(src), quote(&self.path));
        match self.wanted().as_fix().command(&self.path, true) {
            Some(fix) => format!("{ln} && {fix}"),
            None => ln,
        }
    }
}

#[async_trait::async_trait]
impl Action for File {
    /// One round trip: `stat` and `readlink` of `path` in one script.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let state = stat::probe(cx, &self.path, false).await?;
        Ok(match self.decide(&state)? {
            Some((change, work)) => Plan::changes(vec![change], work),
            None => Plan::unchanged(),
        })
    }

    fn probes(
        &self,
        _cx: &pgdeploy_core::module::ProbeContext<'_>,
    ) -> Vec<pgdeploy_core::module::Probe> {
        vec![stat::probe_of(&self.path, false)]
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        match plan.work::<FileWork>() {
            Some(FileWork::Run(command)) => {
                exec::check(cx, command, command).await?;
            }
            Some(FileWork::AttrsOfExisting) => {
                let state = stat::probe(cx, &self.path, false).await?;
                if state.kind == Kind::Missing {
                    return Err(ModuleError::Failed(format!(
                        "`{}` does not exist (use `state: touch` to create it)",
                        self.path
                    )));
                }
                if let Some((_, FileWork::Run(command))) = self.decide(&state)? {
                    exec::check(cx, &command, &command).await?;
                }
            }
            None => {}
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fake::*;

    fn file(state: FileState, src: Option<&str>) -> File {
        File {
            path: "/etc/x".into(),
            state,
            src: src.map(str::to_string),
            owner: Some("nobody".into()),
            group: None,
            mode: Some(Mode(0o640)),
        }
    }

    fn plan(f: &File, probe: &str) -> Result<Plan, ModuleError> {
        let h = Harness::new(
            MemoryTransport::default().answer("stat", output(0, probe)),
            Default::default(),
        );
        let plan = block_on(f.plan(&h.cx()));
        assert_eq!(h.transport.commands().len(), 1, "one round trip");
        plan
    }

    const MISSING: &str = "missing\nnolink\n";
    const FILE_0644: &str = "regular file\tnobody\tnogroup\t65534\t65534\t644\nnolink\n";

    #[test]
    fn touch_creates_privately_then_sets_attributes() {
        let p = plan(&file(FileState::Touch, None), MISSING).unwrap();
        assert_eq!(
            p.changes[0].summary,
            "create empty `/etc/x` (owner `nobody`, mode `0640`)"
        );
        assert_eq!(
            p.work::<FileWork>(),
            Some(&FileWork::Run(
                "( umask 077 && touch -- /etc/x ) && chown nobody -- /etc/x && chmod 0640 -- /etc/x"
                    .into()
            ))
        );
    }

    #[test]
    fn file_state_fixes_mode_and_defers_a_missing_file() {
        let p = plan(&file(FileState::File, None), FILE_0644).unwrap();
        assert_eq!(p.changes[0].summary, "`/etc/x`: mode `0644` → `0640`");
        let p = plan(&file(FileState::File, None), MISSING).unwrap();
        assert_eq!(p.work::<FileWork>(), Some(&FileWork::AttrsOfExisting));
        let ok = "regular file\tnobody\tnogroup\t65534\t65534\t640\nnolink\n";
        assert!(!plan(&file(FileState::File, None), ok).unwrap().is_changed());
    }

    #[test]
    fn absent_removes_files_but_not_directories() {
        let p = plan(&file(FileState::Absent, None), FILE_0644).unwrap();
        assert_eq!(p.changes[0].summary, "remove `/etc/x`");
        assert!(!plan(&file(FileState::Absent, None), MISSING)
            .unwrap()
            .is_changed());
        let dir = "directory\troot\troot\t0\t0\t755\nnolink\n";
        assert!(plan(&file(FileState::Absent, None), dir).is_err());
    }

    #[test]
    fn link_is_created_replaced_or_kept() {
        let mut f = file(FileState::Link, Some("/srv/a b"));
        f.mode = None;
        f.owner = None;
        let p = plan(&f, MISSING).unwrap();
        assert_eq!(p.changes[0].summary, "create link `/etc/x` → `/srv/a b`");
        assert_eq!(
            p.work::<FileWork>(),
            Some(&FileWork::Run("ln -sfn -- '/srv/a b' /etc/x".into()))
        );
        let wrong = "missing\nlink\troot\troot\t0\t0\t/old\n";
        assert_eq!(
            plan(&f, wrong).unwrap().changes[0].summary,
            "link `/etc/x` → `/srv/a b` (was → `/old`)"
        );
        let right = "regular file\troot\troot\t0\t0\t644\nlink\troot\troot\t0\t0\t/srv/a b\n";
        assert!(!plan(&f, right).unwrap().is_changed());
        let e = plan(&f, FILE_0644).unwrap_err().to_string();
        assert_eq!(e, "`/etc/x` is a regular file, not a link: remove it first");
    }

    /// Plan reads only the declared `stat` probe, whatever is at the path.
    #[test]
    fn probes_cover_plan() {
        use crate::common::probe_cover::assert_probes_cover;
        let link = "regular file\troot\troot\t0\t0\t644\nlink\troot\troot\t0\t0\t/old\n";
        for (f, out) in [
            (file(FileState::Touch, None), MISSING),
            (file(FileState::File, None), FILE_0644),
            (file(FileState::Link, Some("/etc/y")), link),
            (file(FileState::Absent, None), FILE_0644),
        ] {
            let h = Harness::new(
                MemoryTransport::default().answer("stat", output(0, out)),
                Default::default(),
            );
            assert_probes_cover(&f, &h.cx());
        }
    }
}
