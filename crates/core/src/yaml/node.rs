//! The positioned YAML tree.

use crate::diag::Mark;

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub kind: NodeKind,
    pub mark: Mark,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in file order; keys are nodes so their positions are kept too.
    Map(Vec<(Node, Node)>),
}

/// A scalar as written. Its type (null, bool, int, float, string) is resolved when it is
/// read, so that `mode: 0644` read as a string keeps its leading zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scalar {
    pub text: String,
    /// Plain (unquoted) scalars are resolved by the YAML core schema; quoted ones are strings.
    pub plain: bool,
}

/// A scalar resolved by the YAML 1.2 core schema, plus the YAML 1.1 booleans
/// (`yes`/`no`/`on`/`off`) that Ansible inventories use.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
                return Resolved::Bool(true)
            }
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                return Resolved::Bool(false)
            }
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY)
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            _ => {}
        }
        if let Some(i) = parse_int(t) {
            return Resolved::Int(i);
        }
        if looks_like_float(t) {
            if let Ok(f) = t.parse::<f64>() {
                return Resolved::Float(f);
            }
        }
        Resolved::Str(t)
    }
}

fn parse_int(t: &str) -> Option<i64> {
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -value } else { value })
}

fn looks_like_float(t: &str) -> bool {
    let body = t.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body.bytes().any(|b| b.is_ascii_digit())
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && (body.contains('.') || body.contains('e') || body.contains('E'))
}

impl Node {
    pub fn scalar(text: impl Into<String>, plain: bool, mark: Mark) -> Node {
        Node {
            kind: NodeKind::Scalar(Scalar {
                text: text.into(),
                plain,
            }),
            mark,
        }
    }

    /// A short name of this node's type for messages: "a mapping", "a list", "a string".
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Map(_) => "a mapping",
            NodeKind::Seq(_) => "a list",
            NodeKind::Scalar(s) => match s.resolve() {
                Resolved::Null => "null",
                Resolved::Bool(_) => "a boolean",
                Resolved::Int(_) => "an integer",
                Resolved::Float(_) => "a float",
                Resolved::Str(_) => "a string",
            },
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }
    /// The text of a scalar that resolves to a string (or any scalar's text for keys).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s) if s.resolve() == Resolved::Null)
    }
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Converts to a JSON value (positions dropped), resolving scalars.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar(s) => match s.resolve() {
                Resolved::Null => Value::Null,
                Resolved::Bool(b) => Value::Bool(b),
                Resolved::Int(i) => Value::from(i),
                Resolved::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(s.text.clone())),
                Resolved::Str(t) => Value::String(t.to_string()),
            },
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Whether any scalar below contains a template (`{{`, `{%`).
    pub fn has_template(&self) -> bool {
        match &self.kind {
            NodeKind::Scalar(s) => s.text.contains("{{") || s.text.contains("{%"),
            NodeKind::Seq(items) => items.iter().any(Node::has_template),
            NodeKind::Map(entries) => entries
                .iter()
                .any(|(k, v)| k.has_template() || v.has_template()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(t: &str) -> Scalar {
        Scalar {
            text: t.into(),
            plain: true,
        }
    }

    #[test]
    fn resolves_core_schema_and_yaml11_booleans() {
        assert_eq!(plain("").resolve(), Resolved::Null);
        assert_eq!(plain("yes").resolve(), Resolved::Bool(true));
        assert_eq!(plain("Off").resolve(), Resolved::Bool(false));
        assert_eq!(plain("5432").resolve(), Resolved::Int(5432));
        assert_eq!(plain("-3").resolve(), Resolved::Int(-3));
        assert_eq!(plain("0x1F").resolve(), Resolved::Int(31));
        assert_eq!(plain("1.5").resolve(), Resolved::Float(1.5));
        assert_eq!(plain("1e3").resolve(), Resolved::Float(1000.0));
        assert_eq!(plain("4MB").resolve(), Resolved::Str("4MB"));
        assert_eq!(plain("10.0.0.1").resolve(), Resolved::Str("10.0.0.1"));
        let quoted = Scalar {
            text: "5432".into(),
            plain: false,
        };
        assert_eq!(quoted.resolve(), Resolved::Str("5432"));
    }
}
