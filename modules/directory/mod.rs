//! `directory`: a directory and its owner, group and mode.

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

impl Directory {
    /// The change and the command that bring `state` to what is wanted; `None` when it
    /// already is.
    fn decide(&self, state: &PathState) -> Result<Option<(Change, String)>, ModuleError> {
        let path = &self.path;
        let p = quote(path);
        let wanted = Wanted {
            owner: self.owner.as_deref(),
            group: self.group.as_deref(),
            mode: self.mode,
        };
        match (self.state, &state.kind) {
            (DirectoryState::Present, Kind::Missing) => {
                let mut command = format!("mkdir -p -- {p}");
                if let Some(fix) = wanted.as_fix().command(path, false) {
                    command = format!("{command} && {fix}");
                }
                Ok(Some((
                    Change::new(format!("create directory `{path}`{}", wanted.describe())),
                    command,
                )))
            }
            (DirectoryState::Present, Kind::Directory) => {
                let current = state.ownership.clone().unwrap_or_default();
                let fix = wanted.diff(&current);
                Ok(fix.command(path, false).map(|command| {
                    (
                        Change::new(format!("directory `{path}`: {}", fix.describe())),
                        command,
                    )
                }))
            }
            (DirectoryState::Absent, Kind::Missing) => Ok(None),
            (DirectoryState::Absent, Kind::Directory) => {
                if is_root(path) {
                    return Err(ModuleError::Failed("refusing to remove `/`".into()));
                }
                Ok(Some((
                    Change::new(format!("remove directory `{path}` and everything in it")),
                    format!("rm -rf -- {p}"),
                )))
            }
            (_, other) => Err(ModuleError::Failed(format!(
                "`{path}` is {}, not a directory",
                other.describe()
            ))),
        }
    }
}

/// `/`, `//`, `/./` …: paths that must never be removed.
fn is_root(path: &str) -> bool {
    path.split('/').all(|c| c.is_empty() || c == ".")
}

#[async_trait::async_trait]
impl Action for Directory {
    /// One round trip: the probe follows links, so a link to a directory counts as one.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let state = stat::probe(cx, &self.path, false).await?;
        Ok(match self.decide(&state)? {
            Some((change, command)) => Plan::changes(vec![change], DirectoryWork(command)),
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
        if let Some(DirectoryWork(command)) = plan.work::<DirectoryWork>() {
            exec::check(cx, command, command).await?;
        }
        Ok(())
    }
}

/// The command `apply` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryWork(pub String);

impl Params for Directory {
    const NAME: &'static str = "directory";
    const SUMMARY: &'static str =
        "a directory (created with its parents) with owner, group and mode";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = super::check_absolute("path", &self.path);
        if self.state == DirectoryState::Absent && is_root(&self.path) {
            problems.push(Problem::field("path", "refusing to remove `/`"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(state: DirectoryState, path: &str) -> Directory {
        Directory {
            path: path.into(),
            state,
            owner: Some("postgres".into()),
            group: Some("postgres".into()),
            mode: Some(Mode(0o700)),
        }
    }

    fn probe(s: &str) -> PathState {
        stat::parse_probe("/p", s.as_bytes(), false).unwrap()
    }

    #[test]
    fn creates_with_parents_and_sets_the_leaf() {
        let (change, cmd) = dir(DirectoryState::Present, "/var/lib/pg data")
            .decide(&probe("missing\nnolink\n"))
            .unwrap()
            .unwrap();
        assert_eq!(
            change.summary,
            "create directory `/var/lib/pg data` (owner `postgres`, group `postgres`, mode `0700`)"
        );
        assert_eq!(
            cmd,
            "mkdir -p -- '/var/lib/pg data' && chown postgres:postgres -- '/var/lib/pg data' \
             && chmod 0700 -- '/var/lib/pg data'"
        );
    }

    #[test]
    fn existing_directory_is_fixed_or_left() {
        let d = dir(DirectoryState::Present, "/d");
        let ok = probe("directory\tpostgres\tpostgres\t1\t1\t700\nnolink\n");
        assert!(d.decide(&ok).unwrap().is_none());
        let (change, _) = d
            .decide(&probe("directory\troot\tpostgres\t0\t1\t755\nnolink\n"))
            .unwrap()
            .unwrap();
        assert_eq!(
            change.summary,
            "directory `/d`: owner `root` → `postgres`, mode `0755` → `0700`"
        );
        assert!(d
            .decide(&probe("regular file\troot\troot\t0\t0\t644\nnolink\n"))
            .is_err());
    }

    #[test]
    fn absent_removes_but_never_root() {
        let present = probe("directory\troot\troot\t0\t0\t755\nnolink\n");
        let (_, cmd) = dir(DirectoryState::Absent, "/tmp/x")
            .decide(&present)
            .unwrap()
            .unwrap();
        assert_eq!(cmd, "rm -rf -- /tmp/x");
        assert!(dir(DirectoryState::Absent, "//./")
            .decide(&present)
            .is_err());
        assert!(dir(DirectoryState::Absent, "/tmp/x")
            .decide(&probe("missing\nnolink\n"))
            .unwrap()
            .is_none());
    }

    /// Plan reads only the declared `stat` probe, the directory missing or there.
    #[test]
    fn probes_cover_plan() {
        use crate::common::fake::*;
        use crate::common::probe_cover::assert_probes_cover;
        let there = "directory\troot\tpostgres\t0\t1\t755\nnolink\n";
        for (d, out) in [
            (dir(DirectoryState::Present, "/d"), "missing\nnolink\n"),
            (dir(DirectoryState::Present, "/d"), there),
            (dir(DirectoryState::Absent, "/d"), there),
        ] {
            let h = Harness::new(
                MemoryTransport::default().answer("stat", output(0, out)),
                Default::default(),
            );
            assert_probes_cover(&d, &h.cx());
        }
    }
}
