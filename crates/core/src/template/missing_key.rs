//! Which key or attribute of a lookup chain is missing, for "undefined value" errors whose
//! variables all exist: `{{ dcs_timings[pg_failover_profile].ttl }}` with a profile name the
//! mapping does not have fails in minijinja with a bare "undefined value"; this names the
//! mapping, the key and the keys it has.

use minijinja::value::{Value, ValueKind};
use minijinja::Environment;

/// How many of a mapping's keys the message lists.
const KEYS_SHOWN: usize = 12;

/// The `{{ expression }}`s of a template string, when it has no `{% %}` blocks (whose
/// variables may come from the block itself).
pub(super) fn expressions(s: &str) -> Vec<&str> {
    if s.contains("{%") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim_matches(|c: char| c.is_whitespace() || c == '-'));
        rest = &after[end + 2..];
    }
    out
}

/// For a single expression starting with a lookup chain (`a[b].c[...]`), the sentence that
/// names the first lookup whose value is undefined, or `None` when none is (or the chain
/// cannot be read: the caller keeps minijinja's message).
pub(super) fn explain(env: &Environment<'static>, expr: &str, ctx: &Value) -> Option<String> {
    let steps = chain(expr)?;
    let eval = |e: &str| env.compile_expression(e).ok()?.eval(ctx).ok();
    let mut container: Option<(&str, Value)> = None;
    for end in steps {
        let prefix = &expr[..end];
        let value = eval(prefix)?;
        if value.is_undefined() {
            let (outer, outer_value) = container?;
            let segment = &expr[outer.len()..end];
            let key = match segment.strip_prefix('.') {
                Some(name) => name.trim().to_string(),
                None => {
                    let inner = segment.trim().strip_prefix('[')?.strip_suffix(']')?;
                    let k = eval(inner)?;
                    if k.is_undefined() {
                        return None;
                    }
                    k.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| k.to_string())
                }
            };
            return Some(no_such_key(outer.trim(), &key, &outer_value));
        }
        container = Some((prefix, value));
    }
    None
}

fn no_such_key(outer: &str, key: &str, value: &Value) -> String {
    if value.kind() != ValueKind::Map {
        return format!("`{outer}` has no `{key}`");
    }
    let mut keys: Vec<String> = value
        .try_iter()
        .map(|it| {
            it.map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| k.to_string())
            })
            .collect()
        })
        .unwrap_or_default();
    keys.sort();
    if keys.is_empty() {
        return format!("`{outer}` has no key `{key}` (it is empty)");
    }
    let more = keys.len().saturating_sub(KEYS_SHOWN);
    let shown: Vec<String> = keys
        .iter()
        .take(KEYS_SHOWN)
        .map(|k| format!("`{k}`"))
        .collect();
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "`{outer}` has no key `{key}` (its keys: {}{tail})",
        shown.join(", ")
    )
}

/// The byte offsets where each step of the lookup chain at the start of `expr` ends: the
/// variable name, then each `[...]` or `.name`. `None` when `expr` does not start with a name
/// followed by at least one lookup.
fn chain(expr: &str) -> Option<Vec<usize>> {
    let b = expr.as_bytes();
    let ident = |from: usize| {
        let mut i = from;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        i
    };
    let mut i = ident(0);
    if i == 0 || b[0].is_ascii_digit() {
        return None;
    }
    let mut ends = vec![i];
    loop {
        match b.get(i) {
            Some(b'.') => {
                let j = ident(i + 1);
                if j == i + 1 {
                    break;
                }
                i = j;
            }
            Some(b'[') => i = closing(b, i)? + 1,
            _ => break,
        }
        ends.push(i);
    }
    (ends.len() > 1).then_some(ends)
}

/// The index of the `]` closing the `[` at `open`, skipping quoted strings.
fn closing(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = open;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env
    }

    fn ctx() -> Value {
        Value::from_serialize(serde_json::json!({
            "timings": {"default": {"ttl": 30}, "fast": {"ttl": 20}},
            "profile": "quick",
            "good": "fast",
        }))
    }

    #[test]
    fn a_missing_key_is_named_with_the_keys_there_are() {
        let m = explain(&env(), "timings[profile | default('default')].ttl", &ctx());
        assert_eq!(
            m.as_deref(),
            Some("`timings` has no key `quick` (its keys: `default`, `fast`)")
        );
    }

    #[test]
    fn a_missing_attribute_further_down_is_named() {
        let m = explain(&env(), "timings[good].loop_wait", &ctx());
        assert_eq!(
            m.as_deref(),
            Some("`timings[good]` has no key `loop_wait` (its keys: `ttl`)")
        );
    }

    #[test]
    fn nothing_missing_or_no_chain_leaves_the_message_alone() {
        assert_eq!(explain(&env(), "timings[good].ttl", &ctx()), None);
        assert_eq!(explain(&env(), "profile ~ 'x'", &ctx()), None);
        assert_eq!(explain(&env(), "1 + 2", &ctx()), None);
    }

    #[test]
    fn a_text_templates_expressions_are_found() {
        assert_eq!(
            expressions("/tmp/{{ a[b].c }}-{{- d -}}"),
            vec!["a[b].c", "d"]
        );
        assert!(expressions("{% for x in y %}{{ x }}{% endfor %}").is_empty());
    }

    #[test]
    fn chains_skip_brackets_inside_quotes() {
        assert_eq!(chain("a['x]'].b"), Some(vec![1, 7, 9]));
        assert_eq!(chain("a"), None);
        assert_eq!(chain("a[1"), None);
    }
}
