//! The `pgdeploy` binary: [`pgdeploy::app::main`] does the work.

fn main() -> std::process::ExitCode {
    pgdeploy::app::main()
}
