//! Diagnostics as people and programs read them: text on stderr with the offending line of
//! the source and a caret under the token (rustc's renderer, annotate-snippets), or JSON
//! objects on stdout for `--json`. Everything shown is masked first: the message, the help,
//! and the excerpt's line, which may hold a secret in clear (an inventory line
//! `db_password: …` that failed to load before any redactor knew it).
//!
//! The first line stays `error: file:line:column: field.path: message` (what editors and CI
//! log scanners match, and what `grep error:` finds); the excerpt and the help follow.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diag::{Diagnostic, Diagnostics, Location, Severity};
use crate::secrets::{is_secret_name, mask_logged, MASK};

/// Source files read for excerpts, once each; `None` when there is nothing to show.
static SOURCES: Mutex<Option<HashMap<PathBuf, Option<Arc<str>>>>> = Mutex::new(None);

/// The text of a file named by a diagnostic, as it was loaded. Files decrypted with Ansible
/// Vault have no excerpt: the file on disk is ciphertext, and positions are in the plaintext.
fn source_of(location: &Location) -> Option<Arc<str>> {
    if crate::vault::is_decrypted_file(&location.file) {
        return None;
    }
    let path = location.file.path().to_path_buf();
    let mut cache = SOURCES.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get_or_insert_with(HashMap::new)
        .entry(path)
        .or_insert_with_key(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            (!text.trim_start().starts_with("$ANSIBLE_VAULT")).then(|| Arc::from(text))
        })
        .clone()
}

/// The line a diagnostic points at, masked, and the span of its token (byte range in the
/// masked line).
pub struct Excerpt {
    pub line_number: usize,
    pub line: String,
    pub span: std::ops::Range<usize>,
}

/// The excerpt of `d`: its line with the token at its column underlined.
pub fn excerpt(d: &Diagnostic) -> Option<Excerpt> {
    let location = d.location.as_ref()?;
    let mark = location.mark?;
    let source = source_of(location)?;
    let index = mark.line.checked_sub(1)? as usize;
    let line = source.lines().nth(index)?;
    let ini = !matches!(
        location.file.path().extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml" | "json")
    );
    if let Some(block) = secret_parent(&source, index).filter(|_| !ini) {
        let (masked, span) = mask_secret_block_line(line, block);
        return Some(Excerpt {
            line_number: mark.line as usize,
            line: masked,
            span,
        });
    }
    Some(excerpt_of_line(
        line,
        mark.line as usize,
        mark.col as usize,
        ini,
    ))
}

/// Whether line `index` of a YAML text is under a secret-named key: inside its block scalar
/// (`tls_private_key_content: |`, a PEM key: `Some(true)`) or its mapping or list
/// (`db_passwords:` then `app: x`: `Some(false)`), at any depth, as the redactor treats them.
/// Such a line is masked: its file may have failed to load before any redactor knew it.
fn secret_parent(source: &str, index: usize) -> Option<bool> {
    let lines: Vec<&str> = source.lines().collect();
    let line = lines.get(index)?;
    if line.trim().is_empty() {
        return None;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut own = indent(line);
    for parent in lines[..index].iter().rev() {
        if parent.trim().is_empty() || parent.trim_start().starts_with('#') || indent(parent) >= own
        {
            continue;
        }
        own = indent(parent);
        let entry = parent.trim_start().trim_start_matches("- ");
        if let Some((key, value)) = entry.split_once(':') {
            if is_secret_name(key.trim().trim_matches(|c| c == '"' || c == '\'')) {
                let value = value.trim();
                return Some(value.starts_with('|') || value.starts_with('>'));
            }
        }
        if own == 0 {
            break;
        }
    }
    None
}

/// A line under a secret-named key, masked: the value of `key: value` (the key is not
/// secret), or all of it (a line of a block scalar, a list item).
fn mask_secret_block_line(line: &str, block: bool) -> (String, std::ops::Range<usize>) {
    let indent = line.len() - line.trim_start().len();
    let body = &line[indent..];
    let item = if body.starts_with("- ") { 2 } else { 0 };
    let entry = &body[item..];
    let keep = match entry.split_once(": ") {
        Some((key, value))
            if !block
                && !value.trim().is_empty()
                && key
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-.\"'".contains(c)) =>
        {
            indent + item + key.len() + 2
        }
        _ => indent + item,
    };
    let masked = format!("{}{MASK}", &line[..keep]);
    let span = keep..masked.len();
    (masked, span)
}

/// One line's excerpt: the token at `col` (1-based, in characters, as marks are) spanned,
/// then the line masked and the span moved with the masks and tabs.
fn excerpt_of_line(line: &str, line_number: usize, col: usize, ini: bool) -> Excerpt {
    let chars: Vec<char> = line.chars().collect();
    let start = col.saturating_sub(1).min(chars.len());
    let end = token_end(&chars, start, ini);
    let masked = mask_line(line, ini);
    let (start, end) = map_span(line, &masked, start, end);
    let (masked, start, end) = expand_tabs(&masked, start, end);
    let byte = |c: usize| {
        masked
            .char_indices()
            .nth(c)
            .map_or(masked.len(), |(b, _)| b)
    };
    Excerpt {
        line_number,
        span: byte(start)..byte(end),
        line: masked,
    }
}

/// Where the token starting at `start` ends (exclusive, in chars): a quoted scalar to its
/// closing quote, a key before its `:`, a plain value before a comment or, in a flow
/// collection, before `,`/`]`/`}`; INI words end at whitespace. At least one character.
fn token_end(chars: &[char], start: usize, ini: bool) -> usize {
    if start >= chars.len() {
        return chars.len();
    }
    let first = chars[start];
    // Punctuation (where a YAML parser stopped): that character alone.
    if first.is_whitespace() || matches!(first, ':' | ',' | ']' | '}' | '#') {
        return start + 1;
    }
    if first == '"' || first == '\'' {
        let mut i = start + 1;
        while i < chars.len() {
            if first == '"' && chars[i] == '\\' {
                i += 2;
                continue;
            }
            if chars[i] == first {
                return i + 1;
            }
            i += 1;
        }
        return chars.len();
    }
    let in_flow = chars[..start].iter().any(|c| matches!(c, '{' | '['));
    let mut end = start;
    while end < chars.len() {
        let c = chars[end];
        let next = chars.get(end + 1).copied();
        let stop = if ini {
            c.is_whitespace()
        } else {
            (c == ':' && next.is_none_or(char::is_whitespace))
                || (c == '#' && end > start && chars[end - 1].is_whitespace())
                || (in_flow && matches!(c, ',' | ']' | '}'))
        };
        if stop && end > start {
            break;
        }
        end += 1;
    }
    while end > start + 1 && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    end.max(start + 1).min(chars.len())
}

/// `line` with the known secrets masked (the redactor of the run, see
/// [`crate::secrets::mask_logged`]) and, since the line may be from a file that failed to load
/// before any redactor knew its secrets, the value of every secret-named key on it
/// (`db_password: x`, `db_password=x`).
pub fn mask_line(line: &str, ini: bool) -> String {
    mask_assignments(&mask_logged(line), ini)
}

fn mask_assignments(line: &str, ini: bool) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let word_start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i == word_start {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let word: String = chars[word_start..i].iter().collect();
        out.push_str(&word);
        let Some(&sep) = chars.get(i) else { break };
        let assigns = sep == '=' || sep == ':' && chars.get(i + 1).is_none_or(|c| *c == ' ');
        let starts_word = word_start == 0
            || !chars[word_start - 1].is_alphanumeric() && chars[word_start - 1] != '_';
        if !(assigns && starts_word && is_secret_name(&word)) {
            continue;
        }
        out.push(sep);
        i += 1;
        while i < chars.len() && chars[i] == ' ' {
            out.push(' ');
            i += 1;
        }
        let value_start = i;
        let end = if chars.get(i).is_some_and(|c| *c == '"' || *c == '\'') {
            token_end(&chars, i, false)
        } else {
            let mut e = i;
            while e < chars.len() {
                let c = chars[e];
                let stops = if ini || sep == '=' {
                    c.is_whitespace()
                } else {
                    matches!(c, ',' | '}' | ']') || c == '#' && e > i && chars[e - 1] == ' '
                };
                if stops {
                    break;
                }
                e += 1;
            }
            while e > i && chars[e - 1] == ' ' {
                e -= 1;
            }
            e
        };
        let value: String = chars[value_start..end].iter().collect();
        let inner = value.trim_matches(|c| c == '"' || c == '\'');
        // A template, a vault value or a block scalar's indicator is not the secret itself.
        let shown = inner.is_empty()
            || inner.contains(MASK)
            || inner.starts_with("{{")
            || inner.starts_with("!vault")
            || inner.starts_with('|')
            || inner.starts_with('>');
        out.push_str(if shown { &value } else { MASK });
        i = end;
    }
    out
}

/// Tabs as four spaces, the span moved with them: the renderer would otherwise draw the
/// caret under the wrong character of a line that has tabs.
fn expand_tabs(line: &str, start: usize, end: usize) -> (String, usize, usize) {
    if !line.contains('\t') {
        return (line.to_string(), start, end);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let (mut new_start, mut new_end) = (start, end);
    let mut width = 0;
    for (i, c) in line.chars().enumerate() {
        if i == start {
            new_start = width;
        }
        if i == end {
            new_end = width;
        }
        if c == '\t' {
            out.push_str("    ");
            width += 4;
        } else {
            out.push(c);
            width += 1;
        }
    }
    if end >= line.chars().count() {
        new_end = width;
    }
    if start >= line.chars().count() {
        new_start = width;
    }
    (out, new_start, new_end)
}

/// The char span `start..end` of `before` in `after` (the line once masked): text the mask
/// replaced maps to the mask.
fn map_span(before: &str, after: &str, start: usize, end: usize) -> (usize, usize) {
    if before == after {
        return (start, end);
    }
    let diff = similar::TextDiff::from_chars(before, after);
    let map = |pos: usize, is_end: bool| -> usize {
        for op in diff.ops() {
            let old = op.old_range();
            let new = op.new_range();
            let inside = if is_end {
                pos > old.start && pos <= old.end
            } else {
                pos >= old.start && pos < old.end
            };
            if !inside {
                continue;
            }
            return match op.tag() {
                similar::DiffTag::Equal => new.start + (pos - old.start),
                _ if is_end => new.end,
                _ => new.start,
            };
        }
        if is_end {
            after.chars().count()
        } else {
            0
        }
    };
    let s = map(start, false);
    let e = map(end, true).max(s);
    (s, e)
}

/// `d` as text: its first line, the excerpt with a caret, the help and the note; masked,
/// coloured when `color`.
pub fn render(d: &Diagnostic, color: bool) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let headline = mask_logged(&d.headline());
    // The renderer prints the level itself.
    let title = headline
        .split_once(": ")
        .map_or(headline.as_str(), |(_, rest)| rest)
        .to_string();
    let excerpt = excerpt(d);
    let help = d.help.as_deref().map(mask_logged);
    let note = d.note.as_deref().map(mask_logged);
    let mut group = Group::with_title(level.primary_title(title));
    if let Some(x) = &excerpt {
        group = group.element(
            Snippet::source(x.line.as_str())
                .line_start(x.line_number)
                .annotation(AnnotationKind::Primary.span(x.span.clone())),
        );
    }
    if let Some(help) = &help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    if let Some(note) = &note {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let report: &[Group<'_>] = &[group];
    let mut text = renderer.render(report);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `d` as one JSON object (`--json`), masked: what the text says, in fields.
pub fn to_json(d: &Diagnostic) -> serde_json::Value {
    let (file, line, column) = match &d.location {
        Some(l) => (
            Some(l.file.to_string()),
            l.mark.map(|m| m.line),
            l.mark.map(|m| m.col),
        ),
        None => (None, None, None),
    };
    let excerpt = excerpt(d);
    serde_json::json!({
        "event": "diagnostic",
        "severity": match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "message": mask_logged(&d.message),
        "file": file,
        "line": line,
        "column": column,
        "path": (!d.path.is_empty()).then(|| d.path.clone()),
        "help": d.help.as_deref().map(mask_logged),
        "note": d.note.as_deref().map(mask_logged),
        "hosts": d.hosts,
        "source_line": excerpt.map(|x| x.line),
    })
}

/// Prints diagnostics: on stderr as text (coloured when stderr is a terminal), or with
/// `json` on stdout, one object per line, then a summary object.
pub fn report(diags: &Diagnostics, json: bool) {
    let errors = diags.errors().count();
    if json {
        report_json(diags, serde_json::json!({}));
        return;
    }
    let color = super::stderr_color();
    // A blank line after each, as rustc does: excerpts make a diagnostic several lines.
    for d in diags.iter() {
        super::write_err(&format!("{}\n", render(d, color)));
    }
    if errors > 0 {
        let s = if errors == 1 { "" } else { "s" };
        crate::eoutln!("{errors} error{s} found, no host was contacted");
    }
}

/// The diagnostics as JSON objects on stdout, one a line, then the summary: `valid`, the
/// counts of errors and warnings, and the fields of `extra` (what was checked). Tagged with
/// `event` like the events of a run (`plan --json`), so one reader reads both.
pub fn report_json(diags: &Diagnostics, extra: serde_json::Value) {
    report_json_lines(diags);
    let errors = diags.errors().count();
    let mut summary = serde_json::json!({
        "event": "summary",
        "valid": errors == 0,
        "errors": errors,
        "warnings": diags.warnings().count(),
    });
    if let (Some(s), serde_json::Value::Object(extra)) = (summary.as_object_mut(), extra) {
        s.extend(extra);
    }
    crate::outln!("{summary}");
}

/// The diagnostics as JSON objects on stdout, without a summary: warnings before a run's
/// events.
pub fn report_json_lines(diags: &Diagnostics) {
    for d in diags.iter() {
        crate::outln!("{}", to_json(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Mark, SourceFile};

    fn at(line: &str, col: usize) -> (String, String) {
        let x = excerpt_of_line(line, 1, col, false);
        (x.line.clone(), x.line[x.span].to_string())
    }

    #[test]
    fn the_caret_covers_the_token() {
        assert_eq!(at("    mdoe: \"0700\"", 5).1, "mdoe");
        assert_eq!(at("    mode: \"07 00\"  # x", 11).1, "\"07 00\"");
        assert_eq!(at("    mode: 0999 # x", 11).1, "0999");
        assert_eq!(at("  pg1: { ansible_port: x, y: z }", 24).1, "x");
        assert_eq!(at("abc", 9).1, "");
        assert_eq!(at("       mode: \"0755\"", 12).1, ":");
        let (line, token) = at("\t- directory: {}", 2);
        assert_eq!(line, "    - directory: {}");
        assert_eq!(token, "- directory");
        let x = excerpt_of_line("pg1 ansible_port=abc x=1", 1, 5, true);
        assert_eq!(&x.line[x.span], "ansible_port=abc");
    }

    #[test]
    fn a_secret_on_the_line_is_masked_and_the_caret_follows() {
        let (line, token) = at("  db_password: hunter22secret", 16);
        assert_eq!(line, "  db_password: ********");
        assert_eq!(token, "********");
        let (line, token) = at("{ app_password: 'se\"cr', mdoe: 1 }", 26);
        assert_eq!(line, "{ app_password: ********, mdoe: 1 }");
        assert_eq!(token, "mdoe");
        let x = excerpt_of_line("pg1 vrrp_auth_pass=s3cret9 port=x", 1, 28, true);
        assert_eq!(x.line, "pg1 vrrp_auth_pass=******** port=x");
        assert_eq!(&x.line[x.span], "port=x");
        // Templates and vault values are not secrets themselves.
        assert_eq!(
            mask_line("  db_password: \"{{ vault_pw }}\"", false),
            "  db_password: \"{{ vault_pw }}\""
        );
        assert_eq!(
            mask_line("  db_password: !vault |", false),
            "  db_password: !vault |"
        );
    }

    fn under_secret(source: &str, index: usize) -> bool {
        secret_parent(source, index).is_some()
    }

    #[test]
    fn a_line_of_a_multi_line_secret_is_masked_whole() {
        let text = "all:\n  vars:\n    tls_private_key_content: |\n      -----BEGIN KEY-----\n      MIIEv: QIBAD\n    other: |\n      shown\n";
        assert!(under_secret(text, 3));
        assert!(under_secret(text, 4));
        assert!(!under_secret(text, 2));
        assert!(!under_secret(text, 6));
        // Nested under a secret name, at any depth: the values, not the keys.
        let nested = "all:\n  vars:\n    db_passwords:\n      app: s3cret\n      more:\n        - other\n    port: 1\n";
        assert!(under_secret(nested, 3));
        assert!(under_secret(nested, 5));
        assert!(!under_secret(nested, 6));
        assert_eq!(
            mask_secret_block_line("      app: s3cret", false).0,
            "      app: ********"
        );
        assert_eq!(
            mask_secret_block_line("        - other", false).0,
            "        - ********"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.yml");
        std::fs::write(&path, text).unwrap();
        let d = Diagnostic::error(
            Some(Location::new(
                &SourceFile::new(&path),
                Mark { line: 5, col: 7 },
            )),
            "",
            "invalid YAML",
        );
        let x = excerpt(&d).unwrap();
        assert_eq!(x.line, "      ********");
        assert_eq!(&x.line[x.span], "********");
    }

    #[test]
    fn a_known_secret_is_masked_whatever_its_name() {
        crate::secrets::mask_logs_with(&crate::secrets::Redactor::new(vec![
            "excerpt-secret-1".into()
        ]));
        let x = excerpt_of_line("    mode: \"excerpt-secret-1\" # mode", 1, 11, false);
        assert_eq!(x.line, "    mode: \"********\" # mode");
        assert_eq!(&x.line[x.span], "\"********\"");
    }

    #[test]
    fn rendered_with_the_excerpt_plain_or_coloured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pb.yml");
        std::fs::write(
            &path,
            "- hosts: all\n  tasks:\n    - directory: {path: /x, mdoe: 1}\n",
        )
        .unwrap();
        let file = SourceFile::new(&path);
        let d = Diagnostic::error(
            Some(Location::new(&file, Mark { line: 3, col: 29 })),
            "plays[0].tasks[0].directory.mdoe",
            "unknown field `mdoe`",
        )
        .with_help("did you mean `mode`?");
        let text = render(&d, false);
        let want = format!(
            "error: {}:3:29: plays[0].tasks[0].directory.mdoe: unknown field `mdoe`\n  |\n3 |     - directory: {{path: /x, mdoe: 1}}\n  |                             ^^^^\n  |\n  = help: did you mean `mode`?\n",
            path.display()
        );
        assert_eq!(text, want);
        assert!(!text.contains('\x1b'));
        assert!(render(&d, true).contains('\x1b'));
        let json = to_json(&d);
        assert_eq!(json["line"], 3);
        assert_eq!(json["column"], 29);
        assert_eq!(json["help"], "did you mean `mode`?");
        assert_eq!(json["hosts"], serde_json::json!([]));
    }
}
