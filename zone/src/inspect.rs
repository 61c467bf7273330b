//! Inspect endpoints on the zone API (Kuma's `_config` and `_rules`):
//!
//! - `GET /meshes/{mesh}/dataplanes/{name}/_config`: the xDS resources the proxy
//!   gets, as generated now: `{"mesh", "dataplane", "resources": {<type URL>:
//!   [{"name", "version", "resource": <Envoy proto3 JSON>}]}}`.
//! - `GET /meshes/{mesh}/dataplanes/{name}/_rules`: per policy type the policies
//!   that select the proxy (weakest first), the merged outbound (`to`) rules by
//!   tag subset, the inbound (`from`) rules per inbound port, single-item
//!   defaults, each with the merged conf and the origin (policy, entry) of every
//!   value.

use crate::xds::generate::{self, MeshView, json};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use weft_api::{ApiError, ApiState};
use weft_model::resource::{Resource, ResourceKey, ResourceType};
use weft_store::{Page, ResourceStore, StoreError};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/meshes/{mesh}/dataplanes/{name}/_config", get(config))
        .route("/meshes/{mesh}/dataplanes/{name}/_rules", get(rules))
}

/// The mesh's view (every resource of the mesh but its Secrets) from the store,
/// as zone `zone` sees it; `None` when the mesh does not exist.
pub async fn load_view(
    store: &dyn ResourceStore,
    mesh: &str,
    zone: &str,
) -> Result<Option<MeshView>, StoreError> {
    let Some(mesh_res) = store
        .get(&ResourceKey::new(ResourceType::Mesh, None, mesh))
        .await?
    else {
        return Ok(None);
    };
    let mut all = Vec::new();
    for ty in ResourceType::ALL
        .iter()
        .copied()
        .filter(|t| t.is_mesh_scoped())
    {
        if ty == ResourceType::Secret {
            continue;
        }
        let page = store.list(ty, Some(mesh), Page::all()).await?;
        all.extend(page.items.into_iter().map(Arc::new));
    }
    // Zone proxies: other zones' ingresses are endpoints, this zone's egress a hop.
    for ty in [ResourceType::ZoneIngress, ResourceType::ZoneEgress] {
        let page = store.list(ty, None, Page::all()).await?;
        all.extend(page.items.into_iter().map(Arc::new));
    }
    Ok(Some(MeshView::new_in_zone(Arc::new(mesh_res), all, zone)))
}

async fn load(state: &ApiState, mesh: &str, name: &str) -> Result<(MeshView, Resource), ApiError> {
    let zone = match &state.mode {
        weft_api::Mode::Zone {
            name: Some(name), ..
        } => name.as_str(),
        _ => crate::DEFAULT_ZONE_NAME,
    };
    let view = load_view(state.store.as_ref(), mesh, zone)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("mesh {mesh:?} not found")))?;
    let dp = view
        .resources
        .get(ResourceType::Dataplane.name())
        .and_then(|m| m.get(name))
        .map(|r| (**r).clone())
        .ok_or_else(|| ApiError::not_found(format!("dataplane {mesh}/{name} not found")))?;
    Ok((view, dp))
}

async fn config(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (view, dp) = load(&state, &mesh, &name).await?;
    let snap = generate::generate(&view, &dp).map_err(ApiError::internal)?;
    let mut types = Map::new();
    for type_url in snap.type_urls() {
        let Some(resources) = snap.get(type_url) else {
            continue;
        };
        let mut items = Vec::new();
        for (rname, entry) in resources.iter() {
            let mut resource = json::any_to_json(&entry.payload).map_err(ApiError::internal)?;
            redact_private_keys(&mut resource);
            items.push(json!({"name": rname, "version": entry.version, "resource": resource}));
        }
        types.insert(type_url.to_string(), Value::Array(items));
    }
    Ok(axum::Json(json!({"mesh": mesh, "dataplane": name, "resources": types})).into_response())
}

/// Replaces every `private_key` (an external service's inline client key) in
/// generated Envoy JSON: keys never leave through the API.
fn redact_private_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m.iter_mut() {
                if k == "private_key" {
                    *inner = json!("<redacted>");
                } else {
                    redact_private_keys(inner);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_private_keys),
        _ => {}
    }
}

async fn rules(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (view, dp) = load(&state, &mesh, &name).await?;
    let rules = view.rules(&dp);
    Ok(
        axum::Json(json!({"mesh": mesh, "dataplane": name, "rules": rules.to_json()}))
            .into_response(),
    )
}
