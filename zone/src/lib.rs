//! `weft-zone`: a zone control plane. Keeps its own store and serves the REST API;
//! runs standalone for now (the KDS client that federates it with a global, and
//! the xDS server for Envoy, come next — see docs/architecture.md).

pub mod config;

use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use weft_shared::api::{AdminToken, Mode};
use weft_shared::server::{self, ServerError};
use weft_shared::shutdown::CancellationToken;
use weft_shared::store::ResourceStore;

pub use config::ZoneConfig;

/// A running zone: its real addresses and handles, for `main` and for tests.
pub struct Bound {
    pub api_address: SocketAddr,
    pub token: AdminToken,
    pub store: Arc<dyn ResourceStore>,
    api: server::ApiServer,
}

/// Opens the data dir, creates the default mesh on first start (standalone
/// zones own their meshes) and binds every listener (port 0 works).
pub async fn build(config: ZoneConfig, shutdown: CancellationToken) -> Result<Bound, ServerError> {
    let data = server::open_data_dir(&config.common).await?;
    if data.fresh && config.common.default_mesh {
        server::ensure_default_mesh(data.store.as_ref()).await?;
    }
    // A standalone zone serves from its own store at once.
    let (_ready_tx, ready) = watch::channel(true);
    let mode = Mode::Zone {
        name: config.zone.clone(),
        federated: false,
    };
    let api = server::serve_api(
        &config.common,
        mode,
        &data,
        ready,
        Registry::default(),
        axum::Router::new(),
        shutdown,
    )
    .await?;
    Ok(Bound {
        api_address: api.address,
        token: data.token,
        store: data.store,
        api,
    })
}

impl Bound {
    /// Waits until every component has stopped (after shutdown, or on failure).
    pub async fn wait(self) -> Result<(), ServerError> {
        server::join("REST API", self.api.task).await
    }
}
