//! Running a playbook against hosts: connect, gather facts, plan, apply.
//!
//! Order (PRODUCT.md §4): load and compile offline (bad input stops here, before any
//! connection); connect to every host once, in parallel; gather facts; compile again with
//! the facts; walk the step graph. `plan` and `check` only read hosts.

pub mod connect;
pub mod events;
mod executor;
pub mod facts;
pub mod lock;
pub mod order;
mod readahead;
pub mod report;
pub mod saved;

pub use executor::RunMode;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::compile::{compile, CompileOptions};
use crate::load::LoadArgs;
use events::{Event, HostRecap, Reporter};
use executor::RunContext;
use pgdeploy_core::exit::Exit;
use pgdeploy_core::template::Facts;
use pgdeploy_core::transport::{Become, TransportError};

/// How a run was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: RunMode,
    /// `check`: exit 2 when something would change.
    pub detailed_exitcode: bool,
    /// At most this many hosts worked on at once (default: all, capped at 64).
    pub forks: Option<usize>,
    pub connect: connect::ConnectSettings,
    /// Show diffs of file contents.
    pub diff: bool,
    pub json: bool,
    /// Colour on stdout (decided for stdout alone: [`pgdeploy_core::output::color`]).
    pub color: bool,
    /// `--allow-removal`: modules may remove cluster members the inventory no longer lists
    /// ([`pgdeploy_core::module::HostContext::allow_removal`]).
    pub allow_removal: bool,
    /// `apply`: how long to wait for another apply's lock on a host ([`lock`]); zero: refuse
    /// at once.
    pub lock_wait: std::time::Duration,
}

/// A host's open connection, its facts, and what the probes run with them found.
type Connected = (
    Arc<dyn pgdeploy_core::transport::Transport>,
    Facts,
    Option<Vec<readahead::Found>>,
);

/// Default `--forks`: every host at once, capped.
const MAX_DEFAULT_FORKS: usize = 64;

/// One run: load, connect, one pass over the step graph in `opts.mode`.
pub async fn run(args: &LoadArgs, opts: &RunOptions) -> anyhow::Result<Exit> {
    let Some(loaded) = load(args, opts.json) else {
        return Ok(Exit::Error);
    };
    let mut session = match open(args, opts, loaded).await? {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    let reporter = session.reporter.clone();
    let recap = session.execute(opts.mode, reporter).await;
    let exit = session.exit(&recap, opts.detailed_exitcode);
    session.release().await;
    Ok(exit)
}

/// Loads and compiles offline, printing the problems and warnings; `None` when there were
/// errors (no host was contacted).
pub fn load(args: &LoadArgs, json: bool) -> Option<crate::load::Loaded> {
    match crate::load::load(args) {
        Ok(l) => {
            if json {
                pgdeploy_core::output::diagnostics::report_json_lines(&l.compiled.warnings);
            } else {
                crate::load::report(&l.compiled.warnings);
            }
            Some(l)
        }
        Err(diags) => {
            crate::load::report_as(&diags.sorted(), json);
            None
        }
    }
}

/// Hosts connected, facts gathered, the playbook compiled with them: ready for passes over
/// the step graph ([`Session::execute`]). A saved plan's apply makes two passes on the same
/// connections (a plan to compare with the saved one, then the apply), so both see the same
/// hosts and facts.
pub struct Session {
    /// The run's reporter (text or JSON), which already got the connect phase's events.
    pub reporter: Arc<dyn Reporter>,
    pub redactor: pgdeploy_core::secrets::Redactor,
    /// Hosts that could not be reached or whose facts could not be gathered.
    pub unreachable: HashSet<String>,
    /// Between passes; taken while one runs.
    cx: Option<RunContext>,
    passes: usize,
    /// `apply`: every reachable host's apply lock, held until [`Session::release`].
    locks: Option<lock::ApplyLocks>,
}

/// Connects to every host and gathers facts, then compiles again with them. `Err(exit)`:
/// the compile with facts failed (reported), nothing ran.
pub async fn open(
    args: &LoadArgs,
    opts: &RunOptions,
    loaded: crate::load::Loaded,
) -> anyhow::Result<Result<Session, Exit>> {
    let redactor = loaded.redactor.clone();
    let reporter = reporter_for(opts, &redactor);
    let hosts = loaded.compiled.hosts.clone();
    let forks = opts
        .forks
        .unwrap_or_else(|| hosts.len().clamp(1, MAX_DEFAULT_FORKS));
    let given_facts = match &args.facts {
        Some(path) => Some(crate::load::load_facts(path).map_err(|d| anyhow::anyhow!("{d}"))?),
        None => None,
    };
    let Gathered {
        transports,
        facts: all_facts,
        found_early,
        unreachable,
    } = connect_and_gather(&loaded, opts, forks, given_facts, reporter.as_ref()).await?;

    // An apply holds every host before it compiles with facts and changes anything.
    let locks = if opts.mode == RunMode::Apply {
        match lock::take(&transports, "apply", lock::DEFAULT_DIR, opts.lock_wait).await {
            Ok(l) => Some(l),
            Err(refusals) => {
                let mut exit = Exit::Busy;
                for r in refusals {
                    reporter.event(&match r {
                        lock::Refusal::Busy { host, held_by } => Event::HostBusy { host, held_by },
                        lock::Refusal::Failed { host, error } => {
                            exit = Exit::Error;
                            Event::HostLockFailed { host, error }
                        }
                    });
                }
                pgdeploy_core::eoutln!("nothing was changed: no host is worked on while another pgdeploy run holds one (`--lock-wait SECS` waits for it)");
                return Ok(Err(exit));
            }
        }
    } else {
        None
    };

    // Compile again, now that templates can use facts.
    let compiled = match compile(
        &loaded.playbook,
        loaded.inventory.clone(),
        CompileOptions {
            limit: args.limit.as_deref(),
            facts: Some(all_facts.clone()),
        },
    ) {
        Ok(c) => c,
        Err(diags) => {
            crate::load::report_as(&diags.sorted(), opts.json);
            if let Some(l) = locks {
                l.release().await;
            }
            return Ok(Err(Exit::Error));
        }
    };
    let shared = pgdeploy_core::template::ScopeShared::new(
        Arc::new(pgdeploy_core::template::environment_for(
            &loaded.playbook.dir,
        )),
        loaded.inventory.clone(),
        Some(all_facts.clone()),
    );
    let keys = order::step_keys(&compiled);
    let facts: HashMap<String, Arc<Facts>> = all_facts
        .into_iter()
        .map(|(h, f)| (h, Arc::new(f)))
        .collect();
    let transports = executor::with_read_ahead(
        &loaded.playbook,
        &compiled,
        &loaded.inventory,
        transports,
        &facts,
        found_early,
    );
    let cx = RunContext {
        playbook: loaded.playbook,
        compiled,
        shared,
        transports,
        facts,
        mode: opts.mode,
        allow_removal: opts.allow_removal,
        forks,
        reporter: reporter.clone(),
        stop: Arc::new(AtomicBool::new(false)),
        keys,
    };
    Ok(Ok(Session {
        reporter,
        redactor,
        unreachable,
        cx: Some(cx),
        passes: 0,
        locks,
    }))
}

/// The reporter of a run: JSON events, or the text report (diffs in `plan` and with `--diff`).
fn reporter_for(
    opts: &RunOptions,
    redactor: &pgdeploy_core::secrets::Redactor,
) -> Arc<dyn Reporter> {
    if opts.json {
        Arc::new(report::JsonReporter {
            redactor: redactor.clone(),
        })
    } else {
        Arc::new(report::HumanReporter::new(
            redactor.clone(),
            opts.color,
            opts.diff || opts.mode == RunMode::Plan,
            opts.mode == RunMode::Plan,
            pgdeploy_core::output::progress_on_stderr(),
        ))
    }
}

/// What connecting found: each reachable host's transport, facts and early probe answers,
/// and the hosts that could not be reached.
struct Gathered {
    transports: HashMap<String, Arc<dyn pgdeploy_core::transport::Transport>>,
    facts: HashMap<String, Facts>,
    found_early: HashMap<String, Vec<readahead::Found>>,
    unreachable: HashSet<String>,
}

/// Connects to every host and gathers its facts (or takes `given` ones), each host on its own
/// as soon as it is connected, with the probes of the steps whose parameters need no facts
/// in the same round trip; reports each host's event in inventory order.
async fn connect_and_gather(
    loaded: &crate::load::Loaded,
    opts: &RunOptions,
    forks: usize,
    given_facts: Option<HashMap<String, Facts>>,
    reporter: &dyn Reporter,
) -> anyhow::Result<Gathered> {
    let hosts = &loaded.compiled.hosts;
    let targets = connect::resolve_targets(
        &loaded.inventory,
        hosts,
        &opts.connect,
        &loaded.compiled.become_methods,
    )?;
    // Probes of the steps whose parameters need no facts run in the facts' round trip.
    let mut early = executor::step_probes(
        &loaded.playbook,
        &loaded.compiled,
        &loaded.inventory,
        &HashMap::new(),
    );
    let mut results: Vec<(String, Result<Connected, String>)> = stream::iter(hosts.iter().cloned())
        .map(|host| {
            let target = targets.get(&host).cloned();
            let given = given_facts.as_ref().and_then(|f| f.get(&host).cloned());
            let probes = early
                .remove(&host)
                .map(|steps| readahead::Batch::ahead(&Become::No, &steps));
            let gather = loaded.compiled.needs_facts(&host);
            async move {
                let r = async {
                    let target = target.ok_or_else(|| TransportError::Unreachable {
                        host: host.clone(),
                        reason: "not in the inventory".to_string(),
                    })?;
                    let t = connect::connect(&target).await?;
                    let (f, found) = match given {
                        Some(f) => (f, None),
                        None if gather => facts::gather_with(t.as_ref(), probes).await?,
                        None => facts::probes_only(t.as_ref(), probes).await?,
                    };
                    Ok::<_, TransportError>((t, f, found))
                }
                .await
                .map_err(|e| e.to_string());
                (host, r)
            }
        })
        .buffer_unordered(forks)
        .collect()
        .await;
    // Hosts answer in any order; their events follow the inventory's.
    let place: HashMap<&str, usize> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    results.sort_by_key(|(h, _)| place.get(h.as_str()).copied());
    let mut transports = HashMap::new();
    let mut all_facts = HashMap::new();
    let mut found_early = HashMap::new();
    let mut unreachable = HashSet::new();
    for (host, r) in results {
        match r {
            Ok((t, f, found)) => {
                reporter.event(&Event::FactsGathered { host: host.clone() });
                transports.insert(host.clone(), t);
                if let Some(found) = found {
                    found_early.insert(host.clone(), found);
                }
                all_facts.insert(host, f);
            }
            Err(error) => {
                reporter.event(&Event::HostUnreachable {
                    host: host.clone(),
                    error,
                });
                unreachable.insert(host);
            }
        }
    }

    Ok(Gathered {
        transports,
        facts: all_facts,
        found_early,
        unreachable,
    })
}

impl Session {
    /// One pass over the step graph in `mode`, every event to `reporter` (from `RunStarted`
    /// to `Recap`); returns the recap per host. A pass after the first reads the hosts
    /// again (no probe answer is kept from an earlier pass).
    pub async fn execute(&mut self, mode: RunMode, reporter: Arc<dyn Reporter>) -> Vec<HostRecap> {
        let Some(mut cx) = self.cx.take() else {
            return Vec::new();
        };
        if self.passes > 0 {
            cx.transports.values().for_each(|t| t.forget());
        }
        self.passes += 1;
        cx.mode = mode;
        cx.reporter = reporter.clone();
        reporter.event(&Event::RunStarted {
            mode: match mode {
                RunMode::Plan => "plan",
                RunMode::Apply => "apply",
            },
            hosts: cx.compiled.hosts.len(),
            steps: cx.compiled.graph.node_count(),
            order: cx.keys.iter().flatten().copied().collect(),
        });
        let stop_on_signal = cx.stop.clone();
        let signal = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                pgdeploy_core::eoutln!("stopping: no new step starts; steps in progress finish");
                stop_on_signal.store(true, Ordering::SeqCst);
            }
        });
        let cx = Arc::new(cx);
        let recap = executor::execute(cx.clone(), &self.unreachable).await;
        signal.abort();
        reporter.event(&Event::Recap {
            hosts: recap.clone(),
        });
        // Every step has finished and dropped its handle: the context is ours again, for a
        // next pass.
        self.cx = Arc::try_unwrap(cx).ok();
        if self.cx.is_none() {
            tracing::error!("a step still holds the run after it ended: no further pass");
        }
        recap
    }

    /// Releases the hosts' apply locks (an apply's session; nothing for a plan). Dropping the
    /// session without it releases them too, a second later, when the connections close.
    pub async fn release(&mut self) {
        if let Some(l) = self.locks.take() {
            l.release().await;
        }
    }

    /// Whether the run was stopped (Ctrl-C) or a pass could not give its context back.
    pub fn stopped(&self) -> bool {
        self.cx
            .as_ref()
            .is_none_or(|cx| cx.stop.load(Ordering::SeqCst))
    }

    /// The exit code of a pass that gave `recap`.
    pub fn exit(&self, recap: &[HostRecap], detailed_exitcode: bool) -> Exit {
        let failed = recap.iter().any(|h| h.failed > 0);
        let down = recap.iter().any(|h| h.unreachable);
        let changed = recap.iter().any(|h| h.changed > 0);
        if failed || self.stopped() {
            Exit::Error
        } else if down {
            Exit::Unreachable
        } else if changed && detailed_exitcode {
            Exit::Changes
        } else {
            Exit::Success
        }
    }
}
