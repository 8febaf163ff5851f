//! INI inventory values, typed like Ansible types them.
//!
//! Ansible passes each INI value (host-line `key=value` and `[group:vars]` lines alike)
//! through Python's `ast.literal_eval` and keeps the text when that fails: `2222` is an
//! integer, `True` a boolean, `[1, 2]` a list, `'0644'` a string, `0644` (not a Python
//! literal) the string `0644`. This module is a small parser of those literals. Beyond Python,
//! it reads JSON's `true`, `false` and `null`, which inventories use meaning booleans and null
//! (Ansible would keep them as the strings `"true"`, `"false"`, `"null"`).

use serde_json::{Map, Number, Value};

/// The typed value of an INI value text.
pub(crate) fn parse_value(text: &str) -> Value {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let parsed = p.value(0);
    match parsed {
        Some(v) if p.skip_ws() == text.len() => v,
        _ => Value::String(text.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

/// Nesting deeper than this is not an inventory value; it is kept as text.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn skip_ws(&mut self) -> usize {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t') {
            self.i += 1;
        }
        self.i
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.sequence(b']', depth).map(Value::Array)
            }
            b'(' => {
                self.i += 1;
                let start = self.i;
                let items = self.sequence(b')', depth)?;
                // `(1)` is 1, `(1,)` and `(1, 2)` are tuples.
                let is_tuple =
                    items.len() != 1 || self.text[start..self.i].trim_end().ends_with(",)");
                Some(if is_tuple {
                    Value::Array(items)
                } else {
                    items.into_iter().next()?
                })
            }
            b'{' => {
                self.i += 1;
                self.dict(depth)
            }
            b'\'' | b'"' => self.string(),
            b'-' | b'+' | b'.' | b'0'..=b'9' => self.number(),
            _ => self.word(),
        }
    }

    /// Comma-separated values up to `close`, a trailing comma allowed.
    fn sequence(&mut self, close: u8, depth: usize) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value(depth + 1)?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    /// `{k: v, ...}`; keys become strings, as JSON requires. `{1, 2}` (a set) becomes a list.
    fn dict(&mut self, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        let mut set = Vec::new();
        loop {
            if self.eat(b'}') {
                break;
            }
            let key = self.value(depth + 1)?;
            if self.eat(b':') {
                if !set.is_empty() {
                    return None;
                }
                let value = self.value(depth + 1)?;
                let key = match key {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, value);
            } else {
                if !map.is_empty() {
                    return None;
                }
                set.push(key);
            }
            if !self.eat(b',') {
                if !self.eat(b'}') {
                    return None;
                }
                break;
            }
        }
        Some(if set.is_empty() {
            Value::Object(map)
        } else {
            Value::Array(set)
        })
    }

    fn string(&mut self) -> Option<Value> {
        let quote = self.peek()?;
        if self.text[self.i..].starts_with(if quote == b'"' { "\"\"\"" } else { "'''" }) {
            return None; // triple-quoted strings are not worth supporting in an INI value
        }
        self.i += 1;
        let mut out = String::new();
        let rest = &self.text[self.i..];
        let mut chars = rest.char_indices();
        while let Some((at, c)) = chars.next() {
            if c as u32 == quote as u32 {
                self.i += at + 1;
                return Some(Value::String(out));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let (_, e) = chars.next()?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' | '\'' | '"' => out.push(e),
                'x' | 'u' => {
                    let n = if e == 'x' { 2 } else { 4 };
                    let hex: String = (0..n)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
        None
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'.' | b'_' | b'+' | b'-'))
        {
            // A sign is part of the number only at its start or after an exponent.
            let b = self.s[self.i];
            if matches!(b, b'+' | b'-')
                && self.i != start
                && !matches!(self.s[self.i - 1], b'e' | b'E')
            {
                break;
            }
            self.i += 1;
        }
        python_number(&self.text[start..self.i])
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        match &self.text[start..self.i] {
            "True" | "true" => Some(Value::Bool(true)),
            "False" | "false" => Some(Value::Bool(false)),
            "None" | "null" => Some(Value::Null),
            _ => None,
        }
    }
}

/// A Python int or float literal with an optional sign: `42`, `-1`, `0x1F`, `1_000`, `1.5`,
/// `1e3`. Python 3 rejects leading zeros (`0644`), so those stay text.
fn python_number(t: &str) -> Option<Value> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.starts_with(['-', '+']) || body.is_empty() || body.contains("__") || body.ends_with('_')
    {
        return None;
    }
    let radix = match body.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    let clean = body.replace('_', "");
    let int = if let Some(radix) = radix {
        i64::from_str_radix(clean.get(2..)?, radix).ok()
    } else if clean.bytes().all(|b| b.is_ascii_digit()) {
        if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
            return None;
        }
        clean.parse::<i64>().ok()
    } else {
        let is_float = clean
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && clean.bytes().any(|b| b.is_ascii_digit())
            && !body.starts_with('_');
        if !is_float {
            return None;
        }
        let f: f64 = clean.parse().ok()?;
        return Number::from_f64(if neg { -f } else { f }).map(Value::Number);
    };
    let i = int?;
    Some(Value::from(if neg { -i } else { i }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals() {
        assert_eq!(parse_value("2222"), json!(2222));
        assert_eq!(parse_value("-3"), json!(-3));
        assert_eq!(parse_value("0x1F"), json!(31));
        assert_eq!(parse_value("1_000"), json!(1000));
        assert_eq!(parse_value("1.5"), json!(1.5));
        assert_eq!(parse_value("1e3"), json!(1000.0));
        assert_eq!(parse_value("True"), json!(true));
        assert_eq!(parse_value("False"), json!(false));
        assert_eq!(parse_value("None"), json!(null));
        assert_eq!(parse_value("'0644'"), json!("0644"));
        assert_eq!(parse_value(r#""a\tb""#), json!("a\tb"));
        assert_eq!(parse_value("[1, 'a', [True]]"), json!([1, "a", [true]]));
        assert_eq!(parse_value("(1, 2)"), json!([1, 2]));
        assert_eq!(parse_value("(1,)"), json!([1]));
        assert_eq!(parse_value("(1)"), json!(1));
        assert_eq!(parse_value("{'a': 1, 2: [3]}"), json!({"a": 1, "2": [3]}));
        assert_eq!(parse_value("{1, 2}"), json!([1, 2]));
        assert_eq!(parse_value("[]"), json!([]));
    }

    #[test]
    fn json_booleans_and_null() {
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value("false"), json!(false));
        assert_eq!(parse_value("null"), json!(null));
    }

    #[test]
    fn everything_else_stays_text() {
        for text in [
            "0644",
            "10.0.0.1",
            "yes",
            "FALSE",
            "4MB",
            "a b",
            "--1",
            "1+2j",
            "[1,",
            "{'a'}x",
            "...",
            "",
            "/etc/ssl/key.pem",
            "{{ x }}",
            "1__0",
            "inf",
        ] {
            assert_eq!(parse_value(text), json!(text), "{text}");
        }
    }
}
