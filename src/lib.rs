//! pgdeploy's command line: argument types, one file per command, the day-2 operations
//! (`ops`), `status`, `verify` and `bench`. The engine is `pgdeploy-engine`, the modules
//! `pgdeploy-modules`, what both share `pgdeploy-core`; this crate is where they meet.

// Everything on stderr goes through `output::stderr` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

pub mod app;
pub mod bench;
pub mod cli;
mod commands;
mod ops;
mod status;
mod verify;
