//! `-e/--extra-vars`: variables given on the command line, read the way `ansible-playbook`
//! reads them, and layered above every other source.
//!
//! Each argument is one of Ansible's three forms: `@FILE` (a YAML or JSON mapping, Vault
//! encrypted or not), text starting with `{` or `[` (a YAML/JSON mapping written inline), or
//! `name=value` pairs separated by spaces (values are strings, as in Ansible; quotes group
//! words). Later arguments override earlier ones, and the result overrides play vars, facts
//! and inventory variables alike: Ansible's extra vars always win.

use std::path::Path;

use super::{Var, Vars};
use crate::diag::{Diagnostic, Diagnostics, Location, SourceFile};
use crate::yaml::Node;

/// Reads every `-e` argument in order; all problems are reported together.
pub fn parse_all(args: &[String]) -> Result<Vars, Diagnostics> {
    let mut vars = Vars::new();
    let mut diags = Diagnostics::new();
    for arg in args {
        match parse_one(arg) {
            Ok(v) => vars.extend(v),
            Err(d) => diags.extend(d),
        }
    }
    diags.into_result(vars)
}

/// One `-e` argument.
fn parse_one(arg: &str) -> Result<Vars, Diagnostics> {
    if let Some(path) = arg.strip_prefix('@') {
        let (file, node) = crate::yaml::load_file(Path::new(path))?;
        return from_mapping(&file, &node, "this file");
    }
    let trimmed = arg.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let file = SourceFile::new("-e");
        let node = crate::yaml::load_str(arg, &file)?;
        return from_mapping(&file, &node, "this `-e` value");
    }
    key_values(arg)
}

fn from_mapping(file: &SourceFile, node: &Node, what: &str) -> Result<Vars, Diagnostics> {
    if node.is_null() {
        return Ok(Vars::new());
    }
    let Some(entries) = node.as_map() else {
        return Err(Diagnostic::error(
            Some(Location::new(file, node.mark)),
            "",
            format!(
                "extra vars are a mapping of names to values, {what} is {}",
                node.describe()
            ),
        )
        .into());
    };
    let mut diags = Diagnostics::new();
    let mut vars = Vars::new();
    for (k, v) in entries {
        let Some(name) = k.as_str().filter(|n| is_identifier(n)) else {
            diags.push(Diagnostic::error(
                Some(Location::new(file, k.mark)),
                "",
                format!(
                    "`{}` is not a valid variable name (letters, digits and `_`, not starting with a digit)",
                    k.as_str().unwrap_or("?")
                ),
            ));
            continue;
        };
        vars.insert(
            name.to_string(),
            Var {
                value: v.to_json(),
                origin: Location::new(file, v.mark),
            },
        );
    }
    diags.into_result(vars)
}

/// `name=value name2="two words"`: Ansible's `parse_kv`; every value is a string.
fn key_values(arg: &str) -> Result<Vars, Diagnostics> {
    let file = SourceFile::new("-e");
    let error = |message: String| -> Diagnostics {
        Diagnostic::error(Some(Location::file(&file)), "", message).into()
    };
    let words = split_words(arg).map_err(|m| error(m.to_string()))?;
    if words.is_empty() {
        return Err(error(
            "empty extra vars: give `name=value`, a YAML/JSON mapping or `@FILE`".to_string(),
        ));
    }
    let mut vars = Vars::new();
    for word in words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(error(format!(
                "`{word}` is not `name=value` (extra vars are `name=value` pairs, a YAML/JSON mapping or `@FILE`)"
            )));
        };
        if !is_identifier(name) {
            return Err(error(format!(
                "`{name}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
            )));
        }
        // Named by variable, not by the whole argument: the value may be a secret.
        let origin = Location::file(&SourceFile::new(format!("-e {name}")));
        vars.insert(
            name.to_string(),
            Var {
                value: serde_json::Value::String(value.to_string()),
                origin,
            },
        );
    }
    Ok(vars)
}

/// Splits on unquoted whitespace; `'…'` and `"…"` group words and are removed, `\` escapes
/// the next character outside single quotes (as a shell would, which is what Ansible mimics).
pub(crate) fn split_words(text: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("unclosed `'` in extra vars"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => current.push(c),
                            None => return Err("`\\` at the end of extra vars"),
                        },
                        Some(c) => current.push(c),
                        None => return Err("unclosed `\"` in extra vars"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => current.push(c),
                    None => return Err("`\\` at the end of extra vars"),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(vars: &Vars) -> Vec<(String, serde_json::Value)> {
        vars.iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    #[test]
    fn key_values_are_strings_and_later_wins() {
        let vars = parse_all(&[
            "a=1 b='two words' c=\"x\\\"y\" d=".to_string(),
            "a=3".to_string(),
        ])
        .unwrap();
        assert_eq!(
            values(&vars),
            vec![
                ("a".into(), json!("3")),
                ("b".into(), json!("two words")),
                ("c".into(), json!("x\"y")),
                ("d".into(), json!("")),
            ]
        );
        assert_eq!(vars["a"].origin.to_string(), "-e a");
    }

    #[test]
    fn mappings_keep_their_types() {
        let vars = parse_all(&[
            r#"{"port": 5433, "on": true, "list": [1, 2]}"#.to_string(),
            "{name: x, nested: {k: v}}".to_string(),
        ])
        .unwrap();
        assert_eq!(
            values(&vars),
            vec![
                ("port".into(), json!(5433)),
                ("on".into(), json!(true)),
                ("list".into(), json!([1, 2])),
                ("name".into(), json!("x")),
                ("nested".into(), json!({"k": "v"})),
            ]
        );
    }

    #[test]
    fn files_are_read_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.yml");
        std::fs::write(&ok, "pg_version: 16\nlabel: \"x\"\n").unwrap();
        let vars = parse_all(&[format!("@{}", ok.display())]).unwrap();
        assert_eq!(vars["pg_version"].value, json!(16));
        assert_eq!(
            vars["label"].origin.to_string(),
            format!("{}:2:8", ok.display())
        );
        let bad = dir.path().join("bad.yml");
        std::fs::write(&bad, "- a\n- b\n").unwrap();
        let err = parse_all(&[format!("@{}", bad.display())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "error: {}:1:1: extra vars are a mapping of names to values, this file is a list\n",
                bad.display()
            )
        );
        let broken = dir.path().join("broken.yml");
        std::fs::write(&broken, "a: [1\n").unwrap();
        let err = parse_all(&[format!("@{}", broken.display())]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("error: {}:", broken.display())),
            "{err}"
        );
        let missing = parse_all(&["@/nonexistent/x.yml".to_string()]).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("error: /nonexistent/x.yml: cannot read file"),
            "{missing}"
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        let cases = [
            ("novalue", "error: -e: `novalue` is not `name=value` (extra vars are `name=value` pairs, a YAML/JSON mapping or `@FILE`)\n"),
            ("1x=2", "error: -e: `1x` is not a valid variable name (letters, digits and `_`, not starting with a digit)\n"),
            ("a='open", "error: -e: unclosed `'` in extra vars\n"),
            ("  ", "error: -e: empty extra vars: give `name=value`, a YAML/JSON mapping or `@FILE`\n"),
            ("[1, 2]", "error: -e:1:1: extra vars are a mapping of names to values, this `-e` value is a list\n"),
        ];
        for (arg, expected) in cases {
            assert_eq!(
                parse_all(&[arg.to_string()]).unwrap_err().to_string(),
                expected,
                "{arg}"
            );
        }
    }
}
