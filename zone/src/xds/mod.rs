//! The zone's xDS side: configuration generation for Envoy ([`generate`]) and the
//! ADS server that delivers it ([`server`]: SotW and delta over TLS, per-proxy
//! snapshots kept current by [`cache`], DataplaneInsight in [`insight`]).
//! See docs/architecture.md and docs/decisions/0006-xds-transport.md.

pub mod cache;
pub mod generate;
pub mod identity;
pub mod insight;
mod intern;
pub mod metrics;
pub mod node;
pub mod presence;
pub mod server;
pub mod sotw;
pub mod stream;
pub mod tls;

use crate::config::XdsSettings;
use std::path::Path;
use std::sync::Arc;
use weft_api::server::ServerError;
use weft_runtime::shutdown::CancellationToken;
use weft_store::ResourceStore;
use weft_sync::delta::SenderConfig;

pub use cache::{Cache, CacheConfig, Generator, default_generator};
pub use insight::Insights;
pub use server::{Admit, XdsEndpoint, XdsServer, admit_with};

/// Loads (or creates) the xDS TLS material in `data_dir`, creates the snapshot
/// cache on `store` and binds ADS on `settings.address`. Nothing runs until the
/// caller runs the returned [`weft_api::server::ServeFuture`] and the cache's `follow` and
/// `rebuild_loop`.
pub async fn start(
    settings: &XdsSettings,
    data_dir: &Path,
    store: Arc<dyn ResourceStore>,
    admit: Admit,
    generator: Generator,
    metrics: metrics::XdsMetrics,
    shutdown: CancellationToken,
) -> Result<(XdsServer, weft_api::server::ServeFuture), ServerError> {
    let tls =
        tls::load_xds_tls(data_dir, settings.address).map_err(ServerError::setup("xDS TLS"))?;
    let cache = Cache::new(
        store.clone(),
        generator,
        CacheConfig {
            grace: settings.dataplane_grace,
            ..CacheConfig::default()
        },
        metrics.clone(),
    );
    let context = server::AdsContext {
        store,
        cache,
        admit,
        metrics,
        sender: SenderConfig::envoy(),
        shutdown,
    };
    server::serve(settings.address, &tls, context).await
}
