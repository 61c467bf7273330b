//! The per-proxy inspect routes of a zone (`_config`, `_rules`, `_policies`,
//! `_inbounds/{kri}/_policies`, `_outbounds/{kri}/_policies`) asked of global:
//! a zone computes them from its own view (its generator, its local
//! resources), so global answers 405 naming the zone to ask, as Kuma's global
//! does for `_config`. An unknown proxy is a 404.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use weft_api::{ApiError, ApiState};
use weft_model::resource::{ResourceType, tags};
use weft_store::Page;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_config",
            get(ask_the_zone),
        )
        .route("/meshes/{mesh}/dataplanes/{name}/_rules", get(ask_the_zone))
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_policies",
            get(ask_the_zone),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_inbounds/{kri}/_policies",
            get(ask_the_zone_about),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_outbounds/{kri}/_policies",
            get(ask_the_zone_about),
        )
}

async fn ask_the_zone_about(
    state: State<ApiState>,
    Path((mesh, name, _kri)): Path<(String, String, String)>,
) -> ApiError {
    ask_the_zone(state, Path((mesh, name))).await
}

/// 405 naming the zone of the Dataplane (by its name on global, or its name in
/// its zone), 404 when global does not know it.
async fn ask_the_zone(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
) -> ApiError {
    let dps = match state
        .store
        .list(ResourceType::Dataplane, Some(&mesh), Page::all())
        .await
    {
        Ok(p) => p.items,
        Err(e) => return e.into(),
    };
    let found = dps
        .iter()
        .find(|d| d.meta.name == name || d.meta.labels.get(tags::DISPLAY_NAME) == Some(&name));
    match found {
        None => ApiError::not_found(format!("dataplane {name:?} not found in mesh {mesh:?}")),
        Some(dp) => {
            let zone = dp
                .meta
                .labels
                .get(tags::ZONE)
                .map(String::as_str)
                .unwrap_or("?");
            let local = dp
                .meta
                .labels
                .get(tags::DISPLAY_NAME)
                .unwrap_or(&dp.meta.name);
            ApiError::method_not_allowed(format!(
                "this is computed by the zone that runs the proxy: ask zone {zone:?}'s API for \
                 /meshes/{mesh}/dataplanes/{local}/... (global holds no zone's generated \
                 configuration); Envoy's own view (xds, stats, clusters) is served here"
            ))
        }
    }
}
