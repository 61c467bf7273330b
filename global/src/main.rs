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
        Command::Run(args) => {
            let config = match args.resolve(&cli::subcommand::<Cli>("run")) {
                Ok(c) => c,
                Err(e) => return cli::usage_error("weft-global", &e),
            };
            let log = (config.common.log_format, config.common.log_level.clone());
            cli::run_server(
                "weft-global",
                (log.0, &log.1),
                &config.clone(),
                |shutdown| async move {
                    let bound = weft_global::build(config, shutdown).await?;
                    Ok::<_, weft_api::server::ServerError>(cli::Started {
                        ready_line: format!(
                            "weft-global ready api={} kds={}",
                            bound.api_address, bound.kds_address
                        ),
                        done: Box::pin(async move { Ok(bound.wait().await?) }),
                    })
                },
            )
        }
    }
}
