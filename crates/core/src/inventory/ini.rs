//! Ansible's INI inventory format.
//!
//! ```ini
//! pg0                                  # before any section: in `ungrouped`
//! [primary]
//! pg[1:2] ansible_port=2222 note="a b" # host line: a host pattern and `key=value` pairs
//! [pg:children]
//! primary                              # one child group per line
//! [pg:vars]
//! ansible_user=postgres                # one `key=value` per line
//! ```
//!
//! Host lines are split like a POSIX shell line (Ansible uses `shlex`): quotes group words and
//! are removed, `#` starts a comment at the start of a word. Values are typed by `literal`
//! after the quotes are removed, so `port="2222"` is the integer 2222 as in Ansible; write
//! `port="'2222'"` for the string.
//! Every problem is reported with the line and the column of the offending token, and parsing
//! goes on so that all the problems of a file are reported at once.

use super::build::{Builder, UNGROUPED};
use super::names::{expand_host_pattern, host_name_problem};
use super::{literal, Var};
use crate::diag::{unknown_name_help, Diagnostic, Location, Mark, SourceFile};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Children,
    Vars,
    /// After a bad section header: its lines are skipped rather than misread.
    Skip,
}

const SECTION_KINDS: &[&str] = &["children", "vars", "hosts"];

/// Reads an INI inventory into `b`.
pub(crate) fn parse(file: &SourceFile, text: &str, b: &mut Builder) {
    let mut group = UNGROUPED.to_string();
    let mut state = State::Hosts;
    for (n, raw) in text.lines().enumerate() {
        let raw = if n == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let line = Line {
            file,
            number: n as u32 + 1,
            first_col: raw.chars().take_while(|c| c.is_whitespace()).count() as u32 + 1,
            raw,
            text: trimmed,
        };
        if trimmed.starts_with('[') {
            match section(trimmed) {
                Section::Header { name, kind } => {
                    let name_at = line.at(line.first_col + 1);
                    match kind {
                        None => {
                            b.group(&name, Some(name_at));
                            state = State::Hosts;
                        }
                        Some((kind, offset)) => {
                            let kind_at = line.at(line.first_col + offset as u32);
                            state = match kind.as_str() {
                                "hosts" => State::Hosts,
                                "children" => State::Children,
                                "vars" => State::Vars,
                                _ => {
                                    let mut d = Diagnostic::error(
                                        Some(kind_at),
                                        "",
                                        format!("unknown section type `{kind}` in `{trimmed}`"),
                                    );
                                    if let Some(help) = unknown_name_help(&kind, SECTION_KINDS) {
                                        d = d.with_help(help);
                                    }
                                    b.diags.push(d);
                                    State::Skip
                                }
                            };
                            if state != State::Skip {
                                b.group(&name, Some(name_at));
                            }
                        }
                    }
                    group = name;
                    continue;
                }
                Section::Invalid(message) => {
                    b.diags.push(
                        Diagnostic::error(Some(line.at(line.first_col)), "", message).with_help(
                            "a section header is `[group]`, `[group:children]` or `[group:vars]`, without spaces",
                        ),
                    );
                    state = State::Skip;
                    continue;
                }
                Section::NotAHeader => {}
            }
        }
        match state {
            State::Hosts => host_line(&line, &group, b),
            State::Children => child_line(&line, &group, b),
            State::Vars => var_line(&line, &group, b),
            State::Skip => {}
        }
    }
}

struct Line<'a> {
    file: &'a SourceFile,
    number: u32,
    /// Column of the first non-blank character.
    first_col: u32,
    raw: &'a str,
    /// The line without surrounding blanks.
    text: &'a str,
}

impl Line<'_> {
    fn at(&self, col: u32) -> Location {
        Location::new(
            self.file,
            Mark {
                line: self.number,
                col,
            },
        )
    }
}

enum Section {
    /// `[name]` or `[name:kind]`, with the character offset of `kind` in the line.
    Header {
        name: String,
        kind: Option<(String, usize)>,
    },
    Invalid(String),
    /// A line starting with `[` that is a host (`[2001:db8::1]:22`).
    NotAHeader,
}

/// Reads a section header the way Ansible's pattern does:
/// `[name(:kind)]` then only blanks or a comment.
fn section(text: &str) -> Section {
    let body = &text[1..];
    let name_len = body
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(body.len());
    let name = &body[..name_len];
    let mut rest = &body[name_len..];
    let mut kind = None;
    if let Some(after) = rest.strip_prefix(':') {
        let len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        kind = Some((after[..len].to_string(), 1 + name.chars().count() + 1));
        rest = &after[len..];
    }
    let well_formed = !name.is_empty()
        && kind.as_ref().is_none_or(|(k, _)| !k.is_empty())
        && rest
            .strip_prefix(']')
            .map(str::trim_start)
            .is_some_and(|tail| tail.is_empty() || tail.starts_with(['#', ';']));
    if well_formed {
        Section::Header {
            name: name.to_string(),
            kind,
        }
    } else if text.ends_with(']') {
        Section::Invalid(format!("invalid section header `{text}`"))
    } else if !text.contains(']') {
        Section::Invalid(format!("section header `{text}` has no closing `]`"))
    } else {
        Section::NotAHeader
    }
}

/// `host-pattern key=value ...`
fn host_line(line: &Line<'_>, group: &str, b: &mut Builder) {
    let tokens = match split_words(line.raw) {
        Ok(t) => t,
        Err((col, message)) => {
            b.diags
                .push(Diagnostic::error(Some(line.at(col)), "", message));
            return;
        }
    };
    let Some((first, pairs)) = tokens.split_first() else {
        return;
    };
    let first_at = line.at(first.col);
    let (hosts, port) = match expand_host_pattern(&first.text) {
        Ok(x) => x,
        Err(e) => {
            let col = first.col + e.offset as u32;
            b.diags
                .push(Diagnostic::error(Some(line.at(col)), "", e.message));
            return;
        }
    };
    let mut vars = Vec::new();
    if let Some(port) = port {
        vars.push((
            "ansible_port".to_string(),
            Var {
                value: port.into(),
                origin: first_at.clone(),
            },
        ));
    }
    for t in pairs {
        let at = line.at(t.col);
        match t.text.split_once('=') {
            Some(("", _)) => b.diags.push(Diagnostic::error(
                Some(at),
                "",
                format!("variable name missing before `=` in `{}`", t.text),
            )),
            Some((k, v)) => vars.push((
                k.to_string(),
                Var {
                    value: literal::parse_value(v),
                    origin: at,
                },
            )),
            None => b.diags.push(
                Diagnostic::error(
                    Some(at),
                    "",
                    format!(
                        "expected `key=value` after the host name, found `{}`",
                        t.text
                    ),
                )
                .with_help("quote values that contain spaces: key=\"a value\""),
            ),
        }
    }
    for host in hosts {
        if let Some(problem) = host_name_problem(&host) {
            b.diags
                .push(Diagnostic::error(Some(first_at.clone()), "", problem));
            continue;
        }
        b.host(group, &host, first_at.clone());
        for (k, v) in &vars {
            b.host_var(&host, k, v.clone());
        }
    }
}

/// One child group name per line, optionally followed by a comment.
fn child_line(line: &Line<'_>, group: &str, b: &mut Builder) {
    let text = line.text;
    let len = text
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(text.len());
    let (name, rest) = text.split_at(len);
    let rest = rest.trim_start();
    if !(rest.is_empty() || rest.starts_with(['#', ';'])) {
        b.diags.push(
            Diagnostic::error(
                Some(line.at(line.first_col)),
                "",
                format!("expected a group name in `[{group}:children]`, found `{text}`"),
            )
            .with_help("list one child group per line"),
        );
        return;
    }
    b.child(group, name, line.at(line.first_col));
}

/// `key=value`: everything after the first `=` (blanks trimmed) is the value.
fn var_line(line: &Line<'_>, group: &str, b: &mut Builder) {
    let at = line.at(line.first_col);
    match line.text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => {
            let var = Var {
                value: literal::parse_value(v.trim()),
                origin: at,
            };
            b.group_var(group, k.trim(), var);
        }
        Some(_) => b.diags.push(Diagnostic::error(
            Some(at),
            "",
            format!("variable name missing before `=` in `{}`", line.text),
        )),
        None => b.diags.push(Diagnostic::error(
            Some(at),
            "",
            format!(
                "expected `key=value` in `[{group}:vars]`, found `{}`",
                line.text
            ),
        )),
    }
}

/// A word of a host line and the column where it starts (its opening quote, if quoted).
#[derive(Debug, PartialEq)]
struct Word {
    text: String,
    col: u32,
}

/// Splits a line into words like Python's `shlex.split(line, comments=True)` (POSIX mode).
/// An error is the column of an unclosed quote and a message.
fn split_words(line: &str) -> Result<Vec<Word>, (u32, String)> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut chars = line.chars().zip(1u32..).peekable();
    while let Some((c, col)) = chars.next() {
        if c.is_whitespace() {
            words.extend(current.take());
            continue;
        }
        if c == '#' && current.is_none() {
            break;
        }
        let word = current.get_or_insert_with(|| Word {
            text: String::new(),
            col,
        });
        match c {
            '\'' => loop {
                match chars.next() {
                    Some(('\'', _)) => break,
                    Some((q, _)) => word.text.push(q),
                    None => return Err((col, "unclosed quote `'`".to_string())),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some(('"', _)) => break,
                    Some(('\\', _)) => match chars.peek() {
                        Some(&(e @ ('"' | '\\' | '$' | '`'), _)) => {
                            word.text.push(e);
                            chars.next();
                        }
                        _ => word.text.push('\\'),
                    },
                    Some((q, _)) => word.text.push(q),
                    None => return Err((col, "unclosed quote `\"`".to_string())),
                }
            },
            '\\' => match chars.next() {
                Some((e, _)) => word.text.push(e),
                None => word.text.push('\\'),
            },
            _ => word.text.push(c),
        }
    }
    words.extend(current);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(line: &str) -> Vec<(String, u32)> {
        split_words(line)
            .unwrap()
            .into_iter()
            .map(|w| (w.text, w.col))
            .collect()
    }

    #[test]
    fn splits_like_shlex_with_columns() {
        assert_eq!(
            words(r#"  pg1 a=1 b="x y" c='p q'#no  d=e\ f # comment"#),
            [
                ("pg1".to_string(), 3),
                ("a=1".to_string(), 7),
                ("b=x y".to_string(), 11),
                ("c=p q#no".to_string(), 19),
                ("d=e f".to_string(), 31),
            ]
        );
        assert_eq!(words(r#"a="q\"uote\n""#), [("a=q\"uote\\n".to_string(), 1)]);
        assert_eq!(
            split_words("pg1 a=\"open").unwrap_err(),
            (7, "unclosed quote `\"`".to_string())
        );
    }

    fn load(text: &str) -> Builder {
        let mut b = Builder::new();
        parse(&SourceFile::new("hosts"), text, &mut b);
        b
    }

    #[test]
    fn sections_hosts_children_vars() {
        let b = load(
            "top\n[primary]\npg1 ansible_port=2222 flag=True\n[replica]\npg[2:3]:2200\n\
             [pg:children]\nprimary # the writer\nreplica\n[pg:vars]\nnote = a b\nport=5432\n",
        );
        assert!(b.diags.is_empty(), "{}", b.diags);
        let inv = &b.inv;
        assert_eq!(inv.groups["ungrouped"].hosts, ["top"]);
        assert_eq!(inv.groups["replica"].hosts, ["pg2", "pg3"]);
        assert_eq!(inv.groups["pg"].children, ["primary", "replica"]);
        assert_eq!(inv.groups["pg"].vars["note"].value, json!("a b"));
        assert_eq!(inv.groups["pg"].vars["port"].value, json!(5432));
        let pg1 = &inv.sources.host_vars["pg1"];
        assert_eq!(pg1["ansible_port"].value, json!(2222));
        assert_eq!(pg1["flag"].value, json!(true));
        assert_eq!(pg1["flag"].origin.to_string(), "hosts:3:23");
        assert_eq!(
            inv.sources.host_vars["pg3"]["ansible_port"].value,
            json!(2200)
        );
    }

    #[test]
    fn children_may_be_declared_later_or_never() {
        let b = load("[pg:children]\nprimary\nimplicit\n[primary]\npg1\n");
        assert!(b.diags.is_empty(), "{}", b.diags);
        assert!(b.inv.groups.contains_key("implicit"));
    }

    fn errors(text: &str) -> String {
        load(text).diags.to_string()
    }

    #[test]
    fn unknown_section_kind_points_at_it() {
        assert_eq!(
            errors("[pg:child]\nprimary\n"),
            "error: hosts:1:5: unknown section type `child` in `[pg:child]`\n  help: did you mean `children`?\n"
        );
    }

    #[test]
    fn invalid_headers() {
        assert_eq!(
            errors("[pg servers]\n"),
            "error: hosts:1:1: invalid section header `[pg servers]`\n  help: a section header is \
             `[group]`, `[group:children]` or `[group:vars]`, without spaces\n"
        );
        assert!(errors("  [pg:vars\n")
            .starts_with("error: hosts:1:3: section header `[pg:vars` has no closing `]`"));
    }

    #[test]
    fn host_line_errors_have_the_token_column() {
        assert_eq!(
            errors("[pg]\npg1 ansible_port=22 oops\n"),
            "error: hosts:2:21: expected `key=value` after the host name, found `oops`\n  help: quote values \
             that contain spaces: key=\"a value\"\n"
        );
        assert_eq!(
            errors("[pg]\npg1 a=\"open\n"),
            "error: hosts:2:7: unclosed quote `\"`\n"
        );
        assert_eq!(
            errors("[pg]\n  pg[3:1]\n"),
            "error: hosts:2:5: host range `[3:1]` begins after its end\n"
        );
        assert_eq!(
            errors("[pg]\npg1 =x\n"),
            "error: hosts:2:5: variable name missing before `=` in `=x`\n"
        );
    }

    #[test]
    fn vars_and_children_line_errors() {
        assert_eq!(
            errors("[pg:vars]\njust_a_word\n"),
            "error: hosts:2:1: expected `key=value` in `[pg:vars]`, found `just_a_word`\n"
        );
        assert_eq!(
            errors("[pg:children]\na b\n"),
            "error: hosts:2:1: expected a group name in `[pg:children]`, found `a b`\n  help: list one \
             child group per line\n"
        );
    }

    #[test]
    fn duplicate_host_in_one_group() {
        assert_eq!(
            errors("[pg]\npg1\npg1 x=1\n"),
            "error: hosts:3:1: host `pg1` is declared twice in group `pg`\n  help: first declared at line 2\n"
        );
    }

    #[test]
    fn all_errors_of_a_file_are_reported() {
        assert_eq!(load("[a:x]\n[b]\nh k\n[c d]\n").diags.len(), 3);
    }
}
