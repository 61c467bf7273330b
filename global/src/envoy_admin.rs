//! Envoy admin of any zone's proxy through global (decision 0015).
//!
//! - REST (`weft_api::envoy_admin`): `GET /meshes/{mesh}/dataplanes/{name}/xds|stats|clusters`
//!   and the same under `/zoneingresses/{name}/` and `/zoneegresses/{name}/`. The
//!   name is the one global lists (`<name>-<hash>`); the proxy's plain name
//!   (`kuma.io/display-name`) is accepted too when one zone alone has it. Global
//!   finds the owning zone (`kuma.io/zone`) and sends the request over that
//!   zone's KDS connection; it never dials a zone or a proxy.
//! - KDS ([`kds_service`]): `GlobalKDSService`'s three streams, opened by zones,
//!   authenticated like the sync streams (zone token, `client-id`, revocation
//!   closes them). Requests go only down the owning zone's own stream and its
//!   answers are matched only there (`weft_sync::kds::admin::AdminStreams`).

use crate::insights::ZoneInsights;
use crate::kds::{RespStream, authenticate, revoked, with_end};
use crate::tokens::ZoneTokens;
use axum::Router;
use kds_proto::{EnvoyAdminRequest, EnvoyAdminResponse, GlobalKdsService, GlobalKdsServiceServer};
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use weft_api::ApiState;
use weft_api::envoy_admin::AdminBackend;
use weft_model::proxy::admin::{
    AdminError, AdminOp, AdminQuery, AdminReply, GLOBAL_TIMEOUT, ProxyRef, kds_rpc,
};
use weft_model::resource::{Resource, ResourceKey, tags};
use weft_runtime::shutdown::CancellationToken;
use weft_store::{Page, ResourceStore};
use weft_sync::kds::admin::AdminStreams;
use weft_sync::kds::zone_names;

/// gRPC message limit of the admin streams (parts stay under 1 MiB).
const MAX_GRPC_MESSAGE: usize = 4 * 1024 * 1024;

/// Global's side of the REST routes.
#[derive(Clone)]
pub struct GlobalAdmin {
    pub store: Arc<dyn ResourceStore>,
    pub streams: AdminStreams,
    pub insights: ZoneInsights,
}

/// The nine routes (behind the admin token).
pub fn routes(admin: GlobalAdmin) -> Router<ApiState> {
    weft_api::envoy_admin::routes(admin)
}

impl GlobalAdmin {
    /// The stored proxy `proxy` names: by global's name, else by its plain name
    /// when exactly one zone has a proxy of that name.
    async fn find(&self, proxy: &ProxyRef) -> Result<Resource, AdminError> {
        let store_error = |e: weft_store::StoreError| AdminError::Remote {
            status: 500,
            message: format!("cannot read {proxy} from global's store: {e}"),
        };
        let key = ResourceKey::new(proxy.ty, proxy.mesh.as_deref(), &proxy.name);
        if let Some(res) = self.store.get(&key).await.map_err(store_error)? {
            return Ok(res);
        }
        let mut by_display: Vec<Resource> = self
            .store
            .list(proxy.ty, proxy.mesh.as_deref(), Page::all())
            .await
            .map_err(store_error)?
            .items
            .into_iter()
            .filter(|r| {
                r.meta.labels.get(tags::DISPLAY_NAME) == Some(&proxy.name)
                    && zone_names::zone_of(r).is_some()
            })
            .collect();
        match by_display.len() {
            0 => Err(AdminError::NotFound {
                proxy: proxy.to_string(),
                where_: " on global (use the name global lists)".into(),
            }),
            1 => Ok(by_display.remove(0)),
            _ => {
                let zones: Vec<&str> = by_display.iter().filter_map(zone_names::zone_of).collect();
                Err(AdminError::Remote {
                    status: 400,
                    message: format!(
                        "{proxy} is ambiguous: zones {} each have one; use the name global lists",
                        zones.join(", ")
                    ),
                })
            }
        }
    }
}

impl AdminBackend for GlobalAdmin {
    async fn execute(
        &self,
        proxy: ProxyRef,
        op: AdminOp,
        query: AdminQuery,
    ) -> Result<AdminReply, AdminError> {
        let stored = self.find(&proxy).await?;
        let (Some(zone), Some(local)) = (
            zone_names::zone_of(&stored).map(str::to_string),
            zone_names::from_global(&stored),
        ) else {
            return Err(AdminError::NotFound {
                proxy: proxy.to_string(),
                where_: " in any zone (global holds it, but no zone reported it)".into(),
            });
        };
        let in_zone = ProxyRef::new(
            local.resource_type(),
            local.meta.mesh.as_deref(),
            &local.meta.name,
        )
        .map_err(|message| AdminError::Remote {
            status: 500,
            message,
        })?;
        if !self.streams.has_stream(&zone, op) {
            let online = self.insights.get(&zone).is_some_and(|z| z.online);
            return Err(if online {
                AdminError::ZoneUnsupported {
                    zone,
                    rpc: kds_rpc(op),
                }
            } else {
                AdminError::ZoneOffline { zone }
            });
        }
        self.streams
            .request(&zone, op, &in_zone, &query, GLOBAL_TIMEOUT)
            .await
            .map_err(|e| match e {
                AdminError::Remote { status, message } => AdminError::Remote {
                    status,
                    message: format!("zone {zone}: {message}"),
                },
                other => other,
            })
    }
}

/// `GlobalKDSService` for the KDS server.
pub fn kds_service(
    tokens: Arc<ZoneTokens>,
    streams: AdminStreams,
    shutdown: CancellationToken,
) -> GlobalKdsServiceServer<AdminKds> {
    GlobalKdsServiceServer::new(AdminKds {
        tokens,
        streams,
        shutdown,
    })
    .max_decoding_message_size(MAX_GRPC_MESSAGE)
    .max_encoding_message_size(MAX_GRPC_MESSAGE)
}

pub struct AdminKds {
    tokens: Arc<ZoneTokens>,
    streams: AdminStreams,
    /// Global stopping: the streams end (they would otherwise keep the KDS
    /// server's connections, and the store, alive).
    shutdown: CancellationToken,
}

impl AdminKds {
    fn open(
        &self,
        op: AdminOp,
        request: Request<Streaming<EnvoyAdminResponse>>,
    ) -> Result<Response<RespStream<EnvoyAdminRequest>>, Status> {
        let (zone, verified) = authenticate(&self.tokens, &request)?;
        let rpc = kds_rpc(op);
        let (stream, requests) = self.streams.open(&zone, op);
        let mut incoming = request.into_inner();
        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        let tokens = self.tokens.clone();
        let shutdown = self.shutdown.clone();
        let span = tracing::info_span!("kds", zone = %zone, direction = "envoy_admin");
        span.in_scope(|| tracing::debug!(rpc, "KDS: Envoy admin stream opened"));
        let run = async move {
            let parts = async {
                loop {
                    match incoming.message().await {
                        Ok(Some(part)) => {
                            if let Err(e) = stream.accept(part) {
                                tracing::debug!(rpc, error = %e, "KDS: Envoy admin answer dropped");
                            }
                        }
                        Ok(None) => return None,
                        Err(status) => return Some(status),
                    }
                }
            };
            tokio::select! {
                end = parts => match end {
                    None => tracing::debug!(rpc, "KDS: Envoy admin stream ended"),
                    Some(s) => tracing::debug!(rpc, code = ?s.code(), "KDS: Envoy admin stream failed"),
                },
                status = revoked(tokens, verified) => {
                    tracing::warn!(rpc, reason = status.message(), "KDS: Envoy admin stream closed: token no longer valid");
                    let _ = end_tx.send(status);
                }
                () = shutdown.cancelled() => {
                    let _ = end_tx.send(Status::unavailable("global is shutting down"));
                }
            }
            // Dropping `stream` here unregisters it: what waits on it fails, and
            // the requests half ends.
        };
        tokio::spawn(run.instrument(span));
        Ok(Response::new(with_end(requests, end_rx)))
    }
}

#[tonic::async_trait]
impl GlobalKdsService for AdminKds {
    type StreamXDSConfigsStream = RespStream<EnvoyAdminRequest>;
    type StreamStatsStream = RespStream<EnvoyAdminRequest>;
    type StreamClustersStream = RespStream<EnvoyAdminRequest>;

    async fn stream_xds_configs(
        &self,
        request: Request<Streaming<EnvoyAdminResponse>>,
    ) -> Result<Response<Self::StreamXDSConfigsStream>, Status> {
        self.open(AdminOp::XdsConfig, request)
    }

    async fn stream_stats(
        &self,
        request: Request<Streaming<EnvoyAdminResponse>>,
    ) -> Result<Response<Self::StreamStatsStream>, Status> {
        self.open(AdminOp::Stats, request)
    }

    async fn stream_clusters(
        &self,
        request: Request<Streaming<EnvoyAdminResponse>>,
    ) -> Result<Response<Self::StreamClustersStream>, Status> {
        self.open(AdminOp::Clusters, request)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;
    use weft_model::resource::{ResourceType, parse_resource};
    use weft_store::MemoryStore;
    use weft_sync::kds::admin::into_parts;

    const WEB: &str = "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: web\n";

    /// Global holding `web-1` from each of `zones`.
    async fn global_with(zones: &[&str]) -> GlobalAdmin {
        let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
        store
            .create(parse_resource(b"type: Mesh\nname: default\n", false).unwrap())
            .await
            .unwrap();
        for zone in zones {
            let web = parse_resource(WEB.as_bytes(), false).unwrap();
            store
                .create(zone_names::to_global(&web, zone))
                .await
                .unwrap();
        }
        GlobalAdmin {
            store,
            streams: AdminStreams::default(),
            insights: ZoneInsights::default(),
        }
    }

    fn dp(name: &str) -> ProxyRef {
        ProxyRef::new(ResourceType::Dataplane, Some("default"), name).unwrap()
    }

    // The request reaches the owning zone's stream under the zone's own name for
    // the proxy, whether it was asked by global's name or the plain one.
    #[tokio::test]
    async fn requests_go_to_the_owning_zone_by_its_name() {
        let admin = global_with(&["west"]).await;
        let (stream, mut rx) = admin.streams.open("west", AdminOp::Stats);
        let zone = tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                assert_eq!(req.resource_name, "web-1");
                let reply = AdminReply {
                    content_type: "text/plain".into(),
                    body: b"server.live: 1\n".to_vec(),
                };
                for part in into_parts(&req.request_id, Ok(reply)) {
                    stream.accept(part).unwrap();
                }
            }
        });
        let hashed = zone_names::hashed_name(Some("default"), "web-1", "west");
        for name in [hashed.as_str(), "web-1"] {
            let reply = admin
                .execute(dp(name), AdminOp::Stats, AdminQuery::default())
                .await
                .unwrap();
            assert_eq!(reply.body, b"server.live: 1\n");
        }
        zone.abort();
    }

    // Unknown → 404; a plain name two zones share → 400 naming both; a zone with
    // no stream → 503 offline, or "does not support" while it is connected (an
    // older zone); a zone's own error keeps its status, prefixed with the zone.
    #[tokio::test(start_paused = true)]
    async fn errors_name_the_proxy_or_the_zone() {
        let admin = global_with(&["west", "east"]).await;
        let e = admin
            .execute(dp("ghost"), AdminOp::Stats, AdminQuery::default())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 404);
        assert!(
            e.to_string().contains("Dataplane default/ghost not found"),
            "{e}"
        );
        let e = admin
            .execute(dp("web-1"), AdminOp::Stats, AdminQuery::default())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("ambiguous"), "{e}");

        let west = dp(&zone_names::hashed_name(Some("default"), "web-1", "west"));
        let e = admin
            .execute(west.clone(), AdminOp::Clusters, AdminQuery::default())
            .await
            .unwrap_err();
        assert_eq!(
            e,
            AdminError::ZoneOffline {
                zone: "west".into()
            }
        );
        let _online = admin.insights.stream_opened("west", None);
        let e = admin
            .execute(west.clone(), AdminOp::Clusters, AdminQuery::default())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 503);
        assert!(
            e.to_string()
                .contains("zone west does not support Envoy admin requests over KDS"),
            "{e}"
        );
        assert!(e.to_string().contains("StreamClusters"), "{e}");

        let (stream, mut rx) = admin.streams.open("west", AdminOp::Clusters);
        let a = admin.clone();
        let w = west.clone();
        let request =
            tokio::spawn(
                async move { a.execute(w, AdminOp::Clusters, AdminQuery::default()).await },
            );
        let req = rx.recv().await.unwrap();
        let not_connected = AdminError::NotConnected {
            proxy: "Dataplane default/web-1".into(),
            reason: "its weft-dp is not running".into(),
        };
        for part in into_parts(&req.request_id, Err(not_connected)) {
            stream.accept(part).unwrap();
        }
        let e = request.await.unwrap().unwrap_err();
        assert_eq!(e.status(), 503);
        assert!(
            e.to_string()
                .starts_with("zone west: Dataplane default/web-1 is not connected"),
            "{e}"
        );
        // A zone that never answers: 504 naming the zone, after GLOBAL_TIMEOUT.
        let started = tokio::time::Instant::now();
        let e = admin
            .execute(west, AdminOp::Clusters, AdminQuery::default())
            .await
            .unwrap_err();
        assert_eq!(e.status(), 504);
        assert!(e.to_string().contains("zone west"), "{e}");
        assert!(started.elapsed() >= GLOBAL_TIMEOUT - Duration::from_millis(1));
        drop(stream);
    }
}
