//! Where output goes (PRODUCT.md §1): results on stdout, written through [`stdout`] so a
//! reader that went away (`| head`) ends the command quietly instead of a panic; errors,
//! warnings, logs and progress on stderr, written through [`stderr`] (never `eprintln!`,
//! which panics when stderr is closed). Colour is decided per stream ([`color`]).

pub mod color;
pub mod diagnostics;
pub mod stderr;
pub mod stdout;

pub use color::{color, progress_on_stderr, Stream};
pub use stderr::{set_stderr_color, stderr_closed, stderr_color, write_err};
pub use stdout::{stdout_closed, stdout_error, write};

/// `print!` through [`write`]: never panics on a closed stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(&format!($($arg)*))
    };
}

/// `println!` through [`write`]: never panics on a closed stdout.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write(&format!("{}\n", format!($($arg)*)))
    };
}

/// `eprintln!` through [`write_err`]: never panics on a closed stderr.
#[macro_export]
macro_rules! eoutln {
    () => {
        $crate::output::write_err("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write_err(&format!("{}\n", format!($($arg)*)))
    };
}
