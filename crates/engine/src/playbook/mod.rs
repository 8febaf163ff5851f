//! Playbooks: plays of tasks, loaded from YAML into validated types.
//!
//! [`load`] reads the structure (plays, task keywords, which module each task calls) and
//! reports every problem of the file at once. Module parameters are read into the module's
//! typed struct here when they hold no template; templated ones are read per host by the
//! compiler once the host's variables are known.

mod fields;
mod load;
pub mod tags;

pub use load::load;

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use pgdeploy_core::diag::{FieldPath, Mark, SourceFile};
use pgdeploy_core::module::{Action, Module};
use pgdeploy_core::yaml::Node;

#[derive(Debug)]
pub struct Playbook {
    pub file: SourceFile,
    /// The playbook's directory: where `src:` files and `templates/` are found.
    pub dir: PathBuf,
    pub plays: Vec<Play>,
}

/// A string from the file and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub mark: Mark,
}

#[derive(Debug)]
pub struct Play {
    pub name: String,
    /// The host pattern, as written.
    pub hosts: Spanned<String>,
    /// At most this many hosts run a task of this play at once.
    pub throttle: Option<usize>,
    /// One failed host stops the whole play.
    pub any_errors_fatal: bool,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    /// `become_method`, for the tasks that do not set their own.
    pub become_method: Option<Spanned<pgdeploy_core::transport::BecomeMethod>>,
    /// `gather_facts` (default true): whether this play's hosts need their facts.
    pub gather_facts: bool,
    /// `tags` of the play, inherited by each of its tasks for `--tags`/`--skip-tags`.
    pub tags: Vec<String>,
    pub vars: Arc<IndexMap<String, serde_json::Value>>,
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub path: FieldPath,
    pub mark: Mark,
}

/// A task's parameters: read once when they hold no template, else per host.
#[derive(Debug, Clone)]
pub enum TaskParams {
    Static(Arc<dyn Action>),
    Templated(Node),
}

pub struct Task {
    pub name: Option<String>,
    pub module: &'static dyn Module,
    pub params: TaskParams,
    /// The parameters as written (for ordering decisions and messages).
    pub raw_params: Node,
    /// `plays[0].tasks[3]`.
    pub path: FieldPath,
    pub mark: Mark,
    /// A condition (a template expression without braces), evaluated per host.
    pub when: Option<Spanned<String>>,
    pub tags: Vec<String>,
    /// Handler names (or `listen` topics) this task notifies when it changes something.
    pub notify: Vec<Spanned<String>>,
    /// For handlers: extra topics the handler answers to.
    pub listen: Vec<String>,
    /// Every host of the named task(s) finishes before any host starts this one.
    pub wait_for: Vec<Spanned<String>>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    /// `become_method`: how this task's host raises privileges (one way per host, see
    /// `compile::become_methods`).
    pub become_method: Option<Spanned<pgdeploy_core::transport::BecomeMethod>>,
    /// Ansible's `no_log`: the task's changes, diffs, notes and errors (which may be made of
    /// its parameters) are not shown; whether it changed something still is.
    pub no_log: bool,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("module", &self.module.name())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// The name shown to the user: the task's `name`, else its module.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.module.name())
    }
    /// Whether a notification named `topic` reaches this handler.
    pub fn answers(&self, topic: &str) -> bool {
        self.name.as_deref() == Some(topic) || self.listen.iter().any(|l| l == topic)
    }
}
