//! The variables a template sees for one host, looked up on demand.
//!
//! A [`Scope`] is a minijinja object rather than a prebuilt map: with 1,000 hosts, building
//! every host's `hostvars` eagerly would cost a million entries. Lookups walk the precedence
//! chain instead, and variables whose values are templates are rendered when read.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::Environment;

use crate::inventory::Inventory;

/// Facts of one host: `ansible_hostname`, `ansible_default_ipv4`, …
pub type Facts = IndexMap<String, serde_json::Value>;

/// What every scope of a run shares.
pub struct ScopeShared {
    pub env: Arc<Environment<'static>>,
    pub inventory: Arc<Inventory>,
    /// `groups`: every group with all its hosts (children's included), in inventory order.
    groups: Value,
    /// `None` until facts are gathered: validation then defers templates that need facts.
    pub facts: Option<HashMap<String, Facts>>,
}

impl ScopeShared {
    pub fn new(
        env: Arc<Environment<'static>>,
        inventory: Arc<Inventory>,
        facts: Option<HashMap<String, Facts>>,
    ) -> Arc<Self> {
        let mut groups: IndexMap<&str, Vec<&str>> = inventory
            .groups
            .keys()
            .map(|g| (g.as_str(), Vec::new()))
            .collect();
        for host in inventory.hosts.values() {
            for g in &host.groups {
                groups
                    .entry(g.as_str())
                    .or_default()
                    .push(host.name.as_str());
            }
        }
        let groups = Value::from_serialize(&groups);
        Arc::new(ScopeShared {
            env,
            inventory,
            groups,
            facts,
        })
    }

    /// Whether `host`'s facts are known (validation, or an unreachable host, leaves them out).
    pub fn facts_gathered(&self, host: &str) -> bool {
        self.facts.as_ref().is_some_and(|f| f.contains_key(host))
    }
}

/// Variables of one host in one play.
pub struct Scope {
    shared: Arc<ScopeShared>,
    host: String,
    play_vars: Arc<IndexMap<String, serde_json::Value>>,
    play_hosts: Arc<Vec<String>>,
    /// Whether this play sees the host's facts: false in a play with `gather_facts: false`
    /// when no earlier play of the host gathered them (as in Ansible, where facts gathered
    /// once stay for the rest of the run).
    facts: bool,
    /// Templated variables already rendered for this host and play: a variable read twice is
    /// rendered once, so chains of variables cost their length, not 2^length.
    rendered: Mutex<HashMap<String, Value>>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<variables of host {}>", self.host)
    }
}

thread_local! {
    /// Depth of nested lazy renders, to stop deep chains of variables.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Lazy renders since the outermost one began ([`MAX_LAZY_RENDERS`]).
    static RENDERS: Cell<u32> = const { Cell::new(0) };
    /// Variables being rendered, outermost first, to name a loop (`a: "{{ b }}"`,
    /// `b: "{{ a }}"`) by its variables.
    static RENDERING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The first loop or limit met by a variable's render: minijinja turns a variable that
    /// cannot be read into an undefined value, so the cause is told through here to the one
    /// explaining the error.
    static CAUSE: RefCell<Option<String>> = const { RefCell::new(None) };
}
const MAX_DEPTH: u32 = 32;
use crate::limits::MAX_LAZY_RENDERS;

/// The loop or limit met while rendering the last template, as a sentence, if any.
pub(crate) fn take_cause() -> Option<String> {
    CAUSE.with(|l| l.borrow_mut().take())
}

/// Forgets the cause found by an earlier render.
pub(crate) fn clear_cause() {
    CAUSE.with(|l| *l.borrow_mut() = None);
}

/// Records why a render failed (a loop or a limit), unless a deeper cause already is.
pub(crate) fn set_cause(sentence: String) {
    CAUSE.with(|l| {
        l.borrow_mut().get_or_insert(sentence);
    });
}

impl Scope {
    pub fn new(
        shared: &Arc<ScopeShared>,
        host: &str,
        play_vars: Arc<IndexMap<String, serde_json::Value>>,
        play_hosts: Arc<Vec<String>>,
    ) -> Arc<Scope> {
        Scope::for_play(shared, host, play_vars, play_hosts, true)
    }

    /// A scope that sees the host's facts only if `facts` (see [`Scope::sees_facts`]).
    pub fn for_play(
        shared: &Arc<ScopeShared>,
        host: &str,
        play_vars: Arc<IndexMap<String, serde_json::Value>>,
        play_hosts: Arc<Vec<String>>,
        facts: bool,
    ) -> Arc<Scope> {
        Arc::new(Scope {
            shared: shared.clone(),
            host: host.to_string(),
            play_vars,
            play_hosts,
            facts,
            rendered: Mutex::default(),
        })
    }

    /// Whether the play sees this host's facts (`gather_facts`).
    pub fn sees_facts(&self) -> bool {
        self.facts
    }

    /// Whether facts this play will see are not gathered yet: templates that need them wait
    /// for the compile made with facts. A play that never sees facts does not wait: a fact
    /// it uses is an error at once.
    pub fn facts_pending(&self) -> bool {
        self.facts && !self.shared.facts_gathered(&self.host)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn shared(&self) -> &Arc<ScopeShared> {
        &self.shared
    }

    /// The scope as a template context.
    pub fn context(self: &Arc<Self>) -> Value {
        Value::from_dyn_object(self.clone())
    }

    /// Whether `name` is defined for this host (facts count only once gathered).
    pub fn defines(&self, name: &str) -> bool {
        self.raw(name).is_some() || self.magic(name).is_some()
    }

    fn magic(&self, name: &str) -> Option<Value> {
        let inv = &self.shared.inventory;
        Some(match name {
            "inventory_hostname" => Value::from(self.host.as_str()),
            "inventory_hostname_short" => {
                Value::from(self.host.split('.').next().unwrap_or(&self.host))
            }
            "group_names" => {
                let host = inv.hosts.get(&self.host)?;
                let names: Vec<&str> = host
                    .groups
                    .iter()
                    .map(String::as_str)
                    .filter(|g| *g != "all" && *g != "ungrouped")
                    .collect();
                Value::from_serialize(&names)
            }
            "groups" => self.shared.groups.clone(),
            "hostvars" => Value::from_object(HostVars {
                shared: self.shared.clone(),
            }),
            "play_hosts" | "ansible_play_hosts" | "ansible_play_hosts_all" => {
                Value::from_serialize(&*self.play_hosts)
            }
            _ => return None,
        })
    }

    /// A variable as stored, before rendering.
    fn raw(&self, name: &str) -> Option<&serde_json::Value> {
        // `-e` wins over everything (Ansible's highest precedence).
        if let Some(v) = self.shared.inventory.sources.extra_vars.get(name) {
            return Some(&v.value);
        }
        if let Some(v) = self.play_vars.get(name) {
            return Some(v);
        }
        if let Some(v) = self
            .shared
            .facts
            .as_ref()
            .filter(|_| self.facts)
            .and_then(|f| f.get(&self.host))
            .and_then(|f| f.get(name))
        {
            return Some(v);
        }
        self.shared
            .inventory
            .hosts
            .get(&self.host)?
            .vars
            .get(name)
            .map(|v| &v.value)
    }

    /// Variable `name` (whose stored value is `value`) with the templates inside it rendered,
    /// once per scope.
    fn lazy_named(
        self: &Arc<Self>,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<Value, minijinja::Error> {
        if !contains_template(value) {
            return Ok(Value::from_serialize(value));
        }
        if let Some(v) = self.rendered.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(v);
        }
        let chain = RENDERING.with(|r| {
            let r = r.borrow();
            r.iter()
                .position(|n| n == name)
                .map(|i| r[i + 1..].to_vec())
        });
        if let Some(through) = chain {
            let sentence = if through.is_empty() {
                format!("`{name}` refers to itself")
            } else {
                let via: Vec<String> = through.iter().map(|n| format!("`{n}`")).collect();
                format!("`{name}` refers to itself through {}", via.join(", "))
            };
            set_cause(sentence.clone());
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                sentence,
            ));
        }
        RENDERING.with(|r| r.borrow_mut().push(name.to_string()));
        let result = self.lazy(value);
        RENDERING.with(|r| r.borrow_mut().pop());
        if let Err(e) = &result {
            if e.kind() == minijinja::ErrorKind::OutOfFuel {
                set_cause(format!("variable `{name}`: {}", describe_error(e)));
            }
        }
        if let (Ok(v), Ok(mut m)) = (&result, self.rendered.lock()) {
            m.insert(name.to_string(), v.clone());
        }
        result
    }

    /// Renders the template strings inside a variable's value.
    fn lazy(self: &Arc<Self>, value: &serde_json::Value) -> Result<Value, minijinja::Error> {
        if !contains_template(value) {
            return Ok(Value::from_serialize(value));
        }
        let depth = DEPTH.with(|d| d.get());
        if depth == 0 {
            RENDERS.with(|r| r.set(0));
        }
        let renders = RENDERS.with(|r| {
            r.set(r.get() + 1);
            r.get()
        });
        let limit = if renders > MAX_LAZY_RENDERS {
            Some(format!(
                "more than {MAX_LAZY_RENDERS} templated variables rendered for one value (`MAX_LAZY_RENDERS`)"
            ))
        } else if depth >= MAX_DEPTH {
            Some(format!(
                "variables use each other more than {MAX_DEPTH} levels deep"
            ))
        } else {
            None
        };
        if let Some(sentence) = limit {
            set_cause(sentence.clone());
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                sentence,
            ));
        }
        DEPTH.with(|d| d.set(depth + 1));
        let result = self.render_json(value);
        DEPTH.with(|d| d.set(depth));
        result
    }

    fn render_json(self: &Arc<Self>, value: &serde_json::Value) -> Result<Value, minijinja::Error> {
        use serde_json::Value as J;
        Ok(match value {
            J::String(s) if super::is_template(s) => {
                super::render::eval_str(&self.shared.env, s, &self.context())?
            }
            J::Array(items) => Value::from(
                items
                    .iter()
                    .map(|i| self.render_json(i))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            J::Object(map) => {
                let mut out = IndexMap::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.render_json(v)?);
                }
                Value::from_serialize(&out)
            }
            other => Value::from_serialize(other),
        })
    }

    /// The rendered secrets of this host's templated variables (play `vars:` and inventory
    /// variables that hold a secret name at some depth and a template), for the
    /// [`Redactor`](crate::secrets::Redactor): values without templates are collected from
    /// the sources directly, rendered ones are only known per host. A variable that fails to
    /// render is left out (its error is reported where it is used).
    pub fn secret_values(self: &Arc<Self>) -> Vec<String> {
        let inventory_vars = self
            .shared
            .inventory
            .hosts
            .get(&self.host)
            .into_iter()
            .flat_map(|h| h.vars.iter().map(|(k, v)| (k, &v.value)));
        let mut out = Vec::new();
        for (name, raw) in self.play_vars.iter().chain(inventory_vars) {
            if !contains_template(raw) || !crate::secrets::has_secret_name(name, raw) {
                continue;
            }
            if let Some(json) = self
                .lazy_named(name, raw)
                .ok()
                .and_then(|v| serde_json::to_value(&v).ok())
            {
                crate::secrets::collect_secret_values(name, &json, &mut out);
            }
        }
        out
    }

    /// Why `name` is undefined even though the host has it: its own template failed.
    pub fn explain(self: &Arc<Self>, name: &str) -> Option<String> {
        let raw = self.raw(name)?;
        clear_cause();
        let error = self.lazy_named(name, raw).err()?;
        Some(take_cause().unwrap_or_else(|| describe_error(&error)))
    }
}

/// One line for a minijinja error, without the template source (which may hold secrets once
/// rendered; the caller names the template itself).
pub(crate) fn describe_error(e: &minijinja::Error) -> String {
    use minijinja::ErrorKind as K;
    // minijinja says "unknown filter: filter x is unknown": name it once, in backticks.
    let unknown = match e.kind() {
        K::UnknownFilter => Some("filter"),
        K::UnknownTest => Some("test"),
        K::UnknownFunction => Some("function"),
        _ => None,
    };
    if let Some(what) = unknown {
        let name = e
            .detail()
            .and_then(|d| d.strip_prefix(what))
            .and_then(|d| d.trim().strip_suffix("is unknown"))
            .map(str::trim);
        if let Some(name) = name {
            return format!("unknown {what} `{name}`");
        }
    }
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!(
            "the template ran more than {} instructions (`TEMPLATE_FUEL`)",
            crate::limits::TEMPLATE_FUEL
        );
    }
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn contains_template(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => super::is_template(s),
        serde_json::Value::Array(items) => items.iter().any(contains_template),
        serde_json::Value::Object(map) => map.values().any(contains_template),
        _ => false,
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if let Some(v) = self.magic(name) {
            return Some(v);
        }
        let raw = self.raw(name)?;
        self.lazy_named(name, raw).ok()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = Vec::new();
        if let Some(host) = self.shared.inventory.hosts.get(&self.host) {
            keys.extend(host.vars.keys().map(|k| Value::from(k.as_str())));
        }
        keys.extend(self.play_vars.keys().map(|k| Value::from(k.as_str())));
        if let Some(f) = self
            .shared
            .facts
            .as_ref()
            .filter(|_| self.facts)
            .and_then(|f| f.get(&self.host))
        {
            keys.extend(f.keys().map(|k| Value::from(k.as_str())));
        }
        keys.push(Value::from("inventory_hostname"));
        Enumerator::Values(keys)
    }
}

/// `hostvars`: each host's inventory variables and facts (not the current play's vars).
struct HostVars {
    shared: Arc<ScopeShared>,
}

impl std::fmt::Debug for HostVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hostvars>")
    }
}

impl Object for HostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let host = key.as_str()?;
        if !self.shared.inventory.hosts.contains_key(host) {
            return None;
        }
        let scope = Scope::new(&self.shared, host, Arc::default(), Arc::default());
        Some(Value::from_dyn_object(scope))
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.shared
                .inventory
                .hosts
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect(),
        )
    }
}
