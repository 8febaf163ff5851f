//! `pgdeploy graph`: the compiled DAG as text or Graphviz dot.

use crate::cli::{GraphArgs, GraphFormat};
use crate::compile::{to_dot, to_text};
use crate::exit::Exit;

pub fn run(args: &GraphArgs) -> anyhow::Result<Exit> {
    let loaded = match super::load(&args.run) {
        Ok(l) => l,
        Err(diags) => {
            super::report(&diags.sorted());
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
