//! Inspect endpoints on the zone API (Kuma's `_config` and `_rules`):
//!
//! - `GET /meshes/{mesh}/dataplanes/{name}/_config`: the xDS resources the proxy
//!   gets, as generated now: Kuma's `{"xds": <Envoy config dump>}` (the
//!   `configs` of an admin `/config_dump`: clusters, endpoints, listeners,
//!   routes, secrets without keys) and Weft's `{"mesh", "dataplane",
//!   "resources": {<type URL>: [{"name", "version", "resource": <Envoy proto3
//!   JSON>}]}}` beside it.
//! - `GET /meshes/{mesh}/dataplanes/{name}/_rules`: per policy type the policies
//!   that select the proxy (weakest first), the merged outbound (`to`) rules by
//!   tag subset, the inbound (`from`) rules per inbound port, single-item
//!   defaults, each with the merged conf and the origin (policy, entry) of every
//!   value; beside them Kuma's `InspectRules` shape: `resource` (the
//!   Dataplane's meta), `httpMatches`, and per type `proxyRule`, `toRules`
//!   (matchers, conf, origin policies) and `fromRules` (per inbound).
//! - `GET /meshes/{mesh}/dataplanes/{name}/_policies` (Kuma 2.14's
//!   `PoliciesList`): the proxy-wide policies (those with a single `default`),
//!   each `{kind, conf, origins: [{kri}]}`.
//! - `GET …/_inbounds/{kri}/_policies` (`InboundPoliciesList`): per policy
//!   type, the rules of one inbound (`{kind, rules: [{conf, subset}], origins}`);
//!   the inbound is named by its KRI (`kri_dp_<mesh>_<zone>__<dataplane>_<inbound
//!   name or port>`), or just by its name or port.
//! - `GET …/_outbounds/{kri}/_policies` (`PoliciesList`): the merged `to` conf
//!   of each policy type towards one destination, named by a MeshService KRI
//!   (`kri_msvc_<mesh>_<zone>__<service>_<port>`) or just its `kuma.io/service`.

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
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_policies",
            get(proxy_policies),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_inbounds/{kri}/_policies",
            get(inbound_policies),
        )
        .route(
            "/meshes/{mesh}/dataplanes/{name}/_outbounds/{kri}/_policies",
            get(outbound_policies),
        )
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
    let mut dump = ConfigDump::default();
    for type_url in snap.type_urls() {
        let Some(resources) = snap.get(type_url) else {
            continue;
        };
        let mut items = Vec::new();
        for (rname, entry) in resources.iter() {
            let mut resource = json::any_to_json(&entry.payload).map_err(ApiError::internal)?;
            redact_private_keys(&mut resource);
            dump.add(type_url, rname, &entry.version, &resource);
            items.push(json!({"name": rname, "version": entry.version, "resource": resource}));
        }
        types.insert(type_url.to_string(), Value::Array(items));
    }
    Ok(axum::Json(json!({
        "xds": dump.into_json(),
        "mesh": mesh,
        "dataplane": name,
        "resources": types,
    }))
    .into_response())
}

/// Generated resources laid out as Envoy's admin `/config_dump` does (Kuma's
/// `_config` answers `{xds: <that>}`): one `*ConfigDump` per type, each
/// resource with its version as a dynamic (xDS-delivered) entry.
#[derive(Default)]
struct ConfigDump {
    clusters: Vec<Value>,
    endpoints: Vec<Value>,
    listeners: Vec<Value>,
    routes: Vec<Value>,
    secrets: Vec<Value>,
}

impl ConfigDump {
    fn add(&mut self, type_url: &str, name: &str, version: &str, resource: &Value) {
        match type_url.rsplit('.').next() {
            Some("Cluster") => self
                .clusters
                .push(json!({"version_info": version, "cluster": resource})),
            Some("ClusterLoadAssignment") => self
                .endpoints
                .push(json!({"version_info": version, "endpoint_config": resource})),
            Some("Listener") => self.listeners.push(json!({
                "name": name,
                "active_state": {"version_info": version, "listener": resource},
            })),
            Some("RouteConfiguration") => self
                .routes
                .push(json!({"version_info": version, "route_config": resource})),
            Some("Secret") => self.secrets.push(json!({
                "name": name,
                "version_info": version,
                "secret": resource,
            })),
            _ => {}
        }
    }

    fn into_json(self) -> Value {
        const ADMIN: &str = "type.googleapis.com/envoy.admin.v3.";
        json!({"configs": [
            {"@type": format!("{ADMIN}ClustersConfigDump"), "dynamic_active_clusters": self.clusters},
            {"@type": format!("{ADMIN}EndpointsConfigDump"), "dynamic_endpoint_configs": self.endpoints},
            {"@type": format!("{ADMIN}ListenersConfigDump"), "dynamic_listeners": self.listeners},
            {"@type": format!("{ADMIN}RoutesConfigDump"), "dynamic_route_configs": self.routes},
            {"@type": format!("{ADMIN}SecretsConfigDump"), "dynamic_active_secrets": self.secrets},
        ]})
    }
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
    let mut items = rules.to_json();
    // Kuma's InspectRule fields beside Weft's, per type.
    if let Value::Array(items) = &mut items {
        for (item, (_, r)) in items.iter_mut().zip(rules.types.iter()) {
            if let Value::Object(o) = item {
                kuma_rule(&view, &dp, r, o);
            }
        }
    }
    Ok(axum::Json(json!({
        "resource": meta(&dp),
        "httpMatches": [],
        "mesh": mesh,
        "dataplane": name,
        "rules": items,
    }))
    .into_response())
}

/// Kuma's `Meta` of a resource.
fn meta(r: &Resource) -> Value {
    json!({
        "type": r.resource_type().name(),
        "mesh": r.meta.mesh,
        "name": r.meta.name,
        "labels": r.meta.labels,
    })
}

/// The policies behind `origins` as Kuma's `Meta`s, in merge order, each once.
fn origin_metas(view: &MeshView, origins: &[weft_model::rules::Origin]) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    origins
        .iter()
        .filter(|o| seen.insert((o.ty.clone(), o.name.clone())))
        .filter_map(|o| {
            view.resources
                .get(o.ty.as_str())
                .and_then(|m| m.get(&o.name))
                .map(|r| meta(r))
        })
        .collect()
}

/// A tag subset as Kuma's rule matchers.
fn matchers(subset: &weft_model::resource::Tags) -> Vec<Value> {
    subset
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v, "not": false}))
        .collect()
}

/// Adds Kuma's `InspectRule` fields to Weft's rules of one type: `proxyRule`
/// (the single `default`), `toRules` (per destination subset) and `fromRules`
/// (per inbound), each with its matchers, conf and origin policies.
fn kuma_rule(
    view: &MeshView,
    dp: &Resource,
    r: &weft_model::rules::TypeRules,
    o: &mut Map<String, Value>,
) {
    if let Some(single) = &r.single {
        o.insert(
            "proxyRule".into(),
            json!({"conf": single.conf, "origin": origin_metas(view, &single.contributors)}),
        );
    }
    if !r.to.is_empty() {
        let to: Vec<Value> =
            r.to.iter()
                .map(|rule| {
                    json!({
                        "matchers": matchers(&rule.subset),
                        "conf": rule.merged.conf,
                        "origin": origin_metas(view, &rule.merged.contributors),
                    })
                })
                .collect();
        o.insert("toRules".into(), Value::Array(to));
    }
    if !r.from.is_empty() {
        let weft_model::resource::Spec::Dataplane(spec) = &dp.spec else {
            return;
        };
        let inbounds: Vec<_> = spec
            .networking
            .iter()
            .flat_map(|n| n.inbound.iter())
            .collect();
        let from: Vec<Value> = r
            .from
            .iter()
            .map(|(port, rules)| {
                let inbound = inbounds.iter().find(|i| i.port == *port);
                json!({
                    "inbound": {
                        "name": inbound.and_then(|i| i.name.clone()),
                        "tags": inbound.map(|i| i.tags.clone()).unwrap_or_default(),
                        "port": port,
                    },
                    "rules": rules.iter().map(|rule| json!({
                        "matchers": matchers(&rule.subset),
                        "conf": rule.merged.conf,
                        "origin": origin_metas(view, &rule.merged.contributors),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        o.insert("fromRules".into(), Value::Array(from));
    }
}

/// The KRIs of the policies behind `origins`, in merge order, each once.
fn origin_kris(view: &MeshView, origins: &[weft_model::rules::Origin]) -> Vec<Value> {
    let here = Some(view.zone.as_str());
    let mut seen = std::collections::BTreeSet::new();
    origins
        .iter()
        .filter(|o| seen.insert((o.ty.clone(), o.name.clone())))
        .map(|o| {
            let kri = view
                .resources
                .get(o.ty.as_str())
                .and_then(|m| m.get(&o.name))
                .map(|r| weft_api::kri(r, here))
                .unwrap_or_else(|| o.name.clone());
            json!({ "kri": kri })
        })
        .collect()
}

async fn proxy_policies(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (view, dp) = load(&state, &mesh, &name).await?;
    let rules = view.rules(&dp);
    let policies: Vec<Value> = rules
        .types
        .iter()
        .filter_map(|(ty, r)| {
            let single = r.single.as_ref()?;
            Some(json!({
                "kind": ty.name(),
                "conf": single.conf,
                "origins": origin_kris(&view, &single.contributors),
            }))
        })
        .collect();
    Ok(axum::Json(json!({ "policies": policies })).into_response())
}

/// The inbound port a KRI (or a bare name or port) names on `dp`.
fn inbound_port(dp: &Resource, kri: &str) -> Result<u32, ApiError> {
    let section = match weft_api::parse_kri(kri) {
        Some([short, _, _, _, name, section]) => {
            if short != "dp" || name != dp.meta.name {
                return Err(ApiError::not_found(format!(
                    "{kri:?} is not an inbound of dataplane {:?}: expected kri_dp_<mesh>_<zone>__{}_<inbound name or port>",
                    dp.meta.name, dp.meta.name
                )));
            }
            section
        }
        None => kri,
    };
    let weft_model::resource::Spec::Dataplane(spec) = &dp.spec else {
        return Err(ApiError::internal("a Dataplane without a Dataplane spec"));
    };
    spec.networking
        .iter()
        .flat_map(|n| n.inbound.iter())
        .find(|i| i.name.as_deref() == Some(section) || i.port.to_string() == section)
        .map(|i| i.port)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "dataplane {:?} has no inbound named {section:?} (by name or port)",
                dp.meta.name
            ))
        })
}

async fn inbound_policies(
    State(state): State<ApiState>,
    Path((mesh, name, kri)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (view, dp) = load(&state, &mesh, &name).await?;
    let port = inbound_port(&dp, &kri)?;
    let rules = view.rules(&dp);
    let policies: Vec<Value> = rules
        .types
        .iter()
        .filter_map(|(ty, r)| {
            let inbound = r.from.get(&port).filter(|rs| !rs.is_empty())?;
            let mut contributors = Vec::new();
            let rules: Vec<Value> = inbound
                .iter()
                .map(|rule| {
                    contributors.extend(rule.merged.contributors.iter().cloned());
                    json!({ "conf": rule.merged.conf, "subset": rule.subset })
                })
                .collect();
            Some(json!({
                "kind": ty.name(),
                "rules": rules,
                "origins": origin_kris(&view, &contributors),
            }))
        })
        .collect();
    Ok(axum::Json(json!({ "policies": policies })).into_response())
}

/// The `kuma.io/service` an outbound KRI (or a bare service name) names.
fn outbound_service(kri: &str) -> Result<&str, ApiError> {
    match weft_api::parse_kri(kri) {
        Some(["msvc" | "extsvc" | "mzsvc", _, _, _, name, _]) => Ok(name),
        Some([short, ..]) => Err(ApiError::not_found(format!(
            "{kri:?} is a {short:?} KRI: an outbound is named by a MeshService KRI \
             (kri_msvc_<mesh>_<zone>__<service>_<port>) or its kuma.io/service"
        ))),
        None => Ok(kri),
    }
}

async fn outbound_policies(
    State(state): State<ApiState>,
    Path((mesh, name, kri)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (view, dp) = load(&state, &mesh, &name).await?;
    let service = outbound_service(&kri)?;
    let mut element = weft_model::resource::Tags::new();
    element.insert(
        weft_model::resource::tags::SERVICE.to_string(),
        service.to_string(),
    );
    let rules = view.rules(&dp);
    let policies: Vec<Value> = rules
        .types
        .iter()
        .filter_map(|(ty, r)| {
            let merged = weft_model::rules::compute(&r.to, &element)?;
            Some(json!({
                "kind": ty.name(),
                "conf": merged.conf,
                "origins": origin_kris(&view, &merged.contributors),
            }))
        })
        .collect();
    Ok(axum::Json(json!({ "policies": policies })).into_response())
}
