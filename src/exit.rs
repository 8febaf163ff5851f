//! Exit codes, as documented: 0 success, 1 error, 2 changes or drift, 4 host unreachable.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Bad input, a failed task, or any other error.
    Error = 1,
    /// `check` (and `plan --detailed-exitcode`) found changes to make.
    Changes = 2,
    /// At least one host could not be reached.
    Unreachable = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
