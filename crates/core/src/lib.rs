//! pgdeploy's core: the vocabulary the engine and the modules share.
//!
//! The module contract ([`module`]: `Module`, `Action`, `HostContext`), the [`transport`]
//! trait modules reach hosts through (its SSH implementation is the `pgdeploy-ssh` crate, which
//! modules cannot name), and what both sides read and print: the inventory, templates,
//! positioned YAML, diagnostics, secrets and their masking, output streams, exit codes.
//! Nothing here names a module or opens a connection.

// Everything on stderr goes through `pgdeploy_core::output` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

pub mod atomic_file;
pub mod change;
pub mod diag;
pub mod exit;
pub mod inputs;
pub mod inventory;
pub mod limits;
pub mod locator;
pub mod module;
pub mod output;
pub mod params;
pub mod secrets;
pub mod template;
pub mod transport;
pub mod vault;
pub mod yaml;
