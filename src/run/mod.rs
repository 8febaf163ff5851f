//! Running a playbook against hosts: connect, gather facts, plan, apply.
//!
//! Order (PRODUCT.md §4): load and compile offline (bad input stops here, before any
//! connection); connect to every host once, in parallel; gather facts; compile again with
//! the facts; walk the step graph. `plan` and `check` only read hosts.

pub mod connect;
pub mod events;
mod executor;
pub mod facts;
pub mod order;
mod readahead;
pub mod report;

pub use executor::RunMode;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::cli::PlaybookArgs;
use crate::compile::{compile, CompileOptions};
use crate::exit::Exit;
use crate::template::Facts;
use crate::transport::{Become, TransportError};
use events::{Event, Reporter};
use executor::RunContext;

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
    /// Colour on stdout (decided for stdout alone: [`crate::output::color`]).
    pub color: bool,
}

/// A host's open connection, its facts, and what the probes run with them found.
type Connected = (
    Arc<dyn crate::transport::Transport>,
    Facts,
    Option<Vec<readahead::Found>>,
);

/// Default `--forks`: every host at once, capped.
const MAX_DEFAULT_FORKS: usize = 64;

pub async fn run(args: &PlaybookArgs, opts: &RunOptions) -> anyhow::Result<Exit> {
    let loaded = match crate::commands::load(args) {
        Ok(l) => l,
        Err(diags) => {
            crate::commands::report(&diags.sorted());
            return Ok(Exit::Error);
        }
    };
    crate::commands::report(&loaded.compiled.warnings);
    let redactor = loaded.redactor.clone();
    let reporter: Arc<dyn Reporter> = if opts.json {
        Arc::new(report::JsonReporter {
            redactor: redactor.clone(),
        })
    } else {
        Arc::new(report::HumanReporter::new(
            redactor.clone(),
            opts.color,
            opts.diff || opts.mode == RunMode::Plan,
            opts.mode == RunMode::Plan,
            crate::output::progress_on_stderr(),
        ))
    };
    let hosts = loaded.compiled.hosts.clone();
    let forks = opts
        .forks
        .unwrap_or_else(|| hosts.len().clamp(1, MAX_DEFAULT_FORKS));

    // Connect and gather facts, each host on its own as soon as it is connected.
    let given_facts = match &args.facts {
        Some(path) => Some(crate::commands::load_facts(path).map_err(|d| anyhow::anyhow!("{d}"))?),
        None => None,
    };
    let targets = connect::resolve_targets(
        &loaded.inventory,
        &hosts,
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
            crate::commands::report(&diags.sorted());
            return Ok(Exit::Error);
        }
    };
    let shared = crate::template::ScopeShared::new(
        Arc::new(crate::template::environment()),
        loaded.inventory.clone(),
        Some(all_facts.clone()),
    );
    let keys = order::step_keys(&compiled);
    reporter.event(&Event::RunStarted {
        mode: match opts.mode {
            RunMode::Plan => "plan",
            RunMode::Apply => "apply",
        },
        hosts: hosts.len(),
        steps: compiled.graph.node_count(),
        order: keys.iter().flatten().copied().collect(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    let signal = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: no new step starts; steps in progress finish");
            stop_on_signal.store(true, Ordering::SeqCst);
        }
    });
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
    let cx = Arc::new(RunContext {
        playbook: loaded.playbook,
        compiled,
        shared,
        transports,
        facts,
        mode: opts.mode,
        forks,
        reporter: reporter.clone(),
        stop: stop.clone(),
        keys,
    });
    let recap = executor::execute(cx, &unreachable).await;
    signal.abort();
    reporter.event(&Event::Recap {
        hosts: recap.clone(),
    });
    let failed = recap.iter().any(|h| h.failed > 0);
    let down = recap.iter().any(|h| h.unreachable);
    let changed = recap.iter().any(|h| h.changed > 0);
    Ok(if failed || stop.load(Ordering::SeqCst) {
        Exit::Error
    } else if down {
        Exit::Unreachable
    } else if changed && opts.detailed_exitcode {
        Exit::Changes
    } else {
        Exit::Success
    })
}
