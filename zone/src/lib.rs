//! `weft-zone`: a zone control plane. Keeps its own store and serves the REST API,
//! standalone or federated with a global (the KDS client keeps its store in sync
//! with global's meshes and policies), and serves xDS to Envoy proxies ([`xds`]) —
//! see docs/architecture.md.

pub mod admission;
pub mod bootstrap;
pub mod config;
pub mod envoy_admin;
mod follow;
pub mod identity;
pub mod ingress;
pub mod inspect;
pub mod kds;
pub mod meshservice;
pub mod tokens;
pub mod xds;

/// HTTP/2 keepalive on the KDS connection: a dead or half-open global is noticed
/// within twice this.
pub const KDS_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(10);

use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_api::server::{self, ServerError};
use weft_api::{AdminToken, ExtraRoutes, Mode};
use weft_runtime::health::Health;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::supervise::{Backoff, ComponentError, Control, Supervisor};
use weft_store::ResourceStore;

pub use config::ZoneConfig;

/// The zone components that keep derived resources current from the store
/// ([`follow`]): spawned alike, each with the store and the zone's name.
#[derive(Clone, Copy)]
enum Follower {
    /// The available services of the zone's ingresses.
    Ingress,
    /// The MeshServices generated from the zone's Dataplanes.
    MeshServices,
}

impl Follower {
    async fn run(
        self,
        store: Arc<dyn weft_store::ResourceStore>,
        zone: String,
        reporter: weft_runtime::health::Reporter,
    ) {
        match self {
            Follower::Ingress => ingress::run(store, zone, reporter).await,
            Follower::MeshServices => meshservice::run(store, zone, reporter).await,
        }
    }
}

/// The names the zone's components run under (logs, `/ready`, exit messages).
pub mod component {
    pub const API: &str = "REST API";
    pub const XDS: &str = "xDS server";
    pub const XDS_CACHE: &str = "xDS cache";
    pub const XDS_REBUILDER: &str = "xDS rebuilder";
    pub const KDS: &str = "KDS client";
    pub const IDENTITIES: &str = "mesh identities";
    pub const AVAILABLE_SERVICES: &str = "available services";
    pub const DATAPLANE_INSIGHTS: &str = "dataplane insights";
    pub const MESH_SERVICES: &str = "MeshService generator";
}

/// The zone name templates see (`{{ .Zone }}`) when a standalone zone has none.
pub const DEFAULT_ZONE_NAME: &str = "default";

/// How long `build` waits for the components that only read the local store.
pub const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// Every component's health (what `/ready` shows).
    pub health: Health,
    /// Aborts a component as a crash would (fault drills, tests).
    pub control: Control,
    components: Supervisor,
}

/// Opens the data dir, creates the default mesh on first start (standalone
/// zones own their meshes) and binds every listener (port 0 works); then runs,
/// supervised, the REST API, the xDS server and cache and, when federated, the KDS
/// client, until `shutdown` fires or a component fails.
pub async fn build(config: ZoneConfig, shutdown: CancellationToken) -> Result<Bound, ServerError> {
    build_with(config, server::no_layer(), shutdown).await
}

/// [`build`], with every component using the store through `layer` (tests wrap it
/// in a `FaultyStore` to break it under a running control plane).
pub async fn build_with(
    config: ZoneConfig,
    layer: server::StoreLayer,
    shutdown: CancellationToken,
) -> Result<Bound, ServerError> {
    let mut data = server::open_data_dir(&config.common).await?;
    data.store = layer(data.store);
    let federated = config.federation.is_some();
    // A federated zone gets its meshes from global.
    if data.fresh && config.common.default_mesh && !federated {
        server::ensure_default_mesh(data.store.as_ref()).await?;
    }
    let health = Health::default();
    let mut registry = Registry::default();
    let kuma_zone = weft_runtime::kuma_metrics::zone_label(config.zone.as_deref(), false);
    let kds_metrics = weft_sync::kds::metrics::KdsMetrics::new(
        &mut registry,
        weft_sync::kds::metrics::Side::Zone(config.zone.clone()),
    );
    let mut components = Supervisor::new(shutdown.clone(), health.clone());
    let mut serves_from_store = false;
    // Envoy admin of this zone's proxies, through their weft-dp (decision 0015).
    let relay = envoy_admin::Relay::new(data.store.clone());
    if let (Some(fed), Some(zone)) = (&config.federation, &config.zone) {
        let global = fed
            .global
            .parse()
            .map_err(
                |e: tonic::codegen::http::uri::InvalidUri| ServerError::Setup {
                    what: "KDS client",
                    source: format!("--global-address {:?}: {e}", fed.global).into(),
                },
            )?;
        let client_config = kds::KdsClientConfig {
            zone: zone.clone(),
            global,
            token: fed.token.clone(),
            trust: fed.trust.clone(),
        };
        let client = kds::KdsClient::new(client_config.clone(), data.store.clone())
            .await
            .map_err(|source| ServerError::Store {
                path: config.common.data_dir.display().to_string(),
                source,
            })?;
        // A zone that holds a sync from before serves it from the start.
        serves_from_store = client.readiness().borrow().ready;
        let (store, stop, relay) = (data.store.clone(), shutdown.clone(), relay.clone());
        let mut first = Some(client);
        // Serves once its store holds a complete sync from global (from before a
        // restart too); the client's readiness is this component's health.
        components.spawn_restarting(component::KDS, Backoff::default(), move |reporter| {
            let (first, config, store, stop, metrics, relay) = (
                first.take(),
                client_config.clone(),
                store.clone(),
                stop.clone(),
                kds_metrics.clone(),
                relay.clone(),
            );
            async move {
                let client = match first {
                    Some(c) => c,
                    None => kds::KdsClient::new(config, store).await?,
                }
                .with_metrics(metrics)
                .with_admin(relay);
                let mut readiness = client.readiness();
                let report = async {
                    loop {
                        let now = readiness.borrow_and_update().clone();
                        match (now.ready, now.degraded) {
                            (true, false) => reporter.ready_with(now.reason),
                            (true, true) => reporter.degraded(now.reason),
                            (false, _) => reporter.starting(now.reason),
                        }
                        if readiness.changed().await.is_err() {
                            return;
                        }
                    }
                };
                tokio::join!(client.run(stop), report);
                Ok::<_, weft_store::StoreError>(())
            }
        });
    }
    let mode = Mode::Zone {
        name: config.zone.clone(),
        federated,
    };
    let admission = admission::Admission::from_data_dir(
        &config.common.data_dir,
        data.token.clone(),
        config.zone.as_deref().unwrap_or(DEFAULT_ZONE_NAME),
    )
    .map_err(ServerError::setup("dataplane tokens"))?;
    let (xds, serving_xds) = xds::start(
        &config.xds,
        &config.common.data_dir,
        data.store.clone(),
        xds::admit_with(Arc::new(admission.clone())),
        xds::default_generator(),
        xds::metrics::XdsMetrics::new(&mut registry, &kuma_zone),
        shutdown.clone(),
    )
    .await?;
    let bootstrap_params = bootstrap::BootstrapParams::from_bound(
        xds.endpoint.address,
        Some(xds.endpoint.ca_pem.clone()),
    );
    let mut authenticated = axum::Router::new()
        .merge(xds::insight::trust_routes(xds.cache.clone()))
        .merge(inspect::routes())
        .merge(envoy_admin::api::routes(relay.clone()));
    if let Some(tokens) = admission.tokens() {
        let zone = config.zone.as_deref().unwrap_or(DEFAULT_ZONE_NAME);
        authenticated = authenticated.merge(tokens::api::routes(tokens.clone(), zone));
    }
    let live = xds.insights.clone();
    let extra = ExtraRoutes {
        authenticated,
        open: bootstrap::routes(bootstrap_params, admission.clone())
            .merge(envoy_admin::relay_api::routes(relay, admission)),
        hooks: weft_api::Hooks {
            zone_connected: None,
            live: Some(Arc::new(move |key: &weft_model::resource::ResourceKey| {
                live.live(key)
            })),
            config: Some(config.to_display()),
        },
    };
    let api = server::serve_api(
        &config.common,
        mode,
        &data,
        health.clone(),
        registry,
        extra,
        shutdown.clone(),
    )
    .await?;

    components.spawn(component::API, api.serve);
    components.spawn(component::XDS, serving_xds);
    let (cache, stop) = (xds.cache.clone(), shutdown.clone());
    components.spawn_restarting(component::XDS_CACHE, Backoff::default(), move |reporter| {
        let (cache, stop) = (cache.clone(), stop.clone());
        async move {
            tokio::select! {
                () = cache.follow(reporter) => {}
                () = stop.cancelled() => {}
            }
            Ok::<_, ServerError>(())
        }
    });
    // MeshIdentity CAs of this zone, and the MeshTrusts it publishes.
    let zone_cas = identity::ZoneCas::new(
        &config.common.data_dir,
        config.zone.as_deref().unwrap_or(DEFAULT_ZONE_NAME),
    );
    zone_cas.notify(xds.cache.dirty_sender());
    xds.cache.set_zone_cas(zone_cas.clone());
    let (store, stop) = (data.store.clone(), shutdown.clone());
    components.spawn_restarting(component::IDENTITIES, Backoff::default(), move |reporter| {
        let (cas, store, stop) = (zone_cas.clone(), store.clone(), stop.clone());
        async move {
            tokio::select! {
                () = cas.run(store, reporter) => {}
                () = stop.cancelled() => {}
            }
            Ok::<_, ServerError>(())
        }
    });
    // What this zone's ingresses offer other zones, and the MeshServices
    // generated from its Dataplanes (both reported to global, which fans them out
    // to the other zones), kept current on events.
    let zone_name = config
        .zone
        .clone()
        .unwrap_or_else(|| DEFAULT_ZONE_NAME.into());
    for (name, run) in [
        (component::AVAILABLE_SERVICES, Follower::Ingress),
        (component::MESH_SERVICES, Follower::MeshServices),
    ] {
        let (store, stop, zone) = (data.store.clone(), shutdown.clone(), zone_name.clone());
        components.spawn_restarting(name, Backoff::default(), move |reporter| {
            let (store, stop, zone) = (store.clone(), stop.clone(), zone.clone());
            async move {
                tokio::select! {
                    () = run.run(store, zone, reporter) => {}
                    () = stop.cancelled() => {}
                }
                Ok::<_, ServerError>(())
            }
        });
    }
    // The proxies' subscriptions, persisted (and reported to global).
    let (cache, store, stop) = (xds.cache.clone(), data.store.clone(), shutdown.clone());
    components.spawn_restarting(
        component::DATAPLANE_INSIGHTS,
        Backoff::default(),
        move |reporter| {
            let (cache, store, stop) = (cache.clone(), store.clone(), stop.clone());
            async move {
                tokio::select! {
                    () = cache.presence().run(store, reporter) => {}
                    () = stop.cancelled() => {}
                }
                Ok::<_, ServerError>(())
            }
        },
    );
    let (cache, stop) = (xds.cache, shutdown);
    components.spawn_restarting(
        component::XDS_REBUILDER,
        Backoff::default(),
        move |reporter| {
            let (cache, stop) = (cache.clone(), stop.clone());
            async move {
                reporter.ready();
                tokio::select! {
                    () = cache.rebuild_loop() => {}
                    () = stop.cancelled() => {}
                }
                Ok::<_, ServerError>(())
            }
        },
    );
    // Serve once the xDS cache holds the store (a broken store is reported on
    // /ready after this wait). The KDS client only when the store holds a sync:
    // a zone that never synced may wait for global for long.
    let mut local = vec![
        component::XDS_CACHE,
        component::XDS_REBUILDER,
        component::MESH_SERVICES,
    ];
    if serves_from_store {
        local.push(component::KDS);
    }
    if !health.until_serving(&local, STARTUP_WAIT).await {
        tracing::warn!(blocker = ?health.blocker(), "starting although not every component is ready");
    }
    Ok(Bound {
        api_address: api.address,
        xds_address: xds.endpoint.address,
        xds: xds.endpoint,
        xds_insights: xds.insights,
        token: data.token,
        store: data.store,
        health,
        control: components.control(),
        components,
    })
}

impl Bound {
    /// The xDS CA certificate (PEM) that bootstraps embed.
    pub fn xds_ca_pem(&self) -> &str {
        &self.xds.ca_pem
    }

    /// Waits until every component has stopped: after shutdown (`Ok`), or after
    /// the first one that ended unexpectedly, which the error names.
    pub async fn wait(self) -> Result<(), ComponentError> {
        self.components.wait().await
    }
}
