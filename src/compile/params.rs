//! Per-host parameters: templates rendered with each host's variables, then typed by the
//! module. Also checks that `when` conditions only use defined variables.

use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics, Location};
use crate::module::{Action, ParseContext};
use crate::playbook::{Playbook, Task, TaskParams};
use crate::template::{is_fact_name, render_node, RenderError, Scope, ScopeShared};

/// A task's action for each host of its play (same order as the play's hosts); `None` when
/// the parameters need facts that are not gathered yet.
pub type PerHost = Vec<Option<Arc<dyn Action>>>;

pub struct PlayActions {
    pub tasks: Vec<PerHost>,
    pub handlers: Vec<PerHost>,
}

pub fn resolve(
    playbook: &Playbook,
    play_hosts: &[Vec<String>],
    shared: &Arc<ScopeShared>,
    diags: &mut Diagnostics,
) -> Vec<PlayActions> {
    let cx = ParseContext {
        playbook_dir: &playbook.dir,
    };
    let mut out = Vec::new();
    let sees_facts = facts_in_plays(playbook, play_hosts);
    for ((play, hosts), sees) in playbook.plays.iter().zip(play_hosts).zip(&sees_facts) {
        let all_hosts = Arc::new(hosts.clone());
        let scopes: Vec<Arc<Scope>> = hosts
            .iter()
            .zip(sees)
            .map(|(h, &f)| Scope::for_play(shared, h, play.vars.clone(), all_hosts.clone(), f))
            .collect();
        let mut resolve_all = |tasks: &[Task]| -> Vec<PerHost> {
            tasks
                .iter()
                .map(|t| resolve_task(playbook, t, &scopes, &cx, diags))
                .collect()
        };
        let tasks = resolve_all(&play.tasks);
        let handlers = resolve_all(&play.handlers);
        out.push(PlayActions { tasks, handlers });
    }
    out
}

/// For each play and each of its hosts, whether the play sees the host's facts: the play
/// gathers them (`gather_facts`, the default), or an earlier play of the host did.
pub fn facts_in_plays(playbook: &Playbook, play_hosts: &[Vec<String>]) -> Vec<Vec<bool>> {
    let mut gathered: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(play_hosts.len());
    for (play, hosts) in playbook.plays.iter().zip(play_hosts) {
        if play.gather_facts {
            gathered.extend(hosts.iter().map(String::as_str));
        }
        out.push(
            hosts
                .iter()
                .map(|h| gathered.contains(h.as_str()))
                .collect(),
        );
    }
    out
}

fn resolve_task(
    playbook: &Playbook,
    task: &Task,
    scopes: &[Arc<Scope>],
    cx: &ParseContext<'_>,
    diags: &mut Diagnostics,
) -> PerHost {
    let file = &playbook.file;
    // Errors of the first failing host are shown; other hosts failing too are counted.
    let mut first_failure: Option<Vec<Diagnostic>> = None;
    let mut other_failures = 0usize;
    let mut per_host = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let mut errors = Vec::new();
        if let Some(when) = &task.when {
            for name in undefined_in_condition(&when.value, scope) {
                let message = if is_fact_name(&name) && !scope.sees_facts() {
                    format!(
                        "`{name}` is a fact, and facts are not gathered for host `{}` in this \
                         play (`gather_facts: false`)",
                        scope.host()
                    )
                } else {
                    format!("undefined variable `{name}` for host `{}`", scope.host())
                };
                errors.push(Diagnostic::error(
                    Some(Location::new(file, when.mark)),
                    task.path.key("when").as_str(),
                    message,
                ));
            }
        }
        let action = match &task.params {
            TaskParams::Static(action) => Some(action.clone()),
            TaskParams::Templated(node) => {
                match render_node(node, scope, &task.path.key(task.module.name())) {
                    Ok(rendered) => {
                        let path = task.path.key(task.module.name());
                        match task.module.parse(&rendered, &path, cx) {
                            Ok(parsed) => {
                                // The same warning for every host is shown once.
                                for w in parsed.warnings {
                                    diags.push(w.into_warning(file));
                                }
                                Some(parsed.action)
                            }
                            Err(es) => {
                                errors.extend(es.into_iter().map(|e| {
                                    let mut d = e.into_diagnostic(file);
                                    d.message = format!("{} (host `{}`)", d.message, scope.host());
                                    d
                                }));
                                None
                            }
                        }
                    }
                    Err(RenderError::NeedsFacts) => None,
                    Err(RenderError::Failed {
                        mark,
                        message,
                        path,
                    }) => {
                        errors.push(Diagnostic::error(
                            Some(Location::new(file, mark)),
                            path.unwrap_or_else(|| task.path.key(task.module.name()))
                                .as_str(),
                            message,
                        ));
                        None
                    }
                }
            }
        };
        if !errors.is_empty() {
            match first_failure {
                None => first_failure = Some(errors),
                Some(_) => other_failures += 1,
            }
        }
        per_host.push(action);
    }
    if let Some(mut errors) = first_failure {
        if other_failures > 0 {
            if let Some(last) = errors.last_mut() {
                let s = if other_failures == 1 { "" } else { "s" };
                last.help = Some(format!(
                    "the same task also fails for {other_failures} other host{s}"
                ));
            }
        }
        for e in errors {
            diags.push(e);
        }
    }
    per_host
}

/// Variables a `when` condition uses that the host does not define (facts excepted while
/// they are not gathered).
fn undefined_in_condition(expr: &str, scope: &Arc<Scope>) -> Vec<String> {
    let env = &scope.shared().env;
    let Ok(compiled) = env.compile_expression(expr) else {
        return Vec::new();
    };
    let facts_pending = scope.facts_pending();
    let mut names: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|n| !(scope.defines(n) || facts_pending && is_fact_name(n)))
        .collect();
    names.sort();
    names
}
