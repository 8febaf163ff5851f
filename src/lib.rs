//! pgdeploy: the engine and its command line.
pub mod bench;
pub mod catalogue;
pub mod change;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod diag;
pub mod exit;
pub mod inventory;
pub mod module;
pub mod params;
pub mod playbook;
pub mod run;
pub mod secrets;
pub mod template;
pub mod transport;
pub mod yaml;
