//! Reading a mapping whose keys are fixed keywords, reporting unknown ones with a suggestion.

use serde::de::DeserializeOwned;

use pgdeploy_core::diag::{
    unknown_name_help, Diagnostic, Diagnostics, FieldPath, Location, SourceFile,
};
use pgdeploy_core::yaml::{from_node, Node};

/// A checked mapping: keyword lookups, and typed reads that record errors instead of
/// stopping, so one load reports every problem of the file.
pub(super) struct Fields<'a> {
    pub file: &'a SourceFile,
    pub node: &'a Node,
    pub path: FieldPath,
}

impl<'a> Fields<'a> {
    pub(super) fn error(
        &self,
        node: &Node,
        path: &FieldPath,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::error(
            Some(Location::new(self.file, node.mark)),
            path.as_str(),
            message,
        )
    }

    /// The node of `key`, if present.
    pub(super) fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }

    /// Reads `key` as `T`; a bad value is recorded and gives `None`.
    pub(super) fn read<T: DeserializeOwned>(
        &self,
        key: &str,
        diags: &mut Diagnostics,
    ) -> Option<T> {
        let node = self.get(key)?;
        match from_node::<T>(node, &self.path.key(key)) {
            Ok(v) => Some(v),
            Err(e) => {
                diags.push(e.into_diagnostic(self.file));
                None
            }
        }
    }

    /// Reports keys that are neither in `allowed` nor accepted by `also`.
    pub(super) fn reject_unknown(
        &self,
        allowed: &[&str],
        also: impl Fn(&str) -> bool,
        diags: &mut Diagnostics,
    ) {
        for (k, _) in self.node.as_map().unwrap_or_default() {
            let name = k.as_str().unwrap_or_default();
            if allowed.contains(&name) || also(name) {
                continue;
            }
            let mut d = self.error(k, &self.path.key(name), format!("unknown field `{name}`"));
            if let Some(h) = unknown_name_help(name, allowed) {
                d = d.with_help(h);
            }
            diags.push(d);
        }
    }
}
