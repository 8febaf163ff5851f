//! The engine: load, compile, run.
//!
//! Invariant: the engine names no module. It gets the module table as a parameter
//! ([`load::LoadArgs::catalogue`]) and talks to modules only through the core's `Module` and
//! `Action`; this crate does not depend on `pgdeploy-modules` (its tests do, to run real
//! playbooks), so a `use` of a module here does not compile. It is the one place that opens
//! connections (`run::connect`, with `pgdeploy-ssh`).

// Everything on stderr goes through `pgdeploy_core::output` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

pub mod compile;
pub mod load;
pub mod playbook;
pub mod run;
