//! pgdeploy: the engine and its command line.
pub mod transport;
