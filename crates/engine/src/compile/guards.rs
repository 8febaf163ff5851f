//! What a condition's text says beyond its variables: the names it guards (`x is defined`),
//! the groups it names (`groups.pg`). A small scan of the expression's tokens: minijinja's
//! parser is not public.

use std::collections::HashSet;

/// Names an expression guards, which it may use undefined as Ansible users do:
/// `x is defined`, `x is not defined`, `x is undefined`, `x | default(…)` (`d(…)`), where `x`
/// may be followed by attributes or subscripts (`x.y is defined`).
pub(super) fn guarded_names(expr: &str) -> HashSet<String> {
    let tokens = tokens(expr);
    let mut out = HashSet::new();
    for (i, t) in tokens.iter().enumerate() {
        let starts_name = t
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && (i == 0 || tokens[i - 1] != ".");
        if !starts_name {
            continue;
        }
        // Skip `.attr` and `[…]` after the name.
        let mut j = i + 1;
        loop {
            match tokens.get(j).map(String::as_str) {
                Some(".") => j += 2,
                Some("[") => {
                    let mut depth = 0;
                    while let Some(t) = tokens.get(j) {
                        match t.as_str() {
                            "[" => depth += 1,
                            "]" => depth -= 1,
                            _ => {}
                        }
                        j += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        let next = |k: usize| tokens.get(j + k).map(String::as_str);
        let guarded = match next(0) {
            Some("is") => {
                let test = if next(1) == Some("not") {
                    next(2)
                } else {
                    next(1)
                };
                matches!(test, Some("defined" | "undefined"))
            }
            Some("|") => matches!(next(1), Some("default" | "d")),
            _ => false,
        };
        if guarded {
            out.insert(t.clone());
        }
    }
    out
}

/// Identifiers, string literals (`'` and their text) and single punctuation characters of an
/// expression.
fn tokens(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_string();
            while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(n);
                chars.next();
            }
            out.push(word);
        } else if c == '\'' || c == '"' {
            // A string literal is one token: `'` and its text.
            let (mut escaped, mut text) = (false, String::from("'"));
            for n in chars.by_ref() {
                if !escaped && n == c {
                    break;
                }
                escaped = !escaped && n == '\\';
                text.push(n);
            }
            out.push(text);
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// Groups an expression names through `groups.NAME` or `groups['NAME']`.
pub(super) fn named_groups(expr: &str) -> Vec<String> {
    let tokens = tokens(expr);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t != "groups" || (i > 0 && tokens[i - 1] == ".") {
            continue;
        }
        let at = |k: usize| tokens.get(i + k).map(String::as_str);
        let name = match (at(1), at(2), at(3)) {
            (Some("."), Some(n), _) => Some(n),
            (Some("["), Some(n), Some("]")) => n.strip_prefix('\''),
            _ => None,
        };
        if let Some(n) = name {
            out.push(n.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_are_found() {
        let g = guarded_names("patroni_primary is defined and patroni_primary");
        assert!(g.contains("patroni_primary"));
        let g = guarded_names("a is not defined or b.c['x'] is undefined or (d | default(1)) > 0");
        for n in ["a", "b", "d"] {
            assert!(g.contains(n), "{n}: {g:?}");
        }
        let g = guarded_names("x == 'y is defined' and z.defined is defined");
        assert!(!g.contains("x") && !g.contains("y"), "{g:?}");
        assert!(g.contains("z"), "{g:?}");
        assert!(guarded_names("x | int > 1").is_empty());
    }

    #[test]
    fn groups_named_by_conditions() {
        assert_eq!(
            named_groups("inventory_hostname in groups.pg or x in groups['etcd'] or groups[g]"),
            ["pg", "etcd"]
        );
    }
}
