//! pgdeploy: the engine and its command line.

// Everything on stderr goes through `output::stderr` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

pub mod bench;
pub mod catalogue;
pub mod change;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod diag;
pub mod exit;
pub mod inputs;
pub mod inventory;
pub mod lab;
pub mod limits;
pub mod locator;
pub mod module;
pub mod ops;
pub mod output;
pub mod params;
pub mod playbook;
pub mod run;
pub mod secrets;
pub mod status;
pub mod template;
pub mod transport;
pub mod vault;
pub mod verify;
pub mod yaml;
