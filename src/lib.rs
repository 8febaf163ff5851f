//! pgdeploy: the engine and its command line.
pub mod transport;
pub mod diag;
pub mod yaml;
pub mod inventory;
