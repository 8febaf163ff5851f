//! Helpers the generic modules share: shell quoting, running commands with the task's
//! privilege, reading a path's state in one round trip, fixing owner/group/mode, and planning
//! a file's content (`copy`, `template`).

pub(crate) mod apt;
pub(crate) mod argspec;
pub(crate) mod attrs;
pub(crate) mod content;
pub(crate) mod exec;
pub(crate) mod hba;
pub(crate) mod hosts;
pub mod patroni_state;
pub(crate) mod pglift_objects;
pub(crate) mod pip;
pub(crate) mod postgres;
pub(crate) mod scram;
pub(crate) mod secret;
pub(crate) mod shell;
pub(crate) mod stat;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
pub(crate) mod probe_cover;
