//! weftctl: Weft's command-line client, kumactl's commands for weft-global and
//! weft-zone. It talks only to their documented REST API (docs/api.md) with the
//! configured bearer token. `main.rs` parses the command line and calls [`run`].
//!
//! - [`cli`]: the commands and flags (kumactl's names).
//! - [`config`]: `~/.weftctl/config` (kumactl's shape, 0600).
//! - [`client`]: HTTP/1.1 over hyper, TLS by rustls, errors an operator can act on.
//! - [`types`]: resource types from the server's `GET /_resources`.
//! - [`manifest`]: what `apply -f` reads (files, directories, stdin, `{{ vars }}`).
//! - [`table`]: table output.
//! - `commands`: what each command does.

pub mod cli;
pub mod client;
mod commands;
pub mod config;
pub mod manifest;
mod session;
pub mod table;
pub mod types;

pub use session::{Error, Io};

/// Runs one command; what it prints goes to `io`.
pub async fn run(cli: cli::Cli, io: Io<'_>) -> Result<(), Error> {
    let mut session = session::Session::new(cli.global, io)?;
    commands::dispatch(&mut session, cli.command).await
}
