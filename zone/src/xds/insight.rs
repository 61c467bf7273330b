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
use weft_api::{ApiError, ApiState};
use weft_model::resource::{ResourceKey, ResourceType};
use weft_sync::delta::TypeStats;
use weft_sync::insight::{self, Registry, StreamInsight};

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
    /// The proxy's workload certificate (mTLS meshes; Kuma's `mTLS` block).
    #[serde(rename = "mTLS", skip_serializing_if = "Option::is_none")]
    pub mtls: Option<super::identity::CertInfo>,
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

impl StreamInsight for DataplaneInsight {
    fn streams_mut(&mut self) -> &mut u32 {
        &mut self.streams
    }

    fn all_streams_closed(&mut self, at: Option<String>) {
        self.connected = false;
        self.disconnect_time = at;
    }
}

/// Every proxy's insight; cheap to clone.
#[derive(Clone, Default)]
pub struct Insights {
    inner: Registry<ProxyKey, DataplaneInsight>,
}

impl Insights {
    pub fn get(&self, key: &ProxyKey) -> Option<DataplaneInsight> {
        self.inner.get(key)
    }

    /// Proxies with at least one open stream.
    pub fn connected(&self) -> usize {
        self.inner.lock().values().filter(|i| i.connected).count()
    }

    /// A stream of `key` opened; the guard records its end when dropped.
    pub fn stream_opened(&self, key: &ProxyKey, kind: StreamKind) -> InsightGuard {
        self.inner.stream_opened(key, |i| {
            i.connect_time = insight::now();
            i.types.clear();
            i.connected = true;
            i.stream_kind = Some(kind);
        })
    }

    /// Copies a stream's per-type counters.
    pub fn record<'a>(
        &self,
        key: &ProxyKey,
        stats: impl Iterator<Item = (&'a str, &'a TypeStats)>,
    ) {
        let mut all = self.inner.lock();
        let i = all.entry(key.clone()).or_default();
        for (ty, s) in stats {
            i.types.insert(ty.to_string(), s.into());
        }
    }

    /// Every known proxy's ACK count over all types, and whether every response
    /// sent to it has been answered (ACK or NACK). Benchmarks watch these.
    pub fn ack_state(&self) -> BTreeMap<ProxyKey, (u64, bool)> {
        self.inner
            .lock()
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

    /// Records the certificate `key` holds now.
    pub fn set_certificate(&self, key: &ProxyKey, cert: super::identity::CertInfo) {
        let mut all = self.inner.lock();
        let i = all.entry(key.clone()).or_default();
        if i.mtls.as_ref() != Some(&cert) {
            i.mtls = Some(cert);
        }
    }

    /// Drops the certificate of every proxy of `mesh` (its mTLS is off).
    pub fn clear_certificates(&self, mesh: &str) {
        for (k, i) in self.inner.lock().iter_mut() {
            if k.mesh == mesh {
                i.mtls = None;
            }
        }
    }

    /// Forgets proxies whose Dataplane is gone.
    pub fn remove(&self, key: &ProxyKey) {
        self.inner.lock().remove(key);
    }
}

/// Marks a proxy's stream closed when dropped (however it ends).
pub type InsightGuard = insight::StreamGuard<ProxyKey, DataplaneInsight>;

/// `GET /meshes/{mesh}/dataplanes/{name}/_overview`.
pub fn routes(insights: Insights) -> Router<ApiState> {
    Router::new()
        .route("/meshes/{mesh}/dataplanes/{name}/_overview", get(overview))
        .layer(axum::Extension(insights))
}

/// `GET /meshes/{mesh}/_mtls` (Weft): the mesh's mTLS as the zone runs it — the
/// trusted CAs, the issuing one, whether a CA rotation is under way, and per
/// connected proxy which CA its certificate comes from and which it trusts.
pub fn trust_routes(cache: super::Cache) -> Router<ApiState> {
    Router::new()
        .route("/meshes/{mesh}/_mtls", get(mesh_trust))
        .layer(axum::Extension(cache))
}

async fn mesh_trust(
    axum::Extension(cache): axum::Extension<super::Cache>,
    Path(mesh): Path<String>,
) -> Result<Response, ApiError> {
    cache
        .mesh_trust(&mesh)
        .map(|v| axum::Json(v).into_response())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "mesh {mesh:?} has no mTLS in this zone (mtls.enabledBackend unset, or the mesh is unknown)"
            ))
        })
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
