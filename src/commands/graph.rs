//! `pgdeploy graph`: the compiled DAG as text or Graphviz dot.

use crate::cli::{GraphArgs, GraphFormat};
use pgdeploy_core::exit::Exit;
use pgdeploy_engine::compile::{to_dot, to_text};

/// `json`: errors as JSON objects on stdout, as `validate --json` prints them.
pub(crate) fn run(args: &GraphArgs, json: bool) -> anyhow::Result<Exit> {
    let loaded = match super::load(&args.run) {
        Ok(l) => l,
        Err(diags) => {
            super::report_as(&diags.sorted(), json);
            return Ok(Exit::Error);
        }
    };
    super::report(&loaded.compiled.warnings);
    // Task names and hosts only, but a name may quote a secret as any text may.
    let text = match args.format {
        GraphFormat::Text => to_text(&loaded.compiled),
        GraphFormat::Dot => to_dot(&loaded.compiled.graph),
    };
    pgdeploy_core::out!("{}", loaded.redactor.mask(&text));
    Ok(Exit::Success)
}
