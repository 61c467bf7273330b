//! `weft-zone`: a zone control plane. Keeps its own store and serves the REST API,
//! standalone or federated with a global (the KDS client keeps its store in sync
//! with global's meshes and policies), and serves xDS to Envoy proxies ([`xds`]) —
//! see docs/architecture.md.

pub mod admission;
pub mod bootstrap;
pub mod config;
pub mod dp;
pub mod inspect;
pub mod kds;
pub mod tokens;
pub mod xds;

/// HTTP/2 keepalive on the KDS connection: a dead or half-open global is noticed
/// within twice this.
pub const KDS_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(10);

use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use weft_shared::api::{AdminToken, ExtraRoutes, Mode, Readiness};
use weft_shared::server::{self, ServerError};
use weft_shared::shutdown::CancellationToken;
use weft_shared::store::ResourceStore;

pub use config::ZoneConfig;

/// A running zone: its real addresses and handles, for `main` and for tests.
pub struct Bound {
    pub api_address: SocketAddr,
    /// Where proxies connect for ADS (TLS).
    pub xds_address: SocketAddr,
    /// The xDS address and CA, for bootstraps.
    pub xds: xds::XdsEndpoint,
    /// Per-proxy ADS insights.
    pub xds_insights: xds::Insights,
    pub token: AdminToken,
    pub store: Arc<dyn ResourceStore>,
    api: server::ApiServer,
    kds: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
    xds_task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

/// Opens the data dir, creates the default mesh on first start (standalone
/// zones own their meshes), starts the KDS client when federated, and binds every
/// listener (port 0 works).
pub async fn build(config: ZoneConfig, shutdown: CancellationToken) -> Result<Bound, ServerError> {
    let data = server::open_data_dir(&config.common).await?;
    let federated = config.federation.is_some();
    // A federated zone gets its meshes from global.
    if data.fresh && config.common.default_mesh && !federated {
        server::ensure_default_mesh(data.store.as_ref()).await?;
    }
    // A standalone zone serves from its own store at once; a federated one once its
    // store holds a complete sync from global (from before a restart too).
    let (_standalone, mut ready) = watch::channel(Readiness::ready(
        "standalone zone: serving from its own store",
    ));
    let mut kds_task = None;
    if let (Some(fed), Some(zone)) = (&config.federation, &config.zone) {
        let global = fed
            .global
            .parse()
            .map_err(
                |e: tonic::codegen::http::uri::InvalidUri| ServerError::Serve {
                    what: "KDS client",
                    source: std::io::Error::other(e),
                },
            )?;
        let client = kds::KdsClientConfig {
            zone: zone.clone(),
            global,
            token: fed.token.clone(),
            trust: fed.trust.clone(),
        };
        let client = kds::KdsClient::new(client, data.store.clone())
            .await
            .map_err(|source| ServerError::Store {
                path: config.common.data_dir.display().to_string(),
                source,
            })?;
        ready = client.readiness();
        let shutdown = shutdown.clone();
        kds_task = Some(tokio::spawn(async move {
            client.run(shutdown).await;
            Ok(())
        }));
    }
    let mode = Mode::Zone {
        name: config.zone.clone(),
        federated,
    };
    let mut registry = Registry::default();
    let admission =
        admission::Admission::from_data_dir(&config.common.data_dir, data.token.clone())
            .map_err(ServerError::setup("dataplane tokens"))?;
    let xds = xds::start(
        &config.xds,
        &config.common.data_dir,
        data.store.clone(),
        xds::admit_with(Arc::new(admission.clone())),
        xds::default_generator(),
        &mut registry,
        shutdown.clone(),
    )
    .await?;
    let bootstrap_params = bootstrap::BootstrapParams::from_bound(
        xds.endpoint.address,
        Some(xds.endpoint.ca_pem.clone()),
    );
    let mut authenticated = axum::Router::new()
        .merge(xds::insight::routes(xds.insights.clone()))
        .merge(inspect::routes());
    if let Some(tokens) = admission.tokens() {
        authenticated = authenticated.merge(tokens::api::routes(tokens.clone()));
    }
    let extra = ExtraRoutes {
        authenticated,
        open: bootstrap::routes(bootstrap_params, admission),
    };
    let api = server::serve_api(
        &config.common,
        mode,
        &data,
        ready,
        registry,
        extra,
        shutdown,
    )
    .await?;
    Ok(Bound {
        api_address: api.address,
        xds_address: xds.endpoint.address,
        xds: xds.endpoint,
        xds_insights: xds.insights,
        xds_task: xds.task,
        token: data.token,
        store: data.store,
        api,
        kds: kds_task,
    })
}

impl Bound {
    /// The xDS CA certificate (PEM) that bootstraps embed.
    pub fn xds_ca_pem(&self) -> &str {
        &self.xds.ca_pem
    }

    /// Waits until every component has stopped (after shutdown, or on failure).
    pub async fn wait(self) -> Result<(), ServerError> {
        if let Some(kds) = self.kds {
            server::join("KDS client", kds).await?;
        }
        server::join("xDS", self.xds_task).await?;
        server::join("REST API", self.api.task).await
    }
}
