//! The Ansible filters that playbooks for this job commonly use, beyond minijinja's builtins.

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", to_bool);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
    env.add_filter("combine", combine);
    env.add_filter("to_json", |v: Value| to_json(v, false));
    env.add_filter("to_nice_json", |v: Value| to_json(v, true));
    env.add_filter("basename", |p: String| {
        p.rsplit('/').next().unwrap_or_default().to_string()
    });
    env.add_filter("dirname", |p: String| match p.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => p[..i].to_string(),
        None => String::new(),
    });
    env.add_filter("quote", |s: String| {
        format!("'{}'", s.replace('\'', r"'\''"))
    });
}

fn to_bool(v: Value) -> bool {
    match v.as_str() {
        Some(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "yes" | "true" | "on" | "1" | "y"
        ),
        None => v.is_true(),
    }
}

fn ternary(v: Value, yes: Value, no: Value) -> Value {
    if v.is_true() {
        yes
    } else {
        no
    }
}

/// Ansible's `combine`: the mappings merged left to right, a later key replacing an earlier
/// one (shallow; Ansible's `recursive`/`list_merge` options are refused, not ignored).
fn combine(base: Value, others: minijinja::value::Rest<Value>) -> Result<Value, Error> {
    let mut out: Vec<(Value, Value)> = Vec::new();
    for m in std::iter::once(&base).chain(others.iter()) {
        if m.kind() != minijinja::value::ValueKind::Map || m.is_kwargs() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "`combine` merges mappings only (no `recursive`/`list_merge` options), got `{m}`"
                ),
            ));
        }
        for k in m.try_iter()? {
            let v = m.get_item(&k)?;
            match out.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
    }
    Ok(Value::from_iter(out))
}

fn mandatory(v: Value) -> Result<Value, Error> {
    if v.is_undefined() {
        Err(Error::new(
            ErrorKind::UndefinedError,
            "mandatory variable is not defined",
        ))
    } else {
        Ok(v)
    }
}

fn to_json(v: Value, pretty: bool) -> Result<String, Error> {
    let r = if pretty {
        serde_json::to_string_pretty(&v)
    } else {
        serde_json::to_string(&v)
    };
    r.map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> Result<String, Error> {
        let mut env = Environment::new();
        register(&mut env);
        env.render_str(src, ())
    }

    #[test]
    fn combine_merges_left_to_right() {
        assert_eq!(
            render("{{ ({'a': 1, 'b': 2} | combine({'b': 3}, {'c': 4})) | to_json }}").unwrap(),
            r#"{"a":1,"b":3,"c":4}"#
        );
        let e = render("{{ {'a': 1} | combine([1]) }}").unwrap_err();
        assert!(e.to_string().contains("merges mappings only"), "{e}");
        let e = render("{{ {'a': 1} | combine({'b': 1}, recursive=true) }}").unwrap_err();
        assert!(e.to_string().contains("merges mappings only"), "{e}");
    }
}
