//! What every control plane does at start: open its data dir (store + admin
//! token), create the `default` mesh on first start, and serve the REST API
//! until shutdown.

use crate::api::{self, AdminToken, ApiMetrics, ApiState, Mode};
use crate::config::CommonConfig;
use crate::resource::{Resource, ResourceType, Spec};
use crate::shutdown::CancellationToken;
use crate::store::{ResourceStore, StoreError, sled_store::SledStore};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
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
    #[error("the {0} task panicked or was aborted")]
    Task(&'static str),
    /// A component could not be set up (keys, certificates, ...).
    #[error("cannot set up the {what}: {reason}")]
    Setup { what: &'static str, reason: String },
}

impl ServerError {
    /// [`ServerError::Setup`] from any error.
    pub fn setup<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |e| ServerError::Setup {
            what,
            reason: e.to_string(),
        }
    }
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
    let ops = crate::rules::defaults::mesh_with_defaults(mesh)
        .map_err(|e| ServerError::DefaultMesh(StoreError::Corrupt(e.to_string())))?;
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

/// A running API server.
pub struct ApiServer {
    pub address: SocketAddr,
    pub task: JoinHandle<Result<(), ServerError>>,
}

/// Builds the API state for `mode` and serves it on `config.api_address` until
/// `shutdown` fires; in-flight requests finish first. `extra` adds mode-specific routes
/// (a `Router` behind the admin token, or [`api::ExtraRoutes`] with open ones too).
pub async fn serve_api(
    config: &CommonConfig,
    mode: Mode,
    data: &DataDir,
    ready: watch::Receiver<api::Readiness>,
    mut registry: Registry,
    extra: impl Into<api::ExtraRoutes>,
    shutdown: CancellationToken,
) -> Result<ApiServer, ServerError> {
    let metrics = ApiMetrics::new(&mut registry);
    let state = ApiState {
        store: data.store.clone(),
        mode,
        token: data.token.clone(),
        ready,
        max_body_bytes: config.api_max_body_bytes,
        registry: Arc::new(registry),
        metrics,
    };
    let app = api::router(state, extra);
    let listener = tokio::net::TcpListener::bind(config.api_address)
        .await
        .map_err(|source| ServerError::Bind {
            what: "REST API",
            addr: config.api_address,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| ServerError::Bind {
        what: "REST API",
        addr: config.api_address,
        source,
    })?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(|source| ServerError::Serve {
                what: "REST API",
                source,
            })
    });
    Ok(ApiServer { address, task })
}

/// Waits for a spawned component and turns a panic or abort into an error.
pub async fn join(
    what: &'static str,
    task: JoinHandle<Result<(), ServerError>>,
) -> Result<(), ServerError> {
    task.await.map_err(|_| ServerError::Task(what))?
}
