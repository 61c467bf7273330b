//! `weft-global`: parse config, start telemetry, build, print the bound
//! addresses, wait for a signal, drain.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use weft_global::config::RunArgs;
use weft_global::tokens::cli::TokenCommand;
use weft_runtime::cli;

#[derive(Debug, Parser)]
#[command(name = "weft-global", version, about = "Weft global control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the global control plane.
    Run(RunArgs),
    /// Issue zone tokens and rotate their signing key (offline, from the data dir).
    #[command(subcommand)]
    Token(TokenCommand),
}

fn main() -> ExitCode {
    let cli = match cli::parse::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Token(command) => weft_global::tokens::cli::run(command),
        Command::Run(args) => cli::run_server(
            "weft-global",
            args.resolve(&cli::subcommand::<Cli>("run")),
            |config, shutdown| async move {
                let bound = weft_global::build(config, shutdown).await?;
                let ready_line = format!(
                    "weft-global ready api={} kds={}",
                    bound.api_address, bound.kds_address
                );
                Ok::<_, weft_api::server::ServerError>(cli::Started::new(ready_line, bound.wait()))
            },
        ),
    }
}
