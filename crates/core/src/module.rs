//! The module contract: what every entry of the catalogue provides to the engine.
//!
//! Invariant: the engine knows nothing of any particular module. It looks modules up by
//! name in the [`Catalogue`] it was given, asks them to read their parameters into a typed value
//! ([`Action`]), and asks them how the hosts of one task are ordered ([`HostOrdering`]).
//! A module declares its parameters as a serde struct with `deny_unknown_fields` and
//! implements [`Params`]; [`Typed`] turns that into a registered [`Module`].

use std::fmt::Debug;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

pub use crate::change::{Change, Diff, Plan};
use crate::template::{Facts, Scope};
use crate::transport::{Become, ExecOutput, Transport, TransportError};

use crate::diag::FieldPath;
use crate::inventory::Host;
use crate::yaml::{from_node, DeError, Node};

/// How the hosts of one task are ordered against each other.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostOrdering {
    /// Each host runs the task as soon as its own previous task is done.
    #[default]
    Independent,
    /// Every host finishes the previous task before any host starts this one.
    BarrierBefore,
    /// `first` runs the task alone; the others start once it is done, at most
    /// `then_at_most` at a time.
    FirstThenRolling { first: String, then_at_most: usize },
}

/// What a module may look at to decide the ordering of a task: the task's hosts (with their
/// inventory variables) and its parameters before templating.
pub struct OrderingContext<'a> {
    pub hosts: &'a [&'a Host],
    pub params: &'a Node,
}

/// Where a module's local files (templates, `src:` files) are looked up, and the inventory
/// once it is known (when compiling, not when the playbook loads), for parameters that name
/// its hosts or groups.
pub struct ParseContext<'a> {
    pub playbook_dir: &'a Path,
    pub inventory: Option<&'a crate::inventory::Inventory>,
}

/// Everything a module may use on one host. Modules reach the host only through
/// `transport`; they never open connections themselves.
pub struct HostContext<'a> {
    pub host: &'a str,
    pub transport: &'a dyn Transport,
    /// The host's gathered facts (`ansible_os_family`, `ansible_pkg_mgr`, …).
    pub facts: &'a Facts,
    /// The host's variables, for modules that render templates.
    pub scope: &'a Arc<Scope>,
    /// Privilege for this task (from `become`/`become_user` of the task, play or host).
    pub become_: Become,
    /// Where `src:` files and templates are found.
    pub playbook_dir: &'a Path,
    /// The run's `--allow-removal`: a module that would take a member out of a cluster (one
    /// the inventory no longer lists) does it only when set, and otherwise says so in a note
    /// naming the flag. The engine only passes it on; what a removal is, each module decides.
    pub allow_removal: bool,
}

/// Why a module could not plan or apply.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A command the module ran failed; `output` is its stderr (or stdout), trimmed.
    #[error("`{command}` failed with exit status {status}: {output}")]
    Command {
        command: String,
        status: i32,
        output: String,
    },
    #[error("{0}")]
    Failed(String),
}

/// A task's parameters for one host, typed and validated: what gets planned and applied.
///
/// `plan` reads the host's state and says what would change, without writing anything;
/// `apply` makes exactly the changes of that plan. A second run on a converged host plans
/// no change, so it runs nothing that changes state.
#[async_trait]
pub trait Action: Debug + Send + Sync {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError>;
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError>;
    /// Read-only commands `plan` will run on the host (with the task's privilege, no stdin,
    /// the default timeout), known before it runs. The engine may run those of several steps
    /// in one round trip ahead of time and answer `plan`'s identical requests from that batch
    /// (see `run::readahead`), so a no-op step costs no round trip of its own. A command
    /// listed here must change nothing on the host, and its answer may be read a few steps
    /// early: leave out what changes on its own within seconds (which peers answer on a port,
    /// a cluster's health); a daemon's unit state is fine.
    fn probes(&self, _cx: &ProbeContext<'_>) -> Vec<Probe> {
        Vec::new()
    }
}

/// What a module may use to say which probes its `plan` will run on a host.
pub struct ProbeContext<'a> {
    /// The inventory name of the host.
    pub host: &'a str,
    /// The host's gathered facts.
    pub facts: &'a Facts,
}

/// A read-only command that a module's `plan` runs, declared ahead ([`Action::probes`]).
#[derive(Clone)]
pub struct Probe {
    /// The command, exactly as `plan` runs it.
    pub command: String,
    /// How to answer it together with probes of its kind in one command, when it can be.
    pub group: Option<ProbeGroup>,
}

impl Probe {
    /// A probe answered by running its command.
    pub fn command(command: impl Into<String>) -> Self {
        Probe {
            command: command.into(),
            group: None,
        }
    }
}

impl Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("command", &self.command)
            .field("batcher", &self.group.as_ref().map(|g| g.batcher.name()))
            .finish()
    }
}

/// Where a [`Probe`] belongs among probes that one command answers together.
#[derive(Clone)]
pub struct ProbeGroup {
    pub batcher: &'static dyn Batcher,
    /// What the probe asks of the batcher (a path, say).
    pub item: String,
}

/// Answers many probes of one kind with one command: twenty `stat` probes cost twenty
/// processes on the host, one `stat` of twenty paths costs one.
pub trait Batcher: Send + Sync {
    /// Probes are grouped by this name.
    fn name(&self) -> &'static str;
    /// One read-only command that answers every item.
    fn script(&self, items: &[String]) -> String;
    /// For each item, what its probe's own command would have given, from the output of
    /// [`Batcher::script`]; `None` for an item it cannot tell (that probe then runs alone).
    fn split(&self, items: &[String], out: &ExecOutput) -> Vec<Option<ExecOutput>>;
}

/// A problem found by a module's own checks, beyond what serde checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The parameter it is about (a key of the module's mapping), if any.
    pub field: Option<&'static str>,
    pub message: String,
    /// A warning is shown but does not stop the run.
    pub warning: bool,
}

impl Problem {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Problem {
            field: Some(field),
            message: message.into(),
            warning: false,
        }
    }
    pub fn general(message: impl Into<String>) -> Self {
        Problem {
            field: None,
            message: message.into(),
            warning: false,
        }
    }
    /// A warning about `field`: shown by `validate`, `plan` and `apply` before any host is
    /// touched, without stopping them.
    pub fn field_warning(field: &'static str, message: impl Into<String>) -> Self {
        Problem {
            warning: true,
            ..Problem::field(field, message)
        }
    }
}

/// A task's parameters read for one host: the action, and warnings about the parameters.
pub struct Parsed {
    pub action: Arc<dyn Action>,
    pub warnings: Vec<DeError>,
}

/// One task of a module in a playbook, as written (before templating), for checks that look
/// at several tasks together.
pub struct TaskRef<'a> {
    /// The module's parameters (`plays[0].tasks[1].keepalived`'s mapping).
    pub params: &'a Node,
    /// The path of that mapping.
    pub path: FieldPath,
}

/// The table of modules a run looks task names up in. The engine takes it as a parameter
/// (the binary passes `pgdeploy_modules::CATALOGUE`), so no engine code names a module.
#[derive(Clone, Copy)]
pub struct Catalogue {
    modules: &'static [&'static dyn Module],
}

impl Catalogue {
    pub const fn new(modules: &'static [&'static dyn Module]) -> Self {
        Catalogue { modules }
    }

    /// Every registered module, in table order.
    pub fn modules(&self) -> impl Iterator<Item = &'static dyn Module> {
        self.modules.iter().copied()
    }

    /// The module registered under `name`.
    pub fn find(&self, name: &str) -> Option<&'static dyn Module> {
        self.modules().find(|m| m.name() == name)
    }

    /// Every module name, for suggestions.
    pub fn names(&self) -> Vec<&'static str> {
        self.modules().map(|m| m.name()).collect()
    }
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A module kind, registered once in the catalogue.
pub trait Module: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// One line saying what the module manages.
    fn summary(&self) -> &'static str;
    /// Reads and checks the parameters for one host, after templating. Errors stop the run;
    /// warnings (in [`Parsed`]) are reported with their place.
    fn parse(
        &self,
        params: &Node,
        path: &FieldPath,
        cx: &ParseContext<'_>,
    ) -> Result<Parsed, Vec<DeError>>;
    /// How the hosts of one task of this module are ordered.
    fn ordering(&self, _cx: &OrderingContext<'_>) -> HostOrdering {
        HostOrdering::Independent
    }
    /// Checks every task of this module in a playbook together (a value that must be unique
    /// across tasks, say). Runs at load, on the parameters as written.
    fn check_tasks(&self, _tasks: &[TaskRef<'_>]) -> Vec<DeError> {
        Vec::new()
    }
}

/// A module's typed parameters.
pub trait Params: DeserializeOwned + Action + 'static {
    const NAME: &'static str;
    const SUMMARY: &'static str;
    /// Cross-field checks that the serde struct cannot express.
    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        Vec::new()
    }
    fn ordering(_cx: &OrderingContext<'_>) -> HostOrdering {
        HostOrdering::Independent
    }
    /// See [`Module::check_tasks`].
    fn check_tasks(_tasks: &[TaskRef<'_>]) -> Vec<DeError> {
        Vec::new()
    }
}

/// The [`Module`] made from a [`Params`] type.
pub struct Typed<P>(PhantomData<fn() -> P>);

impl<P> Typed<P> {
    pub const fn new() -> Self {
        Typed(PhantomData)
    }
}

impl<P> Default for Typed<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Params> Module for Typed<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }
    fn summary(&self) -> &'static str {
        P::SUMMARY
    }
    fn parse(
        &self,
        params: &Node,
        path: &FieldPath,
        cx: &ParseContext<'_>,
    ) -> Result<Parsed, Vec<DeError>> {
        let typed: P = from_node(params, path).map_err(|e| vec![e])?;
        let (warnings, errors): (Vec<Problem>, Vec<Problem>) =
            typed.check(cx).into_iter().partition(|p| p.warning);
        let placed = |problems: Vec<Problem>| -> Vec<DeError> {
            problems
                .into_iter()
                .map(|p| {
                    let (mark, path) = match p.field.and_then(|f| params.get(f).map(|n| (f, n))) {
                        Some((f, node)) => (node.mark, path.key(f)),
                        None => (params.mark, path.clone()),
                    };
                    DeError::new(p.message).at(mark, &path)
                })
                .collect()
        };
        if !errors.is_empty() {
            return Err(placed(errors));
        }
        Ok(Parsed {
            action: Arc::new(typed),
            warnings: placed(warnings),
        })
    }
    fn ordering(&self, cx: &OrderingContext<'_>) -> HostOrdering {
        P::ordering(cx)
    }
    fn check_tasks(&self, tasks: &[TaskRef<'_>]) -> Vec<DeError> {
        P::check_tasks(tasks)
    }
}
