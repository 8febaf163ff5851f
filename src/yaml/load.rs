//! Builds the positioned [`Node`] tree from yaml-rust2's parser events.

use std::collections::HashMap;
use std::path::Path;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::node::{Node, NodeKind};
use crate::diag::{Diagnostic, Diagnostics, Location, Mark, SourceFile};

/// Reads and parses a YAML file. An empty file gives a null node. A file encrypted whole with
/// Ansible Vault is decrypted first (positions in errors are then in the plaintext).
pub fn load_file(path: &Path) -> Result<(SourceFile, Node), Diagnostics> {
    let file = SourceFile::new(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(
            Some(Location::file(&file)),
            "",
            format!("cannot read file: {e}"),
        )
    })?;
    crate::inputs::record(path, text.as_bytes());
    let node = load_text(&text, &file)?;
    Ok((file, node))
}

/// Parses a file's content, decrypting it first if it is an Ansible Vault; the string values
/// of a decrypted file are recorded as secrets.
pub fn load_text(text: &str, file: &SourceFile) -> Result<Node, Diagnostics> {
    match crate::vault::open_file(text, file)? {
        None => load_str(text, file),
        Some(plain) => {
            let node = load_str(&plain, file)?;
            crate::vault::reveal_strings(&node.to_json());
            Ok(node)
        }
    }
}

/// Parses one YAML document held in memory; `file` names it in errors.
pub fn load_str(text: &str, file: &SourceFile) -> Result<Node, Diagnostics> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        diags: Diagnostics::new(),
    };
    if let Err(e) = Parser::new_from_str(text).load(&mut builder, true) {
        let mark = to_mark(*e.marker());
        return Err(Diagnostic::error(
            Some(Location::new(file, mark)),
            "",
            format!("invalid YAML: {}", e.info()),
        )
        .into());
    }
    let mut diags = builder.diags;
    let mut docs = builder.docs;
    if docs.len() > 1 {
        diags.push(Diagnostic::error(
            Some(Location::new(file, docs[1].mark)),
            "",
            "expected one YAML document, found several (`---` separators)",
        ));
    }
    let node = if docs.is_empty() {
        Node::scalar("", true, Mark { line: 1, col: 1 })
    } else {
        docs.swap_remove(0)
    };
    diags.into_result(node)
}

fn to_mark(m: Marker) -> Mark {
    // yaml-rust2 lines are 1-based and columns 0-based.
    Mark {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

enum Open {
    Seq(Mark, usize, Vec<Node>),
    /// Mark, anchor, entries, pending key, entries brought by merge keys (`<<`), which the
    /// mapping's own keys override.
    Map(
        Mark,
        usize,
        Vec<(Node, Node)>,
        Option<Node>,
        Vec<(Node, Node)>,
    ),
}

struct Builder<'a> {
    file: &'a SourceFile,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    diags: Diagnostics,
}

impl Builder<'_> {
    fn error(&mut self, mark: Mark, message: String) {
        self.diags.push(Diagnostic::error(
            Some(Location::new(self.file, mark)),
            "",
            message,
        ));
    }

    /// Attaches a finished node to its parent (or ends the document).
    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, _, pending @ None, _)) => *pending = Some(node),
            Some(Open::Map(_, _, entries, pending @ Some(_), merged)) => {
                let key = pending.take().expect("pending key checked above");
                let is_merge = key.as_str() == Some("<<")
                    && matches!(&key.kind, NodeKind::Scalar(s) if s.plain);
                if is_merge {
                    merge_into(merged, node);
                    return;
                }
                let duplicate = key.as_str().and_then(|k| {
                    entries
                        .iter()
                        .find(|(e, _)| e.as_str() == Some(k))
                        .map(|(e, _)| (k.to_string(), e.mark))
                });
                match duplicate {
                    Some((name, first)) => self.error(
                        key.mark,
                        format!(
                            "duplicate key `{name}` (first defined at line {})",
                            first.line
                        ),
                    ),
                    None => entries.push((key, node)),
                }
            }
        }
    }
}

/// YAML merge keys (`<<: *defaults`): collects the entries of the merged mapping(s); the first
/// source wins, and the mapping's own keys win over all of them (see `MappingEnd`).
fn merge_into(entries: &mut Vec<(Node, Node)>, merged: Node) {
    let sources: Vec<Node> = match merged.kind {
        NodeKind::Seq(items) => items,
        _ => vec![merged],
    };
    for source in sources {
        if let NodeKind::Map(more) = source.kind {
            for (k, v) in more {
                if !entries.iter().any(|(e, _)| e.as_str() == k.as_str()) {
                    entries.push((k, v));
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        let mark = to_mark(marker);
        match ev {
            Event::Scalar(text, _, anchor, Some(tag))
                if tag.handle == "!" && tag.suffix == "vault" =>
            {
                // Inline `!vault |` value: the decrypted text is the value, a string.
                let value = crate::vault::open_value(&text).unwrap_or_else(|e| {
                    self.error(mark, e.to_string());
                    String::new()
                });
                self.push_node(Node::scalar(value, false, mark), anchor);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && tag.is_none();
                let plain = plain
                    || tag.as_ref().is_some_and(|t| {
                        t.handle == "!!"
                            && matches!(t.suffix.as_str(), "int" | "bool" | "float" | "null")
                    });
                self.push_node(Node::scalar(text, plain, mark), anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(mark, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Open::Map(mark, anchor, Vec::new(), None, Vec::new()))
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq(m, anchor, items)) = self.stack.pop() {
                    let m = items.first().map_or(m, |first| m.min(first.mark));
                    self.push_node(
                        Node {
                            kind: NodeKind::Seq(items),
                            mark: m,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(m, anchor, mut entries, _, merged)) = self.stack.pop() {
                    for (k, v) in merged {
                        if !entries.iter().any(|(e, _)| e.as_str() == k.as_str()) {
                            entries.push((k, v));
                        }
                    }
                    // A block mapping's start event is reported after its first key; the
                    // first key is where a reader sees the mapping begin.
                    let m = entries.first().map_or(m, |(k, _)| m.min(k.mark));
                    self.push_node(
                        Node {
                            kind: NodeKind::Map(entries),
                            mark: m,
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.mark = mark;
                    self.push_node(node, 0);
                }
                None => self.error(mark, "alias to an unknown anchor".to_string()),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostics> {
        load_str(text, &SourceFile::new("t.yml"))
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let n = load("a: 1\nb:\n  - x\n  - y: [1, 2]\n").unwrap();
        let (k, v) = &n.as_map().unwrap()[1];
        assert_eq!(k.mark, Mark { line: 2, col: 1 });
        let second = &v.as_seq().unwrap()[1];
        assert_eq!(second.mark, Mark { line: 4, col: 5 });
        let y = second.get("y").unwrap();
        assert_eq!(y.mark, Mark { line: 4, col: 8 });
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = load("a: 1\n b: 2\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("t.yml:2:"), "{text}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err
            .to_string()
            .contains("duplicate key `a` (first defined at line 1)"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = load("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  y: 3\n").unwrap();
        let e = n.get("e").unwrap();
        assert_eq!(e.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(e.get("y").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn empty_document_is_null() {
        assert!(load("").unwrap().is_null());
        assert!(load("# only a comment\n").unwrap().is_null());
    }
}
