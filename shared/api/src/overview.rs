//! Kuma's insight endpoints, read from the store (so global answers them for
//! every zone, and they outlive a restart):
//!
//! - `GET /meshes/{mesh}/dataplanes/_overview`, `GET /dataplanes/_overview`
//!   (and the legacy `dataplanes+insights` paths), `GET
//!   /meshes/{mesh}/dataplanes/{name}/_overview`: `DataplaneOverview` items
//!   (the Dataplane and its persisted DataplaneInsight; on a zone the live
//!   counters of the proxy's stream are merged in).
//! - `GET /zoneingresses/_overview` (`zoneingresses+insights`), `GET
//!   /zoneegresses/_overview` (`zoneegressoverviews`) and one of each.
//! - `GET /global-insight`, `GET /global-insights` (Kuma's older summary),
//!   `GET /mesh-insights`, `GET /mesh-insights/{mesh}`.
//! - `GET /meshes/{mesh}/{policy}/{name}/_resources/dataplanes`: the proxies a
//!   policy's top-level targetRef selects.
//! - `GET /meshes/{mesh}/meshservices/{name}/_dataplanes`: the Dataplanes a
//!   MeshService's selector picks.
//! - `GET /_kri/{kri}`: a resource by its Kuma resource identifier.
//! - `GET /policies`, `GET /versions`, `GET /config`, `GET /who-am-i`.

use super::resources::{ListParams, ListQuery, answer_of, next_url, respond};
use super::{ApiError, ApiState};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use weft_model::resource::insight::DataplaneInsightSpec;
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec, tags};
use weft_model::rules::select::{Policy, ProxyView, select};
use weft_store::{Page, ResourceStore};

/// What a zone knows live about a proxy's stream, merged into its overview.
#[derive(Debug, Clone, Default)]
pub struct LiveInsight {
    /// An ADS stream is open now.
    pub connected: bool,
    /// Kuma's `DiscoverySubscription` of the current (or last) stream:
    /// `connectTime`, `disconnectTime`, `controlPlaneInstanceId`, `status`.
    pub subscription: Value,
    /// Kuma's `mTLS` block of the proxy's certificate.
    pub mtls: Option<Value>,
    /// Weft's own view of the stream (per type URL counters, SotW or delta).
    pub weft: Value,
}

/// Looks up a proxy's live insight by its resource key (a zone's xDS server).
pub type LiveInsights = Arc<dyn Fn(&ResourceKey) -> Option<LiveInsight> + Send + Sync>;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/meshes/{mesh}/dataplanes/_overview",
            get(dataplanes_in_mesh),
        )
        .route(
            "/meshes/{mesh}/dataplanes+insights",
            get(dataplanes_in_mesh),
        )
        .route("/dataplanes/_overview", get(dataplanes_everywhere))
        .route("/dataplanes+insights", get(dataplanes_everywhere))
        .route("/meshes/{mesh}/dataplanes/{name}/_overview", get(dataplane))
        .route("/meshes/{mesh}/dataplanes+insights/{name}", get(dataplane))
        .route("/zoneingresses/_overview", get(ingresses))
        .route("/zoneingresses+insights", get(ingresses))
        .route("/zoneingresses/{name}/_overview", get(ingress))
        .route("/zoneingresses+insights/{name}", get(ingress))
        .route("/zone-ingresses/_overview", get(ingresses))
        .route("/zone-ingresses/{name}/_overview", get(ingress))
        .route("/zoneegresses/_overview", get(egresses))
        .route("/zoneegressoverviews", get(egresses))
        .route("/zoneegresses/{name}/_overview", get(egress))
        .route("/zoneegressoverviews/{name}", get(egress))
        .route("/global-insight", get(global_insight))
        .route("/global-insights", get(global_insights))
        .route("/mesh-insights", get(mesh_insights))
        .route("/mesh-insights/{mesh}", get(mesh_insight))
        .route(
            "/meshes/{mesh}/{plural}/{name}/_resources/dataplanes",
            get(policy_dataplanes),
        )
        .route(
            "/meshes/{mesh}/meshservices/{name}/_dataplanes",
            get(mesh_service_dataplanes),
        )
        .route("/_kri/{kri}", get(by_kri))
        .route("/who-am-i", get(who_am_i))
        .route("/policies", get(policies))
        .route("/versions", get(versions))
        .route("/config", get(config))
}

/// The list answer Kuma gives (`{total, items, next}`): the page of
/// `matching` that `params` asks for, each item rendered by `render`, `next`
/// keeping the filters (and the endpoint's own parameters `extra`).
fn page_of<T>(
    params: &ListParams,
    matching: Vec<T>,
    headers: &HeaderMap,
    uri: &Uri,
    extra: &[&str],
    render: impl Fn(&T) -> Value,
) -> Result<Response, ApiError> {
    let size = params.size()?;
    let (items, total, next) = params.cut(matching)?;
    let items: Vec<Value> = items.iter().map(render).collect();
    let next = next.map(|o| next_url(headers, uri, size, o, extra));
    let body = json!({ "total": total, "items": items, "next": next });
    Ok(respond(StatusCode::OK, &body, headers, None))
}

/// Kuma's `Meta` of a Dataplane as inspect lists give it (no times).
fn dataplane_meta(state: &ApiState, dp: &Resource) -> Value {
    let mut m = meta_of(dp, "Dataplane", state.mode.zone_name());
    m.remove("creationTime");
    m.remove("modificationTime");
    Value::Object(m)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The spec fields of an inline resource (its JSON without type, name, mesh,
/// labels and times), as Kuma nests them in an overview.
fn spec_of(r: &Resource) -> Value {
    let mut v = r.to_value();
    if let Some(o) = v.as_object_mut() {
        for k in [
            "type",
            "name",
            "mesh",
            "labels",
            "creationTime",
            "modificationTime",
        ] {
            o.remove(k);
        }
    }
    v
}

/// Kuma's `Meta` of a resource: type, mesh, name, labels and times.
fn meta_of(r: &Resource, ty: &str, here: Option<&str>) -> Map<String, Value> {
    let full = r.to_value();
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    if let Some(mesh) = &r.meta.mesh {
        m.insert("mesh".into(), json!(mesh));
    }
    m.insert("name".into(), json!(r.meta.name));
    if super::types::short_name(r.resource_type()).is_some() {
        m.insert("kri".into(), json!(super::kri(r, here)));
    }
    for k in ["creationTime", "modificationTime"] {
        if let Some(t) = full.get(k) {
            m.insert(k.into(), t.clone());
        }
    }
    m.insert("labels".into(), json!(r.meta.labels));
    m
}

/// Whether the proxy is online: its live stream on a zone, else its newest
/// persisted subscription.
fn online(insight: Option<&DataplaneInsightSpec>, live: Option<&LiveInsight>) -> bool {
    match live {
        Some(l) => l.connected,
        None => insight.is_some_and(DataplaneInsightSpec::is_online),
    }
}

/// Kuma's `DataplaneInsight` JSON: the persisted subscriptions, with the live
/// stream's status (and certificate) merged in on a zone, and Weft's live view
/// beside them (`connected`, `streams`, `streamKind`, per type URL `types`).
fn insight_json(insight: Option<&DataplaneInsightSpec>, live: Option<&LiveInsight>) -> Value {
    let mut v = insight
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .unwrap_or_else(|| json!({}));
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    let mut subs: Vec<Value> = o
        .remove("subscriptions")
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    if let Some(live) = live {
        // The live stream is the persisted subscription with the same connect
        // time or, while connected, the newest one still open: the zone stamps
        // the two a few microseconds apart, and one stream is one subscription.
        let connect = live.subscription.get("connectTime");
        let same = subs
            .iter()
            .rposition(|s| connect.is_some() && s.get("connectTime") == connect);
        let open = || {
            subs.iter()
                .rposition(|s| s.get("disconnectTime").is_none_or(Value::is_null))
                .filter(|_| live.connected)
        };
        match same.or_else(open).and_then(|i| subs.get_mut(i)) {
            Some(s) => {
                if let (Some(s), Some(l)) = (s.as_object_mut(), live.subscription.as_object()) {
                    for (k, val) in l {
                        s.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                    if let Some(status) = l.get("status") {
                        s.insert("status".into(), status.clone());
                    }
                }
            }
            None if live.subscription.is_object() => subs.push(live.subscription.clone()),
            None => {}
        }
        if let Some(m) = &live.mtls {
            o.insert("mTLS".into(), m.clone());
        }
        if let Some(w) = live.weft.as_object() {
            for (k, val) in w {
                o.entry(k.clone()).or_insert_with(|| val.clone());
            }
        }
    }
    o.insert("subscriptions".into(), Value::Array(subs));
    v
}

/// Every persisted insight of `mesh` (all meshes when `None`), by mesh and name.
async fn insights_by_proxy(
    store: &dyn ResourceStore,
    mesh: Option<&str>,
) -> Result<BTreeMap<(String, String), DataplaneInsightSpec>, ApiError> {
    let page = store
        .list(ResourceType::DataplaneInsight, mesh, Page::all())
        .await?;
    Ok(page
        .items
        .into_iter()
        .filter_map(|r| match r.spec {
            Spec::DataplaneInsight(i) => Some(((r.meta.mesh.unwrap_or_default(), r.meta.name), i)),
            _ => None,
        })
        .collect())
}

fn live_of(state: &ApiState, key: &ResourceKey) -> Option<LiveInsight> {
    state.hooks.live.as_ref().and_then(|f| f(key))
}

fn dataplane_overview(
    state: &ApiState,
    dp: &Resource,
    insight: Option<&DataplaneInsightSpec>,
) -> Value {
    let live = live_of(state, &dp.key());
    let mut o = meta_of(dp, "DataplaneOverview", state.mode.zone_name());
    o.insert("dataplane".into(), spec_of(dp));
    o.insert(
        "dataplaneInsight".into(),
        insight_json(insight, live.as_ref()),
    );
    Value::Object(o)
}

/// Kuma's dataplane filters: `tag=<key>:<value>` (every one, on an inbound;
/// `*` any value), `gateway` (`true`/`builtin`/`delegated`: none here, Weft
/// has no gateways; `false`: all), `online` (Weft), and name and labels.
struct DataplaneFilter {
    tags: Vec<(String, String)>,
    gateway: Option<bool>,
    online: Option<bool>,
}

impl DataplaneFilter {
    fn parse(params: &ListParams) -> Result<Self, ApiError> {
        let mut f = DataplaneFilter {
            tags: Vec::new(),
            gateway: None,
            online: None,
        };
        for (k, v) in &params.extra {
            match k.as_str() {
                "tag" => {
                    let (tk, tv) = v.split_once(':').ok_or_else(|| {
                        ApiError::invalid_field(
                            "tag",
                            "must be <key>:<value>, e.g. kuma.io/service:web",
                        )
                    })?;
                    f.tags.push((tk.to_string(), tv.to_string()));
                }
                "gateway" => {
                    f.gateway = Some(match v.as_str() {
                        "false" => false,
                        "true" | "builtin" | "delegated" => true,
                        _ => {
                            return Err(ApiError::invalid_field(
                                "gateway",
                                "must be true, false, builtin or delegated",
                            ));
                        }
                    })
                }
                "online" => {
                    f.online =
                        Some(v.parse().map_err(|_| {
                            ApiError::invalid_field("online", "must be true or false")
                        })?)
                }
                _ => {}
            }
        }
        Ok(f)
    }

    fn keeps(&self, dp: &Resource, is_online: bool) -> bool {
        if self.gateway == Some(true) || self.online.is_some_and(|o| o != is_online) {
            return false;
        }
        let Spec::Dataplane(spec) = &dp.spec else {
            return false;
        };
        self.tags.iter().all(|(k, v)| {
            spec.networking
                .iter()
                .flat_map(|n| n.inbound.iter())
                .any(|i| i.tags.get(k).is_some_and(|t| v == "*" || t == v))
        })
    }
}

const DATAPLANE_PARAMS: &[&str] = &["tag", "gateway", "online"];

async fn dataplane_list(
    state: &ApiState,
    mesh: Option<&str>,
    query: ListQuery,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let params = ListParams::parse_with(query, DATAPLANE_PARAMS)?;
    let filter = DataplaneFilter::parse(&params)?;
    if let Some(m) = mesh {
        let key = ResourceKey::new(ResourceType::Mesh, None, m);
        if state.store.get(&key).await?.is_none() {
            return Err(ApiError::not_found(format!("mesh {m:?} does not exist")));
        }
    }
    let dps = state
        .store
        .list(ResourceType::Dataplane, mesh, Page::all())
        .await?
        .items;
    let insights = insights_by_proxy(state.store.as_ref(), mesh).await?;
    let matching: Vec<(Resource, Option<&DataplaneInsightSpec>)> = dps
        .into_iter()
        .filter(|dp| params.keeps(dp))
        .map(|dp| {
            let i = insights.get(&(
                dp.meta.mesh.clone().unwrap_or_default(),
                dp.meta.name.clone(),
            ));
            (dp, i)
        })
        .filter(|(dp, i)| {
            let live = live_of(state, &dp.key());
            filter.keeps(dp, online(*i, live.as_ref()))
        })
        .collect();
    page_of(
        &params,
        matching,
        headers,
        uri,
        DATAPLANE_PARAMS,
        |(dp, i)| dataplane_overview(state, dp, *i),
    )
}

async fn dataplanes_in_mesh(
    State(state): State<ApiState>,
    Path(mesh): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    dataplane_list(&state, Some(&mesh), q, &headers, &uri).await
}

async fn dataplanes_everywhere(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    dataplane_list(&state, None, q, &headers, &uri).await
}

async fn dataplane(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = ResourceKey::new(ResourceType::Dataplane, Some(&mesh), &name);
    let Some(dp) = state.store.get(&key).await? else {
        return Err(ApiError::not_found(format!(
            "dataplane {name:?} not found in mesh {mesh:?}: it appears when its proxy connects"
        )));
    };
    let ikey = ResourceKey::new(ResourceType::DataplaneInsight, Some(&mesh), &name);
    let insight = match state.store.get(&ikey).await?.map(|r| r.spec) {
        Some(Spec::DataplaneInsight(i)) => Some(i),
        _ => None,
    };
    let body = dataplane_overview(&state, &dp, insight.as_ref());
    Ok(respond(StatusCode::OK, &body, &headers, None))
}

/// Whether a zone ingress or egress is online: its live stream on a zone; on
/// global, whether the zone that reported it is connected (global keeps no
/// per-proxy insight of zone proxies).
fn zone_proxy_online(state: &ApiState, r: &Resource, live: Option<&LiveInsight>) -> bool {
    if let Some(l) = live {
        return l.connected;
    }
    match (&state.hooks.zone_connected, r.meta.labels.get(tags::ZONE)) {
        (Some(connected), Some(zone)) => connected(zone),
        _ => false,
    }
}

fn zone_proxy_overview(state: &ApiState, r: &Resource) -> Value {
    let (kind, spec_key, insight_key) = match r.resource_type() {
        ResourceType::ZoneIngress => ("ZoneIngressOverview", "zoneIngress", "zoneIngressInsight"),
        _ => ("ZoneEgressOverview", "zoneEgress", "zoneEgressInsight"),
    };
    let live = live_of(state, &r.key());
    let mut o = meta_of(r, kind, state.mode.zone_name());
    o.insert(spec_key.into(), spec_of(r));
    let mut insight = json!({
        "subscriptions": live.as_ref().filter(|l| l.subscription.is_object()).map(|l| vec![l.subscription.clone()]).unwrap_or_default(),
    });
    if let Some(w) = live.as_ref().and_then(|l| l.weft.as_object()) {
        for (k, val) in w {
            insight[k] = val.clone();
        }
    }
    insight["online"] = json!(zone_proxy_online(state, r, live.as_ref()));
    o.insert(insight_key.into(), insight);
    Value::Object(o)
}

async fn zone_proxy_list(
    state: &ApiState,
    ty: ResourceType,
    query: ListQuery,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(query)?;
    let all = state.store.list(ty, None, Page::all()).await?.items;
    let matching: Vec<Resource> = all.into_iter().filter(|r| params.keeps(r)).collect();
    page_of(&params, matching, headers, uri, &[], |r| {
        zone_proxy_overview(state, r)
    })
}

async fn zone_proxy(
    state: &ApiState,
    ty: ResourceType,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let key = ResourceKey::new(ty, None, name);
    let Some(r) = state.store.get(&key).await? else {
        return Err(ApiError::not_found(format!("{ty} {name:?} not found")));
    };
    Ok(respond(
        StatusCode::OK,
        &zone_proxy_overview(state, &r),
        headers,
        None,
    ))
}

async fn ingresses(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    zone_proxy_list(&state, ResourceType::ZoneIngress, q, &headers, &uri).await
}

async fn egresses(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    zone_proxy_list(&state, ResourceType::ZoneEgress, q, &headers, &uri).await
}

async fn ingress(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    zone_proxy(&state, ResourceType::ZoneIngress, &name, &headers).await
}

async fn egress(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    zone_proxy(&state, ResourceType::ZoneEgress, &name, &headers).await
}

/// Kuma's `FullStatus`.
#[derive(Debug, Default, Clone, Copy)]
struct Status {
    online: u64,
    offline: u64,
    partially_degraded: u64,
}

impl Status {
    fn json(self) -> Value {
        json!({
            "online": self.online,
            "offline": self.offline,
            "partiallyDegraded": self.partially_degraded,
            "total": self.online + self.offline + self.partially_degraded,
        })
    }
}

/// Everything the summaries count, read once per request.
struct Census {
    counts: BTreeMap<&'static str, u64>,
    /// Per Dataplane: its mesh, whether it is online and the mTLS backend that
    /// issued its certificate.
    dataplanes: Vec<(String, bool, Option<String>)>,
    /// Per mesh: per `kuma.io/service`, (online, offline) instances.
    services: BTreeMap<String, BTreeMap<String, (u64, u64)>>,
    /// Per mesh: ExternalServices and MeshExternalServices.
    external: BTreeMap<String, u64>,
    /// Per mesh and type: how many.
    per_mesh: BTreeMap<String, BTreeMap<&'static str, u64>>,
    meshes: Vec<Resource>,
    zones: Status,
    ingresses: Status,
    egresses: Status,
}

impl Census {
    async fn take(state: &ApiState) -> Result<Census, ApiError> {
        let store = state.store.as_ref();
        let mut counts = BTreeMap::new();
        let mut per_mesh: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
        let mut census = Census {
            counts: BTreeMap::new(),
            dataplanes: Vec::new(),
            services: BTreeMap::new(),
            external: BTreeMap::new(),
            per_mesh: BTreeMap::new(),
            meshes: Vec::new(),
            zones: Status::default(),
            ingresses: Status::default(),
            egresses: Status::default(),
        };
        let insights = insights_by_proxy(store, None).await?;
        for &ty in ResourceType::ALL {
            let items = store.list(ty, None, Page::all()).await?.items;
            counts.insert(ty.name(), items.len() as u64);
            for r in &items {
                if let Some(m) = &r.meta.mesh {
                    *per_mesh
                        .entry(m.clone())
                        .or_default()
                        .entry(ty.name())
                        .or_default() += 1;
                }
            }
            match ty {
                ResourceType::Mesh => census.meshes = items,
                ResourceType::Dataplane => {
                    for dp in items {
                        let mesh = dp.meta.mesh.clone().unwrap_or_default();
                        let i = insights.get(&(mesh.clone(), dp.meta.name.clone()));
                        let up = online(i, live_of(state, &dp.key()).as_ref());
                        if let Spec::Dataplane(spec) = &dp.spec {
                            let names: BTreeSet<&String> = spec
                                .networking
                                .iter()
                                .flat_map(|n| n.inbound.iter())
                                .filter_map(|i| i.tags.get(tags::SERVICE))
                                .collect();
                            for s in names {
                                let e = census
                                    .services
                                    .entry(mesh.clone())
                                    .or_default()
                                    .entry(s.clone())
                                    .or_default();
                                if up { e.0 += 1 } else { e.1 += 1 }
                            }
                        }
                        let issued = i
                            .and_then(|i| i.mtls.as_ref())
                            .map(|m| m.issued_backend.clone());
                        census.dataplanes.push((mesh, up, issued));
                    }
                }
                ResourceType::ExternalService | ResourceType::MeshExternalService => {
                    for r in &items {
                        *census
                            .external
                            .entry(r.meta.mesh.clone().unwrap_or_default())
                            .or_default() += 1;
                    }
                }
                ResourceType::Zone => {
                    for z in &items {
                        let up = state
                            .hooks
                            .zone_connected
                            .as_ref()
                            .is_some_and(|c| c(&z.meta.name));
                        if up {
                            census.zones.online += 1
                        } else {
                            census.zones.offline += 1
                        }
                    }
                }
                ResourceType::ZoneIngress | ResourceType::ZoneEgress => {
                    for r in &items {
                        let up = zone_proxy_online(state, r, live_of(state, &r.key()).as_ref());
                        let s = if ty == ResourceType::ZoneIngress {
                            &mut census.ingresses
                        } else {
                            &mut census.egresses
                        };
                        if up { s.online += 1 } else { s.offline += 1 }
                    }
                }
                _ => {}
            }
        }
        census.counts = counts;
        census.per_mesh = per_mesh;
        Ok(census)
    }

    /// Services of `mesh` (all when `None`): online (every instance up),
    /// offline (none up) or partially degraded.
    fn services(&self, mesh: Option<&str>) -> Status {
        let mut s = Status::default();
        for (m, services) in &self.services {
            if mesh.is_some_and(|x| x != m) {
                continue;
            }
            for (up, down) in services.values() {
                match (up, down) {
                    (_, 0) => s.online += 1,
                    (0, _) => s.offline += 1,
                    _ => s.partially_degraded += 1,
                }
            }
        }
        s
    }

    fn dataplanes(&self, mesh: Option<&str>) -> Status {
        let mut s = Status::default();
        for (m, up, _) in &self.dataplanes {
            if mesh.is_none_or(|x| x == m) {
                if *up { s.online += 1 } else { s.offline += 1 }
            }
        }
        s
    }
}

fn zero_status() -> Value {
    Status::default().json()
}

async fn global_insight(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = Census::take(&state).await?;
    let policies: u64 = ResourceType::ALL
        .iter()
        .filter(|t| t.is_policy())
        .map(|t| c.counts.get(t.name()).copied().unwrap_or(0))
        .sum();
    let resources: Map<String, Value> = c
        .counts
        .iter()
        .map(|(k, v)| (k.to_string(), json!({ "total": v })))
        .collect();
    let base = |s: Status| json!({ "online": s.online, "total": s.online + s.offline });
    let body = json!({
        "type": "GlobalInsight",
        "createdAt": now(),
        "services": {
            "total": c.services(None).json()["total"].clone(),
            "internal": c.services(None).json(),
            "external": { "total": c.external.values().sum::<u64>() },
            "gatewayBuiltin": zero_status(),
            "gatewayDelegated": zero_status(),
        },
        "zones": {
            "controlPlanes": base(c.zones),
            "zoneIngresses": base(c.ingresses),
            "zoneEgresses": base(c.egresses),
        },
        "dataplanes": {
            "standard": c.dataplanes(None).json(),
            "gatewayBuiltin": zero_status(),
            "gatewayDelegated": zero_status(),
        },
        "policies": { "total": policies },
        "meshes": { "total": c.meshes.len() },
        "resources": resources,
    });
    Ok(respond(StatusCode::OK, &body, &headers, None))
}

/// Kuma's older `GET /global-insights`: how many resources of each global type.
async fn global_insights(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut resources = Map::new();
    for &ty in ResourceType::ALL.iter().filter(|t| !t.is_mesh_scoped()) {
        let total = state
            .store
            .list(ty, None, Page { size: 1, offset: 0 })
            .await?
            .total;
        resources.insert(ty.name().into(), json!({ "total": total }));
    }
    let body = json!({ "type": "GlobalInsights", "creationTime": now(), "resources": resources });
    Ok(respond(StatusCode::OK, &body, &headers, None))
}

fn mesh_insight_json(c: &Census, mesh: &Resource) -> Value {
    let name = mesh.meta.name.as_str();
    let counts = c.per_mesh.get(name).cloned().unwrap_or_default();
    let policies: Map<String, Value> = ResourceType::ALL
        .iter()
        .filter(|t| t.is_policy())
        .filter_map(|t| {
            counts
                .get(t.name())
                .map(|n| (t.name().to_string(), json!({ "total": n })))
        })
        .collect();
    let resources: Map<String, Value> = counts
        .iter()
        .map(|(k, v)| (k.to_string(), json!({ "total": v })))
        .collect();
    // Which mTLS backend issued each proxy's certificate (persisted insights).
    let mut issued: BTreeMap<String, Status> = BTreeMap::new();
    for (_, up, backend) in c.dataplanes.iter().filter(|(m, _, _)| m == name) {
        if let Some(b) = backend {
            let s = issued.entry(b.clone()).or_default();
            if *up { s.online += 1 } else { s.offline += 1 }
        }
    }
    let mut o = meta_of(mesh, "MeshInsight", None);
    o.remove("mesh");
    o.remove("labels");
    o.remove("kri");
    let dps = c.dataplanes(Some(name));
    let services = c.services(Some(name));
    let internal = services.online + services.offline + services.partially_degraded;
    let external = c.external.get(name).copied().unwrap_or(0);
    o.insert("lastSync".into(), json!(now()));
    o.insert("dataplanes".into(), dps.json());
    o.insert(
        "dataplanesByType".into(),
        json!({
            "standard": dps.json(),
            "gateway": zero_status(),
            "gatewayBuiltin": zero_status(),
            "gatewayDelegated": zero_status(),
        }),
    );
    o.insert("policies".into(), Value::Object(policies));
    o.insert("resources".into(), Value::Object(resources));
    o.insert(
        "services".into(),
        json!({ "total": internal + external, "internal": internal, "external": external }),
    );
    o.insert("serviceStatus".into(), services.json());
    o.insert(
        "mTLS".into(),
        json!({
            "issuedBackends": issued.iter().map(|(k, s)| (k.clone(), s.json())).collect::<Map<String, Value>>(),
        }),
    );
    Value::Object(o)
}

async fn mesh_insights(
    State(state): State<ApiState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(q)?;
    let c = Census::take(&state).await?;
    let matching: Vec<&Resource> = c.meshes.iter().filter(|m| params.keeps(m)).collect();
    page_of(&params, matching, &headers, &uri, &[], |m| {
        mesh_insight_json(&c, m)
    })
}

async fn mesh_insight(
    State(state): State<ApiState>,
    Path(mesh): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = Census::take(&state).await?;
    let m = c
        .meshes
        .iter()
        .find(|m| m.meta.name == mesh)
        .ok_or_else(|| ApiError::not_found(format!("mesh {mesh:?} does not exist")))?;
    Ok(respond(
        StatusCode::OK,
        &mesh_insight_json(&c, m),
        &headers,
        None,
    ))
}

/// The Dataplanes a policy's top-level targetRef selects, as Kuma's `Meta`
/// items, paged (`size`, `offset`) and filtered by `name`.
async fn policy_dataplanes(
    State(state): State<ApiState>,
    Path((mesh, plural, name)): Path<(String, String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let ty = super::resources::resource_type(&plural)?;
    if !ty.is_policy() {
        if let Some(e) =
            super::kuma_routes::unserved(&state.mode, &axum::http::Method::GET, uri.path())
        {
            return Err(e);
        }
        return Err(ApiError::not_found(format!(
            "{ty} is not a policy: _resources/dataplanes is served for policies only"
        )));
    }
    let params = ListParams::parse(q)?;
    let key = ResourceKey::new(ty, Some(&mesh), &name);
    let policy = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{ty} {mesh}/{name} not found")))?;
    let prepared = Policy::new(Arc::new(policy));
    let dps = state
        .store
        .list(ResourceType::Dataplane, Some(&mesh), Page::all())
        .await?
        .items;
    let matching: Vec<Resource> = dps
        .into_iter()
        .filter(|dp| params.keeps(dp))
        .filter(|dp| match &dp.spec {
            Spec::Dataplane(spec) => select(&ProxyView::new(dp, spec), &prepared).is_some(),
            _ => false,
        })
        .collect();
    page_of(&params, matching, &headers, &uri, &[], |dp| {
        dataplane_meta(&state, dp)
    })
}

/// Kuma's `GET /policies` (its older policy list): every policy type with
/// where it applies.
async fn policies(State(state): State<ApiState>) -> Response {
    let items: Vec<Value> = ResourceType::ALL
        .iter()
        .filter(|t| t.is_policy())
        .map(|&ty| {
            let d = super::types::describe(ty, &state.mode);
            let p = &d["policy"];
            json!({
                "name": ty.name(),
                "readOnly": d["readOnly"],
                "path": ty.plural(),
                "singularDisplayName": d["singularDisplayName"],
                "pluralDisplayName": d["pluralDisplayName"],
                "isExperimental": false,
                "isTargetRefBased": true,
                "isInbound": p["hasFromTargetRef"] == json!(true) || p["hasRulesTargetRef"] == json!(true),
                "isOutbound": p["hasToTargetRef"],
            })
        })
        .collect();
    axum::Json(json!({ "policies": items })).into_response()
}

/// Kuma's `GET /versions`: which data-plane versions this control plane
/// serves, with the Envoy each expects.
async fn versions() -> Response {
    axum::Json(json!({
        "kumaDp": {
            env!("CARGO_PKG_VERSION"): { "envoy": super::ENVOY_VERSION },
        },
    }))
    .into_response()
}

/// Kuma's `GET /config`: this control plane's effective configuration (no
/// secrets: paths to key files, never their contents).
async fn config(State(state): State<ApiState>) -> Result<Response, ApiError> {
    match &state.hooks.config {
        Some(c) => Ok(axum::Json(c.clone()).into_response()),
        None => Err(ApiError::not_found(
            "this control plane did not publish its configuration",
        )),
    }
}

/// The Dataplanes a MeshService's selector picks (`dataplaneTags` on an
/// inbound, `dataplaneRef.name`, or `dataplaneLabels.matchLabels`), as Kuma's
/// `Meta` items, paged and filtered by `name`.
async fn mesh_service_dataplanes(
    State(state): State<ApiState>,
    Path((mesh, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = ListParams::parse(q)?;
    let key = ResourceKey::new(ResourceType::MeshService, Some(&mesh), &name);
    let service = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("MeshService {mesh}/{name} not found")))?;
    let Spec::MeshService(spec) = &service.spec else {
        return Err(ApiError::internal("a MeshService without its spec"));
    };
    let selector = spec.selector.clone().unwrap_or_default();
    let dps = state
        .store
        .list(ResourceType::Dataplane, Some(&mesh), Page::all())
        .await?
        .items;
    let matching: Vec<Resource> = dps
        .into_iter()
        .filter(|dp| params.keeps(dp) && selector.picks(dp))
        .collect();
    page_of(&params, matching, &headers, &uri, &[], |dp| {
        dataplane_meta(&state, dp)
    })
}

/// A resource by its KRI (`kri_<short name>_<mesh>_<zone>_<namespace>_<name>_<section>`),
/// answered as its GET is. A zone's resource on global is found by its zone and
/// its name there; the section is ignored (the resource is answered whole).
async fn by_kri(
    State(state): State<ApiState>,
    Path(kri): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some([short, mesh, zone, _namespace, name, _section]) = super::parse_kri(&kri) else {
        return Err(ApiError::invalid_field(
            "kri",
            "not a KRI: expected kri_<short name>_<mesh>_<zone>_<namespace>_<name>_<section>",
        ));
    };
    let ty = ResourceType::ALL
        .iter()
        .copied()
        .find(|t| super::types::short_name(*t) == Some(short))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no resource type has the short name {short:?} (see GET /_resources)"
            ))
        })?;
    let mesh = (ty.is_mesh_scoped()).then_some(mesh);
    if ty.is_mesh_scoped() && mesh.is_some_and(str::is_empty) {
        return Err(ApiError::invalid_field(
            "kri",
            format!("{ty} lives in a mesh: the KRI must name it"),
        ));
    }
    let direct = state.store.get(&ResourceKey::new(ty, mesh, name)).await?;
    let found = match direct {
        Some(r) if zone.is_empty() || r.meta.labels.get(tags::ZONE).is_none_or(|z| z == zone) => {
            Some(r)
        }
        _ if zone.is_empty() => None,
        // A zone's resource as global stores it: by its zone and display name.
        _ => state
            .store
            .list(ty, mesh, Page::all())
            .await?
            .items
            .into_iter()
            .find(|r| {
                r.meta.labels.get(tags::ZONE).map(String::as_str) == Some(zone)
                    && r.meta.labels.get(tags::DISPLAY_NAME).map(String::as_str) == Some(name)
            }),
    };
    let r = found.ok_or_else(|| ApiError::not_found(format!("no resource has the KRI {kri:?}")))?;
    Ok(respond(
        StatusCode::OK,
        &answer_of(&r, state.mode.zone_name()),
        &headers,
        Some(r.meta.version),
    ))
}

/// Kuma's `GET /who-am-i`: Weft has one identity, the admin token's.
async fn who_am_i() -> Response {
    axum::Json(json!({
        "name": "mesh-system:admin",
        "groups": ["mesh-system:admin", "mesh-system:authenticated"],
    }))
    .into_response()
}
