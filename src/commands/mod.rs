//! One file per command. Each takes its parsed arguments and returns an exit code; errors
//! about the input are printed as diagnostics, other errors travel as `anyhow::Error`.

pub(crate) mod bench;
pub(crate) mod connect_all;
pub(crate) mod docs;
pub(crate) mod graph;
pub(crate) mod inventory;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod validate;
pub(crate) mod verify;

pub(crate) use pgdeploy_engine::load::{
    become_of, load_connected_inventory, load_inventory, report, report_as, Loaded,
};

use crate::cli::PlaybookArgs;

/// Loads and compiles what `args` name, with pgdeploy's module table.
pub(crate) fn load(args: &PlaybookArgs) -> Result<Loaded, pgdeploy_core::diag::Diagnostics> {
    pgdeploy_engine::load::load(&args.to_load())
}
