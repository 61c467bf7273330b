//! DataplaneInsight: what the zone knows about each proxy's ADS connection —
//! connected or not, when it connected and disconnected, SotW or delta, and per
//! type what was sent, ACKed and NACKed (with the last NACK's reason).
//!
//! Kept in memory (it describes live connections); served with the Dataplane on
//! `GET /meshes/{mesh}/dataplanes/{name}/_overview` (Kuma's path).

use super::node::ProxyKey;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use weft_api::{ApiError, ApiState};
use weft_model::resource::{ResourceKey, ResourceType};
use weft_sync::delta::TypeStats;

/// Which ADS flavour a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Sotw,
    Delta,
}

/// One type's counters over the current connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeInsight {
    pub responses_sent: u64,
    pub resources_sent: u64,
    pub removals_sent: u64,
    pub acked: u64,
    pub nacked: u64,
    pub bytes_sent: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_nack_reason: Option<String>,
}

impl From<&TypeStats> for TypeInsight {
    fn from(s: &TypeStats) -> Self {
        TypeInsight {
            responses_sent: s.responses_sent,
            resources_sent: s.resources_sent,
            removals_sent: s.removals_sent,
            acked: s.acks,
            nacked: s.nacks,
            bytes_sent: s.bytes_sent,
            last_nack_reason: s.last_nack_reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneInsight {
    pub connected: bool,
    /// Open ADS streams of this proxy (one normally).
    pub streams: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_kind: Option<StreamKind>,
    /// Per type URL, over the latest stream.
    pub types: BTreeMap<String, TypeInsight>,
}

impl DataplaneInsight {
    /// Total ACKs over every type.
    pub fn total_acked(&self) -> u64 {
        self.types.values().map(|t| t.acked).sum()
    }

    pub fn total_nacked(&self) -> u64 {
        self.types.values().map(|t| t.nacked).sum()
    }
}

/// Every proxy's insight; cheap to clone.
#[derive(Clone, Default)]
pub struct Insights {
    inner: Arc<Mutex<BTreeMap<ProxyKey, DataplaneInsight>>>,
}

fn now() -> Option<String> {
    OffsetDateTime::now_utc().format(&Rfc3339).ok()
}

impl Insights {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<ProxyKey, DataplaneInsight>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &ProxyKey) -> Option<DataplaneInsight> {
        self.lock().get(key).cloned()
    }

    /// Proxies with at least one open stream.
    pub fn connected(&self) -> usize {
        self.lock().values().filter(|i| i.connected).count()
    }

    /// A stream of `key` opened; the guard records its end when dropped.
    pub fn stream_opened(&self, key: &ProxyKey, kind: StreamKind) -> InsightGuard {
        let mut all = self.lock();
        let i = all.entry(key.clone()).or_default();
        i.connect_time = now();
        i.types.clear();
        i.streams += 1;
        i.connected = true;
        i.stream_kind = Some(kind);
        InsightGuard {
            insights: self.clone(),
            key: key.clone(),
        }
    }

    /// Copies a stream's per-type counters.
    pub fn record<'a>(
        &self,
        key: &ProxyKey,
        stats: impl Iterator<Item = (&'a str, &'a TypeStats)>,
    ) {
        let mut all = self.lock();
        let i = all.entry(key.clone()).or_default();
        for (ty, s) in stats {
            i.types.insert(ty.to_string(), s.into());
        }
    }

    /// Every known proxy's ACK count over all types, and whether every response
    /// sent to it has been answered (ACK or NACK). Benchmarks watch these.
    pub fn ack_state(&self) -> BTreeMap<ProxyKey, (u64, bool)> {
        self.lock()
            .iter()
            .map(|(k, i)| {
                let answered = i
                    .types
                    .values()
                    .all(|t| t.acked + t.nacked == t.responses_sent);
                (k.clone(), (i.total_acked(), answered))
            })
            .collect()
    }

    /// Forgets proxies whose Dataplane is gone.
    pub fn remove(&self, key: &ProxyKey) {
        self.lock().remove(key);
    }
}

/// Marks a stream closed when dropped (however it ends).
pub struct InsightGuard {
    insights: Insights,
    key: ProxyKey,
}

impl Drop for InsightGuard {
    fn drop(&mut self) {
        let mut all = self.insights.lock();
        if let Some(i) = all.get_mut(&self.key) {
            i.streams = i.streams.saturating_sub(1);
            if i.streams == 0 {
                i.connected = false;
                i.disconnect_time = now();
            }
        }
    }
}

/// `GET /meshes/{mesh}/dataplanes/{name}/_overview`.
pub fn routes(insights: Insights) -> Router<ApiState> {
    Router::new()
        .route("/meshes/{mesh}/dataplanes/{name}/_overview", get(overview))
        .layer(axum::Extension(insights))
}

async fn overview(
    State(state): State<ApiState>,
    axum::Extension(insights): axum::Extension<Insights>,
    Path((mesh, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = ResourceKey::new(ResourceType::Dataplane, Some(&mesh), &name);
    let Some(dp) = state.store.get(&key).await? else {
        return Err(ApiError::not_found(format!(
            "dataplane {name:?} not found in mesh {mesh:?}: it appears when its proxy connects"
        )));
    };
    let insight = insights.get(&ProxyKey { mesh, name }).unwrap_or_default();
    Ok(axum::Json(serde_json::json!({
        "dataplane": dp.to_value(),
        "dataplaneInsight": insight,
    }))
    .into_response())
}
