//! Shared helpers for integration tests. Each test file does `mod support;` and uses what it
//! needs, so unused helpers are expected in some of them.
#![allow(dead_code)]

pub(crate) mod sshd;
