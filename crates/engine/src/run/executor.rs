//! Walking the step graph: each host moves on as soon as its own predecessors are done.
//!
//! Steps whose predecessors are all done start at once, within `--forks` concurrent steps
//! and each task's own limit (`throttle`, rolling orders). A failed or unreachable host
//! skips its remaining steps while the others go on, unless the play has
//! `any_errors_fatal`. After a stop request (Ctrl-C) no new step starts; running ones finish,
//! so no write is left half-done.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::events::{Event, HostRecap, Reporter, Status};
use super::order::StepKey;
use super::readahead::{ReadAhead, StepProbes};
use crate::compile::{Compiled, Edge, StepKind};
use crate::playbook::{Playbook, Task};
use pgdeploy_core::change::Change;
use pgdeploy_core::inventory::Inventory;
use pgdeploy_core::module::{Action, HostContext, ModuleError, ProbeContext};
use pgdeploy_core::template::{Facts, Scope, ScopeShared};
use pgdeploy_core::transport::{Become, Transport, TransportError};

/// Plan only reads hosts; apply makes the planned changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Plan,
    Apply,
}

/// Everything a run needs, shared by the steps running at once.
pub(super) struct RunContext {
    pub playbook: Playbook,
    pub compiled: Compiled,
    pub shared: Arc<ScopeShared>,
    /// Each host's one connection, behind its read-ahead of probes ([`with_read_ahead`]).
    pub transports: HashMap<String, Arc<ReadAhead>>,
    pub facts: HashMap<String, Arc<Facts>>,
    pub mode: RunMode,
    /// `--allow-removal`, handed to every step ([`HostContext::allow_removal`]).
    pub allow_removal: bool,
    pub forks: usize,
    pub reporter: Arc<dyn Reporter>,
    /// Set on Ctrl-C: no new step starts.
    pub stop: Arc<AtomicBool>,
    /// Each step's place in the text report, by node index ([`super::order::step_keys`]).
    pub keys: Vec<Option<StepKey>>,
}

/// How one step ended (its details went to the reporter).
struct Outcome {
    node: NodeIndex,
    status: Status,
}

/// The per-step facts a running step needs, copied out of the playbook.
struct StepSpec {
    node: NodeIndex,
    key: StepKey,
    host: String,
    task: String,
    module: &'static str,
    when: Option<String>,
    become_: Become,
    scope: Arc<Scope>,
    no_log: bool,
}

fn resolve_become(
    task: &Task,
    play: &crate::playbook::Play,
    inv: &Inventory,
    host: &str,
) -> Become {
    let conn = inv.hosts.get(host).map(|h| &h.connection);
    let on = task
        .become_
        .or(play.become_)
        .unwrap_or_else(|| conn.is_some_and(|c| c.become_));
    if !on {
        return Become::No;
    }
    let user = task
        .become_user
        .clone()
        .or_else(|| play.become_user.clone())
        .or_else(|| conn.and_then(|c| c.become_user.clone()))
        .unwrap_or_else(|| "root".to_string());
    if user == "root" {
        Become::Root
    } else {
        Become::User(user)
    }
}

/// The probes of each host's task steps, in the order they run (see [`ReadAhead`]). With
/// the compile made before facts, steps whose parameters need facts are left out.
pub(super) fn step_probes(
    playbook: &Playbook,
    compiled: &Compiled,
    inventory: &Inventory,
    facts: &HashMap<String, Arc<Facts>>,
) -> HashMap<String, Vec<StepProbes>> {
    let mut steps: HashMap<String, Vec<StepProbes>> = HashMap::new();
    // Hosts with a step that waited for other hosts since their last step with probes.
    let mut fenced: HashSet<&str> = HashSet::new();
    let empty = Facts::new();
    for &n in &compiled.order {
        let StepKind::Task {
            play,
            task,
            host,
            action,
            ..
        } = &compiled.graph[n].kind
        else {
            continue;
        };
        let host: &str = host;
        if waits_for_other_hosts(&compiled.graph, n) {
            fenced.insert(host);
        }
        let Some(action) = action else {
            continue;
        };
        // A `no_log` step reads for itself: batched with other steps' probes, its reads
        // (paths of its parameters) would be logged outside its `no_log` scope.
        if playbook.plays[*play].tasks[*task].no_log {
            continue;
        }
        let probes = action.probes(&ProbeContext {
            host,
            facts: facts.get(host).map_or(&empty, |f| f),
        });
        if probes.is_empty() {
            continue;
        }
        let p = &playbook.plays[*play];
        steps.entry(host.to_string()).or_default().push(StepProbes {
            node: n,
            become_: resolve_become(&p.tasks[*task], p, inventory, host),
            probes,
            fence: fenced.remove(host),
        });
    }
    steps
}

/// Whether step `n` waits for something else than the host's own previous step: a barrier,
/// a `wait_for`, a first host, the end of the previous play.
fn waits_for_other_hosts(
    g: &petgraph::graph::DiGraph<crate::compile::Step, Edge>,
    n: NodeIndex,
) -> bool {
    g.edges_directed(n, Direction::Incoming)
        .any(|e| !matches!(e.weight(), Edge::HostOrder | Edge::Handler))
}

/// Wraps each host's connection in a [`ReadAhead`] that knows the probes of the host's task
/// steps, keeping what `early` already found (probes run with the facts).
pub(super) fn with_read_ahead(
    playbook: &Playbook,
    compiled: &Compiled,
    inventory: &Inventory,
    transports: HashMap<String, Arc<dyn Transport>>,
    facts: &HashMap<String, Arc<Facts>>,
    mut early: HashMap<String, Vec<super::readahead::Found>>,
) -> HashMap<String, Arc<ReadAhead>> {
    let mut steps = step_probes(playbook, compiled, inventory, facts);
    transports
        .into_iter()
        .map(|(host, t)| {
            let probes = steps.remove(&host).unwrap_or_default();
            let ra = ReadAhead::new(t, probes);
            if let Some(found) = early.remove(&host) {
                ra.keep(found);
            }
            (host, Arc::new(ra))
        })
        .collect()
}

/// Runs every step; returns the recap per host (inventory order).
pub(super) async fn execute(cx: Arc<RunContext>, unreachable: &HashSet<String>) -> Vec<HostRecap> {
    let mut walk = Walk::new(&cx, unreachable);
    loop {
        while let Some(n) = walk.ready.pop_front() {
            walk.start(&cx, n);
        }
        let Some(joined) = walk.running.join_next().await else {
            break;
        };
        match joined {
            Ok(outcome) => walk.finished(&cx, outcome),
            Err(e) => {
                // A step panicked: a bug, reported as an error of the run.
                tracing::error!("a step stopped unexpectedly: {e}");
                walk.abort = true;
            }
        }
    }
    cx.compiled
        .hosts
        .iter()
        .filter_map(|h| walk.recap.remove(h))
        .collect()
}

/// Where a pass over the step graph is: which steps may start, what runs, what each host did.
struct Walk {
    /// Per node, how many of its predecessors are not done yet.
    indegree: Vec<usize>,
    ready: VecDeque<NodeIndex>,
    recap: HashMap<String, HostRecap>,
    /// Hosts that failed or could not be reached: their later steps do not run.
    down: HashSet<String>,
    /// Per host, the handlers (play, handler) a changed task notified.
    notified: HashMap<String, HashSet<(usize, usize)>>,
    /// No step starts any more (a step panicked, `any_errors_fatal`).
    abort: bool,
    forks: Arc<Semaphore>,
    /// Per task, the bound on hosts at once its module asked for (`HostOrdering`).
    limits: HashMap<(usize, usize, bool), Arc<Semaphore>>,
    scopes: HashMap<(usize, String), Arc<Scope>>,
    running: JoinSet<Outcome>,
    /// Task steps that failed, or never ran because their host was down.
    not_ok: HashSet<NodeIndex>,
}

impl Walk {
    fn new(cx: &RunContext, unreachable: &HashSet<String>) -> Self {
        let g = &cx.compiled.graph;
        let indegree: Vec<usize> = g
            .node_indices()
            .map(|n| g.edges_directed(n, Direction::Incoming).count())
            .collect();
        let ready = g
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .collect();
        let recap = cx
            .compiled
            .hosts
            .iter()
            .map(|h| {
                (
                    h.clone(),
                    HostRecap {
                        host: h.clone(),
                        unreachable: unreachable.contains(h),
                        ..Default::default()
                    },
                )
            })
            .collect();
        Walk {
            indegree,
            ready,
            recap,
            down: unreachable.clone(),
            notified: HashMap::new(),
            abort: false,
            forks: Arc::new(Semaphore::new(cx.forks.max(1))),
            limits: HashMap::new(),
            scopes: HashMap::new(),
            running: JoinSet::new(),
            not_ok: HashSet::new(),
        }
    }

    /// The step of node `n` that would run now: (play, task or handler, is a handler, host),
    /// `None` for a barrier, a stopped run, a host that is down, or a handler not notified.
    fn to_start(&self, cx: &RunContext, n: NodeIndex) -> Option<(usize, usize, bool, String)> {
        // Nobody reads the results any more (`| head`): stop as on Ctrl-C.
        let stopping =
            self.abort || cx.stop.load(Ordering::SeqCst) || pgdeploy_core::output::stdout_closed();
        match &cx.compiled.graph[n].kind {
            StepKind::Barrier { .. } => None,
            StepKind::Task { host, .. } | StepKind::Handler { host, .. }
                if stopping || self.down.contains(&**host) =>
            {
                None
            }
            StepKind::Handler {
                play,
                handler,
                host,
                ..
            } => {
                let wanted = self
                    .notified
                    .get(&**host)
                    .is_some_and(|s| s.contains(&(*play, *handler)));
                wanted.then(|| (*play, *handler, true, host.to_string()))
            }
            StepKind::Task {
                play, task, host, ..
            } => Some((*play, *task, false, host.to_string())),
        }
    }

    /// Starts the step of node `n`, or passes it over (and releases its successors).
    fn start(&mut self, cx: &Arc<RunContext>, n: NodeIndex) {
        let g = &cx.compiled.graph;
        let Some((p, t, is_handler, host)) = self.to_start(cx, n) else {
            if matches!(g[n].kind, StepKind::Task { .. }) {
                self.not_ok.insert(n);
            }
            if let Some(key) = cx.keys[n.index()] {
                cx.reporter.step_passed(key);
            }
            complete(n, g, &mut self.indegree, &mut self.ready);
            return;
        };
        let play = &cx.playbook.plays[p];
        let task = if is_handler {
            &play.handlers[t]
        } else {
            &play.tasks[t]
        };
        let scope = self
            .scopes
            .entry((p, host.clone()))
            .or_insert_with(|| {
                let hosts = Arc::new(cx.compiled.play_hosts[p].clone());
                let facts = cx.compiled.play_hosts[p]
                    .iter()
                    .position(|h| *h == host)
                    .is_none_or(|i| cx.compiled.play_facts[p][i]);
                Scope::for_play(&cx.shared, &host, play.vars.clone(), hosts, facts)
            })
            .clone();
        let spec = StepSpec {
            node: n,
            key: cx.keys[n.index()].unwrap_or_default(),
            host: host.clone(),
            task: task.display_name().to_string(),
            module: task.module.name(),
            when: task.when.as_ref().map(|w| w.value.clone()),
            become_: resolve_become(task, play, &cx.shared.inventory, &host),
            scope,
            no_log: task.no_log,
        };
        let limit = g[n].limit.map(|l| {
            self.limits
                .entry((p, t, is_handler))
                .or_insert_with(|| Arc::new(Semaphore::new(l.max(1))))
                .clone()
        });
        // A step that a module ordered after the first host's (the intended primary)
        // does not start when that step did not succeed there.
        let blocked = g
            .edges_directed(n, Direction::Incoming)
            .filter(|e| *e.weight() == Edge::FirstHost && self.not_ok.contains(&e.source()))
            .find_map(|e| match &g[e.source()].kind {
                StepKind::Task { host, .. } => Some(host.to_string()),
                _ => None,
            });
        let cx = cx.clone();
        if let Some(first) = blocked {
            self.running
                .spawn(async move { blocked_step(&cx, spec, &first) });
            return;
        }
        let forks = self.forks.clone();
        self.running.spawn(async move {
            let _limit = match &limit {
                Some(s) => s.clone().acquire_owned().await.ok(),
                None => None,
            };
            let _fork = forks.acquire_owned().await.ok();
            run_step(&cx, spec).await
        });
    }

    /// Records a finished step: its host's recap, a failed host taken down, the handlers a
    /// change notified; then releases the step's successors.
    fn finished(&mut self, cx: &RunContext, outcome: Outcome) {
        let g = &cx.compiled.graph;
        let n = outcome.node;
        let (p, t, host) = match &g[n].kind {
            StepKind::Task {
                play, task, host, ..
            } => (*play, Some(*task), host.to_string()),
            StepKind::Handler { play, host, .. } => (*play, None, host.to_string()),
            StepKind::Barrier { .. } => unreachable_barrier(),
        };
        if matches!(outcome.status, Status::Failed | Status::Unreachable) {
            self.not_ok.insert(n);
        }
        let r = self.recap.entry(host.clone()).or_default();
        match outcome.status {
            Status::Ok => r.ok += 1,
            Status::Changed => r.changed += 1,
            Status::Skipped => r.skipped += 1,
            Status::Failed => {
                r.failed += 1;
                self.down.insert(host.clone());
                if cx.playbook.plays[p].any_errors_fatal {
                    self.abort = true;
                }
            }
            Status::Unreachable => {
                r.unreachable = true;
                self.down.insert(host.clone());
            }
        }
        if let (Status::Changed, Some(t)) = (outcome.status, t) {
            let play = &cx.playbook.plays[p];
            for topic in &play.tasks[t].notify {
                for (h, handler) in play.handlers.iter().enumerate() {
                    if handler.answers(&topic.value) {
                        self.notified
                            .entry(host.clone())
                            .or_default()
                            .insert((p, h));
                    }
                }
            }
        }
        complete(n, g, &mut self.indegree, &mut self.ready);
    }
}

fn unreachable_barrier() -> ! {
    unreachable!("barriers complete without running")
}

fn complete(
    n: NodeIndex,
    g: &petgraph::graph::DiGraph<crate::compile::Step, crate::compile::Edge>,
    indegree: &mut [usize],
    ready: &mut VecDeque<NodeIndex>,
) {
    for e in g.edges_directed(n, Direction::Outgoing) {
        let t = e.target().index();
        indegree[t] -= 1;
        if indegree[t] == 0 {
            ready.push_back(e.target());
        }
    }
}

/// The outcome of a step that may not start: the first host's step did not succeed.
fn blocked_step(cx: &RunContext, spec: StepSpec, first: &str) -> Outcome {
    cx.reporter.event(&Event::StepFinished {
        host: spec.host.clone(),
        task: spec.task.clone(),
        module: spec.module.to_string(),
        status: Status::Failed,
        changes: Vec::new(),
        notes: Vec::new(),
        error: Some(format!(
            "not started: `{}` must succeed on `{first}` first, and it did not",
            spec.task
        )),
        duration_ms: 0,
        key: spec.key,
    });
    Outcome {
        node: spec.node,
        status: Status::Failed,
    }
}

async fn run_step(cx: &RunContext, spec: StepSpec) -> Outcome {
    let started = Instant::now();
    cx.reporter.event(&Event::StepStarted {
        host: spec.host.clone(),
        task: spec.task.clone(),
        module: spec.module.to_string(),
    });
    let body = step_body(cx, &spec);
    let result = if spec.no_log {
        pgdeploy_core::secrets::without_logs(body).await
    } else {
        body.await
    };
    let (status, (changes, notes), error) = match result {
        Ok(Some(done)) if done.0.is_empty() => (Status::Ok, done, None),
        Ok(Some(done)) => (Status::Changed, done, None),
        Ok(None) => (Status::Skipped, Default::default(), None),
        Err(ModuleError::Transport(e @ TransportError::Unreachable { .. })) => {
            (Status::Unreachable, Default::default(), Some(e.to_string()))
        }
        Err(e) => (Status::Failed, Default::default(), Some(e.to_string())),
    };
    let (changes, notes, error) = if spec.no_log {
        hidden_by_no_log(changes, notes, error)
    } else {
        (changes, notes, error)
    };
    cx.reporter.event(&Event::StepFinished {
        host: spec.host.clone(),
        task: spec.task.clone(),
        module: spec.module.to_string(),
        status,
        changes,
        notes,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
        key: spec.key,
    });
    Outcome {
        node: spec.node,
        status,
    }
}

/// What a `no_log` task shows: how many changes and notes it had, not what they were (their
/// summaries, diffs and errors may be made of the task's parameters).
fn hidden_by_no_log(
    changes: Vec<Change>,
    notes: Vec<String>,
    error: Option<String>,
) -> (Vec<Change>, Vec<String>, Option<String>) {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let changes = if changes.is_empty() {
        changes
    } else {
        vec![Change::new(format!(
            "{} (details and diff hidden: no_log)",
            count(changes.len(), "change")
        ))]
    };
    let notes = if notes.is_empty() {
        notes
    } else {
        vec![format!("{} (hidden: no_log)", count(notes.len(), "note"))]
    };
    let error = error.map(|_| "the task failed (error hidden: no_log)".to_string());
    (changes, notes, error)
}

/// `Ok(None)`: skipped by `when`. `Ok(Some(changes))`: planned (and applied in apply mode).
/// The changes made (or planned) and the module's notes.
type StepResult = (Vec<Change>, Vec<String>);

async fn step_body(cx: &RunContext, spec: &StepSpec) -> Result<Option<StepResult>, ModuleError> {
    if let Some(expr) = &spec.when {
        let env = &cx.shared.env;
        let value = env
            .compile_expression(expr)
            .and_then(|e| e.eval(spec.scope.context()))
            .map_err(|e| ModuleError::Failed(format!("condition `{expr}` failed: {}", e.kind())))?;
        if !value.is_true() {
            return Ok(None);
        }
    }
    let action: Arc<dyn Action> = match &cx.compiled.graph[spec.node].kind {
        StepKind::Task {
            action: Some(a), ..
        }
        | StepKind::Handler {
            action: Some(a), ..
        } => a.clone(),
        _ => {
            return Err(ModuleError::Failed(format!(
                "parameters of `{}` could not be resolved for host `{}`",
                spec.task, spec.host
            )))
        }
    };
    let transport = cx
        .transports
        .get(&spec.host)
        .ok_or_else(|| ModuleError::Failed(format!("no connection to host `{}`", spec.host)))?;
    let empty = Arc::new(Facts::new());
    let facts = cx.facts.get(&spec.host).unwrap_or(&empty);
    // Other hosts may have changed shared state while this step waited for them.
    if waits_for_other_hosts(&cx.compiled.graph, spec.node) {
        transport.forget();
    }
    transport.prefetch(spec.node).await;
    let hcx = HostContext {
        host: &spec.host,
        transport: transport.as_ref(),
        facts,
        scope: &spec.scope,
        become_: spec.become_.clone(),
        playbook_dir: Path::new(&cx.playbook.dir),
        allow_removal: cx.allow_removal,
    };
    let plan = action.plan(&hcx).await?;
    if cx.mode != RunMode::Apply || !plan.needs_apply() {
        return Ok(Some((plan.changes, plan.notes)));
    }
    // Apply reads the host as it is now, never an answer kept from before.
    transport.forget();
    action.apply(&hcx, &plan).await?;
    // The module may decide only while applying whether it changed the host (`command`
    // with `changed_when`): its verdict wins over the planned changes.
    let changed = plan.applied_changed();
    let notes = plan.notes.clone();
    let mut changes = plan.changes;
    if !changed {
        changes.clear();
    } else if changes.is_empty() {
        changes.push(Change::new(format!("`{}` changed the host", spec.task)));
    }
    Ok(Some((changes, notes)))
}
