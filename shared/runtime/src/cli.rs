//! What every binary's `main` does around its own `build`: parse the command
//! line (usage errors exit 64), start telemetry, run until a signal, drain within
//! the deadline, and turn the outcome into an exit code.

use crate::config::{CommonConfig, ConfigError, EXIT_USAGE};
use crate::shutdown::{self, CancellationToken, DRAIN_DEADLINE};
use crate::supervise::BoxError;
use clap::{CommandFactory, FromArgMatches};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

/// Parses argv; `--help` / `--version` print and exit 0, usage errors exit 64.
pub fn parse<C: CommandFactory + FromArgMatches>() -> Result<C, ExitCode> {
    let result = C::command()
        .try_get_matches()
        .and_then(|m| C::from_arg_matches(&m));
    result.map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_USAGE as u8)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The clap definition of subcommand `name` of `C` (for config-file key checks).
pub fn subcommand<C: CommandFactory>(name: &str) -> clap::Command {
    C::command()
        .find_subcommand(name)
        .cloned()
        .unwrap_or_default()
}

/// Reports a bad setting and gives exit code 64.
pub fn usage_error(bin: &str, e: &ConfigError) -> ExitCode {
    eprintln!("{bin}: {e}");
    ExitCode::from(EXIT_USAGE as u8)
}

/// A started component set: the line to print once bound, and a future that
/// completes when everything has stopped.
pub struct Started {
    pub ready_line: String,
    pub done: Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>,
}

impl Started {
    /// Announces `ready_line` and runs until `done` completes.
    pub fn new<D, E>(ready_line: String, done: D) -> Self
    where
        D: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Started {
            ready_line,
            done: Box::pin(async move { done.await.map_err(Into::into) }),
        }
    }
}

/// Runs the `run` subcommand of a server binary: a bad setting exits 64;
/// otherwise telemetry (from the config's common section), runtime, `start`,
/// then wait for a signal or a failure; on a signal, cancel and give the drain
/// [`DRAIN_DEADLINE`].
pub fn run_server<C, F, Fut, E>(
    bin: &'static str,
    config: Result<C, ConfigError>,
    start: F,
) -> ExitCode
where
    C: AsRef<CommonConfig> + Debug,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<Started, E>>,
    E: std::fmt::Display,
{
    let config = match config {
        Ok(c) => c,
        Err(e) => return usage_error(bin, &e),
    };
    let common = config.as_ref();
    crate::telemetry::init(common.log_format, &common.log_level);
    tracing::info!(config = ?config, "starting {bin}");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{bin}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Before anything is announced: a SIGTERM right after the ready line drains.
        let mut signals = shutdown::Signals::install();
        let token = CancellationToken::new();
        let mut started = match start(config, token.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "{bin} failed to start");
                return ExitCode::FAILURE;
            }
        };
        // One line on stdout that scripts and the testbed read.
        println!("{}", started.ready_line);
        tracing::info!("{}", started.ready_line);
        tokio::select! {
            () = signals.recv() => {}
            res = &mut started.done => return outcome(bin, res),
        }
        token.cancel();
        match tokio::time::timeout(DRAIN_DEADLINE, started.done).await {
            Ok(res) => outcome(bin, res),
            Err(_) => {
                tracing::warn!(deadline = ?DRAIN_DEADLINE, "{bin}: drain did not finish in time, exiting");
                ExitCode::FAILURE
            }
        }
    })
}

fn outcome(bin: &str, res: Result<(), BoxError>) -> ExitCode {
    match res {
        Ok(()) => {
            tracing::info!("{bin} stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{bin} stopped on an error");
            ExitCode::FAILURE
        }
    }
}
