//! `weft-dp`: the dataplane agent. `weft-dp run` reads a Dataplane (Kuma universal
//! format) and a dataplane token, asks the zone for Envoy's bootstrap
//! (`POST /bootstrap`, retried while the zone is not ready), writes it to a private
//! temp dir, runs Envoy with it and exits with Envoy's status. On SIGINT / SIGTERM
//! it first leaves the mesh (`POST /bootstrap/leave`: other proxies stop sending
//! to it), lets Envoy drain for `--drain-time`, then forwards the signal. Before Envoy starts it opens the access-log sink (a unix socket in that
//! dir, named in the bootstrap request) that MeshAccessLog TCP backends log through.
//!
//! - [`config`]: flags and their `WEFT_*` env vars.
//! - [`client`]: the bootstrap request.
//! - [`envoy`]: finding and running Envoy.
//! - [`sink`] (+ [`msgpack`]): the access-log sink.
//! - [`admin_relay`]: the zone's way to Envoy's admin (loopback only), while Envoy runs.

pub mod admin_relay;
pub mod client;
pub mod config;
pub mod envoy;
pub mod msgpack;
pub mod sink;

use std::process::ExitStatus;
use tokio::signal::unix::{SignalKind, signal};

pub use config::{DpConfig, RunArgs};

#[derive(Debug, thiserror::Error)]
pub enum DpError {
    #[error(transparent)]
    Fetch(#[from] client::FetchError),
    #[error(transparent)]
    Envoy(#[from] envoy::EnvoyError),
    #[error(transparent)]
    Sink(#[from] sink::SinkError),
    #[error("interrupted by {0} before Envoy started")]
    Interrupted(&'static str),
}

/// Fetches the bootstrap and runs Envoy until it exits; its exit status.
pub async fn run(cfg: DpConfig) -> Result<ExitStatus, DpError> {
    tracing::info!(config = ?cfg, "weft-dp starting");
    let mut interrupt = signal(SignalKind::interrupt()).map_err(envoy::EnvoyError::Signal)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(envoy::EnvoyError::Signal)?;
    let dir = envoy::BootstrapDir::new(&cfg.name)?;
    let sink = sink::Sink::start(&dir.path().join("al.sock"))?;
    let bootstrap = tokio::select! {
        b = client::fetch_bootstrap(&cfg, Some(sink.path())) => b?,
        _ = interrupt.recv() => return Err(DpError::Interrupted("SIGINT")),
        _ = terminate.recv() => return Err(DpError::Interrupted("SIGTERM")),
    };
    drop((interrupt, terminate));
    tracing::info!(
        dataplane = %format!("{}.{}", cfg.mesh, cfg.name),
        admin_port = cfg.admin_port,
        "got the bootstrap from the zone"
    );
    let path = dir.write_bootstrap(&bootstrap)?;
    let leave = async {
        match client::leave(&cfg).await {
            Ok(()) => tracing::info!("left the mesh: other proxies stop sending here"),
            Err(e) => {
                tracing::warn!(error = %e, "could not tell the zone this proxy leaves; it notices once the stream closes")
            }
        }
    };
    let run = envoy::EnvoyRun {
        bin: cfg.envoy_bin.clone(),
        bootstrap: path,
        log_level: cfg.envoy_log_level.clone(),
        drain_time: cfg.drain_time,
    };
    let envoy = envoy::run(&run, leave);
    // The zone's way to Envoy's admin, for as long as Envoy runs.
    let status = tokio::select! {
        status = envoy => status?,
        never = admin_relay::run(cfg.clone()) => match never {},
    };
    tracing::info!(
        %status,
        access_log_lines = sink.stats().forwarded.load(std::sync::atomic::Ordering::Relaxed),
        access_log_dropped = sink.stats().dropped.load(std::sync::atomic::Ordering::Relaxed),
        "Envoy exited"
    );
    drop(sink);
    drop(dir);
    Ok(status)
}
