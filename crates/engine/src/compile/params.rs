//! Per-host parameters: templates rendered with each host's variables, then typed by the
//! module. Also checks that `when` conditions only use defined variables.

use std::collections::HashMap;
use std::sync::Arc;

use crate::playbook::{Playbook, Task, TaskParams};
use pgdeploy_core::diag::{merge_per_host, Diagnostic, Diagnostics, Location, Mark};
use pgdeploy_core::module::{Action, ParseContext};
use pgdeploy_core::template::{
    is_fact_name, is_template, render_node, RenderError, Scope, ScopeShared,
};
use pgdeploy_core::yaml::{Node, NodeKind};

/// A task's action for each host of its play (same order as the play's hosts); `None` when
/// the parameters need facts that are not gathered yet.
pub(super) type PerHost = Vec<Option<Arc<dyn Action>>>;

/// Distinct rendered parameters whose actions one task keeps for its other hosts: parameters
/// that differ on every host (a host's own address) stop filling it early.
const PARSED_KEPT: usize = 64;

pub(super) struct PlayActions {
    pub tasks: Vec<PerHost>,
    pub handlers: Vec<PerHost>,
}

pub(super) fn resolve(
    playbook: &Playbook,
    play_hosts: &[Vec<String>],
    shared: &Arc<ScopeShared>,
    diags: &mut Diagnostics,
) -> Vec<PlayActions> {
    let cx = ParseContext {
        playbook_dir: &playbook.dir,
        inventory: Some(&shared.inventory),
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
        // Before any parameter is rendered: an error may quote a rendered secret.
        for scope in &scopes {
            scope
                .secret_values()
                .iter()
                .for_each(|v| pgdeploy_core::secrets::record(v));
        }
        let mut resolve_all = |tasks: &[Task]| -> Vec<PerHost> {
            tasks
                .iter()
                .map(|t| {
                    check_condition_groups(playbook, t, &shared.inventory, diags);
                    resolve_task(playbook, t, &scopes, &cx, diags)
                })
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
pub(super) fn facts_in_plays(playbook: &Playbook, play_hosts: &[Vec<String>]) -> Vec<Vec<bool>> {
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
    // Every host's problems, each with the host when it depends on it (see `merge_per_host`).
    let mut found: Vec<(Diagnostic, Option<String>)> = Vec::new();
    let templates = match &task.params {
        TaskParams::Templated(node) => templates_in(node),
        TaskParams::Static(_) => Vec::new(),
    };
    if let TaskParams::Static(_) = &task.params {
        // Parsed when the playbook loaded, without the inventory: parsed again once with it,
        // for the parameters that name its hosts or groups (the same for every host).
        let path = task.path.key(task.module.name());
        if let Err(es) = task.module.parse(&task.raw_params, &path, cx) {
            found.extend(es.into_iter().map(|e| (e.into_diagnostic(file), None)));
        }
    }
    let params_path = task.path.key(task.module.name());
    let mut per_host = Vec::with_capacity(scopes.len());
    // The action read from each rendered parameters seen so far: hosts whose parameters
    // render the same (`dest: "/etc/{{ cluster_name }}.conf"`) share one action, read once
    // (a `template`'s check reads and parses its source file). Only successes are kept:
    // errors are reported per host.
    let mut parsed_for: HashMap<Node, Arc<dyn Action>> = HashMap::new();
    // What the condition uses, read once for all the hosts.
    let condition_names = task
        .when
        .as_ref()
        .map(|when| condition_names(&when.value, shared_env(scopes)));
    let mut stop = false;
    // Whether some parameter has a secret name: only then are rendered values looked into
    // (values written in the playbook were recorded as it loaded).
    let secret_params =
        pgdeploy_core::secrets::has_secret_name(task.module.name(), &task.raw_params.to_json());
    for scope in scopes {
        let host = || Some(scope.host().to_string());
        if let Some((when, used)) = task.when.as_ref().zip(condition_names.as_ref()) {
            for name in undefined_in_condition(used, scope) {
                let message = if is_fact_name(&name) && !scope.sees_facts() {
                    format!(
                        "`{name}` is a fact, and facts are not gathered in this play \
                         (`gather_facts: false`)"
                    )
                } else {
                    format!("undefined variable `{name}`")
                };
                found.push((
                    Diagnostic::error(
                        Some(Location::new(file, when.mark)),
                        task.path.key("when").as_str(),
                        message,
                    ),
                    host(),
                ));
            }
        }
        let action = match &task.params {
            TaskParams::Static(action) => Some(action.clone()),
            TaskParams::Templated(node) => {
                match render_node(node, scope, &params_path) {
                    Ok(rendered) if parsed_for.contains_key(&rendered) => {
                        parsed_for.get(&rendered).cloned()
                    }
                    Ok(rendered) => {
                        // Before the module reads them: its errors may quote a value.
                        if secret_params {
                            record_secret_params(task.module.name(), &rendered);
                        }
                        match task.module.parse(&rendered, &params_path, cx) {
                            Ok(parsed) => {
                                // The same warning for every host is shown once.
                                for w in parsed.warnings {
                                    diags.push(w.into_warning(file));
                                }
                                if parsed_for.len() < PARSED_KEPT {
                                    parsed_for.insert(rendered, parsed.action.clone());
                                }
                                Some(parsed.action)
                            }
                            Err(es) => {
                                for e in es {
                                    // Rendered values keep their template's position: an
                                    // error there is about this host's value; anywhere else
                                    // (an unknown key, a literal of the wrong type) it is
                                    // about the playbook, the same for every host.
                                    let rendered_here = e
                                        .mark
                                        .is_some_and(|m| templates.iter().any(|(t, _)| *t == m));
                                    found.push((
                                        e.into_diagnostic(file),
                                        if rendered_here { host() } else { None },
                                    ));
                                }
                                None
                            }
                        }
                    }
                    Err(RenderError::NeedsFacts) => None,
                    Err(RenderError::Failed {
                        mark,
                        message,
                        path,
                        limit,
                    }) => {
                        stop |= limit;
                        // A template that does not parse fails the same way for every host.
                        let syntax = templates
                            .iter()
                            .any(|(t, text)| *t == mark && !template_parses(scope, text));
                        found.push((
                            Diagnostic::error(
                                Some(Location::new(file, mark)),
                                path.unwrap_or_else(|| task.path.key(task.module.name()))
                                    .as_str(),
                                message,
                            ),
                            if syntax { None } else { host() },
                        ));
                        None
                    }
                }
            }
        };
        per_host.push(action);
        if stop {
            // A limit met on one host is reported for it alone: the other hosts would spend
            // the same budget (seconds each) to fail the same way.
            per_host.resize(scopes.len(), None);
            break;
        }
    }
    for d in merge_per_host(found) {
        diags.push(d);
    }
    per_host
}

/// Compiles the templates of every task's parameters once, for all the hosts that render them.
pub(super) fn precompile_templates(playbook: &Playbook, env: &mut minijinja::Environment<'static>) {
    for play in &playbook.plays {
        for task in play.tasks.iter().chain(&play.handlers) {
            if let TaskParams::Templated(node) = &task.params {
                for (_, text) in templates_in(node) {
                    pgdeploy_core::template::precompile(env, text);
                }
            }
        }
    }
}

/// The template strings of a parameters node (keys and values), with their positions.
fn templates_in(node: &Node) -> Vec<(Mark, &str)> {
    fn walk<'a>(node: &'a Node, out: &mut Vec<(Mark, &'a str)>) {
        match &node.kind {
            NodeKind::Scalar(s) if is_template(&s.text) => out.push((node.mark, &s.text)),
            NodeKind::Scalar(_) => {}
            NodeKind::Seq(items) => items.iter().for_each(|i| walk(i, out)),
            NodeKind::Map(entries) => entries.iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out);
            }),
        }
    }
    let mut out = Vec::new();
    walk(node, &mut out);
    out
}

/// Whether a template string is valid syntax (as a single expression or as a template).
fn template_parses(scope: &Scope, text: &str) -> bool {
    let env = &scope.shared().env;
    let trimmed = text.trim();
    let single = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%"));
    match single {
        Some(expr) => env.compile_expression(expr.trim()).is_ok(),
        None => env.template_from_str(text).is_ok(),
    }
}

/// The variables a `when` condition uses, less the names it guards
/// ([`guarded_names`](super::guards::guarded_names)), sorted; none when it does not parse
/// (the render reports that).
fn condition_names(expr: &str, env: Option<&minijinja::Environment<'static>>) -> Vec<String> {
    let Some(compiled) = env.and_then(|env| env.compile_expression(expr).ok()) else {
        return Vec::new();
    };
    let guarded = super::guards::guarded_names(expr);
    let mut names: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|n| !guarded.contains(n))
        .collect();
    names.sort();
    names
}

/// The environment the scopes render with (one for the whole run).
fn shared_env(scopes: &[Arc<Scope>]) -> Option<&minijinja::Environment<'static>> {
    scopes.first().map(|s| &*s.shared().env)
}

/// The variables of a `when` condition ([`condition_names`]) that the host does not define
/// (facts excepted while they are not gathered).
fn undefined_in_condition(names: &[String], scope: &Arc<Scope>) -> Vec<String> {
    let facts_pending = scope.facts_pending();
    names
        .iter()
        .filter(|n| !(scope.defines(n) || facts_pending && is_fact_name(n)))
        .cloned()
        .collect()
}

/// Records the values of a task's parameters that have secret names at any depth
/// (`authentication.superuser.password`), as rendered for a host.
fn record_secret_params(module: &str, params: &pgdeploy_core::yaml::Node) {
    pgdeploy_core::secrets::record_secret_values(module, &params.to_json());
}

/// A `when` condition that names a group the inventory does not have: in Ansible it fails on
/// every host at run time; here it is a validation error, with the nearest group's name.
fn check_condition_groups(
    playbook: &Playbook,
    task: &Task,
    inventory: &pgdeploy_core::inventory::Inventory,
    diags: &mut Diagnostics,
) {
    let Some(when) = &task.when else {
        return;
    };
    for group in super::guards::named_groups(&when.value) {
        if inventory.groups.contains_key(&group) {
            continue;
        }
        let mut d = Diagnostic::error(
            Some(Location::new(&playbook.file, when.mark)),
            task.path.key("when").as_str(),
            format!("the condition names group `{group}`, which is not in the inventory"),
        );
        if let Some(best) =
            pgdeploy_core::diag::did_you_mean(&group, inventory.groups.keys().map(String::as_str))
        {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        diags.push(d);
    }
}
