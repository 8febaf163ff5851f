//! Exit codes, as documented: 0 success, 1 error, 2 changes or drift, 4 host unreachable,
//! 75 another apply holds a host, 64 command-line usage error (`EX_USAGE` of sysexits.h: never 2, which a CI job reads as
//! drift), 141 stdout closed early (what a shell reports for a process ended by `SIGPIPE`).
//! A closed stderr changes no exit code: it loses messages, not results (`output::stderr`).

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
    /// `apply` stopped before changing anything: another `pgdeploy apply` holds a host
    /// (`EX_TEMPFAIL` of sysexits.h: try again later).
    Busy = 75,
    /// The command line could not be parsed: an unknown flag, a missing argument.
    Usage = 64,
    /// The reader of stdout went away (`| head`): the command ended quietly, as if killed by
    /// `SIGPIPE` (128 + 13), without printing the rest; a run starts no new step.
    StdoutClosed = 141,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}
