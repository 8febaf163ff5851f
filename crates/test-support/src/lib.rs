//! Test doubles for pgdeploy's unit tests. A dev-dependency only: nothing here reaches the
//! release binary.

pub mod memory;

pub use memory::MemoryTransport;
