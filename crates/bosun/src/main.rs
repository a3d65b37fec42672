//! The `bosun` binary: parses the command line and dispatches to the library
//! crates. No logic lives here beyond wiring; each subcommand has its own
//! module under `cmd/`.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    cmd::init_logging(cli.verbose);
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            // One line on stderr, like every tool people already know.
            eprintln!("bosun: {}", cmd::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
