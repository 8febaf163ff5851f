//! Helpers the generic modules share: shell quoting, running commands with the task's
//! privilege, reading a path's state in one round trip, fixing owner/group/mode, and planning
//! a file's content (`copy`, `template`).

pub mod apt;
pub mod argspec;
pub mod attrs;
pub mod content;
pub mod exec;
pub mod hosts;
pub mod patroni_state;
pub mod pglift_objects;
pub mod pip;
pub mod postgres;
pub mod scram;
pub mod secret;
pub mod shell;
pub mod stat;

#[cfg(test)]
pub mod fake;
#[cfg(test)]
pub mod probe_cover;
