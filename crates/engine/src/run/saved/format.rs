//! The saved plan's file: a versioned JSON document, written atomically with mode 0600.
//!
//! ```json
//! {
//!   "format": "pgdeploy-plan",
//!   "format_version": 1,
//!   "pgdeploy_version": "0.1.0",
//!   "created": "2026-12-01T19:20:03Z",
//!   "inputs": {
//!     "cwd": "/home/me/site",
//!     "inventory": {"given": "inventories/prod.yml", "absolute": "/home/me/site/inventories/prod.yml"},
//!     "playbook": {"given": "playbooks/site.yml", "absolute": "/home/me/site/playbooks/site.yml"},
//!     "limit": "pg*",
//!     "facts": null,
//!     "extra_vars": ["@vars/prod.yml", "pg_version=16"],
//!     "tags": ["config"],
//!     "skip_tags": []
//!   },
//!   "files": [{"path": "inventories/prod.yml", "absolute": "…", "sha256": "…"}],
//!   "env": [{"name": "PGPASSWORD", "sha256": "…"}],
//!   "steps": [{"play": 0, "handler": false, "index": 2, "task": "inline config",
//!              "module": "copy", "host": "db1", "status": "changed",
//!              "changes": [{"summary": "…", "diff": "--- … (current)\n+++ … (wanted)\n…"}],
//!              "notes": []}]
//! }
//! ```
//!
//! `steps` holds every step that ran, in the text report's order (play, tasks before
//! handlers, task, host in inventory order), with its changes as `plan` shows them: secrets
//! masked (see [`super`] for why comparing masked text is enough). Reading is strict
//! (`deny_unknown_fields`): a file this version does not fully understand is refused rather
//! than half applied.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::load::LoadArgs;
use crate::run::events::Status;
use pgdeploy_core::inputs::InputFile;
use pgdeploy_core::module::Catalogue;

/// The `format` field: tells a saved plan from any other JSON file.
pub const FORMAT: &str = "pgdeploy-plan";
/// The layout version this build writes and reads. Raise it on any change of meaning.
pub const FORMAT_VERSION: u32 = 1;
/// A plan is applied only by the version of pgdeploy that made it: another version may plan
/// differently, so its comparison would refuse (or worse, match by luck).
pub const PGDEPLOY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A plan saved by `plan --out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub format: String,
    pub format_version: u32,
    pub pgdeploy_version: String,
    /// When the plan was made, RFC 3339 UTC (for people: nothing checks it).
    pub created: String,
    pub inputs: Inputs,
    /// Every local file the plan read, sorted by absolute path.
    pub files: Vec<FileDigest>,
    /// Every environment variable templates read (`lookup('env', …)`), sorted by name.
    pub env: Vec<EnvDigest>,
    pub steps: Vec<SavedStep>,
}

/// What the plan was asked for: everything that decides what is planned. The connection
/// options (`--forks`, `--ssh-config`, `--accept-new-host-keys`) and the vault password are
/// given again to `apply`: they say how to reach the hosts and read the files, and the plan
/// made again on the hosts reached checks the result.
///
/// Adding a planning option of [`LoadArgs`] is one field here, filled in
/// [`Inputs::from_args`] and given back in [`Inputs::to_args`] (which stops compiling
/// until it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// The working directory of `plan`: relative paths are read from there again.
    pub cwd: PathBuf,
    pub inventory: InputPath,
    pub playbook: InputPath,
    pub limit: Option<String>,
    pub facts: Option<InputPath>,
    /// `-e` arguments as given. Never a secret: `plan --out` refuses to save a plan whose
    /// inline `-e` text holds one (see [`super::inline_secret`]); a `-e @FILE` is a path, and
    /// the file's digest is in `files` like any input.
    pub extra_vars: Vec<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
}

/// A path as given on the command line, and where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputPath {
    pub given: PathBuf,
    pub absolute: PathBuf,
}

impl InputPath {
    fn of(path: &Path) -> Self {
        InputPath {
            given: path.to_path_buf(),
            absolute: pgdeploy_core::inputs::absolute(path),
        }
    }

    /// The path to read: as given when run from the plan's directory (so messages name files
    /// as the user wrote them), else the absolute one.
    fn to_read(&self, same_cwd: bool) -> PathBuf {
        if same_cwd {
            self.given.clone()
        } else {
            self.absolute.clone()
        }
    }
}

impl Inputs {
    pub fn from_args(args: &LoadArgs) -> Self {
        Inputs {
            cwd: std::env::current_dir().unwrap_or_default(),
            inventory: InputPath::of(&args.inventory),
            playbook: InputPath::of(&args.playbook),
            limit: args.limit.clone(),
            facts: args.facts.as_deref().map(InputPath::of),
            extra_vars: args.extra_vars.clone(),
            tags: args.tags.clone(),
            skip_tags: args.skip_tags.clone(),
        }
    }

    /// The arguments to load the inputs again with; the vault password and the module table
    /// are `apply`'s.
    pub fn to_args(
        &self,
        vault_password_file: Option<PathBuf>,
        catalogue: &'static Catalogue,
    ) -> LoadArgs {
        let same_cwd = std::env::current_dir().is_ok_and(|d| d == self.cwd);
        LoadArgs {
            inventory: self.inventory.to_read(same_cwd),
            playbook: self.playbook.to_read(same_cwd),
            limit: self.limit.clone(),
            facts: self.facts.as_ref().map(|f| f.to_read(same_cwd)),
            extra_vars: self
                .extra_vars
                .iter()
                .map(|arg| match arg.strip_prefix('@') {
                    // `-e @FILE` relative to the plan's directory, as the other paths.
                    Some(file) if !same_cwd && Path::new(file).is_relative() => {
                        format!("@{}", self.cwd.join(file).display())
                    }
                    _ => arg.clone(),
                })
                .collect(),
            tags: self.tags.clone(),
            skip_tags: self.skip_tags.clone(),
            vault_password_file,
            catalogue,
        }
    }
}

/// One local file the plan read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// As it was read (relative to `inputs.cwd` when relative): how messages name it.
    pub path: PathBuf,
    pub absolute: PathBuf,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl From<InputFile> for FileDigest {
    fn from(f: InputFile) -> Self {
        FileDigest {
            path: f.path,
            absolute: f.absolute,
            sha256: f.sha256,
        }
    }
}

/// One environment variable the plan read: its value is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvDigest {
    pub name: String,
    /// SHA-256 of its value ([`pgdeploy_core::inputs::env_digest`]).
    pub sha256: String,
}

/// One step as `plan` reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedStep {
    /// The play's index in the playbook.
    pub play: usize,
    pub handler: bool,
    /// The task's (or handler's) index in its play.
    pub index: usize,
    pub task: String,
    pub module: String,
    pub host: String,
    pub status: StepStatus,
    pub changes: Vec<SavedChange>,
    /// Shown with the plan, not compared (a note is advice, not work).
    pub notes: Vec<String>,
}

impl SavedStep {
    /// The step's place: the same place in two plans of the same inputs is the same step.
    pub fn place(&self) -> (usize, bool, usize, &str) {
        (self.play, self.handler, self.index, &self.host)
    }
}

/// How a step's plan ended. Only `ok`, `changed` and `skipped` are ever saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

impl From<Status> for StepStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Ok => StepStatus::Ok,
            Status::Changed => StepStatus::Changed,
            Status::Skipped => StepStatus::Skipped,
            Status::Failed => StepStatus::Failed,
            Status::Unreachable => StepStatus::Unreachable,
        }
    }
}

impl StepStatus {
    pub fn word(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Changed => "change",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::Unreachable => "unreachable",
        }
    }
}

/// One change as shown: its summary and its unified diff, secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedChange {
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// Why a saved plan could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read `{path}`: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("`{path}` is not a plan saved by `pgdeploy plan --out`: {reason}")]
    NotAPlan { path: PathBuf, reason: String },
    #[error(
        "`{path}` has plan format version `{found}`; this pgdeploy reads version `{FORMAT_VERSION}`: make the plan again"
    )]
    FormatVersion { path: PathBuf, found: u64 },
    #[error(
        "`{path}` was made by pgdeploy `{made_by}`, this is pgdeploy `{PGDEPLOY_VERSION}`: make the plan again with this version"
    )]
    Version { path: PathBuf, made_by: String },
    #[error("cannot write the plan to `{path}`: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl SavedPlan {
    /// `env`: name and digest of each environment variable read.
    pub fn new(
        inputs: Inputs,
        files: Vec<InputFile>,
        env: Vec<(String, String)>,
        mut steps: Vec<SavedStep>,
    ) -> Self {
        steps.sort_by(|a, b| a.place().cmp(&b.place()));
        SavedPlan {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            pgdeploy_version: PGDEPLOY_VERSION.to_string(),
            created: now_rfc3339(),
            inputs,
            files: files.into_iter().map(FileDigest::from).collect(),
            env: env
                .into_iter()
                .map(|(name, sha256)| EnvDigest { name, sha256 })
                .collect(),
            steps,
        }
    }

    /// Whether any step plans a change.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| !s.changes.is_empty())
    }

    /// The document, secrets masked once more by value as a last guard (the changes were
    /// masked before they were stored).
    pub fn to_json(&self, redactor: &pgdeploy_core::secrets::Redactor) -> String {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        format!("{}\n", redactor.mask(&text))
    }

    /// Writes the plan to `path` atomically: a temporary file of mode 0600 in the same
    /// directory, synced, then renamed over `path`. A reader never sees half a plan, and the
    /// file is never readable by others, even for a moment (it holds the hosts' file
    /// contents, as the diffs show them).
    pub fn write(
        &self,
        path: &Path,
        redactor: &pgdeploy_core::secrets::Redactor,
    ) -> Result<(), FormatError> {
        pgdeploy_core::atomic_file::write(path, self.to_json(redactor).as_bytes(), 0o600).map_err(
            |e| FormatError::Write {
                path: path.to_path_buf(),
                error: e.source,
            },
        )
    }

    /// Reads a saved plan: the format and both versions are checked before the rest is read,
    /// so an older or newer file gets a message about its version, not about a field.
    pub fn read(path: &Path) -> Result<SavedPlan, FormatError> {
        let text = std::fs::read_to_string(path).map_err(|error| FormatError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<SavedPlan, FormatError> {
        let not_a_plan = |reason: String| FormatError::NotAPlan {
            path: path.to_path_buf(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| not_a_plan(format!("invalid JSON: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_a_plan(format!("no `\"format\": \"{FORMAT}\"`")));
        }
        let found = value.get("format_version").and_then(|v| v.as_u64());
        if found != Some(u64::from(FORMAT_VERSION)) {
            return Err(FormatError::FormatVersion {
                path: path.to_path_buf(),
                found: found.unwrap_or(0),
            });
        }
        let made_by = value.get("pgdeploy_version").and_then(|v| v.as_str());
        if made_by != Some(PGDEPLOY_VERSION) {
            return Err(FormatError::Version {
                path: path.to_path_buf(),
                made_by: made_by.unwrap_or("unknown").to_string(),
            });
        }
        serde_json::from_value(value).map_err(|e| not_a_plan(e.to_string()))
    }
}

/// Now, as `2026-12-01T19:20:03Z`.
fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdeploy_core::secrets::Redactor;

    fn sample() -> SavedPlan {
        SavedPlan::new(
            Inputs {
                cwd: "/site".into(),
                inventory: InputPath {
                    given: "inv.yml".into(),
                    absolute: "/site/inv.yml".into(),
                },
                playbook: InputPath {
                    given: "pb.yml".into(),
                    absolute: "/site/pb.yml".into(),
                },
                limit: Some("db*".into()),
                facts: None,
                extra_vars: vec!["@vars.yml".into(), "pg_version=16".into()],
                tags: vec!["config".into()],
                skip_tags: vec![],
            },
            vec![InputFile {
                path: "inv.yml".into(),
                absolute: "/site/inv.yml".into(),
                sha256: pgdeploy_core::inputs::sha256_hex(b"all: {}\n"),
            }],
            vec![(
                "APP_TOKEN".into(),
                pgdeploy_core::inputs::env_digest(Some("x")),
            )],
            vec![
                SavedStep {
                    play: 0,
                    handler: false,
                    index: 1,
                    task: "b".into(),
                    module: "copy".into(),
                    host: "db1".into(),
                    status: StepStatus::Changed,
                    changes: vec![SavedChange {
                        summary: "update `/x`".into(),
                        diff: Some("--- /x (current)\n+++ /x (wanted)\n".into()),
                    }],
                    notes: vec![],
                },
                SavedStep {
                    play: 0,
                    handler: false,
                    index: 0,
                    task: "a".into(),
                    module: "directory".into(),
                    host: "db1".into(),
                    status: StepStatus::Ok,
                    changes: vec![],
                    notes: vec!["a note".into()],
                },
            ],
        )
    }

    #[test]
    fn inputs_are_given_back_from_another_directory() {
        let args = sample().inputs.to_args(None, &pgdeploy_modules::CATALOGUE);
        assert_eq!(args.inventory, PathBuf::from("/site/inv.yml"));
        assert_eq!(args.extra_vars, ["@/site/vars.yml", "pg_version=16"]);
        assert_eq!(args.tags, ["config"]);
        assert!(args.skip_tags.is_empty());
    }

    #[test]
    fn round_trip_in_report_order() {
        let plan = sample();
        assert_eq!(plan.steps[0].task, "a", "sorted by place");
        let text = plan.to_json(&Redactor::default());
        let back = SavedPlan::parse(&text, Path::new("p.json")).unwrap();
        assert_eq!(back, plan);
        assert!(back.has_changes());
    }

    #[test]
    fn written_atomically_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        sample().write(&path, &Redactor::default()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        assert_eq!(SavedPlan::read(&path).unwrap().steps.len(), 2);
    }

    #[test]
    fn other_versions_and_other_files_are_refused() {
        let path = Path::new("p.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&sample().to_json(&Redactor::default())).unwrap();
        v["pgdeploy_version"] = "0.0.1-old".into();
        let e = SavedPlan::parse(&v.to_string(), path).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("`p.json` was made by pgdeploy `0.0.1-old`, this is pgdeploy `{PGDEPLOY_VERSION}`: make the plan again with this version")
        );
        v["format_version"] = 2.into();
        let e = SavedPlan::parse(&v.to_string(), path).unwrap_err();
        assert!(
            matches!(e, FormatError::FormatVersion { found: 2, .. }),
            "{e}"
        );
        let e = SavedPlan::parse("{\"steps\": []}", path).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`p.json` is not a plan saved by `pgdeploy plan --out`"),
            "{e}"
        );
        // An unknown field is refused, not ignored.
        let mut v: serde_json::Value =
            serde_json::from_str(&sample().to_json(&Redactor::default())).unwrap();
        v["inputs"]["only_tags"] = serde_json::json!(["x"]);
        let e = SavedPlan::parse(&v.to_string(), path).unwrap_err();
        assert!(e.to_string().contains("unknown field `only_tags`"), "{e}");
    }

    #[test]
    fn written_text_is_masked_again() {
        let mut plan = sample();
        plan.steps[1].changes[0].summary = "set `hunter2-secret`".into();
        let text = plan.to_json(&Redactor::new(vec!["hunter2-secret".into()]));
        assert!(!text.contains("hunter2-secret") && text.contains("set `********`"));
    }
}
