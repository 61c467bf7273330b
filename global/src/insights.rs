//! Zone insights: what global knows about each zone's KDS connection — online or
//! not, when it connected and disconnected, the zone's version, and per type what
//! global sent (and what was ACKed / NACKed) and what the zone reported.
//!
//! Kept in memory (they describe live connections); served on
//! `GET /zones/{name}/_overview` and `GET /zones/_overview` beside what global's
//! store holds of the zone's proxies (ingresses, egresses, Dataplanes), which
//! outlives a restart of global.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use weft_api::{ApiError, ApiState};
use weft_model::resource::{ResourceKey, ResourceType};
use weft_store::{Page, ResourceStore};
use weft_sync::delta::Sender;
use weft_sync::insight::{self, Registry, StreamInsight};

/// What global sent a zone of one type, and how the zone answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentCounters {
    pub responses_sent: u64,
    pub resources_sent: u64,
    pub removals_sent: u64,
    pub acked: u64,
    pub nacked: u64,
    pub bytes_sent: u64,
    pub largest_response: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_nack_reason: Option<String>,
}

/// What a zone reported of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedCounters {
    pub responses_received: u64,
    pub resources_received: u64,
    pub removals_received: u64,
    pub resources_rejected: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneInsight {
    pub online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Open KDS streams (two while connected: one each way).
    pub streams: u32,
    /// Global → zone, per type, over the current connection.
    pub sent: BTreeMap<String, SentCounters>,
    /// Zone → global, per type, since global started.
    pub received: BTreeMap<String, ReceivedCounters>,
}

impl StreamInsight for ZoneInsight {
    fn streams_mut(&mut self) -> &mut u32 {
        &mut self.streams
    }

    fn all_streams_closed(&mut self, at: Option<String>) {
        self.online = false;
        self.disconnect_time = at;
    }
}

/// Marks a zone's stream closed when dropped (however the stream ends).
pub type StreamGuard = insight::StreamGuard<String, ZoneInsight>;

/// Every zone's insight; cheap to clone.
#[derive(Clone, Default)]
pub struct ZoneInsights {
    inner: Registry<String, ZoneInsight>,
}

impl ZoneInsights {
    pub fn get(&self, zone: &str) -> Option<ZoneInsight> {
        self.inner.lock().get(zone).cloned()
    }

    /// A stream of `zone` opened; returns a guard that records its end when dropped.
    pub fn stream_opened(&self, zone: &str, version: Option<String>) -> StreamGuard {
        self.inner.stream_opened(&zone.to_string(), |z| {
            if z.streams == 0 {
                z.connect_time = insight::now();
                z.sent.clear();
            }
            z.online = true;
            if version.is_some() {
                z.version = version;
            }
        })
    }

    /// Copies the sender's per-type counters (global → zone).
    pub fn record_sent(&self, zone: &str, sender: &Sender) {
        let mut all = self.inner.lock();
        let z = all.entry(zone.to_string()).or_default();
        for (ty, s) in sender.all_stats() {
            z.sent.insert(
                ty.to_string(),
                SentCounters {
                    responses_sent: s.responses_sent,
                    resources_sent: s.resources_sent,
                    removals_sent: s.removals_sent,
                    acked: s.acks,
                    nacked: s.nacks,
                    bytes_sent: s.bytes_sent,
                    largest_response: s.largest_response,
                    last_nack_reason: s.last_nack_reason.clone(),
                },
            );
        }
    }

    /// Counts one response received from the zone.
    pub fn record_received(
        &self,
        zone: &str,
        ty: &str,
        resources: usize,
        removals: usize,
        rejected: usize,
    ) {
        let mut all = self.inner.lock();
        let c = all
            .entry(zone.to_string())
            .or_default()
            .received
            .entry(ty.to_string())
            .or_default();
        c.responses_received += 1;
        c.resources_received += resources as u64;
        c.removals_received += removals as u64;
        c.resources_rejected += rejected as u64;
    }
}

/// `GET /zones/_overview` and `GET /zones/{name}/_overview`.
pub fn routes(insights: ZoneInsights) -> Router<ApiState> {
    Router::new()
        .route("/zones/_overview", get(list))
        .route("/zones/{name}/_overview", get(one))
        .layer(axum::Extension(insights))
}

/// What zones report of their proxies, listed once per request (not per zone).
struct Reported {
    ingresses: Vec<weft_model::resource::Resource>,
    egresses: Vec<weft_model::resource::Resource>,
    dataplanes: Vec<weft_model::resource::Resource>,
    insights: Vec<weft_model::resource::Resource>,
}

impl Reported {
    async fn load(store: &dyn ResourceStore) -> Result<Self, ApiError> {
        let all =
            |ty| async move { Ok::<_, ApiError>(store.list(ty, None, Page::all()).await?.items) };
        Ok(Reported {
            ingresses: all(ResourceType::ZoneIngress).await?,
            egresses: all(ResourceType::ZoneEgress).await?,
            dataplanes: all(ResourceType::Dataplane).await?,
            insights: all(ResourceType::DataplaneInsight).await?,
        })
    }
}

async fn overview(
    store: &dyn ResourceStore,
    insights: &ZoneInsights,
    reported: &Reported,
    name: &str,
) -> Result<Option<serde_json::Value>, ApiError> {
    let key = ResourceKey::new(ResourceType::Zone, None, name);
    let Some(zone) = store.get(&key).await? else {
        return Ok(None);
    };
    let insight = insights.get(name).unwrap_or_default();
    let proxies = zone_proxies(store, reported, name).await?;
    Ok(Some(serde_json::json!({
        "zone": zone.to_value(),
        "zoneInsight": insight,
        "proxies": proxies,
    })))
}

/// The name a resource has in its zone (global stores zone resources under a
/// hashed name).
fn display_name(r: &weft_model::resource::Resource) -> &str {
    r.meta
        .labels
        .get(weft_model::resource::tags::DISPLAY_NAME)
        .unwrap_or(&r.meta.name)
}

/// What global holds of zone `name`'s proxies (reported over KDS, so it outlives
/// a restart of global): its ingresses with what they offer, its egresses, its
/// Dataplanes per mesh, and a note for each mesh it offers services in that has
/// no mTLS (those services are not reachable from other zones).
async fn zone_proxies(
    store: &dyn ResourceStore,
    reported: &Reported,
    name: &str,
) -> Result<serde_json::Value, ApiError> {
    use weft_model::resource::{Spec, tags};
    let of_zone = |r: &weft_model::resource::Resource| {
        r.meta.labels.get(tags::ZONE).map(String::as_str) == Some(name)
    };
    let mut ingresses = Vec::new();
    let mut offered_meshes = std::collections::BTreeSet::new();
    for r in reported.ingresses.iter().filter(|r| of_zone(r)) {
        if let Spec::ZoneIngress(zi) = &r.spec {
            offered_meshes.extend(zi.available_services.iter().filter_map(|s| s.mesh.clone()));
            ingresses.push(serde_json::json!({
                "name": display_name(r),
                "advertised": zi.public_endpoint().map(|(a, p)| format!("{a}:{p}")),
                "availableServices": zi.available_services.len(),
                "instances": zi.available_services.iter().map(|s| u64::from(s.instances)).sum::<u64>(),
            }));
        }
    }
    let egresses: Vec<serde_json::Value> = reported
        .egresses
        .iter()
        .filter(|r| of_zone(r))
        .filter_map(|r| match &r.spec {
            Spec::ZoneEgress(ze) => Some(serde_json::json!({
                "name": display_name(r),
                "address": ze.networking.as_ref().map(|n| format!("{}:{}", n.address, n.port)),
            })),
            _ => None,
        })
        .collect();
    let mut dataplanes: BTreeMap<String, u64> = BTreeMap::new();
    for r in reported.dataplanes.iter().filter(|r| of_zone(r)) {
        *dataplanes
            .entry(r.meta.mesh.clone().unwrap_or_default())
            .or_default() += 1;
    }
    // Online: the newest subscription of the proxy's DataplaneInsight is open.
    let online = reported
        .insights
        .iter()
        .filter(|r| of_zone(r))
        .filter(|r| matches!(&r.spec, Spec::DataplaneInsight(i) if i.is_online()))
        .count() as u64;
    let total: u64 = dataplanes.values().sum();
    let mut notes = Vec::new();
    for mesh in offered_meshes {
        let key = ResourceKey::new(ResourceType::Mesh, None, &mesh);
        let mtls = matches!(store.get(&key).await?, Some(m) if matches!(&m.spec, Spec::Mesh(s) if s.mtls_enabled()));
        let identities = store
            .list(
                ResourceType::MeshIdentity,
                Some(&mesh),
                Page { size: 1, offset: 0 },
            )
            .await?
            .total;
        if !mtls && identities == 0 {
            notes.push(weft_api::cross_zone_message(&mesh));
        }
    }
    Ok(serde_json::json!({
        "ingresses": ingresses,
        "egresses": egresses,
        "dataplanes": {
            "total": total,
            "online": online.min(total),
            "offline": total.saturating_sub(online),
            "byMesh": dataplanes,
        },
        "notes": notes,
    }))
}

async fn one(
    State(state): State<ApiState>,
    axum::Extension(insights): axum::Extension<ZoneInsights>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let reported = Reported::load(state.store.as_ref()).await?;
    match overview(state.store.as_ref(), &insights, &reported, &name).await? {
        Some(v) => Ok(axum::Json(v).into_response()),
        None => Err(ApiError::not_found(format!(
            "zone {name:?} not found: it appears once it connects"
        ))),
    }
}

async fn list(
    State(state): State<ApiState>,
    axum::Extension(insights): axum::Extension<ZoneInsights>,
) -> Result<Response, ApiError> {
    let zones = state
        .store
        .list(ResourceType::Zone, None, Page::all())
        .await?;
    let reported = Reported::load(state.store.as_ref()).await?;
    let mut items = Vec::new();
    for z in &zones.items {
        if let Some(v) = overview(state.store.as_ref(), &insights, &reported, &z.meta.name).await? {
            items.push(v);
        }
    }
    Ok(
        axum::Json(serde_json::json!({ "total": items.len(), "items": items, "next": null }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A zone is online while any stream is open, and offline with a disconnect time after.
    #[test]
    fn online_follows_streams() {
        let i = ZoneInsights::default();
        let a = i.stream_opened("z", Some("1.0".into()));
        let b = i.stream_opened("z", None);
        assert!(i.get("z").unwrap().online);
        drop(a);
        assert!(i.get("z").unwrap().online);
        drop(b);
        let z = i.get("z").unwrap();
        assert!(!z.online && z.disconnect_time.is_some() && z.connect_time.is_some());
        assert_eq!(z.version.as_deref(), Some("1.0"));
        i.record_received("z", "Dataplane", 2, 1, 1);
        assert_eq!(
            i.get("z").unwrap().received["Dataplane"].resources_received,
            2
        );
    }
}
