//! `pglift_database` (also `dalibo.pglift.database`): a database of a pglift instance, with
//! the collection's parameters, read through the argument spec generated from the lab's pglift
//! (`argspec.json`, `scripts/pglift-argspec`). The plan compares what `pglift database get`
//! describes with what `pglift database apply` makes of the parameters: the owner (pglift sets
//! the superuser when none is given), settings, tablespace, and each schema, extension and
//! publication listed (`state: absent` drops one; one not listed is left alone). An
//! extension's default schema and version, which pglift takes from the server, are read with
//! `psql` in that database. `apply` gives the manifest to `pglift database apply -f -` on
//! stdin, on the primary only ([`crate::common::pglift_objects`]).

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

use super::common::argspec::{Options, SpecFile};
use super::common::pglift_objects::{self, sql_literal, Found, Target, Work, DEFAULT_EXECUTABLE};
use super::pglift_role::add_pgdeploy_options;
use pgdeploy_core::diag::FieldPath;
use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, Module, ModuleError, ParseContext, Parsed, Plan,
};
use pgdeploy_core::yaml::{DeError, Node};

/// The spec generated from pglift (`pglift database --ansible-argspec`, plus the collection's
/// `instance`), with pgdeploy's `executable` and `system_user`.
pub(crate) static SPEC: LazyLock<(String, Options)> = LazyLock::new(|| {
    let file = SpecFile::parse(include_str!("argspec.json"));
    let mut o = file.options;
    add_pgdeploy_options(&mut o);
    (file.pglift, o)
});

#[derive(Debug, Clone)]
pub(crate) struct PgliftDatabase {
    pub target: Target,
    pub name: String,
    /// pglift's fields as given (`name`, `instance`, `executable`, `system_user` out).
    pub manifest: Map<String, Value>,
}

/// What the query in the database said: its `current_schema()` and the extensions' default
/// versions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Server {
    schema: Option<String>,
    versions: Vec<(String, String)>,
}

fn parse_server(out: &str) -> Server {
    let mut s = Server::default();
    for l in out.lines() {
        let f: Vec<&str> = l.split('|').collect();
        match f.as_slice() {
            ["schema", v] => s.schema = Some(v.to_string()),
            ["ext", n, v] => s.versions.push((n.to_string(), v.to_string())),
            _ => {}
        }
    }
    s
}

/// `8MB` and `8 MB`, `on` and `true`, `'x'` and `x` are the same setting.
fn same_setting(a: &Value, b: &Value) -> bool {
    let norm = |v: &Value| -> String {
        let t = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let t = t.to_ascii_lowercase().replace(' ', "");
        match t.trim_matches('\'') {
            "on" | "true" | "yes" => "on".into(),
            "off" | "false" | "no" => "off".into(),
            other => other.to_string(),
        }
    };
    norm(a) == norm(b)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(default)".into(),
        other => other.to_string(),
    }
}

/// One listed item (schema, extension, publication): its name and whether it should exist.
fn items<'a>(m: &'a Map<String, Value>, key: &str) -> Vec<(&'a str, bool, &'a Value)> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    Some((
                        i.get("name")?.as_str()?,
                        i.get("state").and_then(Value::as_str) != Some("absent"),
                        i,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl PgliftDatabase {
    fn present(&self) -> bool {
        self.manifest.get("state").and_then(Value::as_str) != Some("absent")
    }

    /// The query in the database: its current schema and the listed extensions' default
    /// versions (what pglift falls back to).
    fn sql(&self) -> String {
        let exts: Vec<String> = items(&self.manifest, "extensions")
            .iter()
            .map(|(n, _, _)| sql_literal(n))
            .collect();
        if exts.is_empty() {
            return String::new();
        }
        format!(
            "SELECT 'schema|' || current_schema() UNION ALL SELECT 'ext|' || name || '|' || \
             coalesce(default_version, '') FROM pg_available_extensions WHERE name IN ({})",
            exts.join(", ")
        )
    }

    /// The database as the diff shows it: owner, settings, tablespace, schemas, extensions,
    /// publications, one line each.
    fn text(db: &Value) -> String {
        let mut s = format!("owner: {}\n", text_of(&db["owner"]));
        if let Some(t) = db["tablespace"].as_str() {
            s.push_str(&format!("tablespace: {t}\n"));
        }
        if let Some(set) = db["settings"].as_object() {
            for (k, v) in set {
                s.push_str(&format!("setting {k}: {}\n", text_of(v)));
            }
        }
        let list = |key: &str| -> Vec<&Value> {
            let mut v: Vec<&Value> = db[key]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            v.sort_by_key(|i| i["name"].as_str().unwrap_or("").to_string());
            v
        };
        for sc in list("schemas") {
            s.push_str(&format!(
                "schema {}: owner {}\n",
                text_of(&sc["name"]),
                text_of(&sc["owner"])
            ));
        }
        for e in list("extensions") {
            s.push_str(&format!(
                "extension {}: schema {}, version {}\n",
                text_of(&e["name"]),
                text_of(&e["schema"]),
                text_of(&e["version"])
            ));
        }
        for p in list("publications") {
            s.push_str(&format!("publication {}\n", text_of(&p["name"])));
        }
        s
    }

    /// The database once `database apply` has run over `cur` (an empty object for a new one);
    /// the changes said in words.
    fn after(&self, cur: &Value, surole: &str, server: &Server) -> (Value, Vec<String>) {
        let mut after = cur.as_object().cloned().unwrap_or_default();
        let mut said = Vec::new();
        let m = &self.manifest;
        let owner = m
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or(surole)
            .to_string();
        if cur["owner"].as_str() != Some(owner.as_str()) {
            said.push(format!("owner `{owner}`"));
        }
        after.insert("owner".into(), Value::String(owner.clone()));
        if let Some(t) = m.get("tablespace").and_then(Value::as_str) {
            if cur["tablespace"].as_str() != Some(t) {
                said.push(format!("tablespace `{t}`"));
                after.insert("tablespace".into(), Value::String(t.into()));
            }
        }
        if let Some(want) = m.get("settings").and_then(Value::as_object) {
            let mut set = cur["settings"].as_object().cloned().unwrap_or_default();
            if want.is_empty() {
                if !set.is_empty() {
                    said.push("reset all settings".into());
                }
                set.clear();
            }
            for (k, v) in want {
                let now = set.get(k);
                if v.is_null() {
                    if now.is_some() {
                        said.push(format!("reset `{k}`"));
                        set.remove(k);
                    }
                } else if !now.is_some_and(|n| same_setting(n, v)) {
                    said.push(format!("set `{k}` to `{}`", text_of(v)));
                    set.insert(k.clone(), v.clone());
                }
            }
            after.insert(
                "settings".into(),
                if set.is_empty() {
                    Value::Null
                } else {
                    Value::Object(set)
                },
            );
        }
        // schemas: the owner given, else the database's owner given, else pglift's role
        let schema_default = m
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or(surole)
            .to_string();
        let mut schemas: Vec<Value> = cur["schemas"].as_array().cloned().unwrap_or_default();
        for (name, present, item) in items(m, "schemas") {
            let pos = schemas.iter().position(|s| s["name"] == name);
            match (pos, present) {
                (Some(i), false) => {
                    said.push(format!("drop schema `{name}`"));
                    schemas.remove(i);
                }
                (None, false) => {}
                (pos, true) => {
                    let owner = item
                        .get("owner")
                        .and_then(Value::as_str)
                        .unwrap_or(&schema_default)
                        .to_string();
                    let want = serde_json::json!({"name": name, "owner": owner});
                    match pos {
                        Some(i) if schemas[i]["owner"] == owner.as_str() => {}
                        Some(i) => {
                            said.push(format!("schema `{name}` owner `{owner}`"));
                            schemas[i] = want;
                        }
                        None => {
                            said.push(format!("create schema `{name}`"));
                            schemas.push(want);
                        }
                    }
                }
            }
        }
        after.insert("schemas".into(), Value::Array(schemas));
        let mut exts: Vec<Value> = cur["extensions"].as_array().cloned().unwrap_or_default();
        for (name, present, item) in items(m, "extensions") {
            let pos = exts.iter().position(|e| e["name"] == name);
            if !present {
                if let Some(i) = pos {
                    said.push(format!("drop extension `{name}`"));
                    exts.remove(i);
                }
                continue;
            }
            let schema = item
                .get("schema")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| server.schema.clone());
            let version = item
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    server
                        .versions
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                });
            let want = serde_json::json!({"name": name, "schema": schema, "version": version});
            match pos {
                None => {
                    said.push(format!("create extension `{name}`"));
                    exts.push(want);
                }
                Some(i) => {
                    let e = &exts[i];
                    let moved = schema.as_deref().is_some_and(|s| e["schema"] != s);
                    let updated = version.as_deref().is_some_and(|v| e["version"] != v);
                    if moved {
                        said.push(format!(
                            "extension `{name}` schema `{}`",
                            schema.clone().unwrap_or_default()
                        ));
                    }
                    if updated {
                        said.push(format!(
                            "extension `{name}` version `{}`",
                            version.clone().unwrap_or_default()
                        ));
                    }
                    if moved || updated {
                        exts[i] = want;
                    }
                }
            }
        }
        after.insert("extensions".into(), Value::Array(exts));
        let mut pubs: Vec<Value> = cur["publications"].as_array().cloned().unwrap_or_default();
        for (name, present, _) in items(m, "publications") {
            let pos = pubs.iter().position(|p| p["name"] == name);
            match (pos, present) {
                (Some(i), false) => {
                    said.push(format!("drop publication `{name}`"));
                    pubs.remove(i);
                }
                (None, true) => {
                    said.push(format!("create publication `{name}`"));
                    pubs.push(serde_json::json!({ "name": name }));
                }
                _ => {}
            }
        }
        after.insert("publications".into(), Value::Array(pubs));
        (Value::Object(after), said)
    }

    fn decide(&self, found: Option<&Value>, surole: &str, server: &Server) -> Plan {
        let path = format!("database {}", self.name);
        let mut manifest = self.manifest.clone();
        manifest.insert("name".into(), Value::String(self.name.clone()));
        let work = Work::Apply(Value::Object(manifest));
        match (found, self.present()) {
            (None, false) => Plan::unchanged(),
            (None, true) => {
                let (after, _) = self.after(&Value::Object(Map::new()), surole, server);
                let c = Change::new(format!("create database `{}`", self.name)).with_diff(Diff {
                    path,
                    before: None,
                    after: Some(Self::text(&after)),
                });
                Plan::changes(vec![c], work)
            }
            (Some(cur), false) => {
                let c = Change::new(format!("drop database `{}`", self.name)).with_diff(Diff {
                    path,
                    before: Some(Self::text(cur)),
                    after: None,
                });
                Plan::changes(vec![c], work)
            }
            (Some(cur), true) => {
                let (after, said) = self.after(cur, surole, server);
                if said.is_empty() {
                    return Plan::unchanged();
                }
                let mut notes = Vec::new();
                if let Some(l) = self.manifest.get("locale").and_then(Value::as_str) {
                    if cur["locale"].as_str() != Some(l) {
                        notes.push(format!(
                            "database `{}` has locale `{}`: `locale` is set at creation only",
                            self.name,
                            text_of(&cur["locale"])
                        ));
                    }
                }
                let c = Change::new(format!(
                    "alter database `{}`: {}",
                    self.name,
                    said.join(", ")
                ))
                .with_diff(Diff {
                    path,
                    before: Some(Self::text(cur)),
                    after: Some(Self::text(&after)),
                });
                Plan::changes(vec![c], work).with_notes(notes)
            }
        }
    }
}

#[async_trait::async_trait]
impl Action for PgliftDatabase {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let found = self
            .target
            .read(cx, "database", &self.name, &self.name, &self.sql())
            .await?;
        if let Some(p) = pglift_objects::elsewhere(&found) {
            return Ok(p);
        }
        match found {
            Found::NotYet(note) => {
                let what = if self.present() { "create" } else { "drop" };
                Ok(Plan::changes(
                    vec![Change::new(format!("{what} database `{}`", self.name))],
                    Work::Later,
                )
                .with_notes(vec![note]))
            }
            Found::Primary {
                object,
                surole,
                sql,
            } => Ok(self.decide(object.as_ref(), &surole, &parse_server(&sql))),
            _ => Ok(Plan::unchanged()),
        }
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        self.target
            .apply_planned(cx, "database", plan, self.plan(cx))
            .await
    }
}

/// The module, under its own name or the collection's.
pub(crate) struct DatabaseModule(pub &'static str);

impl Module for DatabaseModule {
    fn name(&self) -> &'static str {
        self.0
    }
    fn summary(&self) -> &'static str {
        if self.0 == "pglift_database" {
            "a database of a pglift instance (owner, settings, schemas, extensions), changed on the primary through `pglift database apply`"
        } else {
            "the Ansible collection's name for `pglift_database`"
        }
    }
    fn parse(
        &self,
        params: &Node,
        path: &FieldPath,
        _cx: &ParseContext<'_>,
    ) -> Result<Parsed, Vec<DeError>> {
        let mut m = SPEC.1.read(params, path)?;
        let at = |field: &str, msg: String| {
            let node = params.get(field).unwrap_or(params);
            DeError::new(msg).at(node.mark, &path.key(field))
        };
        let take = |m: &mut Map<String, Value>, k: &str| {
            m.remove(k).and_then(|v| v.as_str().map(str::to_string))
        };
        let instance = take(&mut m, "instance").unwrap_or_default();
        let executable = take(&mut m, "executable").unwrap_or_else(|| DEFAULT_EXECUTABLE.into());
        let system_user = take(&mut m, "system_user").unwrap_or_else(|| "postgres".into());
        let name = take(&mut m, "name").unwrap_or_default();
        let mut errors = Vec::new();
        if instance.is_empty() || instance.contains(char::is_whitespace) {
            errors.push(at(
                "instance",
                format!("`{instance}` is not an instance (`15/main` or `main`)"),
            ));
        }
        if name.is_empty() {
            errors.push(at("name", "a database needs a name".into()));
        }
        if !executable.starts_with('/') {
            errors.push(at(
                "executable",
                format!("`{executable}` is not an absolute path"),
            ));
        }
        let absent = m.get("state").and_then(Value::as_str) == Some("absent");
        if !absent && m.get("force_drop") == Some(&Value::Bool(true)) {
            errors.push(at(
                "force_drop",
                "`force_drop` is for `state: absent`".into(),
            ));
        }
        if m.get("subscriptions")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            errors.push(at(
                "subscriptions",
                "not supported by pgdeploy yet: a subscription's connection and password are not compared".into(),
            ));
        }
        if m.get("tablespace")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("default"))
        {
            errors.push(at(
                "tablespace",
                "`default` is not a tablespace pglift accepts: leave `tablespace` out for the default".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Parsed {
            action: Arc::new(PgliftDatabase {
                target: Target {
                    instance,
                    executable,
                    system_user,
                },
                name,
                manifest: m,
            }),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
