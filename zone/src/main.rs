//! `weft-zone`: parse config, start telemetry, build, print the bound
//! addresses, wait for a signal, drain.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use weft_runtime::cli;
use weft_zone::config::RunArgs;

#[derive(Debug, Parser)]
#[command(name = "weft-zone", version, about = "Weft zone control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a zone control plane.
    Run(RunArgs),
    /// Issue dataplane tokens (offline, from the data dir).
    #[command(subcommand)]
    Token(weft_zone::tokens::cli::TokenCommand),
}

fn main() -> ExitCode {
    let cli = match cli::parse::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Token(command) => weft_zone::tokens::cli::run(command),
        Command::Run(args) => cli::run_server(
            "weft-zone",
            args.resolve(&cli::subcommand::<Cli>("run")),
            |config, shutdown| async move {
                let bound = weft_zone::build(config, shutdown).await?;
                let ready_line = format!(
                    "weft-zone ready api={} xds={}",
                    bound.api_address, bound.xds_address
                );
                Ok::<_, weft_api::server::ServerError>(cli::Started::new(ready_line, bound.wait()))
            },
        ),
    }
}
