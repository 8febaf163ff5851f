//! pgdeploy: the engine and its command line.
pub mod lab;
pub mod transport;
