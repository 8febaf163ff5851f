//! Temporary entry point for the lab branch: replaced by the real CLI when merged
use clap::Parser;

#[derive(Parser)]
#[command(name = "pgdeploy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Local lab of real Debian hosts
    #[command(subcommand)]
    Lab(pgdeploy::lab::LabCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Command::Lab(cmd) = cli.command;
    match pgdeploy::lab::run(cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
