//! `pglift_role` (also `dalibo.pglift.role`): a role of a pglift instance, with the
//! collection's parameters, read through the argument spec generated from the lab's pglift
//! (`argspec.json`, `scripts/pglift-argspec`). The plan compares what `pglift role get`
//! describes with what `pglift role apply` would make of the parameters — pglift's model
//! defaults included, as the collection applies them (an attribute left out is reset to its
//! default) — and the password with its SCRAM verifier in `pg_authid`, never printed. `apply`
//! gives the manifest to `pglift role apply -f -` on stdin, on the primary only
//! ([`crate::common::pglift_objects`]).

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

use super::common::argspec::{Opt, Options, SpecFile};
use super::common::pglift_objects::{self, sql_literal, Found, Target, Work, DEFAULT_EXECUTABLE};
use super::common::scram::Verifier;
use pgdeploy_core::diag::FieldPath;
use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, Module, ModuleError, ParseContext, Parsed, Plan,
};
use pgdeploy_core::secrets::MASK;
use pgdeploy_core::yaml::{DeError, Node};

mod validity;

/// The spec generated from pglift (`pglift role --ansible-argspec`, plus the collection's
/// `instance`), with pgdeploy's additions: the collection's earlier names `validity` and
/// `in_roles`, and where pglift is.
pub(crate) static SPEC: LazyLock<(String, Options)> = LazyLock::new(|| {
    let file = SpecFile::parse(include_str!("argspec.json"));
    let mut o = file.options;
    o.alias("valid_until", "validity");
    o.alias("memberships", "in_roles");
    add_pgdeploy_options(&mut o);
    (file.pglift, o)
});

/// `executable` and `system_user`: pgdeploy's, as `pglift_instance` has them.
pub(crate) fn add_pgdeploy_options(o: &mut Options) {
    // pgdeploy's: `executable` (the `pglift` binary) and `system_user` (the user pglift runs as).
    for name in ["executable", "system_user"] {
        o.add(
            name,
            Opt {
                kind: Some("str".into()),
                ..Opt::default()
            },
        );
    }
}

/// The attributes `role apply` always sets (the model's defaults when left out).
const ATTRS: [&str; 6] = [
    "login",
    "superuser",
    "createdb",
    "createrole",
    "replication",
    "inherit",
];

#[derive(Debug, Clone)]
pub(crate) struct PgliftRole {
    pub target: Target,
    pub name: String,
    /// pglift's fields as given (aliases renamed; `instance`, `executable`, `system_user` out).
    pub manifest: Map<String, Value>,
}

impl PgliftRole {
    fn present(&self) -> bool {
        self.manifest.get("state").and_then(Value::as_str) != Some("absent")
    }

    fn wanted_bool(&self, field: &str) -> bool {
        self.manifest
            .get(field)
            .or_else(|| SPEC.1.default_of(field))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The memberships asked for: (role, present).
    fn memberships(&self) -> Vec<(String, bool)> {
        self.manifest
            .get("memberships")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        let role = m.get("role")?.as_str()?.to_string();
                        Some((
                            role,
                            m.get("state").and_then(Value::as_str) != Some("absent"),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn password(&self) -> Option<&str> {
        self.manifest.get("password").and_then(Value::as_str)
    }
    fn encrypted_password(&self) -> Option<&str> {
        self.manifest
            .get("encrypted_password")
            .and_then(Value::as_str)
    }

    /// The query on the primary: the stored verifier, when a password is to be compared.
    fn sql(&self) -> String {
        if self.password().is_some() || self.encrypted_password().is_some() {
            format!(
                "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = {}",
                sql_literal(&self.name)
            )
        } else {
            String::new()
        }
    }

    /// The role as the diff shows it: one line per attribute, the password masked.
    fn text(role: &Value, password: &str) -> String {
        let mut s = String::new();
        for a in ATTRS {
            s.push_str(&format!("{a}: {}\n", role[a].as_bool().unwrap_or(false)));
        }
        let limit = match role["connection_limit"].as_i64() {
            Some(n) if n >= 0 => n.to_string(),
            _ => "none".into(),
        };
        s.push_str(&format!("connection_limit: {limit}\n"));
        if let Some(v) = role["valid_until"].as_str() {
            s.push_str(&format!("valid_until: {v}\n"));
        }
        let mut ms: Vec<&str> = role["memberships"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["role"].as_str()).collect())
            .unwrap_or_default();
        ms.sort();
        s.push_str(&format!("memberships: [{}]\n", ms.join(", ")));
        s.push_str(&format!(
            "pgpass: {}\n",
            role["pgpass"].as_bool().unwrap_or(false)
        ));
        s.push_str(&format!("password: {password}\n"));
        s
    }

    /// The plan on the primary, from pglift's description of the role (`None`: absent) and
    /// `pg_authid.rolpassword`.
    fn decide(&self, found: Option<&Value>, stored: &str) -> Plan {
        let path = format!("role {}", self.name);
        let mut manifest = self.manifest.clone();
        manifest.insert("name".into(), Value::String(self.name.clone()));
        let Some(cur) = found else {
            if !self.present() {
                return Plan::unchanged();
            }
            let after = self.after(&Value::Object(Map::new()));
            let pw = if self.password().is_some() || self.encrypted_password().is_some() {
                MASK
            } else {
                "(none)"
            };
            let c = Change::new(format!("create role `{}`", self.name)).with_diff(Diff {
                path,
                before: None,
                after: Some(Self::text(&after, pw)),
            });
            return Plan::changes(vec![c], Work::Apply(Value::Object(manifest)));
        };
        let had = if cur["has_password"].as_bool().unwrap_or(!stored.is_empty()) {
            MASK
        } else {
            "(none)"
        };
        if !self.present() {
            let c = Change::new(format!("drop role `{}`", self.name)).with_diff(Diff {
                path,
                before: Some(Self::text(cur, had)),
                after: None,
            });
            return Plan::changes(vec![c], Work::Apply(Value::Object(manifest)));
        }
        let after = self.after(cur);
        let mut differ: Vec<String> = Vec::new();
        for a in ATTRS {
            if cur[a] != after[a] {
                differ.push(a.to_string());
            }
        }
        for f in ["connection_limit", "pgpass"] {
            if cur[f] != after[f] {
                differ.push(f.to_string());
            }
        }
        if let Some(v) = self.manifest.get("valid_until").and_then(Value::as_str) {
            if !cur["valid_until"]
                .as_str()
                .is_some_and(|c| validity::same(v, c))
            {
                differ.push("valid_until".into());
            }
        }
        for (role, present) in self.memberships() {
            let member = cur["memberships"]
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m["role"] == role.as_str()));
            if member != present {
                differ.push(format!(
                    "{} `{role}`",
                    if present { "grant" } else { "revoke" }
                ));
            }
        }
        let new_password = match (self.password(), self.encrypted_password()) {
            (Some(p), _) => !Verifier::parse(stored).is_some_and(|v| v.matches(p)),
            (None, Some(e)) => e != stored,
            (None, None) => false,
        };
        if new_password {
            differ.push("password".into());
        } else {
            // the same password set again would only change its salt
            manifest.remove("password");
            manifest.remove("encrypted_password");
        }
        if differ.is_empty() {
            return Plan::unchanged();
        }
        let after_pw = if new_password {
            "******** (changed)"
        } else {
            had
        };
        let c = Change::new(format!("alter role `{}`: {}", self.name, differ.join(", ")))
            .with_diff(Diff {
                path,
                before: Some(Self::text(cur, had)),
                after: Some(Self::text(&after, after_pw)),
            });
        Plan::changes(vec![c], Work::Apply(Value::Object(manifest)))
    }

    /// The role once `role apply` has run over `cur` (an empty object for a new role).
    fn after(&self, cur: &Value) -> Value {
        let mut after = cur.as_object().cloned().unwrap_or_default();
        for a in ATTRS {
            after.insert(a.into(), Value::Bool(self.wanted_bool(a)));
        }
        // `CONNECTION LIMIT -1` when left out
        after.insert(
            "connection_limit".into(),
            self.manifest
                .get("connection_limit")
                .cloned()
                .filter(|v| v.as_i64().is_some_and(|n| n >= 0))
                .unwrap_or(Value::Null),
        );
        after.insert("pgpass".into(), Value::Bool(self.wanted_bool("pgpass")));
        if let Some(v) = self.manifest.get("valid_until").and_then(Value::as_str) {
            let keep = cur["valid_until"]
                .as_str()
                .is_some_and(|c| validity::same(v, c));
            if !keep {
                after.insert("valid_until".into(), Value::String(v.to_string()));
            }
        }
        let mut ms: Vec<String> = cur["memberships"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["role"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for (role, present) in self.memberships() {
            ms.retain(|m| *m != role);
            if present {
                ms.push(role);
            }
        }
        after.insert(
            "memberships".into(),
            Value::Array(
                ms.into_iter()
                    .map(|r| serde_json::json!({ "role": r }))
                    .collect(),
            ),
        );
        Value::Object(after)
    }
}

#[async_trait::async_trait]
impl Action for PgliftRole {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let found = self
            .target
            .read(cx, "role", &self.name, "postgres", &self.sql())
            .await?;
        if let Some(p) = pglift_objects::elsewhere(&found) {
            return Ok(p);
        }
        match found {
            Found::NotYet(note) => {
                let what = if self.present() { "create" } else { "drop" };
                Ok(Plan::changes(
                    vec![Change::new(format!("{what} role `{}`", self.name))],
                    Work::Later,
                )
                .with_notes(vec![note]))
            }
            Found::Primary { object, sql, .. } => {
                Ok(self.decide(object.as_ref(), sql.lines().next().unwrap_or("").trim()))
            }
            _ => Ok(Plan::unchanged()),
        }
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        self.target
            .apply_planned(cx, "role", plan, self.plan(cx))
            .await
    }
}

/// The module, under its own name or the collection's.
pub(crate) struct RoleModule(pub &'static str);

impl Module for RoleModule {
    fn name(&self) -> &'static str {
        self.0
    }
    fn summary(&self) -> &'static str {
        if self.0 == "pglift_role" {
            "a role of a pglift instance (the collection's parameters), changed on the primary through `pglift role apply`"
        } else {
            "the Ansible collection's name for `pglift_role`"
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
        let mut errors = Vec::new();
        let take = |m: &mut Map<String, Value>, k: &str| {
            m.remove(k).and_then(|v| v.as_str().map(str::to_string))
        };
        let instance = take(&mut m, "instance").unwrap_or_default();
        let executable = take(&mut m, "executable").unwrap_or_else(|| DEFAULT_EXECUTABLE.into());
        let system_user = take(&mut m, "system_user").unwrap_or_else(|| "postgres".into());
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        m.remove("name");
        if instance.is_empty() || instance.contains(char::is_whitespace) {
            errors.push(at(
                "instance",
                format!("`{instance}` is not an instance (`15/main` or `main`)"),
            ));
        }
        if name.is_empty() {
            errors.push(at("name", "a role needs a name".into()));
        }
        if !executable.starts_with('/') {
            errors.push(at(
                "executable",
                format!("`{executable}` is not an absolute path"),
            ));
        }
        let absent = m.get("state").and_then(Value::as_str) == Some("absent");
        if m.contains_key("password") && m.contains_key("encrypted_password") {
            errors.push(at(
                "encrypted_password",
                "`password` and `encrypted_password` are mutually exclusive".into(),
            ));
        }
        for f in ["password", "encrypted_password"] {
            if absent && m.contains_key(f) {
                errors.push(at(f, format!("`{f}` is for `state: present`")));
            }
        }
        if m.get("password")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_ascii())
        {
            errors.push(at(
                "password",
                "only ASCII passwords are supported (others need SASLprep, which pgdeploy does not apply when it compares them)".into(),
            ));
        }
        if !absent {
            if m.get("drop_owned") == Some(&Value::Bool(true)) {
                errors.push(at(
                    "drop_owned",
                    "`drop_owned` is for `state: absent`".into(),
                ));
            }
            if m.contains_key("reassign_owned") {
                errors.push(at(
                    "reassign_owned",
                    "`reassign_owned` is for `state: absent`".into(),
                ));
            }
        }
        if m.get("hba_records")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            errors.push(at(
                "hba_records",
                "not supported by pgdeploy: pglift writes them into the pg_hba.conf of the host it runs on, and the role is changed on the primary only; give the rules in `pglift_site`'s `pg_hba` template".into(),
            ));
        }
        if m.get("pgpass") == Some(&Value::Bool(true)) {
            errors.push(at(
                "pgpass",
                "not supported by pgdeploy: the password file is the host's, and the role is changed on the primary only".into(),
            ));
        }
        if let Some(v) = m.get("valid_until").and_then(Value::as_str) {
            if validity::parse(v).is_none() {
                let field = if params.get("validity").is_some() {
                    "validity"
                } else {
                    "valid_until"
                };
                errors.push(at(
                    field,
                    format!("`{v}` is not a date and time (`2030-01-01T00:00`, with an optional `Z` or `+02:00`)"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Parsed {
            action: Arc::new(PgliftRole {
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
