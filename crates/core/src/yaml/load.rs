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
    let text = crate::limits::read_input(path)
        .map_err(|e| Diagnostic::error(Some(Location::file(&file)), "", e.to_string()))?;
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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        diags: Diagnostics::new(),
        aliased: 0,
        stopped: false,
    };
    // Events are pulled one by one rather than through `Parser::load`, which recurses once per
    // nesting level (a file of 20,000 nested `- ` overflows the stack there); the builder's
    // own stack is a `Vec`, and it stops the parse at the first limit it meets.
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, marker)) => {
                builder.on_event(ev, marker);
                if builder.stopped {
                    return Err(builder.diags);
                }
            }
            Err(e) => {
                let mark = to_mark(*e.marker());
                return Err(Diagnostic::error(
                    Some(Location::new(file, mark)),
                    "",
                    format!("invalid YAML: {}", e.info()),
                )
                .into());
            }
        }
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
    /// Anchored nodes and their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    docs: Vec<Node>,
    diags: Diagnostics,
    /// Nodes copied by aliases so far ([`MAX_ALIAS_NODES`]).
    aliased: usize,
    /// A limit was met: the parse stops with the builder's diagnostics.
    stopped: bool,
}

use crate::limits::{MAX_ALIAS_NODES, MAX_YAML_DEPTH};

/// Number of nodes in a tree (keys count), walked without recursion.
fn size(node: &Node) -> usize {
    let mut count = 0;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        count += 1;
        match &n.kind {
            NodeKind::Scalar(_) => {}
            NodeKind::Seq(items) => todo.extend(items),
            NodeKind::Map(entries) => todo.extend(entries.iter().flat_map(|(k, v)| [k, v])),
        }
    }
    count
}

/// Removes later duplicates of a key (reported as errors), in one pass over the mapping.
fn drop_duplicates(entries: Vec<(Node, Node)>, b: &mut Builder) -> Vec<(Node, Node)> {
    let mut first: HashMap<String, Mark> = HashMap::with_capacity(entries.len());
    let mut kept = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if let Some(name) = k.as_str() {
            if let Some(at) = first.get(name) {
                let message = format!("duplicate key `{name}` (first defined at line {})", at.line);
                b.error(k.mark, message);
                continue;
            }
            first.insert(name.to_string(), k.mark);
        }
        kept.push((k, v));
    }
    kept
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
            let n = size(&node);
            self.anchors.insert(anchor, (node.clone(), n));
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
                // Duplicates are found when the mapping ends, in one pass.
                entries.push((key, node));
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
            entries.extend(more);
        }
    }
}

/// The mapping's own entries, then the merged ones whose key it does not have (the first
/// merged source wins among them), in one pass.
fn with_merged(mut entries: Vec<(Node, Node)>, merged: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if merged.is_empty() {
        return entries;
    }
    let mut seen: std::collections::HashSet<String> = entries
        .iter()
        .filter_map(|(k, _)| k.as_str().map(str::to_string))
        .collect();
    for (k, v) in merged {
        match k.as_str() {
            Some(name) if !seen.insert(name.to_string()) => {}
            _ => entries.push((k, v)),
        }
    }
    entries
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
            Event::SequenceStart(..) | Event::MappingStart(..)
                if self.stack.len() >= MAX_YAML_DEPTH =>
            {
                self.error(
                    mark,
                    format!("nested more than {MAX_YAML_DEPTH} levels deep (`MAX_YAML_DEPTH`)"),
                );
                self.stopped = true;
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
                if let Some(Open::Map(m, anchor, entries, _, merged)) = self.stack.pop() {
                    let entries = drop_duplicates(entries, self);
                    let entries = with_merged(entries, merged);
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
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((_, n)) if self.aliased + n > MAX_ALIAS_NODES => {
                    self.error(
                        mark,
                        format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} nodes (`MAX_ALIAS_NODES`)"
                        ),
                    );
                    self.stopped = true;
                }
                Some((node, n)) => {
                    self.aliased += n;
                    let mut node = node.clone();
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
    fn nesting_and_aliases_are_bounded() {
        let deep = format!("{}v\n", "- ".repeat(20_000));
        let e = load(&deep).unwrap_err().to_string();
        assert!(
            e.contains("t.yml:1:") && e.contains("`MAX_YAML_DEPTH`"),
            "{e}"
        );
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (p, n) in "abcdefg".chars().zip("bcdefgh".chars()) {
            laughs.push_str(&format!(
                "{n}: &{n} [{}]\n",
                vec![format!("*{p}"); 10].join(", ")
            ));
        }
        let e = load(&laughs).unwrap_err().to_string();
        assert!(e.contains("`MAX_ALIAS_NODES`"), "{e}");
        // Within the budget, aliases are copied as before.
        assert!(load("a: &a [1, 2]\nb: [*a, *a]\n").is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let n = load("\u{feff}a: 1\n").unwrap();
        assert_eq!(n.get("a").unwrap().as_str(), Some("1"));
    }

    #[test]
    fn empty_document_is_null() {
        assert!(load("").unwrap().is_null());
        assert!(load("# only a comment\n").unwrap().is_null());
    }
}
