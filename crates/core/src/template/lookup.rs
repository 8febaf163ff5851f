//! Ansible's `lookup('env', …)` and `lookup('file', …)`: values read on the workstation
//! where pgdeploy runs (as Ansible reads them on the controller).
//!
//! - `lookup('env', 'NAME')`: the variable's value; an unset variable gives `''` as in
//!   Ansible, or the `default=` keyword's value (Ansible ≥ 2.13).
//! - `lookup('file', 'path')`: the file's content, trailing whitespace stripped (`rstrip=true`
//!   by default, `lstrip=false`, as Ansible). A relative path is looked for as Ansible looks
//!   for it from a play: `files/PATH` in the playbook's directory, then `PATH` there. A missing
//!   file is an error naming the paths tried.
//!
//! Several terms (`lookup('env', 'A', 'B')`) give their values joined by `,`, as Ansible's
//! `lookup` does. Every value read is a secret ([`crate::secrets::record`]): it is masked in
//! all output, whatever the variable that holds it is called. Errors name the lookup and
//! the path, never a value read.

use std::path::{Path, PathBuf};

use minijinja::value::{from_args, Kwargs, Rest, Value};
use minijinja::{Error, ErrorKind};

/// Why a lookup failed. Messages name what was asked, never a value read.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("lookup `{0}` is not supported (supported: `env`, `file`)")]
    Unsupported(String),
    #[error("`lookup('{0}', …)` needs at least one term")]
    NoTerm(String),
    #[error("`lookup('file', '{term}')`: no such file (looked for {})", tried.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
    NotFound { term: String, tried: Vec<PathBuf> },
    #[error("`lookup('file', '{term}')`: cannot read `{}`: {source}", path.display())]
    Read {
        term: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`lookup('{kind}', '{term}')`: the value is not UTF-8 text")]
    NotUtf8 { kind: String, term: String },
}

impl From<LookupError> for Error {
    fn from(e: LookupError) -> Self {
        Error::new(ErrorKind::InvalidOperation, e.to_string())
    }
}

/// Registers `lookup` in `env`; relative `file` paths are found from `playbook_dir`.
pub fn register(env: &mut minijinja::Environment<'static>, playbook_dir: PathBuf) {
    env.add_function("lookup", move |args: Rest<Value>| {
        lookup(&playbook_dir, &args)
    });
}

fn lookup(playbook_dir: &Path, args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs): (&[Value], Kwargs) = from_args(args)?;
    let Some((kind, terms)) = positional.split_first() else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "`lookup` needs the name of a lookup (`env`, `file`) and a term",
        ));
    };
    let kind = kind.as_str().unwrap_or_default().to_string();
    // `ansible.builtin.env` is the same lookup.
    let short = kind.strip_prefix("ansible.builtin.").unwrap_or(&kind);
    let terms: Vec<String> = terms.iter().map(|t| t.to_string()).collect();
    if terms.is_empty() && matches!(short, "env" | "file") {
        return Err(LookupError::NoTerm(kind).into());
    }
    let values = match short {
        "env" => {
            let default: Option<Value> = kwargs.get("default")?;
            kwargs.assert_all_used()?;
            let mut values = Vec::new();
            for term in &terms {
                let found = std::env::var_os(term);
                // A saved plan checks that the variable still holds what it held (digest).
                crate::inputs::record_env(term, found.as_ref().and_then(|v| v.to_str()));
                match found {
                    Some(v) => {
                        let v = v.into_string().map_err(|_| LookupError::NotUtf8 {
                            kind: kind.clone(),
                            term: term.clone(),
                        })?;
                        crate::secrets::record_from(&format!("`lookup('env', '{term}')`"), &v);
                        values.push(Value::from(v));
                    }
                    None => values.push(default.clone().unwrap_or_else(|| Value::from(""))),
                }
            }
            values
        }
        "file" => {
            let rstrip: Option<bool> = kwargs.get("rstrip")?;
            let lstrip: Option<bool> = kwargs.get("lstrip")?;
            kwargs.assert_all_used()?;
            let mut values = Vec::new();
            for term in &terms {
                let text = read_file(playbook_dir, term)?;
                let text = if rstrip.unwrap_or(true) {
                    text.trim_end()
                } else {
                    &text
                };
                let text = if lstrip.unwrap_or(false) {
                    text.trim_start()
                } else {
                    text
                };
                crate::secrets::record_from(&format!("`lookup('file', '{term}')`"), text);
                values.push(Value::from(text));
            }
            values
        }
        _ => return Err(LookupError::Unsupported(kind).into()),
    };
    Ok(match values.len() {
        1 => values.into_iter().next().unwrap_or_default(),
        _ => Value::from(
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
    })
}

/// Where `lookup('file', term)` reads from: an absolute path as it is; a relative one in the
/// playbook directory's `files/`, then in the playbook directory (Ansible's search path for
/// a play outside roles).
pub fn file_candidates(playbook_dir: &Path, term: &str) -> Vec<PathBuf> {
    let path = Path::new(term);
    if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        vec![
            playbook_dir.join("files").join(path),
            playbook_dir.join(path),
        ]
    }
}

fn read_file(playbook_dir: &Path, term: &str) -> Result<String, LookupError> {
    let tried = file_candidates(playbook_dir, term);
    let Some(path) = tried.iter().find(|p| p.is_file()) else {
        return Err(LookupError::NotFound {
            term: term.to_string(),
            tried,
        });
    };
    let bytes = std::fs::read(path).map_err(|source| LookupError::Read {
        term: term.to_string(),
        path: path.clone(),
        source,
    })?;
    // A saved plan checks that the file still holds what it held (digest).
    crate::inputs::record(path, &bytes);
    String::from_utf8(bytes).map_err(|_| LookupError::NotUtf8 {
        kind: "file".to_string(),
        term: term.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_in(dir: &Path) -> minijinja::Environment<'static> {
        crate::template::environment_for(dir)
    }

    #[test]
    fn env_values_are_read_and_recorded_as_secrets() {
        std::env::set_var("PGDEPLOY_TEST_LOOKUP_ENV", "Env-Lookup-Secret-1");
        let env = env_in(Path::new("."));
        let out = env
            .render_str("x={{ lookup('env', 'PGDEPLOY_TEST_LOOKUP_ENV') }}", ())
            .unwrap();
        assert_eq!(out, "x=Env-Lookup-Secret-1");
        let r = crate::secrets::Redactor::default();
        assert_eq!(r.mask(&out), "x=********");
        // Unset: '' as in Ansible, or the default.
        let out = env
            .render_str(
                "[{{ lookup('env', 'PGDEPLOY_TEST_UNSET_VAR') }}|{{ lookup('env', 'PGDEPLOY_TEST_UNSET_VAR', default='d') }}]",
                (),
            )
            .unwrap();
        assert_eq!(out, "[|d]");
    }

    #[test]
    fn files_are_found_like_ansible_and_stripped_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("files")).unwrap();
        std::fs::write(dir.path().join("files/a.txt"), "File-In-Files-Dir\n\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "  File-Beside-Playbook \n").unwrap();
        let env = env_in(dir.path());
        let out = env
            .render_str(
                "{{ lookup('file', 'a.txt') }}|{{ lookup('file', 'b.txt') }}|{{ lookup('file', 'b.txt', lstrip=true) }}|{{ lookup('file', 'b.txt', rstrip=false) }}",
                (),
            )
            .unwrap();
        assert_eq!(
            out,
            "File-In-Files-Dir|  File-Beside-Playbook|File-Beside-Playbook|  File-Beside-Playbook \n"
        );
        assert!(crate::secrets::recorded()
            .iter()
            .any(|v| v == "File-In-Files-Dir"));
        let err = env
            .render_str("{{ lookup('file', 'missing.txt') }}", ())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`lookup('file', 'missing.txt')`: no such file (looked for `"),
            "{text}"
        );
        assert!(text.contains("files/missing.txt`"), "{text}");
        let err = env
            .render_str("{{ lookup('pipe', 'ls') }}", ())
            .unwrap_err();
        assert!(
            err.to_string().contains("lookup `pipe` is not supported"),
            "{err}"
        );
    }
}
