//! What every control plane does at start: open its data dir (store + admin
//! token), create the `default` mesh on first start, and serve the REST API
//! until shutdown.

use crate::{AdminToken, ApiMetrics, ApiState, Mode};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use weft_model::resource::{Resource, ResourceType, Spec};
use weft_runtime::config::CommonConfig;
use weft_runtime::health::Health;
use weft_runtime::kuma_metrics;
use weft_runtime::shutdown::CancellationToken;
use weft_runtime::supervise::BoxError;
use weft_store::{ResourceStore, StoreError, WriteOp, sled_store::SledStore};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read or write the cluster id {path}: {source}")]
    ClusterId {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read or write the admin token in {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the store in {path}: {source}")]
    Store { path: String, source: StoreError },
    #[error("cannot create the default mesh: {0}")]
    DefaultMesh(StoreError),
    #[error("cannot listen on {addr} for the {what}: {source} (is another process using it?)")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the {what} server failed: {source}")]
    Serve {
        what: &'static str,
        source: std::io::Error,
    },
    /// A component could not be set up (keys, certificates, ...).
    #[error("cannot set up the {what}: {source}")]
    Setup {
        what: &'static str,
        #[source]
        source: BoxError,
    },
}

impl ServerError {
    /// [`ServerError::Setup`] from any error, kept as its source.
    pub fn setup<E: Into<BoxError>>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |e| ServerError::Setup {
            what,
            source: e.into(),
        }
    }
}

/// Wraps the store every component of a control plane uses: fault injection in
/// tests, instrumentation. [`no_layer`] leaves it as it is.
pub type StoreLayer = Box<dyn FnOnce(Arc<dyn ResourceStore>) -> Arc<dyn ResourceStore> + Send>;

/// The store as opened.
pub fn no_layer() -> StoreLayer {
    Box::new(|store| store)
}

/// A bound server's work: it serves until shutdown (run it as a supervised
/// component).
pub type ServeFuture = Pin<Box<dyn Future<Output = Result<(), ServerError>> + Send>>;

/// Binds `addr` for the `what` server; returns the listener and the address it
/// got (port 0 picks a free one).
pub async fn bind(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind { what, addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// The opened data dir.
pub struct DataDir {
    pub store: Arc<dyn ResourceStore>,
    pub token: AdminToken,
    /// Nothing had ever been written to the store before this start.
    pub fresh: bool,
}

/// Creates the data dir if needed and opens the sled store and admin token in it.
pub async fn open_data_dir(config: &CommonConfig) -> Result<DataDir, ServerError> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let token = AdminToken::load_or_create(dir).map_err(|source| ServerError::Token {
        path: dir.display().to_string(),
        source,
    })?;
    let store_dir = dir.join("store");
    let store = SledStore::open(&store_dir).map_err(|source| ServerError::Store {
        path: store_dir.display().to_string(),
        source,
    })?;
    let fresh = store
        .revision()
        .await
        .map_err(|source| ServerError::Store {
            path: store_dir.display().to_string(),
            source,
        })?
        == 0;
    Ok(DataDir {
        store: Arc::new(store),
        token,
        fresh,
    })
}

/// The name of the mesh created on first start.
pub const DEFAULT_MESH: &str = "default";

/// Creates the `default` mesh, as Kuma does on first start. Only on a fresh
/// store: a user who deleted it does not get it back on restart.
pub async fn ensure_default_mesh(store: &dyn ResourceStore) -> Result<(), ServerError> {
    let mesh = Resource::new(DEFAULT_MESH, None, Spec::Mesh(Default::default()));
    debug_assert_eq!(mesh.resource_type(), ResourceType::Mesh);
    match store.get(&mesh.key()).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(e) => return Err(ServerError::DefaultMesh(e)),
    }
    // The mesh and its default policies (Kuma 2.x) in one transaction.
    let ops = weft_model::rules::defaults::mesh_with_defaults(mesh)
        .map_err(|e| ServerError::DefaultMesh(StoreError::Corrupt(e.to_string())))?
        .into_iter()
        .map(WriteOp::Upsert)
        .collect();
    match store.transact(ops).await {
        Ok(_) => {
            tracing::info!(
                mesh = DEFAULT_MESH,
                "created the default mesh and its default policies"
            );
            Ok(())
        }
        Err(StoreError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(ServerError::DefaultMesh(e)),
    }
}

/// A bound API server: its address, and the future that serves it until
/// shutdown (run it as a supervised component).
pub struct ApiServer {
    pub address: SocketAddr,
    pub serve: ServeFuture,
}

/// Builds the API state for `mode` and binds `config.api_address`; the returned
/// future serves until `shutdown` fires, letting in-flight requests finish. `health`
/// answers `/ready`. `extra` adds mode-specific routes (a `Router` behind the admin
/// token, or [`crate::ExtraRoutes`] with open ones too).
pub async fn serve_api(
    config: &CommonConfig,
    mode: Mode,
    data: &DataDir,
    health: Health,
    mut registry: Registry,
    extra: impl Into<crate::ExtraRoutes>,
    shutdown: CancellationToken,
) -> Result<ApiServer, ServerError> {
    let cluster_id = cluster_id(&config.data_dir)?;
    let zone = kuma_metrics::zone_label(mode.zone_name(), mode == Mode::Global);
    let metrics = ApiMetrics::new(&mut registry, &zone);
    let kuma = kuma_metrics::scope(&mut registry, &zone);
    crate::kuma_metrics::register_cp_info(kuma, &crate::instance_id(), &cluster_id);
    let counter = crate::resource_count::ResourceCounter::new(kuma);
    let state = ApiState {
        store: data.store.clone(),
        mode,
        token: data.token.clone(),
        health,
        max_body_bytes: config.api_max_body_bytes,
        registry: Arc::new(registry),
        metrics,
        hooks: crate::Hooks::default(),
        cluster_id,
    };
    let app = crate::router(state, extra);
    let (listener, address) = bind("REST API", config.api_address).await?;
    let store = data.store.clone();
    let serve = Box::pin(async move {
        // `resources_count` follows the store for as long as the API serves.
        let counting = counter.run(store);
        let serving = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        tokio::select! {
            biased;
            served = serving => served.map_err(|source| ServerError::Serve {
                what: "REST API",
                source,
            }),
            () = counting => Ok(()),
        }
    });
    Ok(ApiServer { address, serve })
}

/// The control plane's cluster id (Kuma's `clusterId`): a random UUID kept in
/// `<data-dir>/cluster-id`, created on first start.
fn cluster_id(dir: &std::path::Path) -> Result<String, ServerError> {
    use rand::RngCore;
    let path = dir.join("cluster-id");
    let err = |source| ServerError::ClusterId {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(b);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    // Written whole or not at all: a crash never leaves a half id behind.
    let tmp = dir.join("cluster-id.tmp");
    std::fs::write(&tmp, &id).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(id)
}
