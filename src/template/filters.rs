//! The Ansible filters that playbooks for this job commonly use, beyond minijinja's builtins.

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", to_bool);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
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
