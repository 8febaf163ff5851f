//! The compiler: playbook + inventory → a DAG of (task, host) steps.
//!
//! It selects each play's hosts, renders and types every task's parameters per host,
//! checks what can be checked offline (handlers, `wait_for` targets, undefined variables),
//! and builds the dependency graph: per-host order from the playbook, play boundaries, and
//! the cross-host constraints modules declare. A cycle is an error naming the cycle.
//! Only this module's output — never raw playbook nodes — reaches the executor.

mod dag;
mod guards;
mod output;
mod params;

pub use dag::{Edge, Step, StepKind};
pub use output::{to_dot, to_text};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::playbook::Playbook;
use pgdeploy_core::diag::{did_you_mean, Diagnostic, Diagnostics, Location};
use pgdeploy_core::inventory::{pattern, Inventory};
use pgdeploy_core::template::{Facts, ScopeShared};

/// What the compiler needs besides the playbook.
pub struct CompileOptions<'a> {
    /// `--limit`: only hosts matching this pattern are run.
    pub limit: Option<&'a str>,
    /// Facts per host, once gathered (or given by tests); `None` defers templates that need them.
    pub facts: Option<HashMap<String, Facts>>,
}

/// A compiled run: the plays' hosts and the DAG of steps.
pub struct Compiled {
    pub graph: DiGraph<Step, Edge>,
    /// Hosts of each play, in inventory order, after `--limit`.
    pub play_hosts: Vec<Vec<String>>,
    /// Every host that runs at least one step.
    pub hosts: Vec<String>,
    /// For each play and each of its hosts, whether the play sees the host's facts
    /// (`gather_facts`, here or in an earlier play).
    pub play_facts: Vec<Vec<bool>>,
    /// The `become_method` keywords' choice for each host that has one (see
    /// [`become_methods`]); other hosts use their inventory's.
    pub become_methods: HashMap<String, pgdeploy_core::transport::BecomeMethod>,
    /// Steps in an order that respects every edge.
    pub order: Vec<NodeIndex>,
    /// Warnings found while compiling (errors abort instead).
    pub warnings: Diagnostics,
    /// The hosts whose facts some play sees ([`Compiled::needs_facts`]), as a set: asked once
    /// per host, a scan of every play's hosts would be quadratic.
    facts_hosts: HashSet<String>,
}

/// Compiles a loaded playbook against an inventory.
pub fn compile(
    playbook: &Playbook,
    inventory: Arc<Inventory>,
    options: CompileOptions<'_>,
) -> Result<Compiled, Diagnostics> {
    let mut diags = Diagnostics::new();
    let file = &playbook.file;
    let limited: Option<HashSet<&str>> = match options.limit {
        None => None,
        Some(limit) => match pattern::select(&inventory, limit) {
            Ok(hosts) => Some(hosts.into_iter().collect()),
            Err(e) => {
                diags.push(Diagnostic::error(None, "--limit", e.to_string()));
                return Err(diags);
            }
        },
    };
    let mut play_hosts = Vec::new();
    for play in &playbook.plays {
        let hosts = match pattern::select(&inventory, &play.hosts.value) {
            Ok(hosts) => hosts
                .into_iter()
                .filter(|h| limited.as_ref().is_none_or(|l| l.contains(h)))
                .map(str::to_string)
                .collect(),
            Err(e) => {
                let mut d = Diagnostic::error(
                    Some(Location::new(file, play.hosts.mark)),
                    play.path.key("hosts").as_str(),
                    e.to_string(),
                );
                if let pattern::PatternError::NoMatch {
                    suggestion: Some(s),
                    ..
                } = &e
                {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
                Vec::new()
            }
        };
        play_hosts.push(hosts);
    }
    check_notify(playbook, &mut diags);
    let become_methods = become_methods(playbook, &play_hosts, &inventory, &mut diags);
    let mut env = pgdeploy_core::template::environment_for(&playbook.dir);
    params::precompile_templates(playbook, &mut env);
    let shared = ScopeShared::new(Arc::new(env), inventory, options.facts);
    let actions = params::resolve(playbook, &play_hosts, &shared, &mut diags);
    if diags.has_errors() {
        return Err(diags.sorted());
    }
    let graph = dag::build(
        playbook,
        &play_hosts,
        &shared.inventory,
        actions,
        &mut diags,
    );
    if diags.has_errors() {
        return Err(diags.sorted());
    }
    let order = match dag::check_cycles(&graph, file) {
        Ok(order) => order,
        Err(d) => {
            diags.push(*d);
            return Err(diags.sorted());
        }
    };
    let in_plays: HashSet<&str> = play_hosts.iter().flatten().map(String::as_str).collect();
    let hosts: Vec<String> = shared
        .inventory
        .hosts
        .keys()
        .filter(|h| in_plays.contains(h.as_str()))
        .cloned()
        .collect();
    let play_facts = params::facts_in_plays(playbook, &play_hosts);
    let facts_hosts = play_hosts
        .iter()
        .zip(&play_facts)
        .flat_map(|(hosts, f)| hosts.iter().zip(f).filter(|(_, &f)| f))
        .map(|(h, _)| h.clone())
        .collect();
    Ok(Compiled {
        graph,
        play_hosts,
        hosts,
        play_facts,
        become_methods,
        order,
        facts_hosts,
        warnings: diags.sorted(),
    })
}

impl Compiled {
    /// The hosts whose facts some play sees: only they are gathered.
    pub fn needs_facts(&self, host: &str) -> bool {
        self.facts_hosts.contains(host)
    }
}

/// The `become_method` keywords, per host. A host has one connection for the run, so one way
/// to raise privileges: tasks that become on the same host with different methods are an error
/// at the second. The host's own `ansible_become_method` wins over the keywords, as Ansible's
/// connection variables win over playbook keywords.
fn become_methods(
    playbook: &Playbook,
    play_hosts: &[Vec<String>],
    inventory: &Inventory,
    diags: &mut Diagnostics,
) -> HashMap<String, pgdeploy_core::transport::BecomeMethod> {
    let mut chosen: HashMap<String, (pgdeploy_core::transport::BecomeMethod, String)> =
        HashMap::new();
    for (play, hosts) in playbook.plays.iter().zip(play_hosts) {
        for task in play.tasks.iter().chain(&play.handlers) {
            let Some(method) = task.become_method.as_ref().or(play.become_method.as_ref()) else {
                continue;
            };
            let path = match &task.become_method {
                Some(_) => task.path.key("become_method"),
                None => play.path.key("become_method"),
            };
            for name in hosts {
                let Some(host) = inventory.hosts.get(name) else {
                    continue;
                };
                let on = task
                    .become_
                    .or(play.become_)
                    .unwrap_or(host.connection.become_);
                if !on || host.vars.contains_key("ansible_become_method") {
                    continue;
                }
                match chosen.get(name) {
                    None => {
                        chosen.insert(name.clone(), (method.value, path.to_string()));
                    }
                    Some((first, at)) if *first != method.value => {
                        diags.push(
                            Diagnostic::error(
                                Some(Location::new(&playbook.file, method.mark)),
                                path.as_str(),
                                format!(
                                    "host `{name}` would become with `{}` here and with `{}` at `{at}`: \
                                     pgdeploy raises privileges one way per host",
                                    method.value.name(),
                                    first.name()
                                ),
                            )
                            .with_help("use one `become_method` for the host's tasks, or set `ansible_become_method` for it"),
                        );
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
    }
    chosen.into_iter().map(|(h, (m, _))| (h, m)).collect()
}

/// Every `notify` names a handler of its play; every handler is notified by something.
fn check_notify(playbook: &Playbook, diags: &mut Diagnostics) {
    let file = &playbook.file;
    for play in &playbook.plays {
        for task in &play.tasks {
            for n in &task.notify {
                if play.handlers.iter().any(|h| h.answers(&n.value)) {
                    continue;
                }
                let names: Vec<&str> = play
                    .handlers
                    .iter()
                    .filter_map(|h| h.name.as_deref())
                    .collect();
                let mut d = Diagnostic::error(
                    Some(Location::new(file, n.mark)),
                    task.path.key("notify").as_str(),
                    format!("no handler named `{}` in this play", n.value),
                );
                if let Some(best) = did_you_mean(&n.value, names.iter().copied()) {
                    d = d.with_help(format!("did you mean `{best}`?"));
                }
                diags.push(d);
            }
        }
        for h in &play.handlers {
            let notified = play
                .tasks
                .iter()
                .any(|t| t.notify.iter().any(|n| h.answers(&n.value)));
            if !notified {
                diags.push(Diagnostic::warning(
                    Some(Location::new(file, h.mark)),
                    h.path.as_str(),
                    format!("handler `{}` is never notified", h.display_name()),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
