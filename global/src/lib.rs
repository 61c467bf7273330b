//! `weft-global`: the global control plane. Holds meshes and policies, serves the
//! REST API, issues and validates zone tokens, and serves KDS to zones (see
//! docs/architecture.md).

pub mod config;
pub mod envoy_admin;
pub mod insights;
pub mod inspect;
pub mod kds;
pub mod tls;
pub mod tokens;
pub mod zones;

use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_api::AdminToken;
use weft_api::Mode;
use weft_api::server::{self, ServerError};
use weft_runtime::health::Health;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::supervise::{Backoff, ComponentError, Control, Supervisor};
use weft_security::pki::KdsTls;
use weft_security::tokens::SystemClock;
use weft_store::ResourceStore;

pub use config::GlobalConfig;
pub use tokens::ZoneTokens;

/// The names global's components run under (logs, `/ready`, exit messages).
pub mod component {
    pub const API: &str = "REST API";
    pub const KDS: &str = "KDS server";
    pub const KDS_FEED: &str = "KDS feed";
    pub const REVOCATIONS: &str = "revocation follower";
    pub const ZONE_INSIGHTS: &str = "zone insight writer";
    pub const ZONES: &str = "zone follower";
    pub const ZONE_CLEANUP: &str = "offline zone cleanup";
}

/// How long `build` waits for the components that only read the local store.
pub const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// Every component's health (what `/ready` shows).
    pub health: Health,
    /// Aborts a component as a crash would (fault drills, tests).
    pub control: Control,
    components: Supervisor,
}

/// Opens the data dir, creates the default mesh on first start and binds every
/// listener (port 0 works). Everything runs, supervised, until `shutdown` fires or
/// a component fails.
pub async fn build(
    config: GlobalConfig,
    shutdown: CancellationToken,
) -> Result<Bound, ServerError> {
    build_with(config, server::no_layer(), shutdown).await
}

/// [`build`], with every component using the store through `layer` (tests wrap it
/// in a `FaultyStore` to break it under a running control plane).
pub async fn build_with(
    config: GlobalConfig,
    layer: server::StoreLayer,
    shutdown: CancellationToken,
) -> Result<Bound, ServerError> {
    let mut data = server::open_data_dir(&config.common).await?;
    data.store = layer(data.store);
    if data.fresh && config.common.default_mesh {
        server::ensure_default_mesh(data.store.as_ref()).await?;
    }
    let data_dir = &config.common.data_dir;
    let kds_tls = tls::load_kds_tls(config.kds_tls.as_ref(), data_dir)
        .map_err(ServerError::setup("KDS TLS certificate"))?;
    let zone_tokens = ZoneTokens::open(data_dir, kds_tls.ca_fingerprint(), Arc::new(SystemClock))
        .map_err(ServerError::setup("zone-token signing keys"))?;
    tokens::revocations::load_into(data.store.as_ref(), &zone_tokens)
        .await
        .map_err(ServerError::setup("zone-token revocation list"))?;
    let identity = kds::KdsIdentity {
        cert_chain_pem: kds_tls.cert_chain_pem().to_string(),
        key_pem: kds_tls.key_pem().expose().to_string(),
    };
    let insights = insights::ZoneInsights::default();
    let disabled = zones::Disabled::default();
    let mut registry = Registry::default();
    let kds = kds::serve(
        config.kds_address,
        identity,
        data.store.clone(),
        zone_tokens.clone(),
        insights.clone(),
        disabled.clone(),
        &mut registry,
        shutdown.clone(),
    )
    .await?;
    let health = Health::default();
    let connected = insights.clone();
    let extra = weft_api::ExtraRoutes {
        authenticated: axum::Router::new()
            .merge(tokens::api::routes(zone_tokens.clone()))
            .merge(insights::routes(insights.clone()))
            .merge(inspect::routes())
            .merge(envoy_admin::routes(envoy_admin::GlobalAdmin {
                store: data.store.clone(),
                streams: kds.admin.clone(),
                insights: insights.clone(),
            })),
        open: axum::Router::new(),
        hooks: weft_api::Hooks {
            zone_connected: Some(Arc::new(move |zone: &str| connected.is_connected(zone))),
            live: None,
            config: Some(config.to_display()),
        },
    };
    let api = server::serve_api(
        &config.common,
        Mode::Global,
        &data,
        health.clone(),
        registry,
        extra,
        shutdown.clone(),
    )
    .await?;

    let mut components = Supervisor::new(shutdown.clone(), health.clone());
    components.spawn(component::API, api.serve);
    components.spawn(component::KDS, kds.serve);
    let (feed, store, stop) = (kds.feed, data.store.clone(), shutdown.clone());
    components.spawn_restarting(component::KDS_FEED, Backoff::default(), move |reporter| {
        let (feed, store, stop) = (feed.clone(), store.clone(), stop.clone());
        async move {
            tokio::select! {
                () = feed.run(store, Some(reporter)) => {}
                () = stop.cancelled() => {}
            }
            Ok::<_, ServerError>(())
        }
    });
    let (tokens, store, stop) = (zone_tokens.clone(), data.store.clone(), shutdown.clone());
    components.spawn_restarting(
        component::REVOCATIONS,
        Backoff::default(),
        move |reporter| {
            let follow =
                tokens::revocations::follow(store.clone(), tokens.clone(), reporter, stop.clone());
            async move {
                follow.await;
                Ok::<_, ServerError>(())
            }
        },
    );
    let (store, stop, persisted) = (data.store.clone(), shutdown.clone(), insights.clone());
    components.spawn_restarting(
        component::ZONE_INSIGHTS,
        Backoff::default(),
        move |reporter| {
            let run = insights::persist(store.clone(), persisted.clone(), reporter, stop.clone());
            async move {
                run.await;
                Ok::<_, ServerError>(())
            }
        },
    );
    let (store, stop) = (data.store.clone(), shutdown.clone());
    components.spawn_restarting(component::ZONES, Backoff::default(), move |reporter| {
        let run = zones::follow(store.clone(), disabled.clone(), reporter, stop.clone());
        async move {
            run.await;
            Ok::<_, ServerError>(())
        }
    });
    if let Some(after) = config.zone_cleanup_after {
        let (store, stop, live) = (data.store.clone(), shutdown.clone(), insights.clone());
        components.spawn_restarting(
            component::ZONE_CLEANUP,
            Backoff::default(),
            move |reporter| {
                let run =
                    zones::cleanup(store.clone(), live.clone(), after, reporter, stop.clone());
                async move {
                    run.await;
                    Ok::<_, ServerError>(())
                }
            },
        );
    }
    // Serve once the local followers hold the store (a broken store is reported
    // on /ready after this wait).
    let local = [
        component::KDS_FEED,
        component::REVOCATIONS,
        component::ZONE_INSIGHTS,
        component::ZONES,
    ];
    if !health.until_serving(&local, STARTUP_WAIT).await {
        tracing::warn!(blocker = ?health.blocker(), "starting although not every component is ready");
    }
    Ok(Bound {
        api_address: api.address,
        token: data.token,
        store: data.store,
        zone_tokens,
        kds_tls,
        kds_address: kds.address,
        health,
        control: components.control(),
        components,
    })
}

impl Bound {
    /// Waits until every component has stopped: after shutdown (`Ok`), or after
    /// the first one that ended unexpectedly, which the error names.
    pub async fn wait(self) -> Result<(), ComponentError> {
        self.components.wait().await
    }
}
