//! One file per command. Each takes its parsed arguments and returns an exit code; errors
//! about the input are printed as diagnostics, other errors travel as `anyhow::Error`.

pub mod bench;
pub mod connect_all;
pub mod docs;
pub mod graph;
pub mod inventory;
pub mod run;
pub mod status;
pub mod validate;
pub mod verify;

pub use pgdeploy_engine::load::{
    become_of, load_connected_inventory, load_inventory, report, report_as, Loaded,
};

use crate::cli::PlaybookArgs;

/// Loads and compiles what `args` name, with pgdeploy's module table.
pub fn load(args: &PlaybookArgs) -> Result<Loaded, pgdeploy_core::diag::Diagnostics> {
    pgdeploy_engine::load::load(&args.to_load())
}
