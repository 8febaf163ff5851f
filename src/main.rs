//! The `pgdeploy` binary: parse arguments, set up logging, run one command, exit.

use std::process::ExitCode;

use clap::Parser;

use pgdeploy::cli::{Cli, Command};
use pgdeploy::commands;
use pgdeploy::exit::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        .with_writer(pgdeploy::secrets::log_to_stderr)
        .with_ansi(!cli.no_color && std::env::var_os("NO_COLOR").is_none())
        .init();
    let color = !cli.no_color
        && std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let result = match &cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Inventory(args) => commands::inventory::run(args),
        Command::Graph(args) => commands::graph::run(args),
        Command::Apply(args) => commands::run::apply(args, cli.json, color),
        Command::Plan(args) => commands::run::plan(args, cli.json, color),
        Command::Check(args) => commands::run::check(args, cli.json, color),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Status(args) => commands::status::run(args, cli.json),
        Command::Lab(cmd) => {
            return match pgdeploy::lab::run(cmd.clone()) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    Exit::Error.into()
                }
            }
        }
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!(
                "error: {}",
                pgdeploy::secrets::mask_logged(&format!("{e:#}"))
            );
            Exit::Error.into()
        }
    }
}
