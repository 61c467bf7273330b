//! `weft-dp`: parse flags, start telemetry, fetch the bootstrap, run Envoy, exit
//! with its status.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use weft_dp::{self as dp, DpError, RunArgs};
use weft_runtime::cli;

#[derive(Debug, Parser)]
#[command(
    name = "weft-dp",
    version,
    about = "Weft dataplane agent: runs Envoy for a Dataplane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get the bootstrap from the zone and run Envoy with it.
    Run(RunArgs),
}

fn main() -> ExitCode {
    let cli = match cli::parse::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Command::Run(args) = cli.command;
    let config = match args.resolve(&cli::subcommand::<Cli>("run")) {
        Ok(c) => c,
        Err(e) => return cli::usage_error("weft-dp", &e),
    };
    weft_runtime::telemetry::init(config.log_format, &config.log_level);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft-dp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dp::run(config)) {
        Ok(status) => exit_code(status),
        Err(DpError::Interrupted(sig)) => {
            eprintln!("weft-dp: interrupted by {sig} before Envoy started");
            ExitCode::from(if sig == "SIGINT" { 130 } else { 143 })
        }
        Err(e) => {
            eprintln!("weft-dp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Envoy's exit code; 128 + the signal when a signal ended it.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        _ => ExitCode::FAILURE,
    }
}
