//! Parameter types that several modules share: file modes, "one or a list" fields.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A permission mode such as `"0640"`. Written as a quoted string (`"0640"`, `"640"`,
/// `"0o640"`) or as an unquoted number whose digits are read as octal (`0640`, `640`),
/// which is what a user writing YAML means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal file mode such as \"0640\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Mode, E> {
                let digits = s.strip_prefix("0o").unwrap_or(s);
                match u32::from_str_radix(digits, 8) {
                    Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(Mode(m)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Mode, E> {
                self.visit_str(&i.to_string())
            }
            fn visit_u64<E: de::Error>(self, i: u64) -> Result<Mode, E> {
                self.visit_str(&i.to_string())
            }
        }
        d.deserialize_str(V)
    }
}

/// A boolean as Ansible's `boolean()` reads a keyword: `true`/`false`, `yes`/`no`, `on`/`off`,
/// `y`/`n`, `t`/`f`, `1`/`0`, in any case and quoted or not (`become: "yes"` is a string to
/// YAML, a boolean to Ansible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnsibleBool(pub bool);

impl AnsibleBool {
    /// The text forms Ansible accepts, lowercased.
    pub fn from_text(s: &str) -> Option<bool> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" | "1.0" => Some(true),
            "no" | "false" | "off" | "0" | "n" | "f" | "0.0" => Some(false),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for AnsibleBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnsibleBool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`)")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<AnsibleBool, E> {
                Ok(AnsibleBool(b))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AnsibleBool, E> {
                AnsibleBool::from_text(s)
                    .map(AnsibleBool)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<AnsibleBool, E> {
                match i {
                    0 | 1 => Ok(AnsibleBool(i == 1)),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(i), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, i: u64) -> Result<AnsibleBool, E> {
                match i {
                    0 | 1 => Ok(AnsibleBool(i == 1)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(i), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<AnsibleBool, E> {
                if x == 0.0 || x == 1.0 {
                    Ok(AnsibleBool(x == 1.0))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(x), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A field that takes one value or a list (`name: curl` or `name: [curl, acl]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(OneOrMany(out))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::new(s)).map(|v| OneOrMany(vec![v]))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{FieldPath, SourceFile};
    use crate::yaml::{from_node, load_str};

    fn mode(text: &str) -> Result<Mode, String> {
        let n = load_str(&format!("m: {text}"), &SourceFile::new("t")).unwrap();
        from_node::<Mode>(n.get("m").unwrap(), &FieldPath::root()).map_err(|e| e.message)
    }

    #[test]
    fn modes() {
        assert_eq!(mode("0640").unwrap(), Mode(0o640));
        assert_eq!(mode("\"0640\"").unwrap(), Mode(0o640));
        assert_eq!(mode("755").unwrap(), Mode(0o755));
        assert_eq!(mode("'0o600'").unwrap(), Mode(0o600));
        assert!(mode("0999").unwrap_err().contains("octal file mode"));
        assert_eq!(Mode(0o640).to_string(), "0640");
    }
}
