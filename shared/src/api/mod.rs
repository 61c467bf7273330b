//! The REST API both control planes serve (DESIGN §8): Kuma's paths over the
//! resource store, bearer-token auth, `/`, `/ready` and `/metrics`.
//!
//! Global and zone build the same [`router`] from an [`ApiState`] that says which
//! mode they run in (that decides which types are writable) and merge their own
//! routes (tokens, zones, bootstrap) on top.

mod auth;
mod error;
pub mod json_body;
mod metrics;
mod resources;

pub use auth::AdminToken;
pub use error::ApiError;
pub use metrics::ApiMetrics;

use crate::store::ResourceStore;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::watch;

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

/// Whether the control plane serves, and why: `/ready` answers 200 or 503 with
/// this as its body, and `/` shows it as `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// For an operator: what the control plane is doing, or waiting for.
    pub reason: String,
}

impl Readiness {
    pub fn ready(reason: impl Into<String>) -> Self {
        Readiness {
            ready: true,
            reason: reason.into(),
        }
    }

    pub fn not_ready(reason: impl Into<String>) -> Self {
        Readiness {
            ready: false,
            reason: reason.into(),
        }
    }
}

/// Largest request body the API reads unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn ResourceStore>,
    pub mode: Mode,
    pub token: AdminToken,
    /// Whether the control plane can serve (a federated zone: once it holds a
    /// full sync from global), and why.
    pub ready: watch::Receiver<Readiness>,
    pub max_body_bytes: usize,
    pub registry: Arc<Registry>,
    pub metrics: ApiMetrics,
}

/// Mode-specific routes: `authenticated` ones sit behind the admin token like the
/// resource routes; `open` ones authenticate requests themselves (the zone's
/// `POST /bootstrap` takes a dataplane token). Both get the metrics. A plain
/// `Router` converts into authenticated routes.
pub struct ExtraRoutes {
    pub authenticated: Router<ApiState>,
    pub open: Router<ApiState>,
}

impl From<Router<ApiState>> for ExtraRoutes {
    fn from(authenticated: Router<ApiState>) -> Self {
        ExtraRoutes {
            authenticated,
            open: Router::new(),
        }
    }
}

/// The whole API: the resource routes plus `extra` (mode-specific routes, which
/// get the same metrics and, unless open, authentication). Unauthenticated: `/`,
/// `/ready`, `/metrics` and the open extra routes.
pub fn router(state: ApiState, extra: impl Into<ExtraRoutes>) -> Router {
    let extra = extra.into();
    let resources = resources::routes().merge(extra.authenticated).route_layer(
        axum::middleware::from_fn_with_state(state.token.clone(), auth::require_admin),
    );
    Router::new()
        .route("/", get(index))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::serve))
        .merge(resources)
        .merge(extra.open)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

async fn index(State(state): State<ApiState>) -> Response {
    axum::Json(json!({
        "product": "Weft",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": state.mode.as_str(),
        "zone": state.mode.zone_name(),
        "status": state.ready.borrow().clone(),
    }))
    .into_response()
}

async fn ready(State(state): State<ApiState>) -> Response {
    let readiness = state.ready.borrow().clone();
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness)).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: see docs/api.md for the paths this API serves")
}
