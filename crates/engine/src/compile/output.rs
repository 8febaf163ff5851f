//! The compiled graph as text (for people and tests) and as Graphviz dot.

use std::fmt::Write;

use petgraph::graph::DiGraph;
use petgraph::visit::EdgeRef;

use super::dag::{Edge, Step, StepKind};
use super::Compiled;

/// One line per step in execution order, each followed by the steps it waits for and why.
pub fn to_text(c: &Compiled) -> String {
    let g = &c.graph;
    let mut out = String::new();
    let _ = writeln!(out, "{} steps, {} edges", g.node_count(), g.edge_count());
    for n in &c.order {
        let step = &g[*n];
        let limit = step
            .limit
            .map(|l| format!(" [at most {l} at a time]"))
            .unwrap_or_default();
        let _ = writeln!(out, "{}{limit}", step.label());
        let mut preds: Vec<_> = g
            .edges_directed(*n, petgraph::Direction::Incoming)
            .map(|e| {
                (
                    e.source().index(),
                    g[e.source()].label(),
                    e.weight().reason(),
                )
            })
            .collect();
        preds.sort();
        for (_, label, why) in preds {
            let _ = writeln!(out, "  after {label} ({why})");
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz dot: steps as boxes, barriers as diamonds, edges labelled with their reason.
pub fn to_dot(g: &DiGraph<Step, Edge>) -> String {
    let mut out = String::from(
        "digraph pgdeploy {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for n in g.node_indices() {
        let step = &g[n];
        let (label, shape) = match &step.kind {
            StepKind::Task { name, host, .. } => (format!("{name}\\n{host}"), "box"),
            StepKind::Handler { name, host, .. } => (format!("handler: {name}\\n{host}"), "box"),
            StepKind::Barrier { label, .. } => (label.replace('`', ""), "diamond"),
        };
        let label = escape(&label).replace("\\\\n", "\\n");
        let _ = writeln!(out, "  n{} [label=\"{label}\", shape={shape}];", n.index());
    }
    for e in g.edge_references() {
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"];",
            e.source().index(),
            e.target().index(),
            e.weight().reason()
        );
    }
    out.push_str("}\n");
    out
}
