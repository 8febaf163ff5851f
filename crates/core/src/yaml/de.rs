//! A serde deserializer over the positioned [`Node`] tree.
//!
//! Every error leaving it carries the position and the field path of the node (or key) it
//! is about: unknown fields point at the key and suggest the closest valid name, type errors
//! point at the value, missing fields at the mapping that lacks them.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use super::node::{Node, NodeKind, Resolved};
use crate::diag::{unknown_name_help, Diagnostic, FieldPath, Location, Mark, SourceFile};

/// A typed-reading error with the place it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub help: Option<String>,
    pub mark: Option<Mark>,
    pub path: Option<FieldPath>,
}

impl DeError {
    pub fn new(message: impl Into<String>) -> Self {
        DeError {
            message: message.into(),
            help: None,
            mark: None,
            path: None,
        }
    }
    /// Pins the error to a node unless a deeper node already claimed it.
    pub fn at(mut self, mark: Mark, path: &FieldPath) -> Self {
        if self.mark.is_none() {
            self.mark = Some(mark);
            self.path = Some(path.clone());
        }
        self
    }
    pub fn into_diagnostic(self, file: &SourceFile) -> Diagnostic {
        self.into_diagnostic_as(file, Diagnostic::error)
    }

    /// The same, as a warning.
    pub fn into_warning(self, file: &SourceFile) -> Diagnostic {
        self.into_diagnostic_as(file, Diagnostic::warning)
    }

    fn into_diagnostic_as(
        self,
        file: &SourceFile,
        make: impl FnOnce(Option<Location>, String, String) -> Diagnostic,
    ) -> Diagnostic {
        let location = match self.mark {
            Some(m) => Location::new(file, m),
            None => Location::file(file),
        };
        let path = self.path.map(|p| p.to_string()).unwrap_or_default();
        let d = make(Some(location), path, self.message);
        match self.help {
            Some(h) => d.with_help(h),
            None => d,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// Rust's names of integer types (serde's expectations) in the user's words.
fn in_words(exp: &str) -> Option<&'static str> {
    Some(match exp {
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        _ => return None,
    })
}

/// A scalar as the user wrote it (`abc`, `70000`), others described.
fn as_written(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Str(s) => format!("`{s}`"),
        Unexpected::Unsigned(i) => format!("`{i}`"),
        Unexpected::Signed(i) => format!("`{i}`"),
        Unexpected::Float(x) => format!("`{x}`"),
        other => describe(other),
    }
}

/// The text `expected a port number (1–65535)` errors use.
pub const PORT_EXPECTED: &str = "a port number (1–65535)";

fn describe(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("boolean `{b}`"),
        Unexpected::Unsigned(i) => format!("integer `{i}`"),
        Unexpected::Signed(i) => format!("integer `{i}`"),
        Unexpected::Float(x) => format!("float `{x}`"),
        Unexpected::Char(c) => format!("character `{c}`"),
        Unexpected::Str(s) => format!("string `{s}`"),
        Unexpected::Unit => "null".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "a mapping".to_string(),
        other => other.to_string(),
    }
}

fn backticked(names: &'static [&'static str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let exp = exp.to_string();
        match in_words(&exp) {
            // "expected an integer, found `abc`": the value as written, not its YAML type.
            Some(words) => DeError::new(format!("expected {words}, found {}", as_written(&unexp))),
            None => DeError::new(format!("expected {exp}, found {}", describe(&unexp))),
        }
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let exp = exp.to_string();
        match in_words(&exp) {
            Some(words) => DeError::new(format!("expected {words}, found {}", as_written(&unexp))),
            None => DeError::new(format!(
                "invalid value {}, expected {exp}",
                describe(&unexp)
            )),
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(format!("unknown field `{field}`"));
        e.help = unknown_name_help(field, expected).map(|h| {
            if h.starts_with("did you mean") {
                format!("{h} (valid fields: {})", backticked(expected))
            } else {
                h.replace("valid names", "valid fields")
            }
        });
        e
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(format!("unknown value `{variant}`"));
        e.help = Some(match unknown_name_help(variant, expected) {
            Some(h) if h.starts_with("did you mean") => {
                format!("{h} (one of {})", backticked(expected))
            }
            _ => format!("expected one of {}", backticked(expected)),
        });
        e
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("missing field `{field}`"))
    }
}

/// Reads a typed value from `node`; `path` is the node's field path for messages.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &FieldPath) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, path })
}

struct NodeDe<'a> {
    node: &'a Node,
    path: &'a FieldPath,
}

impl<'a> NodeDe<'a> {
    fn pin<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| e.at(self.node.mark, self.path))
    }
}

macro_rules! forward_to_any {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.deserialize_any(visitor)
        })*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(t) => visitor.visit_str(t),
            },
            NodeKind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                path: self.path,
            }),
            NodeKind::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter(),
                path: self.path,
                value: None,
            }),
        };
        self.pin(r)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Any non-null scalar reads as its text, so `version: 15` fills a string field and
        // `mode: 0644` keeps its leading zero.
        match &self.node.kind {
            NodeKind::Scalar(s) if s.resolve() != Resolved::Null => {
                let r = visitor.visit_str(&s.text);
                self.pin(r)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let r = visitor.visit_none();
            self.pin(r)
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Scalar(s) => visitor.visit_enum(s.text.as_str().into_deserializer()),
            NodeKind::Map(entries) if entries.len() == 1 => visitor.visit_enum(EnumDe {
                key: &entries[0].0,
                value: &entries[0].1,
                path: self.path,
            }),
            _ => Err(DeError::new(format!(
                "expected a name or a mapping with one key, found {}",
                self.node.describe()
            ))),
        };
        self.pin(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    /// A `u16` field whose name ends in `port` is a port: 1 to 65535 (0 would let the kernel
    /// pick one, which no configuration means).
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let is_port = self
            .path
            .as_str()
            .rsplit('.')
            .next()
            .is_some_and(|k| k.ends_with("port"));
        let NodeKind::Scalar(s) = &self.node.kind else {
            return self.deserialize_any(visitor);
        };
        if !is_port || s.resolve() == Resolved::Null {
            return self.deserialize_any(visitor);
        }
        match s.resolve() {
            Resolved::Int(i) if (1..=65535).contains(&i) => {
                let r = visitor.visit_u16(i as u16);
                self.pin(r)
            }
            _ => Err(
                DeError::new(format!("expected {PORT_EXPECTED}, found `{}`", s.text))
                    .at(self.node.mark, self.path),
            ),
        }
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_seq deserialize_map
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
}

struct SeqDe<'a, I> {
    items: I,
    path: &'a FieldPath,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqDe<'a, I> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let path = self.path.index(i);
                seed.deserialize(NodeDe { node, path: &path }).map(Some)
            }
        }
    }
}

struct MapDe<'a, I> {
    entries: I,
    path: &'a FieldPath,
    value: Option<(&'a Node, FieldPath)>,
}

impl<'de, 'a, I: Iterator<Item = &'a (Node, Node)>> de::MapAccess<'de> for MapDe<'a, I> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let path = self.path.key(key.as_str().unwrap_or("?"));
        let k = seed
            .deserialize(NodeDe {
                node: key,
                path: &path,
            })
            .map_err(|e| e.at(key.mark, &path))?;
        self.value = Some((value, path));
        Ok(Some(k))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (node, path) = self
            .value
            .take()
            .ok_or_else(|| DeError::new("value requested before its key"))?;
        seed.deserialize(NodeDe { node, path: &path })
    }
}

struct EnumDe<'a> {
    key: &'a Node,
    value: &'a Node,
    path: &'a FieldPath,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumDe<'a> {
    type Error = DeError;
    type Variant = VariantDe<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let name = self.key.as_str().unwrap_or("?");
        let path = self.path.key(name);
        let v = seed
            .deserialize(NodeDe {
                node: self.key,
                path: &path,
            })
            .map_err(|e| e.at(self.key.mark, &path))?;
        Ok((
            v,
            VariantDe {
                node: self.value,
                path,
            },
        ))
    }
}

struct VariantDe<'a> {
    node: &'a Node,
    path: FieldPath,
}

impl<'de> de::VariantAccess<'de> for VariantDe<'_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        if self.node.is_null() {
            Ok(())
        } else {
            Err(DeError::new("expected no value").at(self.node.mark, &self.path))
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(NodeDe {
            node: self.node,
            path: &self.path,
        })
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_any(
            NodeDe {
                node: self.node,
                path: &self.path,
            },
            visitor,
        )
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_any(
            NodeDe {
                node: self.node,
                path: &self.path,
            },
            visitor,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::load_str;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        ttl: u32,
        #[serde(default)]
        listen: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        mode: Option<String>,
    }

    fn read(text: &str) -> Result<Outer, DeError> {
        let node = load_str(text, &SourceFile::new("t.yml")).unwrap();
        from_node(&node, &FieldPath::root().key("patroni"))
    }

    #[test]
    fn reads_typed_values() {
        let o = read("name: x\ninner: {ttl: 30}\nmode: 0644\n").unwrap();
        assert_eq!(o.inner.ttl, 30);
        assert_eq!(o.mode.as_deref(), Some("0644"));
    }

    #[test]
    fn unknown_field_points_at_key_and_suggests() {
        let e = read("name: x\ninner:\n  ttl: 30\n  lisen: a\n").unwrap_err();
        assert_eq!(e.mark, Some(Mark { line: 4, col: 3 }));
        assert_eq!(e.path.unwrap().as_str(), "patroni.inner.lisen");
        assert_eq!(e.message, "unknown field `lisen`");
        assert!(e.help.unwrap().starts_with("did you mean `listen`?"));
    }

    #[test]
    fn type_error_points_at_value() {
        let e = read("name: x\ninner: {ttl: 30}\nitems:\n  - ttl: abc\n").unwrap_err();
        assert_eq!(e.mark, Some(Mark { line: 4, col: 10 }));
        assert_eq!(e.path.unwrap().as_str(), "patroni.items[0].ttl");
        assert_eq!(e.message, "expected a non-negative integer, found `abc`");
    }

    #[test]
    fn missing_field_points_at_mapping() {
        let e = read("name: x\ninner:\n  listen: a\n").unwrap_err();
        assert_eq!(e.mark, Some(Mark { line: 3, col: 3 }));
        assert_eq!(e.path.unwrap().as_str(), "patroni.inner");
        assert_eq!(e.message, "missing field `ttl`");
    }

    #[test]
    fn out_of_range_integer() {
        let e = read("name: x\ninner: {ttl: -1}\n").unwrap_err();
        assert_eq!(e.message, "expected a non-negative integer, found `-1`");
    }
}
