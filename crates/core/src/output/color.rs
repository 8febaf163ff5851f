//! Colour and progress, decided for each stream on its own: results piped to a file stay
//! plain while the terminal's stderr may still be coloured, and the other way round.
//!
//! Colour, first rule that applies: `--no-color` → none; `NO_COLOR` set and not empty → none;
//! `CLICOLOR_FORCE` set and not `0` → colour; `CLICOLOR=0` → none; otherwise colour when the
//! stream is a terminal and `TERM` is set and not `dumb`. The progress bar needs a terminal
//! that can redraw a line: stderr a terminal, `TERM` set and not `dumb`.

use std::ffi::OsString;
use std::io::IsTerminal;

/// An output stream of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// Whether text written to `stream` is coloured; `no_color` is the `--no-color` flag.
pub fn color(stream: Stream, no_color: bool) -> bool {
    decide(no_color, |k| std::env::var_os(k), stream.is_terminal())
}

/// Whether a progress bar is drawn on stderr.
pub fn progress_on_stderr() -> bool {
    std::io::stderr().is_terminal() && term_can_draw(|k| std::env::var_os(k))
}

fn term_can_draw(env: impl Fn(&str) -> Option<OsString>) -> bool {
    env("TERM").is_some_and(|t| !t.is_empty() && t != "dumb")
}

/// The rules of the module documentation, over an environment lookup (tests give their own).
fn decide(no_color: bool, env: impl Fn(&str) -> Option<OsString>, terminal: bool) -> bool {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if no_color || set("NO_COLOR").is_some() {
        false
    } else if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        true
    } else if set("CLICOLOR").is_some_and(|v| v == "0") {
        false
    } else {
        terminal && term_can_draw(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn a_terminal_with_a_real_term_is_coloured() {
        assert!(decide(false, env(&[("TERM", "xterm")]), true));
        assert!(!decide(false, env(&[("TERM", "xterm")]), false));
    }

    #[test]
    fn dumb_or_missing_term_is_plain() {
        assert!(!decide(false, env(&[("TERM", "dumb")]), true));
        assert!(!decide(false, env(&[]), true));
    }

    #[test]
    fn the_flag_and_no_color_win_over_everything() {
        let forced = env(&[("TERM", "xterm"), ("CLICOLOR_FORCE", "1")]);
        assert!(!decide(true, forced, true));
        let both = env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]);
        assert!(!decide(false, both, true));
        // An empty NO_COLOR is as if unset (no-color.org).
        assert!(decide(
            false,
            env(&[("NO_COLOR", ""), ("TERM", "xterm")]),
            true
        ));
    }

    #[test]
    fn clicolor_force_colours_a_pipe_and_clicolor_0_turns_colour_off() {
        assert!(decide(false, env(&[("CLICOLOR_FORCE", "1")]), false));
        assert!(!decide(false, env(&[("CLICOLOR_FORCE", "0")]), false));
        assert!(!decide(
            false,
            env(&[("CLICOLOR", "0"), ("TERM", "xterm")]),
            true
        ));
    }
}
