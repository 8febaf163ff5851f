//! The process: parse arguments, set up logging, run one command, exit (`src/main.rs` calls
//! [`main`]).

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands;
use pgdeploy_core::exit::Exit;
use pgdeploy_core::output::{self, Stream};

/// The whole run of `pgdeploy`, with its exit code.
pub fn main() -> ExitCode {
    pgdeploy_core::secrets::mask_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e).into(),
    };
    let level = match cli.verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PGDEPLOY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        // Log lines may hold command lines with secrets: masked once the inventory is loaded.
        // Through `output::stderr`, which never fails: the formatter reports a failed write
        // with `eprintln!`, which would panic on the same closed stderr.
        .with_writer(|| pgdeploy_core::secrets::LogWriter(output::stderr::Writer))
        .log_internal_errors(false)
        .with_ansi(output::color(Stream::Stderr, cli.no_color))
        .init();
    output::set_stderr_color(output::color(Stream::Stderr, cli.no_color));
    let color = output::color(Stream::Stdout, cli.no_color);
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(args, cli.json).map(ExitCode::from),
        Command::Inventory(args) => commands::inventory::run(args, cli.json).map(ExitCode::from),
        Command::Graph(args) => commands::graph::run(args, cli.json).map(ExitCode::from),
        Command::Apply(args) => commands::run::apply(args, cli.json, color).map(ExitCode::from),
        Command::Plan(args) => commands::run::plan(args, cli.json, color).map(ExitCode::from),
        Command::Check(args) => commands::run::check(args, cli.json, color).map(ExitCode::from),
        Command::Bench(cmd) => commands::bench::run(cmd).map(ExitCode::from),
        Command::Status(args) => commands::status::run(args, cli.json).map(ExitCode::from),
        Command::Verify(args) => commands::verify::run(args, cli.json).map(ExitCode::from),
        Command::Switchover(args) => {
            crate::ops::switchover::run(args, cli.json).map(ExitCode::from)
        }
        Command::Failover(args) => crate::ops::failover::run(args, cli.json).map(ExitCode::from),
        Command::Restart(args) => crate::ops::restart::run(args, cli.json).map(ExitCode::from),
        Command::Reinit(args) => crate::ops::reinit::run(args, cli.json).map(ExitCode::from),
        Command::Backup(args) => crate::ops::backup::run(args, cli.json).map(ExitCode::from),
        Command::Restore(args) => crate::ops::restore::run(args, cli.json).map(ExitCode::from),
        Command::Pause(args) => crate::ops::pause::run(args, true, cli.json).map(ExitCode::from),
        Command::Resume(args) => crate::ops::pause::run(args, false, cli.json).map(ExitCode::from),
        Command::Lab(cmd) => pgdeploy_lab::run(cmd.clone()),
        Command::Completions { shell } => commands::docs::completions(*shell).map(ExitCode::from),
        Command::Man => commands::docs::man().map(ExitCode::from),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            pgdeploy_core::eoutln!(
                "error: {}",
                pgdeploy_core::secrets::mask_logged(&format!("{e:#}"))
            );
            Exit::Error.into()
        }
    };
    if output::stdout_closed() {
        return Exit::StdoutClosed.into();
    }
    if let Some(e) = output::stdout_error() {
        pgdeploy_core::eoutln!("error: cannot write the output to stdout: {e}");
        return Exit::Error.into();
    }
    code
}

/// A command line clap refused: its message, and exit 64 (`--help` and `--version` are no
/// error: their text on stdout, exit 0).
fn usage(e: &clap::Error) -> Exit {
    if e.use_stderr() {
        // Not `e.print()`'s stream handling: through `output::stderr`, like every message.
        let text = e.render();
        if output::color(Stream::Stderr, false) {
            output::write_err(&text.ansi().to_string());
        } else {
            output::write_err(&text.to_string());
        }
        Exit::Usage
    } else {
        // `--help` through stdout, which may be a closed pipe (`--help | head`).
        let text = e.render();
        if output::color(Stream::Stdout, false) {
            output::write(&text.ansi().to_string());
        } else {
            output::write(&text.to_string());
        }
        if output::stdout_closed() {
            Exit::StdoutClosed
        } else {
            Exit::Success
        }
    }
}
