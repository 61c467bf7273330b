//! `weft-global`: the global control plane. Holds meshes and policies, serves the
//! REST API, issues and validates zone tokens, and serves KDS to zones (see
//! docs/architecture.md).

pub mod config;
pub mod insights;
pub mod kds;
pub mod tls;
pub mod tokens;

use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_shared::api::{AdminToken, Mode};
use weft_shared::pki::KdsTls;
use weft_shared::server::{self, ServerError};
use weft_shared::shutdown::CancellationToken;
use weft_shared::store::ResourceStore;
use weft_shared::tokens::SystemClock;

pub use config::GlobalConfig;
pub use tokens::ZoneTokens;

/// A running global: its real addresses and handles, for `main` and for tests.
pub struct Bound {
    pub api_address: SocketAddr,
    pub token: AdminToken,
    pub store: Arc<dyn ResourceStore>,
    /// Zone tokens: `validate_for_zone` for the KDS server, revocation updates.
    pub zone_tokens: Arc<ZoneTokens>,
    /// The KDS server's certificate chain and key; zone tokens pin its CA.
    pub kds_tls: KdsTls,
    /// Where zones dial for KDS.
    pub kds_address: SocketAddr,
    api: server::ApiServer,
    kds: kds::KdsServer,
    revocation_sync: JoinHandle<()>,
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
    let data_dir = &config.common.data_dir;
    let kds_tls = tls::load_kds_tls(config.kds_tls.as_ref(), data_dir)
        .map_err(ServerError::setup("KDS TLS certificate"))?;
    let zone_tokens = ZoneTokens::open(data_dir, kds_tls.ca_fingerprint(), Arc::new(SystemClock))
        .map_err(ServerError::setup("zone-token signing keys"))?;
    let revocation_sync =
        tokens::spawn_revocation_sync(data.store.clone(), zone_tokens.clone(), shutdown.clone())
            .await
            .map_err(ServerError::setup("zone-token revocation list"))?;
    let identity = kds::KdsIdentity {
        cert_chain_pem: kds_tls.cert_chain_pem().to_string(),
        key_pem: kds_tls.key_pem().expose().to_string(),
    };
    let insights = insights::ZoneInsights::default();
    let kds = kds::serve(
        config.kds_address,
        identity,
        data.store.clone(),
        zone_tokens.clone(),
        insights.clone(),
        shutdown.clone(),
    )
    .await?;
    // Global has nothing to wait for before it can serve.
    let (_ready_tx, ready) = watch::channel(weft_shared::api::Readiness::ready("serving"));
    let extra = axum::Router::new()
        .merge(tokens::api::routes(zone_tokens.clone()))
        .merge(insights::routes(insights));
    let api = server::serve_api(
        &config.common,
        Mode::Global,
        &data,
        ready,
        Registry::default(),
        extra,
        shutdown,
    )
    .await?;
    Ok(Bound {
        api_address: api.address,
        token: data.token,
        store: data.store,
        zone_tokens,
        kds_tls,
        kds_address: kds.address,
        api,
        kds,
        revocation_sync,
    })
}

impl Bound {
    /// Waits until every component has stopped (after shutdown, or on failure).
    pub async fn wait(self) -> Result<(), ServerError> {
        let kds = server::join("KDS", self.kds.task).await;
        let api = server::join("REST API", self.api.task).await.and(kds);
        // It ends on shutdown; after a failure, stop it so the store can close.
        self.revocation_sync.abort();
        let _ = self.revocation_sync.await;
        api
    }
}
