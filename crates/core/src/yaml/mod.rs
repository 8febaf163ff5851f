//! YAML with positions: every node of a loaded document knows its line and column.
//!
//! serde_yaml_ng drops positions once a document is parsed, and error messages must name
//! `file:line:column` for every field. So input files are parsed with yaml-rust2's event
//! parser into a [`Node`] tree that keeps a [`Mark`](crate::diag::Mark) per node, and typed
//! values are read from that tree through a serde deserializer ([`de`]) that attaches the
//! position and field path to every error.

pub mod de;
mod load;
mod node;

pub use de::{from_node, DeError};
pub use load::{load_file, load_str, load_text};
pub use node::{Node, NodeKind, Resolved, Scalar};
