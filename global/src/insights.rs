//! Zone insights: what global knows about each zone's KDS connection — online or
//! not, when it connected and disconnected, the zone's version, and per type what
//! global sent (and what was ACKed / NACKed) and what the zone reported.
//!
//! Live in memory while zones stream; [`persist`] writes each zone's Kuma
//! `ZoneInsight` (its subscriptions with their counters) to the store on
//! connect, on disconnect and every [`FLUSH_EVERY`] while counters change, so a
//! restarted global still shows every zone's last known state. Served on `GET
//! /zones/{name}/_overview`, `GET /zones/_overview` and `GET /zones+insights`
//! in Kuma's `ZoneOverview` shape, beside what global's store holds of the
//! zone's proxies (ingresses, egresses, Dataplanes).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_api::{ApiError, ApiState};
use weft_model::resource::insight::{
    CpVersion, KdsServiceStats, KdsSubscription, KdsSubscriptionStatus, KdsVersion, ZoneInsightSpec,
};
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_runtime::health::Reporter;
use weft_runtime::shutdown::CancellationToken;
use weft_store::{Page, ResourceStore, StoreError};
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
    /// The id of the current (or last) subscription, as persisted.
    #[serde(skip)]
    pub subscription: Option<String>,
}

impl ZoneInsight {
    /// The persisted form of the current subscription (Kuma's `KDSSubscription`).
    fn to_subscription(&self, instance: &str) -> Option<KdsSubscription> {
        let id = self.subscription.clone()?;
        let mut status = KdsSubscriptionStatus::default();
        for (ty, c) in &self.sent {
            let stats = KdsServiceStats {
                responses_sent: c.responses_sent,
                responses_acknowledged: c.acked,
                responses_rejected: c.nacked,
            };
            status.total.responses_sent += stats.responses_sent;
            status.total.responses_acknowledged += stats.responses_acknowledged;
            status.total.responses_rejected += stats.responses_rejected;
            status.stat.insert(ty.clone(), stats);
        }
        let version = self.version.clone().unwrap_or_default();
        Some(KdsSubscription {
            id,
            global_instance_id: instance.to_string(),
            connect_time: self.connect_time.clone(),
            disconnect_time: self.disconnect_time.clone(),
            status,
            version: KdsVersion {
                kuma_cp: CpVersion {
                    kuma_cp_global_compatible: compatible(&version),
                    version,
                },
            },
        })
    }
}

/// Whether global serves a zone of `version`: the same major and minor.
fn compatible(version: &str) -> bool {
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    !version.is_empty() && major_minor(version) == major_minor(env!("CARGO_PKG_VERSION"))
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
#[derive(Clone)]
pub struct ZoneInsights {
    inner: Registry<String, ZoneInsight>,
    /// This global's instance id (who served a subscription).
    instance: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for ZoneInsights {
    fn default() -> Self {
        let instance = format!(
            "{}-{:x}-{:x}",
            weft_api::hostname(),
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        ZoneInsights {
            inner: Registry::default(),
            instance: instance.into(),
            next: Arc::default(),
        }
    }
}

impl ZoneInsights {
    pub fn get(&self, zone: &str) -> Option<ZoneInsight> {
        self.inner.lock().get(zone).cloned()
    }

    /// Whether `zone` has a KDS stream open on this global now.
    pub fn is_connected(&self, zone: &str) -> bool {
        self.inner.lock().get(zone).is_some_and(|z| z.online)
    }

    fn snapshot(&self) -> BTreeMap<String, ZoneInsight> {
        self.inner
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A stream of `zone` opened; returns a guard that records its end when dropped.
    pub fn stream_opened(&self, zone: &str, version: Option<String>) -> StreamGuard {
        let (instance, next) = (self.instance.clone(), self.next.clone());
        self.inner.stream_opened(&zone.to_string(), |z| {
            if z.streams == 0 {
                z.connect_time = insight::now();
                z.disconnect_time = None;
                z.sent.clear();
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                z.subscription = Some(format!("{instance}-{n}"));
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

/// Counters are written at most this often per zone; connects and disconnects
/// at once.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often the live insights are compared with what was written.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Writes every zone's `ZoneInsight` to the store as its connection changes
/// (see the module docs). First closes the subscriptions a previous instance
/// of global left open. Runs until `shutdown`; store errors are reported and
/// retried.
pub async fn persist(
    store: Arc<dyn ResourceStore>,
    insights: ZoneInsights,
    reporter: Reporter,
    shutdown: CancellationToken,
) {
    let instance = insights.instance.to_string();
    // What was last written per zone, and when.
    let mut written: BTreeMap<String, (KdsSubscription, Instant)> = BTreeMap::new();
    let mut closed_stale = false;
    loop {
        if !closed_stale {
            match close_stale(store.as_ref(), &instance).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(
                            zones = n,
                            "closed the KDS subscriptions a previous global left open"
                        );
                    }
                    closed_stale = true;
                    reporter.ready();
                }
                Err(e) => reporter.down(format!("cannot write zone insights: {e}")),
            }
        }
        if closed_stale {
            let mut failed = None;
            for (zone, live) in insights.snapshot() {
                let Some(sub) = live.to_subscription(&instance) else {
                    continue;
                };
                let due = match written.get(&zone) {
                    None => true,
                    Some((last, at)) => {
                        let state_changed = last.id != sub.id
                            || last.connect_time != sub.connect_time
                            || last.disconnect_time != sub.disconnect_time
                            || last.version != sub.version;
                        state_changed || (last.status != sub.status && at.elapsed() >= FLUSH_EVERY)
                    }
                };
                if !due {
                    continue;
                }
                match write(store.as_ref(), &zone, sub.clone()).await {
                    Ok(()) => {
                        written.insert(zone, (sub, Instant::now()));
                    }
                    Err(e) => failed = Some(e),
                }
            }
            match failed {
                Some(e) => reporter.degraded(format!("cannot write zone insights: {e}")),
                None => reporter.ready(),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

fn now() -> String {
    insight::now().unwrap_or_default()
}

/// Ends the open subscriptions of other global instances; how many zones changed.
async fn close_stale(store: &dyn ResourceStore, instance: &str) -> Result<usize, StoreError> {
    let at = now();
    let mut changed = 0;
    for r in store
        .list(ResourceType::ZoneInsight, None, Page::all())
        .await?
        .items
    {
        let version = r.meta.version;
        if let Spec::ZoneInsight(mut spec) = r.spec
            && spec.close_stale(instance, &at)
        {
            let res = Resource::new(&r.meta.name, None, Spec::ZoneInsight(spec));
            store.update(res, Some(version)).await?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Records `sub` in zone `zone`'s ZoneInsight (creating it while the Zone
/// exists: a deleted zone's insight is not brought back).
async fn write(
    store: &dyn ResourceStore,
    zone: &str,
    sub: KdsSubscription,
) -> Result<(), StoreError> {
    let key = ResourceKey::new(ResourceType::ZoneInsight, None, zone);
    let mut sub = sub;
    sub.status.last_update_time = Some(now());
    for _ in 0..3 {
        let current = store.get(&key).await?;
        if current.is_none()
            && store
                .get(&ResourceKey::new(ResourceType::Zone, None, zone))
                .await?
                .is_none()
        {
            // The Zone was deleted (with its insight): nothing to record until
            // it connects again and is registered anew.
            return Ok(());
        }
        let version = current.as_ref().map(|r| r.meta.version);
        let mut spec = match current.map(|r| r.spec) {
            Some(Spec::ZoneInsight(s)) => s,
            _ => ZoneInsightSpec::default(),
        };
        match spec.subscription_mut(&sub.id) {
            Some(s) => *s = sub.clone(),
            None => spec.connected(sub.clone()),
        }
        let res = Resource::new(zone, None, Spec::ZoneInsight(spec));
        let done = match version {
            Some(v) => store.update(res, Some(v)).await,
            None => store.create(res).await,
        };
        match done {
            Ok(_) => return Ok(()),
            Err(
                StoreError::Conflict { .. }
                | StoreError::AlreadyExists(_)
                | StoreError::NotFound(_),
            ) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Corrupt(format!(
        "the ZoneInsight of zone {zone:?} kept changing under this writer"
    )))
}

/// `GET /zones/_overview`, `GET /zones+insights` and one zone's overview.
pub fn routes(insights: ZoneInsights) -> Router<ApiState> {
    Router::new()
        .route("/zones/_overview", get(list))
        .route("/zones+insights", get(list))
        .route("/zones/{name}/_overview", get(one))
        .route("/zones+insights/{name}", get(one))
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
    let stored = match store
        .get(&ResourceKey::new(ResourceType::ZoneInsight, None, name))
        .await?
        .map(|r| r.spec)
    {
        Some(Spec::ZoneInsight(s)) => s,
        _ => ZoneInsightSpec::default(),
    };
    let proxies = zone_proxies(store, reported, name).await?;
    let enabled = matches!(&zone.spec, Spec::Zone(z) if z.is_enabled());
    let full = zone.to_value();
    let mut o = serde_json::Map::new();
    o.insert("type".into(), "ZoneOverview".into());
    o.insert("name".into(), name.into());
    for k in ["creationTime", "modificationTime", "labels"] {
        if let Some(v) = full.get(k) {
            o.insert(k.into(), v.clone());
        }
    }
    o.insert("zone".into(), serde_json::json!({ "enabled": enabled }));
    o.insert("zoneInsight".into(), insight_json(insights, name, stored));
    o.insert("proxies".into(), proxies);
    Ok(Some(serde_json::Value::Object(o)))
}

/// Kuma's `ZoneInsight` (the persisted subscriptions, the live one's counters
/// merged in) with Weft's live view beside it: `online`, `connectTime`,
/// `disconnectTime`, `version`, `streams`, per type `sent` and `received`. After
/// a restart of global, before the zone reconnects, the live view is read from
/// the newest persisted subscription.
fn insight_json(
    insights: &ZoneInsights,
    name: &str,
    mut stored: ZoneInsightSpec,
) -> serde_json::Value {
    let live = insights.get(name);
    if let Some(sub) = live
        .as_ref()
        .and_then(|l| l.to_subscription(&insights.instance))
    {
        match stored.subscription_mut(&sub.id) {
            Some(s) => {
                let written = s.status.last_update_time.take();
                *s = sub;
                s.status.last_update_time = written;
            }
            None => stored.connected(sub),
        }
    }
    let weft = match live {
        Some(l) => serde_json::to_value(l).unwrap_or_default(),
        None => {
            let last = stored.subscriptions.last();
            serde_json::json!({
                "online": stored.is_online(),
                "connectTime": last.and_then(|s| s.connect_time.clone()),
                "disconnectTime": last.and_then(|s| s.disconnect_time.clone()),
                "version": last.map(|s| s.version.kuma_cp.version.clone()).filter(|v| !v.is_empty()),
                "streams": 0,
                "sent": last.map(|s| s.status.stat.iter().map(|(ty, c)| (ty.clone(), serde_json::json!({
                    "responsesSent": c.responses_sent,
                    "acked": c.responses_acknowledged,
                    "nacked": c.responses_rejected,
                }))).collect::<serde_json::Map<_, _>>()).unwrap_or_default(),
                "received": {},
            })
        }
    };
    let mut v = serde_json::to_value(&stored).unwrap_or_default();
    if let (Some(o), Some(w)) = (v.as_object_mut(), weft.as_object()) {
        o.entry("subscriptions")
            .or_insert_with(|| serde_json::json!([]));
        for (k, val) in w {
            o.insert(k.clone(), val.clone());
        }
    }
    v
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
