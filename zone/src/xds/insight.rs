//! DataplaneInsight: what the zone knows about each proxy's ADS connection —
//! connected or not, when it connected and disconnected, SotW or delta, and per
//! type what was sent, ACKed and NACKed (with the last NACK's reason).
//!
//! Kept in memory (it describes live connections); [`Insights::live`] lends it
//! to the shared overview endpoints (`GET /meshes/{mesh}/dataplanes/{name}/_overview`
//! and the lists, Kuma's paths), which merge it into the persisted insight.

use super::node::ProxyKey;
use axum::Router;
use axum::extract::Path;
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

impl DataplaneInsight {
    /// Kuma's `DiscoverySubscription` status of the current stream: totals and
    /// per xDS service (`cds`, `eds`, `lds`, `rds`), with Weft's view beside.
    pub fn to_live(&self) -> weft_api::overview::LiveInsight {
        let stats = |t: &TypeInsight| {
            serde_json::json!({
                "responsesSent": t.responses_sent,
                "responsesAcknowledged": t.acked,
                "responsesRejected": t.nacked,
            })
        };
        let mut total = TypeInsight::default();
        let mut status = serde_json::Map::new();
        for (url, t) in &self.types {
            total.responses_sent += t.responses_sent;
            total.acked += t.acked;
            total.nacked += t.nacked;
            let service = match url.rsplit('.').next() {
                Some("Cluster") => "cds",
                Some("ClusterLoadAssignment") => "eds",
                Some("Listener") => "lds",
                Some("RouteConfiguration") => "rds",
                _ => continue,
            };
            status.insert(service.into(), stats(t));
        }
        status.insert("total".into(), stats(&total));
        status.insert("lastUpdateTime".into(), insight::now().into());
        let mut sub = serde_json::Map::new();
        if let Some(t) = &self.connect_time {
            sub.insert("connectTime".into(), t.clone().into());
        }
        if let Some(t) = &self.disconnect_time {
            sub.insert("disconnectTime".into(), t.clone().into());
        }
        sub.insert("status".into(), serde_json::Value::Object(status));
        let weft = serde_json::json!({
            "connected": self.connected,
            "streams": self.streams,
            "streamKind": self.stream_kind,
            "types": self.types,
        });
        weft_api::overview::LiveInsight {
            connected: self.connected,
            subscription: serde_json::Value::Object(sub),
            mtls: self
                .mtls
                .as_ref()
                .and_then(|m| serde_json::to_value(m).ok()),
            weft,
        }
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

    /// Records the certificate `key` holds now; true when it is a new one.
    pub fn set_certificate(&self, key: &ProxyKey, cert: super::identity::CertInfo) -> bool {
        let mut all = self.inner.lock();
        let i = all.entry(key.clone()).or_default();
        if i.mtls.as_ref() != Some(&cert) {
            i.mtls = Some(cert);
            true
        } else {
            false
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

    /// The live view of the proxy a resource key names (a Dataplane, a
    /// ZoneIngress or a ZoneEgress), in the shape the overviews merge.
    pub fn live(&self, key: &ResourceKey) -> Option<weft_api::overview::LiveInsight> {
        let proxy = match key.ty {
            ResourceType::Dataplane => ProxyKey {
                mesh: key.mesh.clone()?,
                name: key.name.clone(),
            },
            ResourceType::ZoneIngress => ProxyKey {
                mesh: super::node::ZONE_INGRESS.into(),
                name: key.name.clone(),
            },
            ResourceType::ZoneEgress => ProxyKey {
                mesh: super::node::ZONE_EGRESS.into(),
                name: key.name.clone(),
            },
            _ => return None,
        };
        let i = self.get(&proxy)?;
        Some(i.to_live())
    }

    /// Forgets proxies whose Dataplane is gone.
    pub fn remove(&self, key: &ProxyKey) {
        self.inner.lock().remove(key);
    }
}

/// Marks a proxy's stream closed when dropped (however it ends).
pub type InsightGuard = insight::StreamGuard<ProxyKey, DataplaneInsight>;

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
