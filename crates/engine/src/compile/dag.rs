//! Building the step graph and finding cycles in it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::params::PlayActions;
use crate::playbook::Playbook;
use pgdeploy_core::diag::{
    did_you_mean, Diagnostic, Diagnostics, FieldPath, Location, Mark, SourceFile,
};
use pgdeploy_core::inventory::{Host, Inventory};
use pgdeploy_core::module::{Action, HostOrdering, OrderingContext};

/// A node of the graph.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    /// At most this many steps of the same task run at once (`throttle`, rolling orders).
    pub limit: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// A task on one host. `action` is `None` while it needs facts not yet gathered.
    /// `name` and `host` are shared by the steps of a task and of a host: a site of 100,000
    /// hosts has millions of steps.
    Task {
        play: usize,
        task: usize,
        name: Arc<str>,
        host: Arc<str>,
        action: Option<Arc<dyn Action>>,
    },
    /// A handler on one host; it runs only if something notified it there.
    Handler {
        play: usize,
        handler: usize,
        name: Arc<str>,
        host: Arc<str>,
        action: Option<Arc<dyn Action>>,
    },
    /// A synchronisation point: every step before it finishes before any step after it.
    Barrier {
        label: String,
        /// The `wait_for` that asked for it, if a user did.
        origin: Option<(Mark, FieldPath)>,
    },
}

impl Step {
    pub fn label(&self) -> String {
        match &self.kind {
            StepKind::Task { name, host, .. } => format!("`{name}` on `{host}`"),
            StepKind::Handler { name, host, .. } => format!("handler `{name}` on `{host}`"),
            StepKind::Barrier { label, .. } => label.clone(),
        }
    }
    pub fn host(&self) -> Option<&str> {
        match &self.kind {
            StepKind::Task { host, .. } | StepKind::Handler { host, .. } => Some(host),
            StepKind::Barrier { .. } => None,
        }
    }
}

/// Why one step comes after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The playbook's order of tasks on one host.
    HostOrder,
    /// Every host finishes a play before any host starts the next one.
    PlayBoundary,
    /// A module asked for all hosts of the previous task to finish first.
    Barrier,
    /// A task's `wait_for`.
    WaitFor,
    /// A module runs the task on one host first (the intended primary).
    FirstHost,
    /// Handlers run after the play's tasks on the host.
    Handler,
}

impl Edge {
    pub fn reason(self) -> &'static str {
        match self {
            Edge::HostOrder => "host order",
            Edge::PlayBoundary => "play boundary",
            Edge::Barrier => "barrier",
            Edge::WaitFor => "wait_for",
            Edge::FirstHost => "first host",
            Edge::Handler => "handler",
        }
    }
}

fn link(g: &mut DiGraph<Step, Edge>, from: Option<NodeIndex>, to: NodeIndex, why: Edge) {
    if let Some(from) = from {
        g.add_edge(from, to, why);
    }
}

fn barrier(
    g: &mut DiGraph<Step, Edge>,
    label: String,
    origin: Option<(Mark, FieldPath)>,
) -> NodeIndex {
    g.add_node(Step {
        kind: StepKind::Barrier { label, origin },
        limit: None,
    })
}

pub(super) fn build(
    playbook: &Playbook,
    play_hosts: &[Vec<String>],
    inventory: &Inventory,
    actions: Vec<super::params::PlayActions>,
    diags: &mut Diagnostics,
) -> DiGraph<Step, Edge> {
    let mut g: DiGraph<Step, Edge> = DiGraph::new();
    let mut gate: Option<NodeIndex> = None;
    let mut task_nodes: HashMap<(usize, usize), Vec<NodeIndex>> = HashMap::new();
    // A play without hosts, or whose tasks `--tags` all filtered out, has no step and no
    // boundary.
    let runs = |p: usize| !play_hosts[p].is_empty() && !playbook.plays[p].tasks.is_empty();
    let last_play = (0..play_hosts.len()).rev().find(|&p| runs(p));
    for (p, ((play, hosts), acts)) in playbook
        .plays
        .iter()
        .zip(play_hosts)
        .zip(actions)
        .enumerate()
    {
        if !runs(p) {
            continue;
        }
        let PlayActions {
            tasks: task_actions,
            handlers: handler_actions,
        } = acts;
        let mut prev: Vec<Option<NodeIndex>> = vec![gate; hosts.len()];
        let mut why = Edge::PlayBoundary;
        let host_names: Vec<Arc<str>> = hosts.iter().map(|h| Arc::from(h.as_str())).collect();
        let host_refs: Vec<&Host> = hosts
            .iter()
            .filter_map(|h| inventory.hosts.get(h))
            .collect();
        for (t, (task, per_host)) in play.tasks.iter().zip(task_actions).enumerate() {
            let ordering = task.module.ordering(&OrderingContext {
                hosts: &host_refs,
                params: &task.raw_params,
            });
            let rolling = match &ordering {
                HostOrdering::FirstThenRolling { then_at_most, .. } => Some(*then_at_most),
                _ => None,
            };
            let limit = match (play.throttle, rolling) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let name: Arc<str> = Arc::from(task.display_name());
            let nodes: Vec<NodeIndex> = host_names
                .iter()
                .zip(per_host)
                .map(|(host, action)| {
                    g.add_node(Step {
                        kind: StepKind::Task {
                            play: p,
                            task: t,
                            name: name.clone(),
                            host: host.clone(),
                            action,
                        },
                        limit,
                    })
                })
                .collect();
            match &ordering {
                HostOrdering::BarrierBefore => {
                    let b = barrier(
                        &mut g,
                        format!("every host ready for `{}`", task.display_name()),
                        None,
                    );
                    for (i, n) in nodes.iter().enumerate() {
                        link(&mut g, prev[i], b, Edge::Barrier);
                        g.add_edge(b, *n, Edge::Barrier);
                    }
                }
                HostOrdering::FirstThenRolling { first, .. } => {
                    let first_idx = hosts.iter().position(|h| h == first);
                    for (i, n) in nodes.iter().enumerate() {
                        link(&mut g, prev[i], *n, why);
                        if let Some(f) = first_idx.filter(|f| *f != i) {
                            g.add_edge(nodes[f], *n, Edge::FirstHost);
                        }
                    }
                }
                HostOrdering::Independent => {
                    for (i, n) in nodes.iter().enumerate() {
                        link(&mut g, prev[i], *n, why);
                    }
                }
            }
            prev = nodes.iter().copied().map(Some).collect();
            why = Edge::HostOrder;
            task_nodes.insert((p, t), nodes);
        }
        for (h, (handler, per_host)) in play.handlers.iter().zip(handler_actions).enumerate() {
            let notified = play
                .tasks
                .iter()
                .any(|t| t.notify.iter().any(|n| handler.answers(&n.value)));
            if !notified {
                continue;
            }
            let name: Arc<str> = Arc::from(handler.display_name());
            for (i, (host, action)) in host_names.iter().zip(per_host).enumerate() {
                let n = g.add_node(Step {
                    kind: StepKind::Handler {
                        play: p,
                        handler: h,
                        name: name.clone(),
                        host: host.clone(),
                        action,
                    },
                    limit: play.throttle,
                });
                link(&mut g, prev[i], n, Edge::Handler);
                prev[i] = Some(n);
            }
        }
        if Some(p) != last_play {
            let name = if play.name.is_empty() {
                play.hosts.value.clone()
            } else {
                play.name.clone()
            };
            let b = barrier(&mut g, format!("end of play `{name}`"), None);
            for n in prev.iter().flatten() {
                g.add_edge(*n, b, Edge::PlayBoundary);
            }
            gate = Some(b);
        }
    }
    add_wait_for(playbook, &mut g, &task_nodes, diags);
    g
}

/// `wait_for: NAME`: every host of the task(s) named NAME before any host of this task.
fn add_wait_for(
    playbook: &Playbook,
    g: &mut DiGraph<Step, Edge>,
    task_nodes: &HashMap<(usize, usize), Vec<NodeIndex>>,
    diags: &mut Diagnostics,
) {
    let file = &playbook.file;
    let all_names: Vec<&str> = playbook
        .plays
        .iter()
        .flat_map(|p| p.tasks.iter().filter_map(|t| t.name.as_deref()))
        .collect();
    for (p, play) in playbook.plays.iter().enumerate() {
        for (t, task) in play.tasks.iter().enumerate() {
            for w in &task.wait_for {
                let path = task.path.key("wait_for");
                let targets: Vec<(usize, usize)> = playbook
                    .plays
                    .iter()
                    .enumerate()
                    .flat_map(|(tp, play)| {
                        play.tasks
                            .iter()
                            .enumerate()
                            .filter(|(_, other)| other.name.as_deref() == Some(w.value.as_str()))
                            .map(move |(tt, _)| (tp, tt))
                    })
                    .collect();
                if targets.is_empty() {
                    let mut d = Diagnostic::error(
                        Some(Location::new(file, w.mark)),
                        path.as_str(),
                        format!("no task named `{}`", w.value),
                    );
                    if let Some(best) = did_you_mean(&w.value, all_names.iter().copied()) {
                        d = d.with_help(format!("did you mean `{best}`?"));
                    }
                    diags.push(d);
                    continue;
                }
                if targets.contains(&(p, t)) {
                    diags.push(Diagnostic::error(
                        Some(Location::new(file, w.mark)),
                        path.as_str(),
                        format!("task `{}` waits for itself", w.value),
                    ));
                    continue;
                }
                let Some(mine) = task_nodes.get(&(p, t)) else {
                    continue;
                };
                let b = barrier(
                    g,
                    format!("every host finished `{}`", w.value),
                    Some((w.mark, path.clone())),
                );
                for target in &targets {
                    for n in task_nodes.get(target).into_iter().flatten() {
                        g.add_edge(*n, b, Edge::WaitFor);
                    }
                }
                for n in mine {
                    g.add_edge(b, *n, Edge::WaitFor);
                }
            }
        }
    }
}

/// A topological order that prefers steps created earlier (the playbook's order), so
/// output reads like the playbook. `None` when the graph has a cycle.
fn stable_order(g: &DiGraph<Step, Edge>) -> Option<Vec<NodeIndex>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut indegree: Vec<usize> = g
        .node_indices()
        .map(|n| g.edges_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(g.node_count());
    while let Some(Reverse(i)) = ready.pop() {
        let n = NodeIndex::new(i);
        order.push(n);
        for next in g.neighbors_directed(n, Direction::Outgoing) {
            indegree[next.index()] -= 1;
            if indegree[next.index()] == 0 {
                ready.push(Reverse(next.index()));
            }
        }
    }
    (order.len() == g.node_count()).then_some(order)
}

/// A topological order of the steps, or an error naming a cycle.
pub(super) fn check_cycles(
    g: &DiGraph<Step, Edge>,
    file: &SourceFile,
) -> Result<Vec<NodeIndex>, Box<Diagnostic>> {
    if let Some(order) = stable_order(g) {
        return Ok(order);
    }
    match petgraph::algo::toposort(g, None) {
        Ok(order) => Ok(order),
        Err(cycle) => {
            let path = shortest_cycle(g, cycle.node_id());
            let labels: Vec<String> = path.iter().map(|n| g[*n].label()).collect();
            let origin = path.iter().find_map(|n| match &g[*n].kind {
                StepKind::Barrier {
                    origin: Some(o), ..
                } => Some(o.clone()),
                _ => None,
            });
            let (location, field) = match origin {
                Some((mark, path)) => (Some(Location::new(file, mark)), path.to_string()),
                None => (Some(Location::file(file)), String::new()),
            };
            Err(Box::new(Diagnostic::error(
                location,
                field,
                format!("dependency cycle: {} → {}", labels.join(" → "), labels[0]),
            )))
        }
    }
}

/// The shortest path from `start` back to itself (breadth-first).
fn shortest_cycle(g: &DiGraph<Step, Edge>, start: NodeIndex) -> Vec<NodeIndex> {
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::new();
    for n in g.neighbors_directed(start, Direction::Outgoing) {
        if n == start {
            return vec![start];
        }
        parent.entry(n).or_insert(start);
        queue.push_back(n);
    }
    while let Some(n) = queue.pop_front() {
        for next in g.neighbors_directed(n, Direction::Outgoing) {
            if next == start {
                let mut path = vec![n];
                let mut cur = n;
                while let Some(&p) = parent.get(&cur) {
                    if p == start {
                        break;
                    }
                    path.push(p);
                    cur = p;
                }
                path.push(start);
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(next) {
                e.insert(n);
                queue.push_back(next);
            }
        }
    }
    vec![start]
}
