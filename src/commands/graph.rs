//! `pgdeploy graph`: the compiled DAG as text or Graphviz dot.

use crate::cli::{GraphArgs, GraphFormat};
use crate::compile::{to_dot, to_text};
use crate::exit::Exit;

/// `json`: errors as JSON objects on stdout, as `validate --json` prints them.
pub fn run(args: &GraphArgs, json: bool) -> anyhow::Result<Exit> {
    let loaded = match super::load(&args.run) {
        Ok(l) => l,
        Err(diags) => {
            super::report_as(&diags.sorted(), json);
            return Ok(Exit::Error);
        }
    };
    super::report(&loaded.compiled.warnings);
    match args.format {
        GraphFormat::Text => crate::out!("{}", to_text(&loaded.compiled)),
        GraphFormat::Dot => crate::out!("{}", to_dot(&loaded.compiled.graph)),
    }
    Ok(Exit::Success)
}
