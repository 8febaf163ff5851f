//! Reading a playbook file into [`Playbook`].

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use super::fields::Fields;
use super::{Play, Playbook, Spanned, Task, TaskParams};
use pgdeploy_core::diag::{did_you_mean, Diagnostics, FieldPath, SourceFile};
use pgdeploy_core::module::{Catalogue, ParseContext, TaskRef};
use pgdeploy_core::params::{AnsibleBool, OneOrMany};
use pgdeploy_core::yaml::{self, Node, NodeKind};

const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "throttle",
    "any_errors_fatal",
    "become",
    "become_method",
    "become_user",
    "gather_facts",
    "tags",
    "vars",
    "tasks",
    "handlers",
];
const TASK_KEYS: &[&str] = &[
    "name",
    "when",
    "tags",
    "notify",
    "wait_for",
    "become",
    "become_method",
    "become_user",
    "no_log",
];
/// Ansible's task keywords that pgdeploy does not run: refused by name (never read as a
/// misspelt module), with what to do instead where there is something.
const ANSIBLE_ONLY_TASK_KEYS: &[(&str, &str)] = &[
    (
        "failed_when",
        "modules report their own failures; `command` fails on a non-zero exit",
    ),
    (
        "changed_when",
        "modules know when they change something; `command` changes unless `creates` exists",
    ),
    (
        "register",
        "tasks do not pass results to each other; modules read the hosts themselves",
    ),
    (
        "ignore_errors",
        "a failed step stops its host; fix the cause or remove the task",
    ),
    (
        "loop",
        "write one task per item, or give the module a list where it takes one",
    ),
    (
        "with_items",
        "write one task per item, or give the module a list where it takes one",
    ),
    (
        "until",
        "modules that wait (etcd, patroni) wait until settled themselves",
    ),
    (
        "retries",
        "modules that wait (etcd, patroni) wait until settled themselves",
    ),
    (
        "delay",
        "modules that wait (etcd, patroni) wait until settled themselves",
    ),
    (
        "delegate_to",
        "a task runs on its play's hosts; write a play for the other host",
    ),
    (
        "run_once",
        "a task runs on every host of its play; use a play for one host",
    ),
    ("throttle", "`throttle` is a play keyword in pgdeploy"),
    (
        "environment",
        "not supported: set the variables in the command itself",
    ),
    ("async", "not supported"),
    ("poll", "not supported"),
    (
        "check_mode",
        "use `pgdeploy plan` or `check` for the whole run",
    ),
    ("diff", "`plan` always shows diffs"),
    (
        "vars",
        "set variables in the play's `vars`, the inventory or `-e`",
    ),
];

const HANDLER_KEYS: &[&str] = &[
    "name",
    "listen",
    "when",
    "tags",
    "become",
    "become_method",
    "become_user",
    "no_log",
];

/// What loading a task needs besides its node: the modules' parse context and the table its
/// module name is looked up in.
struct Cx<'a> {
    parse: ParseContext<'a>,
    catalogue: &'a Catalogue,
}

/// Loads and checks a playbook file, its tasks' modules looked up in `catalogue`; every
/// problem found is returned at once.
pub fn load(path: &Path, catalogue: &Catalogue) -> Result<Playbook, Diagnostics> {
    let (file, root) = yaml::load_file(path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut diags = Diagnostics::new();
    let cx = Cx {
        parse: ParseContext {
            playbook_dir: &dir,
            inventory: None,
        },
        catalogue,
    };
    let plays_path = FieldPath::root().key("plays");
    let mut plays = Vec::new();
    match root.as_seq() {
        Some(nodes) => {
            for (i, node) in nodes.iter().enumerate() {
                if let Some(play) = load_play(&file, &cx, node, plays_path.index(i), &mut diags) {
                    plays.push(play);
                }
            }
            if nodes.is_empty() {
                diags.push(
                    Fields {
                        file: &file,
                        node: &root,
                        path: FieldPath::root(),
                    }
                    .error(
                        &root,
                        &FieldPath::root(),
                        "the playbook has no play",
                    ),
                );
            }
        }
        None => diags.push(
            Fields {
                file: &file,
                node: &root,
                path: FieldPath::root(),
            }
            .error(
                &root,
                &FieldPath::root(),
                format!("a playbook is a list of plays, found {}", root.describe()),
            ),
        ),
    }
    check_tasks_together(catalogue, &file, &plays, &mut diags);
    diags.into_result(Playbook { file, dir, plays })
}

/// Lets each module check all its tasks of the playbook together ([`Module::check_tasks`]).
///
/// [`Module::check_tasks`]: pgdeploy_core::module::Module::check_tasks
fn check_tasks_together(
    catalogue: &Catalogue,
    file: &SourceFile,
    plays: &[Play],
    diags: &mut Diagnostics,
) {
    for module in catalogue.modules() {
        let tasks: Vec<TaskRef<'_>> = plays
            .iter()
            .flat_map(|p| p.tasks.iter().chain(&p.handlers))
            .filter(|t| t.module.name() == module.name())
            .map(|t| TaskRef {
                params: &t.raw_params,
                path: t.path.key(module.name()),
            })
            .collect();
        if tasks.is_empty() {
            continue;
        }
        for e in module.check_tasks(&tasks) {
            diags.push(e.into_diagnostic(file));
        }
    }
}

fn load_play(
    file: &SourceFile,
    cx: &Cx<'_>,
    node: &Node,
    path: FieldPath,
    diags: &mut Diagnostics,
) -> Option<Play> {
    let f = Fields { file, node, path };
    if node.as_map().is_none() {
        diags.push(f.error(
            node,
            &f.path,
            format!("a play is a mapping, found {}", node.describe()),
        ));
        return None;
    }
    per_host_keywords(&f, diags);
    f.reject_unknown(PLAY_KEYS, |k| per_host_variable(k).is_some(), diags);
    let hosts = match f.get("hosts") {
        None => {
            diags.push(f.error(node, &f.path, "missing field `hosts`"));
            None
        }
        Some(h) => f.read::<String>("hosts", diags).and_then(|value| {
            if value.trim().is_empty() {
                diags.push(f.error(h, &f.path.key("hosts"), "empty host pattern"));
                None
            } else {
                Some(Spanned {
                    value,
                    mark: h.mark,
                })
            }
        }),
    };
    let throttle = f.read::<usize>("throttle", diags);
    if let (Some(0), Some(n)) = (throttle, f.get("throttle")) {
        diags.push(f.error(n, &f.path.key("throttle"), "`throttle` must be at least 1"));
    }
    let vars = match f.get("vars") {
        None => IndexMap::new(),
        Some(v) if v.is_null() => IndexMap::new(),
        Some(v) => match v.to_json() {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => {
                diags.push(f.error(
                    v,
                    &f.path.key("vars"),
                    format!(
                        "`vars` is a mapping of names to values, found {}",
                        v.describe()
                    ),
                ));
                IndexMap::new()
            }
        },
    };
    // Secrets of the playbook are known from here on, before any of its errors is shown.
    for (name, value) in &vars {
        pgdeploy_core::secrets::record_secret_values(name, value);
    }
    let tasks = load_tasks(&f, "tasks", cx, false, diags);
    let handlers = load_tasks(&f, "handlers", cx, true, diags);
    let play = Play {
        name: f.read::<String>("name", diags).unwrap_or_default(),
        hosts: hosts?,
        throttle,
        any_errors_fatal: flag(&f, "any_errors_fatal", diags).unwrap_or(false),
        become_: flag(&f, "become", diags),
        become_user: become_user(&f, diags),
        become_method: become_method(&f, diags),
        gather_facts: flag(&f, "gather_facts", diags).unwrap_or(true),
        tags: tags(&f, diags),
        vars: Arc::new(vars),
        tasks,
        handlers,
        path: f.path.clone(),
        mark: node.mark,
    };
    Some(play)
}

fn load_tasks(
    play: &Fields<'_>,
    key: &str,
    cx: &Cx<'_>,
    handlers: bool,
    diags: &mut Diagnostics,
) -> Vec<Task> {
    let Some(node) = play.get(key) else {
        return Vec::new();
    };
    let path = play.path.key(key);
    if node.is_null() {
        return Vec::new();
    }
    let Some(items) = node.as_seq() else {
        diags.push(play.error(
            node,
            &path,
            format!("`{key}` is a list, found {}", node.describe()),
        ));
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, t)| load_task(play.file, cx, t, path.index(i), handlers, diags))
        .collect()
}

/// The positioned strings of a field that takes one name or a list of names.
fn names(f: &Fields<'_>, key: &str, diags: &mut Diagnostics) -> Vec<Spanned<String>> {
    let Some(node) = f.get(key) else {
        return Vec::new();
    };
    let Some(values) = f.read::<OneOrMany<String>>(key, diags) else {
        return Vec::new();
    };
    let marks: Vec<_> = match node.as_seq() {
        Some(items) => items.iter().map(|n| n.mark).collect(),
        None => vec![node.mark],
    };
    values
        .0
        .into_iter()
        .zip(marks)
        .map(|(value, mark)| Spanned { value, mark })
        .collect()
}

fn load_task(
    file: &SourceFile,
    cx: &Cx<'_>,
    node: &Node,
    path: FieldPath,
    handler: bool,
    diags: &mut Diagnostics,
) -> Option<Task> {
    let f = Fields { file, node, path };
    let Some(entries) = node.as_map() else {
        diags.push(f.error(
            node,
            &f.path,
            format!(
                "a task is a mapping such as `- copy: {{...}}`, found {}",
                node.describe()
            ),
        ));
        return None;
    };
    let keywords = if handler { HANDLER_KEYS } else { TASK_KEYS };
    per_host_keywords(&f, diags);
    let mut modules = Vec::new();
    for (k, v) in entries {
        let name = k.as_str().unwrap_or_default();
        if keywords.contains(&name) || per_host_variable(name).is_some() {
            continue;
        }
        match cx.catalogue.find(name) {
            Some(m) => modules.push((m, k, v)),
            None if ANSIBLE_ONLY_TASK_KEYS.iter().any(|(n, _)| *n == name) => {
                let why = ANSIBLE_ONLY_TASK_KEYS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or("", |(_, w)| w);
                diags.push(
                    f.error(
                        k,
                        &f.path.key(name),
                        format!("the Ansible task keyword `{name}` is not supported by pgdeploy"),
                    )
                    .with_help(why),
                );
            }
            None => {
                let mut d = f.error(
                    k,
                    &f.path.key(name),
                    format!("unknown module or task keyword `{name}`"),
                );
                let short = name.rsplit('.').next().unwrap_or(name);
                let mut candidates = cx.catalogue.names();
                candidates.extend_from_slice(keywords);
                if let Some(best) = did_you_mean(short, candidates.iter().copied()) {
                    d = d.with_help(format!("did you mean `{best}`?"));
                } else {
                    d = d.with_help(format!("modules are {}", backticks(&cx.catalogue.names())));
                }
                diags.push(d);
            }
        }
    }
    let (module, key_node, params) = match modules.as_slice() {
        [one] => *one,
        [] => {
            if !entries.iter().any(|(k, _)| {
                let n = k.as_str().unwrap_or_default();
                !keywords.contains(&n)
            }) {
                diags.push(
                    f.error(node, &f.path, "the task calls no module")
                        .with_help(format!("modules are {}", backticks(&cx.catalogue.names()))),
                );
            }
            return None;
        }
        [_, second, ..] => {
            let list: Vec<&str> = modules.iter().map(|(m, _, _)| m.name()).collect();
            diags.push(f.error(
                second.1,
                &f.path.key(second.0.name()),
                format!(
                    "a task calls one module, this one calls {}",
                    backticks(&list)
                ),
            ));
            return None;
        }
    };
    let params_path = f.path.key(module.name());
    let params = if params.is_null() {
        Node {
            kind: NodeKind::Map(Vec::new()),
            mark: key_node.mark,
        }
    } else {
        params.clone()
    };
    if params.as_map().is_none() {
        diags.push(f.error(
            &params,
            &params_path,
            format!(
                "the parameters of `{}` are a mapping, found {}",
                module.name(),
                params.describe()
            ),
        ));
        return None;
    }
    // Parameters with secret names (`password: …`) are secrets before the module reads them:
    // its errors may quote a value. Templated ones are recorded once rendered, per host.
    pgdeploy_core::secrets::record_secret_values(module.name(), &params.to_json());
    let task_params = if params.has_template() {
        TaskParams::Templated(params.clone())
    } else {
        match module.parse(&params, &params_path, &cx.parse) {
            Ok(parsed) => {
                for w in parsed.warnings {
                    diags.push(w.into_warning(file));
                }
                TaskParams::Static(parsed.action)
            }
            Err(errors) => {
                for e in errors {
                    diags.push(e.into_diagnostic(file));
                }
                return None;
            }
        }
    };
    let when = f.get("when").and_then(|n| {
        let value = f.read::<String>("when", diags)?;
        let expr = value
            .trim()
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim()
            .to_string();
        match pgdeploy_core::template::environment().compile_expression(&expr) {
            Ok(_) => Some(Spanned {
                value: expr,
                mark: n.mark,
            }),
            Err(e) => {
                diags.push(f.error(
                    n,
                    &f.path.key("when"),
                    format!("invalid condition `{value}`: {}", e.kind()),
                ));
                None
            }
        }
    });
    let name = f.read::<String>("name", diags);
    let listen: Vec<String> = names(&f, "listen", diags)
        .into_iter()
        .map(|s| s.value)
        .collect();
    if handler && name.is_none() && listen.is_empty() {
        diags.push(f.error(
            node,
            &f.path,
            "a handler needs a `name` (or `listen`) to be notified by",
        ));
    }
    Some(Task {
        name,
        module,
        params: task_params,
        raw_params: params,
        path: f.path.clone(),
        mark: node.mark,
        when,
        tags: tags(&f, diags),
        notify: names(&f, "notify", diags),
        listen,
        wait_for: names(&f, "wait_for", diags),
        become_: flag(&f, "become", diags),
        become_user: become_user(&f, diags),
        become_method: become_method(&f, diags),
        no_log: flag(&f, "no_log", diags).unwrap_or(false),
    })
}

/// `become_method`: `sudo` or `su` (`ansible.builtin.` prefix allowed); Ansible's other
/// methods are refused by name.
fn become_method(
    f: &Fields<'_>,
    diags: &mut Diagnostics,
) -> Option<Spanned<pgdeploy_core::transport::BecomeMethod>> {
    use pgdeploy_core::transport::BecomeMethod;
    let node = f.get("become_method")?;
    let text = f.read::<String>("become_method", diags)?;
    let value = match text.trim().trim_start_matches("ansible.builtin.") {
        "sudo" => BecomeMethod::Sudo,
        "su" => BecomeMethod::Su,
        other => {
            let mut d = f.error(
                node,
                &f.path.key("become_method"),
                format!(
                    "`become_method` must be `sudo` or `su`, found `{other}`: pgdeploy does not run other become methods"
                ),
            );
            if let Some(best) = did_you_mean(other, ["sudo", "su"]) {
                d = d.with_help(format!("did you mean `{best}`?"));
            }
            diags.push(d);
            return None;
        }
    };
    Some(Spanned {
        value,
        mark: node.mark,
    })
}

/// Ansible play/task keywords that pgdeploy reads per host, from the inventory variable named
/// here (one connection per host serves every task, so they cannot change per task).
fn per_host_variable(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "remote_user" => "ansible_user",
        "connection" => "ansible_connection",
        "port" => "ansible_port",
        _ => return None,
    })
}

/// Reports each keyword of [`per_host_variable`] used in a play or task, naming the variable
/// to set instead.
fn per_host_keywords(f: &Fields<'_>, diags: &mut Diagnostics) {
    for (k, _) in f.node.as_map().unwrap_or_default() {
        let name = k.as_str().unwrap_or_default();
        if let Some(var) = per_host_variable(name) {
            diags.push(
                f.error(
                    k,
                    &f.path.key(name),
                    format!("`{name}` cannot be set per play or task in pgdeploy"),
                )
                .with_help(format!(
                    "set `{var}` for the hosts instead (inventory, `group_vars/`, or `-e {var}=…`)"
                )),
            );
        }
    }
}

/// `become_user`, a literal name: it decides how each command of the step is run, before any
/// template is rendered, so a template here is an error rather than a user named `{{ x }}`.
fn become_user(f: &Fields<'_>, diags: &mut Diagnostics) -> Option<String> {
    let user = f.read::<String>("become_user", diags)?;
    if pgdeploy_core::template::is_template(&user) {
        let node = f.get("become_user")?;
        diags.push(
            f.error(
                node,
                &f.path.key("become_user"),
                format!("`become_user` is not templated in pgdeploy, found `{user}`"),
            )
            .with_help("write the user's name, or set `ansible_become_user` for the hosts"),
        );
        return None;
    }
    Some(user)
}

/// A boolean keyword, in any of Ansible's spellings (`yes`, `"yes"`, `True`, `on`, `1`, …).
fn flag(f: &Fields<'_>, key: &str, diags: &mut Diagnostics) -> Option<bool> {
    f.read::<AnsibleBool>(key, diags).map(|b| b.0)
}

/// `tags`: a list of names, or one string of comma-separated names (`tags: a,b`), as Ansible
/// reads it.
fn tags(f: &Fields<'_>, diags: &mut Diagnostics) -> Vec<String> {
    let Some(names) = f.read::<OneOrMany<String>>("tags", diags) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for name in names.0.iter().flat_map(|n| n.split(',')) {
        let name = name.trim();
        if !name.is_empty() && !out.iter().any(|t| t == name) {
            out.push(name.to_string());
        }
    }
    out
}

fn backticks(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
