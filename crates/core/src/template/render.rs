//! Rendering templates inside YAML nodes and strings.

use std::sync::Arc;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, ErrorKind};

use super::scope::{describe_error, Scope};
use super::{is_fact_name, is_template};
use crate::diag::{FieldPath, Mark};
use crate::yaml::{Node, NodeKind};

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// It needs facts that are not gathered yet (validation only): checked later.
    NeedsFacts,
    /// A real error: undefined variable, syntax error, failed filter.
    Failed {
        mark: Mark,
        message: String,
        /// The field whose template failed, when rendering a node.
        path: Option<FieldPath>,
        /// A resource limit or a loop of variables stopped it: other hosts would most likely
        /// spend the same budget to fail the same way.
        limit: bool,
    },
}

/// Whether the whole string is one `{{ expression }}`, whose value keeps its type (a list
/// stays a list) instead of being turned into text. Spaces around it do not count, a line
/// break does: `"{{ x }}\n"` is text ending with a newline (a file's content), as in Ansible.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s
        .trim_matches([' ', '\t'])
        .strip_prefix("{{")?
        .strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

/// Renders a template string to a value: native for a single expression, text otherwise.
pub(crate) fn eval_str(
    env: &Environment<'static>,
    s: &str,
    ctx: &Value,
) -> Result<Value, minijinja::Error> {
    match single_expression(s) {
        // An expression's value may be undefined without an error (strict mode only fails
        // when undefined is printed or iterated): treat it as the error it is here.
        Some(expr) => match env.compile_expression(expr)?.eval(ctx)? {
            v if v.is_undefined() => Err(minijinja::Error::new(
                ErrorKind::UndefinedError,
                format!("`{expr}` is undefined"),
            )),
            v if v
                .as_str()
                .is_some_and(|s| s.len() > crate::limits::MAX_RENDER_BYTES) =>
            {
                let sentence = format!(
                    "`{expr}` is over {} bytes (`MAX_RENDER_BYTES`)",
                    crate::limits::MAX_RENDER_BYTES
                );
                super::scope::set_cause(sentence.clone());
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, sentence))
            }
            v => Ok(v),
        },
        None => {
            let mut out = Bounded(Vec::new());
            // A playbook's templates were compiled once for every host ([`precompile`]).
            let template = match env.get_template(s) {
                Ok(t) => t,
                Err(_) => env.template_from_str(s)?,
            };
            let result = template.render_captured_to(ctx, &mut out).map(drop);
            if out.0.len() > crate::limits::MAX_RENDER_BYTES {
                let sentence = format!(
                    "the template's output is over {} bytes (`MAX_RENDER_BYTES`)",
                    crate::limits::MAX_RENDER_BYTES
                );
                super::scope::set_cause(sentence.clone());
                return Err(minijinja::Error::new(ErrorKind::InvalidOperation, sentence));
            }
            result?;
            String::from_utf8(out.0).map(Value::from).map_err(|_| {
                minijinja::Error::new(ErrorKind::InvalidOperation, "output is not UTF-8")
            })
        }
    }
}

/// Compiles a template string into `env` once, named by its own text, for [`eval_str`] to
/// find instead of parsing it again for every host. Single expressions are left out (they
/// are evaluated, not rendered), and so are templates that do not parse: their error is
/// reported when they are rendered.
pub fn precompile(env: &mut Environment<'static>, s: &str) {
    if single_expression(s).is_none() && env.get_template(s).is_err() {
        let _ = env.add_template_owned(s.to_string(), s.to_string());
    }
}

/// A render's output, refused past [`MAX_RENDER_BYTES`](crate::limits::MAX_RENDER_BYTES).
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > crate::limits::MAX_RENDER_BYTES {
            // Kept past the limit by one byte, for the caller to tell this error.
            self.0.resize(crate::limits::MAX_RENDER_BYTES + 1, 0);
            return Err(std::io::Error::other("output limit"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Names used by a template string that this scope does not define.
fn missing_names(env: &Environment<'static>, s: &str, scope: &Scope) -> Vec<String> {
    let names = match single_expression(s) {
        Some(expr) => env
            .compile_expression(expr)
            .map(|e| e.undeclared_variables(false)),
        None => env
            .template_from_str(s)
            .map(|t| t.undeclared_variables(false)),
    };
    let mut missing: Vec<String> = names
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !scope.defines(n))
        .collect();
    missing.sort();
    missing
}

/// Renders one template string for a host, explaining failures in terms of the template.
pub fn render_str(s: &str, scope: &Arc<Scope>, mark: Mark) -> Result<Value, RenderError> {
    let env = &scope.shared().env;
    super::scope::clear_cause();
    eval_str(env, s, &scope.context()).map_err(|e| explain(env, s, scope, mark, &e))
}

fn explain(
    env: &Environment<'static>,
    s: &str,
    scope: &Arc<Scope>,
    mark: Mark,
    e: &minijinja::Error,
) -> RenderError {
    let missing = missing_names(env, s, scope);
    if scope.facts_pending() && missing.iter().any(|n| is_fact_name(n)) {
        return RenderError::NeedsFacts;
    }
    // The hosts are named by the compiler, which reports a failure once for all the hosts
    // that have it.
    let facts_off = missing
        .iter()
        .find(|n| is_fact_name(n))
        .filter(|_| !scope.sees_facts());
    let cause = super::scope::take_cause();
    let limit = cause.is_some() || e.kind() == ErrorKind::OutOfFuel;
    let message = if let Some(sentence) = cause {
        sentence
    } else if let Some(fact) = facts_off {
        format!(
            "`{fact}` is a fact, and facts are not gathered in this play (`gather_facts: false`)"
        )
    } else if e.kind() == ErrorKind::UndefinedError && !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        let word = if missing.len() == 1 {
            "variable"
        } else {
            "variables"
        };
        format!("undefined {word} {}", list.join(", "))
    } else if let Some(inner) = undefined_by_own_template(env, s, scope) {
        inner
    } else if let Some(sentence) = (e.kind() == ErrorKind::UndefinedError)
        .then(|| {
            let ctx = scope.context();
            super::missing_key::expressions(s)
                .into_iter()
                .find_map(|expr| super::missing_key::explain(env, expr, &ctx))
        })
        .flatten()
    {
        sentence
    } else {
        format!("template error: {}", describe_error(e))
    };
    RenderError::Failed {
        mark,
        message,
        path: None,
        limit,
    }
}

/// When a variable the template uses exists but its own template fails, say so.
fn undefined_by_own_template(
    env: &Environment<'static>,
    s: &str,
    scope: &Arc<Scope>,
) -> Option<String> {
    let names = match single_expression(s) {
        Some(expr) => env
            .compile_expression(expr)
            .ok()?
            .undeclared_variables(false),
        None => env.template_from_str(s).ok()?.undeclared_variables(false),
    };
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    names.into_iter().find_map(|n| {
        scope
            .explain(&n)
            .map(|why| format!("variable `{n}` cannot be rendered: {why}"))
    })
}

/// Renders every template string inside `node` for one host. Nodes without templates are
/// returned as they are; positions are kept so typed errors still point at the source.
/// `path` is the node's field path: a failure names the field whose template failed.
pub fn render_node(node: &Node, scope: &Arc<Scope>, path: &FieldPath) -> Result<Node, RenderError> {
    render_at(node, scope, &|| path.clone())
}

/// [`render_node`] with the field path made only when a template fails: made for every
/// field of every host, paths were a tenth of a compile.
fn render_at(
    node: &Node,
    scope: &Arc<Scope>,
    path: &dyn Fn() -> FieldPath,
) -> Result<Node, RenderError> {
    Ok(match &node.kind {
        NodeKind::Scalar(s) if is_template(&s.text) => {
            let value = render_str(&s.text, scope, node.mark).map_err(|e| match e {
                RenderError::Failed {
                    mark,
                    message,
                    limit,
                    ..
                } => RenderError::Failed {
                    mark,
                    message,
                    path: Some(path()),
                    limit,
                },
                other => other,
            })?;
            value_to_node(&value, node.mark, single_expression(&s.text).is_none())
        }
        NodeKind::Scalar(_) => node.clone(),
        NodeKind::Seq(items) => Node {
            kind: NodeKind::Seq(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| render_at(item, scope, &|| path().index(i)))
                    .collect::<Result<_, _>>()?,
            ),
            mark: node.mark,
        },
        NodeKind::Map(entries) => Node {
            kind: NodeKind::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = render_at(k, scope, path)?;
                        let child = || match &key.kind {
                            NodeKind::Scalar(s) => path().key(&s.text),
                            _ => path(),
                        };
                        let value = render_at(v, scope, &child)?;
                        Ok((key, value))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            mark: node.mark,
        },
    })
}

fn value_to_node(value: &Value, mark: Mark, from_text: bool) -> Node {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Node::scalar("", true, mark),
        ValueKind::Bool | ValueKind::Number => Node::scalar(value.to_string(), true, mark),
        ValueKind::String => Node::scalar(value.as_str().unwrap_or_default(), from_text, mark),
        ValueKind::Seq | ValueKind::Iterable => {
            let items = value
                .try_iter()
                .map(|it| it.map(|v| value_to_node(&v, mark, false)).collect())
                .unwrap_or_default();
            Node {
                kind: NodeKind::Seq(items),
                mark,
            }
        }
        ValueKind::Map => {
            let entries = value
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        (
                            Node::scalar(k.to_string(), false, mark),
                            value_to_node(&v, mark, false),
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
            Node {
                kind: NodeKind::Map(entries),
                mark,
            }
        }
        _ => Node::scalar(value.to_string(), from_text, mark),
    }
}
