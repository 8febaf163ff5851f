//! Ansible argument specs, as the `dalibo.pglift` collection builds them from pglift's models
//! (`helpers.argspec_from_model`): `type`, `required`, `default`, `choices`, `elements`,
//! `options`, `no_log`. `pglift_role` and `pglift_database` embed the spec generated from the
//! pglift of the lab (`scripts/pglift-argspec`) and read their parameters through it, so the
//! accepted names and types are pglift's own: an unknown parameter is a located error with
//! the closest name, a value of the wrong type names its field, a `no_log` value is recorded
//! as a secret. What comes out is the manifest as JSON (values given, typed; no defaults
//! filled in: the module's plan reads those from [`Options::default_of`]).

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use pgdeploy_core::diag::{unknown_name_help, FieldPath};
use pgdeploy_core::yaml::{DeError, Node, NodeKind, Resolved};

/// A generated spec file: pglift's version and the options.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SpecFile {
    /// The pglift version the spec was generated from.
    pub pglift: String,
    pub options: Options,
}

/// The options of a module, or of a `dict` option.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub(crate) struct Options(pub IndexMap<String, Opt>);

/// One option, as the collection's argspec says it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Opt {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub required: bool,
    pub default: Option<Value>,
    pub choices: Option<Vec<Value>>,
    pub elements: Option<String>,
    pub options: Option<Options>,
    #[serde(default)]
    pub no_log: bool,
    /// Other names of the option (pgdeploy's additions: the collection's earlier names).
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl SpecFile {
    /// Reads an embedded spec; a broken one is a bug of the build, caught by the modules' tests.
    pub(crate) fn parse(json: &str) -> SpecFile {
        serde_json::from_str(json).expect("embedded argspec is valid JSON")
    }
}

impl Options {
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&Opt> {
        self.0.get(name)
    }

    /// The default value pglift's model gives `name` (`None`: no default, the field is unset).
    pub(crate) fn default_of(&self, name: &str) -> Option<&Value> {
        self.0
            .get(name)
            .and_then(|o| o.default.as_ref())
            .filter(|v| !v.is_null())
    }

    /// Adds an option that is pgdeploy's, not pglift's (`executable`, say).
    pub(crate) fn add(&mut self, name: &str, opt: Opt) {
        self.0.insert(name.to_string(), opt);
    }

    /// Gives `name` another accepted name.
    pub(crate) fn alias(&mut self, name: &str, alias: &str) {
        if let Some(o) = self.0.get_mut(name) {
            o.aliases.push(alias.to_string());
        }
    }

    /// The option that `key` names (its name or an alias), with its name.
    fn lookup(&self, key: &str) -> Option<(&str, &Opt)> {
        self.0
            .iter()
            .find(|(n, o)| n.as_str() == key || o.aliases.iter().any(|a| a == key))
            .map(|(n, o)| (n.as_str(), o))
    }

    /// Reads `node` (a mapping) through the spec: every key known, every value of its type,
    /// required options present. Keys come out under their option's name (an alias is
    /// renamed); null values are left out (unset, as in Ansible). All problems are returned.
    pub(crate) fn read(
        &self,
        node: &Node,
        path: &FieldPath,
    ) -> Result<Map<String, Value>, Vec<DeError>> {
        let Some(entries) = node.as_map() else {
            return Err(vec![DeError::new(format!(
                "expected a mapping of parameters, found {}",
                node.describe()
            ))
            .at(node.mark, path)]);
        };
        let mut out = Map::new();
        let mut errors = Vec::new();
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        for (k, v) in entries {
            let key = k.as_str().unwrap_or_default();
            let here = path.key(key);
            let Some((name, opt)) = self.lookup(key) else {
                let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
                for o in self.0.values() {
                    names.extend(o.aliases.iter().map(String::as_str));
                }
                let mut e = DeError::new(format!("unknown parameter `{key}`"));
                e.help = unknown_name_help(key, &names);
                errors.push(e.at(k.mark, &here));
                continue;
            };
            if let Some(first) = seen.insert(name, key) {
                errors.push(
                    DeError::new(format!(
                        "`{key}` and `{first}` are the same parameter (`{name}`): give one"
                    ))
                    .at(k.mark, &here),
                );
                continue;
            }
            if v.is_null() {
                continue;
            }
            match opt.read(v, &here) {
                Ok(value) => {
                    out.insert(name.to_string(), value);
                }
                Err(mut es) => errors.append(&mut es),
            }
        }
        for (name, opt) in &self.0 {
            if opt.required && !out.contains_key(name) && !seen.contains_key(name.as_str()) {
                errors.push(
                    DeError::new(format!("missing required parameter `{name}`"))
                        .at(node.mark, path),
                );
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// Ansible's boolean spellings, for a boolean given as a string (a rendered template).
fn bool_text(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" | "y" | "t" => Some(true),
        "no" | "off" | "false" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

fn scalar(node: &Node) -> Option<Resolved<'_>> {
    match &node.kind {
        NodeKind::Scalar(s) => Some(s.resolve()),
        _ => None,
    }
}

impl Opt {
    fn wrong(&self, node: &Node, path: &FieldPath, what: &str) -> Vec<DeError> {
        vec![
            DeError::new(format!("expected {what}, found {}", node.describe())).at(node.mark, path),
        ]
    }

    /// Reads one value of this option.
    fn read(&self, node: &Node, path: &FieldPath) -> Result<Value, Vec<DeError>> {
        let value = match self.kind.as_deref() {
            Some("str") => match scalar(node) {
                Some(Resolved::Str(s)) => Value::String(s.to_string()),
                Some(Resolved::Int(i)) => Value::String(i.to_string()),
                Some(Resolved::Float(_)) => Value::String(node.as_str().unwrap_or("").into()),
                _ => return Err(self.wrong(node, path, "a string")),
            },
            Some("bool") => match scalar(node) {
                Some(Resolved::Bool(b)) => Value::Bool(b),
                Some(Resolved::Str(s)) if bool_text(s).is_some() => {
                    Value::Bool(bool_text(s).unwrap_or(false))
                }
                _ => return Err(self.wrong(node, path, "a boolean")),
            },
            Some("int") => match scalar(node) {
                Some(Resolved::Int(i)) => Value::from(i),
                Some(Resolved::Str(s)) if s.trim().parse::<i64>().is_ok() => {
                    Value::from(s.trim().parse::<i64>().unwrap_or(0))
                }
                _ => return Err(self.wrong(node, path, "an integer")),
            },
            Some("float") => match scalar(node) {
                Some(Resolved::Int(i)) => Value::from(i),
                Some(Resolved::Float(f)) => Value::from(f),
                _ => return Err(self.wrong(node, path, "a number")),
            },
            Some("list") => {
                let Some(items) = node.as_seq() else {
                    return Err(self.wrong(node, path, "a list"));
                };
                let mut out = Vec::new();
                let mut errors = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match self.element(item, &path.index(i)) {
                        Ok(v) => out.push(v),
                        Err(mut es) => errors.append(&mut es),
                    }
                }
                if !errors.is_empty() {
                    return Err(errors);
                }
                Value::Array(out)
            }
            Some("dict") => match &self.options {
                Some(options) => Value::Object(options.read(node, path)?),
                None => {
                    if node.as_map().is_none() {
                        return Err(self.wrong(node, path, "a mapping"));
                    }
                    node.to_json()
                }
            },
            // a choice (`state`), or a type this reader does not know: kept as written
            _ => node.to_json(),
        };
        if let Some(choices) = &self.choices {
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !choices.iter().any(|c| text(c) == text(&value)) {
                let list: Vec<String> = choices.iter().map(|c| format!("`{}`", text(c))).collect();
                return Err(vec![DeError::new(format!(
                    "`{}` is not one of {}",
                    text(&value),
                    list.join(", ")
                ))
                .at(node.mark, path)]);
            }
        }
        if self.no_log {
            if let Value::String(s) = &value {
                pgdeploy_core::secrets::record_from("given to a `no_log` parameter", s);
            }
        }
        Ok(value)
    }

    /// One element of a list option. A string stands for a mapping whose one required key is
    /// that string, as pglift's models read it (`extensions: [hstore]`, `memberships: [pg_monitor]`).
    fn element(&self, node: &Node, path: &FieldPath) -> Result<Value, Vec<DeError>> {
        match (self.elements.as_deref(), &self.options) {
            (Some("dict"), Some(options)) => {
                if node.as_map().is_some() {
                    return Ok(Value::Object(options.read(node, path)?));
                }
                let key = options
                    .0
                    .iter()
                    .filter(|(_, o)| o.required)
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>();
                match (scalar(node), key.as_slice()) {
                    (Some(Resolved::Str(s)), [key]) => {
                        let mut m = Map::new();
                        m.insert((*key).to_string(), Value::String(s.to_string()));
                        Ok(Value::Object(m))
                    }
                    _ => Err(self.wrong(node, path, "a mapping")),
                }
            }
            (Some(kind), _) => Opt {
                kind: Some(kind.to_string()),
                no_log: self.no_log,
                ..Opt::default()
            }
            .read(node, path),
            (None, _) => Ok(node.to_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"pglift": "3.3.0", "options": {
        "name": {"type": "str", "required": true},
        "login": {"type": "bool", "default": false},
        "connection_limit": {"type": "int"},
        "state": {"choices": ["present", "absent"], "default": "present"},
        "password": {"type": "str", "no_log": true},
        "memberships": {"type": "list", "elements": "dict", "default": [], "options": {
            "role": {"type": "str", "required": true},
            "state": {"choices": ["present", "absent"], "default": "present"}}},
        "settings": {"type": "dict"}
    }}"#;

    fn node(yaml: &str) -> Node {
        pgdeploy_core::yaml::load_str(yaml, &pgdeploy_core::diag::SourceFile::new("playbook.yml"))
            .unwrap()
    }

    fn read(yaml: &str) -> Result<Map<String, Value>, Vec<DeError>> {
        let mut spec = SpecFile::parse(SPEC);
        spec.options.alias("memberships", "in_roles");
        spec.options.read(&node(yaml), &FieldPath::root())
    }

    #[test]
    fn values_are_typed_and_aliases_renamed() {
        let m = read("{name: bob, login: 'yes', connection_limit: '3', in_roles: [pg_monitor, {role: x, state: absent}], settings: {work_mem: 2MB}, state: ~}").unwrap();
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"name": "bob", "login": true, "connection_limit": 3,
                "memberships": [{"role": "pg_monitor"}, {"role": "x", "state": "absent"}],
                "settings": {"work_mem": "2MB"}})
        );
    }

    #[test]
    fn unknown_names_wrong_types_and_missing_names_are_located() {
        let errs =
            read("{lgin: true, connection_limit: lots, state: gone, memberships: [{rol: x}]}")
                .unwrap_err();
        let text: Vec<String> = errs
            .iter()
            .map(|e| {
                format!(
                    "{} {:?} {:?}",
                    e.message,
                    e.help,
                    e.path.as_ref().map(|p| p.to_string())
                )
            })
            .collect();
        assert!(
            text[0].starts_with("unknown parameter `lgin` Some(\"did you mean `login`?\")"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("expected an integer, found a string"),
            "{text:?}"
        );
        assert!(
            text[2].starts_with("`gone` is not one of `present`, `absent`"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("unknown parameter `rol`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("missing required parameter `role`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("missing required parameter `name`")),
            "{text:?}"
        );
        assert!(errs.iter().all(|e| e.mark.is_some()));
    }

    #[test]
    fn an_alias_and_its_name_together_are_refused() {
        let errs = read("{name: a, memberships: [], in_roles: []}").unwrap_err();
        assert!(
            errs[0]
                .message
                .contains("the same parameter (`memberships`)"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn no_log_values_are_recorded_as_secrets() {
        read("{name: a, password: \"No-Log-Arg-1 'q' \\\\ x\"}").unwrap();
        assert!(pgdeploy_core::secrets::recorded()
            .iter()
            .any(|s| s == "No-Log-Arg-1 'q' \\ x"));
    }

    #[test]
    fn defaults_come_from_the_spec() {
        let spec = SpecFile::parse(SPEC);
        assert_eq!(spec.options.default_of("login"), Some(&Value::Bool(false)));
        assert_eq!(spec.options.default_of("connection_limit"), None);
    }
}
