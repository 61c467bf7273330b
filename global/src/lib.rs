//! `weft-global`: the global control plane. Holds meshes and policies, serves the
//! REST API; later the KDS server that syncs zones (see docs/architecture.md).

pub mod config;
pub mod kds;

use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use weft_shared::api::{AdminToken, Mode};
use weft_shared::server::{self, ServerError};
use weft_shared::shutdown::CancellationToken;
use weft_shared::store::ResourceStore;

pub use config::GlobalConfig;

/// A running global: its real addresses and handles, for `main` and for tests.
pub struct Bound {
    pub api_address: SocketAddr,
    pub token: AdminToken,
    pub store: Arc<dyn ResourceStore>,
    api: server::ApiServer,
}

/// Opens the data dir, creates the default mesh on first start and binds every
/// listener (port 0 works). Everything runs until `shutdown` fires.
pub async fn build(
    config: GlobalConfig,
    shutdown: CancellationToken,
) -> Result<Bound, ServerError> {
    let data = server::open_data_dir(&config.common).await?;
    if data.fresh && config.common.default_mesh {
        server::ensure_default_mesh(data.store.as_ref()).await?;
    }
    // Global has nothing to wait for before it can serve.
    let (_ready_tx, ready) = watch::channel(true);
    let api = server::serve_api(
        &config.common,
        Mode::Global,
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
