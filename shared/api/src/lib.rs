//! The REST API both control planes serve (DESIGN §8): Kuma's paths over the
//! resource store, bearer-token auth, `/`, `/ready` and `/metrics`.
//!
//! Global and zone build the same [`router`] from an [`ApiState`] that says which
//! mode they run in (that decides which types are writable) and merge their own
//! routes (tokens, zones, bootstrap) on top, and the web GUI ([`gui`], under
//! `/gui`, open: its data calls carry the token). [`server`] binds and serves it;
//! [`grpc`] holds what their gRPC servers (KDS, ADS) share.

mod auth;
pub mod envoy_admin;
mod error;
pub mod grpc;
pub mod gui;
pub mod json_body;
pub mod kuma_metrics;
pub mod kuma_routes;
mod mesh_ca;
pub use mesh_ca::cross_zone_message;
mod metrics;
pub mod overview;
pub mod resource_count;
mod resources;
pub mod server;
mod types;
pub use types::{kri, kri_of, parse_kri};

pub use auth::AdminToken;
pub use error::ApiError;
pub use metrics::ApiMetrics;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use weft_runtime::health::Health;
use weft_store::ResourceStore;

/// Which control plane is serving, and so which types it accepts writes of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Global,
    Zone {
        /// The zone's name; `None` for an unnamed standalone zone.
        name: Option<String>,
        /// Connected to a global: global-owned types are read-only here.
        federated: bool,
    },
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Zone { .. } => "zone",
        }
    }

    pub fn zone_name(&self) -> Option<&str> {
        match self {
            Mode::Global => None,
            Mode::Zone { name, .. } => name.as_deref(),
        }
    }
}

pub use weft_runtime::config::DEFAULT_MAX_BODY_BYTES;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn ResourceStore>,
    pub mode: Mode,
    pub token: AdminToken,
    /// Every component's health: `/ready` is 200 when all of them serve.
    pub health: Health,
    pub max_body_bytes: usize,
    pub registry: Arc<Registry>,
    pub metrics: ApiMetrics,
    /// What the mode-specific parts tell the shared endpoints.
    pub hooks: Hooks,
    /// Kuma's `clusterId` (`GET /`, `cp_info`): made on first start, kept in
    /// `<data-dir>/cluster-id`.
    pub cluster_id: String,
}

/// Whether a zone has a KDS stream open on this global now.
pub type ZoneConnected = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What global or zone lends the shared endpoints: live state the store does
/// not hold.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Global: whether zone `name` has a KDS stream open now (a connected zone
    /// cannot be deleted; overviews count it online).
    pub zone_connected: Option<ZoneConnected>,
    /// Zone: a proxy's live ADS stream, merged into its overview.
    pub live: Option<overview::LiveInsights>,
    /// `GET /config`: the effective configuration, without secrets.
    pub config: Option<serde_json::Value>,
}

/// Mode-specific routes: `authenticated` ones sit behind the admin token like the
/// resource routes; `open` ones authenticate requests themselves (the zone's
/// `POST /bootstrap` takes a dataplane token). Both get the metrics. A plain
/// `Router` converts into authenticated routes.
pub struct ExtraRoutes {
    pub authenticated: Router<ApiState>,
    pub open: Router<ApiState>,
    pub hooks: Hooks,
}

impl From<Router<ApiState>> for ExtraRoutes {
    fn from(authenticated: Router<ApiState>) -> Self {
        ExtraRoutes {
            authenticated,
            open: Router::new(),
            hooks: Hooks::default(),
        }
    }
}

/// The whole API: the resource routes plus `extra` (mode-specific routes, which
/// get the same metrics and, unless open, authentication). Unauthenticated: `/`,
/// `/ready`, `/metrics`, the GUI's files (`/gui`, `/gui/...`) and the open extra
/// routes.
pub fn router(mut state: ApiState, extra: impl Into<ExtraRoutes>) -> Router {
    let extra = extra.into();
    state.hooks = extra.hooks;
    let resources = resources::routes()
        .merge(overview::routes())
        .merge(extra.authenticated)
        .route_layer(axum::middleware::from_fn_with_state(
            state.token.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/", get(index))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::serve))
        .merge(resources)
        .route("/_kri/{kri}", any(kuma_only))
        .route("/who-am-i", any(kuma_only))
        .merge(gui::routes())
        .merge(extra.open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.kuma.clone(),
            kuma_metrics::track,
        ))
        .with_state(state)
}

/// The Kuma version Weft's API and formats follow (`basedOnKuma` of `GET /`,
/// Kuma's field for distributions based on it).
pub const BASED_ON_KUMA: &str = "2.14.3";

/// The Envoy version `weft-dp` runs (`GET /versions`).
pub const ENVOY_VERSION: &str = "1.40.0";

/// This machine's host name (Linux), else `unknown`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// This process's instance id: the host name and the process id, unique among
/// the control planes of one host.
pub fn instance_id() -> String {
    format!("{}-{:x}", hostname(), std::process::id())
}

/// Kuma's `GET /` fields (product, version, hostname, instanceId, clusterId,
/// gui, basedOnKuma) beside Weft's own (mode, zone, status).
async fn index(State(state): State<ApiState>) -> Response {
    axum::Json(json!({
        "product": "Weft",
        "basedOnKuma": BASED_ON_KUMA,
        "hostname": hostname(),
        "instanceId": instance_id(),
        "clusterId": state.cluster_id,
        "gui": "/gui",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.mode.as_str(),
        "zone": state.mode.zone_name(),
        "status": {
            "ready": state.health.is_ready(),
            "reason": state.health.summary(),
        },
    }))
    .into_response()
}

/// 200 when every component serves, 503 otherwise; the body says why and lists
/// each component (state, reason, restarts), so an interruption stays visible.
async fn ready(State(state): State<ApiState>) -> Response {
    let ready = state.health.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "reason": state.health.summary(),
        "components": state.health.snapshot(),
    });
    (status, axum::Json(body)).into_response()
}

/// No route matched: a Kuma 2.14 route Weft does not serve is named as such
/// (docs/api.md#kuma-routes), anything else is a plain 404.
async fn not_found(State(state): State<ApiState>, method: Method, uri: Uri) -> ApiError {
    kuma_routes::not_found(&state.mode, &method, uri.path())
}

/// The path is served, but not with this method (the `Allow` header says
/// which), or it is a Kuma route served by the other control plane.
async fn method_not_allowed(State(state): State<ApiState>, method: Method, uri: Uri) -> ApiError {
    kuma_routes::method_not_allowed(&state.mode, &method, uri.path())
}

/// Kuma 2.14 routes that Weft's generic resource paths would otherwise take.
async fn kuma_only(State(state): State<ApiState>, method: Method, uri: Uri) -> ApiError {
    kuma_routes::not_found(&state.mode, &method, uri.path())
}
