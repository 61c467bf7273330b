//! The ADS server: `StreamAggregatedResources` (SotW) and
//! `DeltaAggregatedResources` (delta) over TLS on the zone's xDS port.
//!
//! Every stream starts the same way: its first request's node identifies the proxy
//! ([`super::node`]), its `authorization: Bearer` metadata is checked by admission,
//! the Dataplane it presents is stored, and the stream follows the proxy's snapshot
//! in the [`Cache`]. Refusals are `INVALID_ARGUMENT` (bad node, naming the field),
//! `UNAUTHENTICATED` (admission) or `FAILED_PRECONDITION` (unknown mesh), each with a
//! message saying why, logged on the zone too.

use super::cache::{Cache, ConnectionGuard, upsert_over};
use super::generate::mtls::SECRET_TYPE;
use super::insight::{InsightGuard, Insights, StreamKind};
use super::metrics::XdsMetrics;
use super::node::{self, ProxyKey};
use super::sotw::SotwSender;
use super::stream::{SotwEvent, run_sotw};
use crate::admission::{Admission, AdmissionError};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use futures::{Stream, StreamExt};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use weft_api::grpc;
use weft_api::server::{self, ServeFuture, ServerError};
use weft_model::resource::Resource;
use weft_runtime::shutdown::CancellationToken;
use weft_security::pki::KdsTls;
use weft_store::{ResourceStore, StoreError};
use weft_sync::delta::driver::{self, SenderEvent};
use weft_sync::delta::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Node, Sender, SenderConfig, Snapshot, Verdict,
};
use weft_sync::discovery_stats::Answer;

/// Checks a proxy's token against the Dataplane it presents.
pub type Admit = Arc<dyn Fn(Option<&str>, &Resource) -> Result<(), AdmissionError> + Send + Sync>;

/// The zone's [`Admission`] as an [`Admit`].
pub fn admit_with(admission: Arc<Admission>) -> Admit {
    Arc::new(move |token, dp| admission.admit(token, dp))
}

/// HTTP/2 keepalive on xDS connections: a dead proxy is noticed within twice this.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// How long a new stream may take to send its first request (with its node).
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest xDS message either way (DESIGN §5: 1 MiB per message; room for framing).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// What the bootstrap needs to point Envoy at this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsEndpoint {
    /// The bound address (may be 0.0.0.0 / ::).
    pub address: SocketAddr,
    /// The xDS CA certificate (PEM) Envoy verifies the zone with.
    pub ca_pem: String,
}

/// A bound xDS server. It serves while the [`ServeFuture`] returned beside it
/// runs (a supervised component; so are the cache's [`Cache::follow`] and
/// [`Cache::rebuild_loop`]). The future is a tuple element rather than a field,
/// so a caller cannot overlook it.
pub struct XdsServer {
    pub endpoint: XdsEndpoint,
    pub insights: Insights,
    pub cache: Cache,
}

/// Everything the ADS service needs.
pub struct AdsContext {
    pub store: Arc<dyn ResourceStore>,
    pub cache: Cache,
    pub admit: Admit,
    pub metrics: XdsMetrics,
    pub sender: SenderConfig,
    pub shutdown: CancellationToken,
}

/// Binds `address`; the returned future serves ADS over TLS with `tls` until
/// `context.shutdown`.
pub async fn serve(
    address: SocketAddr,
    tls: &KdsTls,
    context: AdsContext,
) -> Result<(XdsServer, ServeFuture), ServerError> {
    let (listener, bound) = server::bind("xDS", address).await?;
    let ca_pem = tls.ca_cert_pem().ok_or_else(|| ServerError::Setup {
        what: "xDS TLS",
        source: "the generated certificate chain has no CA".into(),
    })?;
    let shutdown = context.shutdown.clone();
    let insights = context.cache.insights().clone();
    let cache = context.cache.clone();
    let service = AggregatedDiscoveryServiceServer::new(Ads {
        ctx: Arc::new(context),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let router = grpc::tls_server(
        "xDS TLS",
        tls.cert_chain_pem(),
        tls.key_pem().expose(),
        KEEPALIVE,
    )?
    .tcp_nodelay(true)
    .max_concurrent_streams(Some(100_000))
    .add_service(service);
    let serving = grpc::serve("xDS", router, listener, shutdown);
    tracing::info!(address = %bound, "xDS server listening (ADS, TLS)");
    let server = XdsServer {
        endpoint: XdsEndpoint {
            address: bound,
            ca_pem,
        },
        insights,
        cache,
    };
    Ok((server, serving))
}

struct Ads {
    ctx: Arc<AdsContext>,
}

/// What an accepted stream holds until it ends.
struct Session {
    key: ProxyKey,
    snapshots: watch::Receiver<Option<Snapshot>>,
    _connection: ConnectionGuard,
    _insight: InsightGuard,
    _open: OpenStream,
}

/// Counts the stream in the `streams` gauge while alive.
struct OpenStream(XdsMetrics);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.streams.dec();
    }
}

fn bearer(md: &MetadataMap) -> Option<String> {
    let value = md.get("authorization")?.to_str().ok()?.trim();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or(value)
        .trim();
    (!token.is_empty()).then(|| token.to_string())
}

impl AdsContext {
    /// Identifies, admits and registers the proxy of a new stream.
    async fn open(
        &self,
        md: &MetadataMap,
        peer: Option<SocketAddr>,
        node: Option<&Node>,
        kind: StreamKind,
    ) -> Result<Session, Status> {
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        let node_id = node.map(|n| n.id.as_str()).unwrap_or_default();
        let proxy = node::identify(node)
            .map_err(|e| self.refused(node_id, &peer, Status::invalid_argument(e.to_string())))?;
        let token = bearer(md);
        if let Err(e) = (self.admit)(token.as_deref(), &proxy.dataplane) {
            return Err(self.refused(node_id, &peer, admission_status(e)));
        }
        // What global sent (another zone's ingress, say) is not a proxy's to take.
        let stored = match self.store.get(&proxy.dataplane.key()).await {
            Ok(Some(existing)) if is_from_global(&existing) => {
                return Err(self.refused(
                    node_id,
                    &peer,
                    Status::permission_denied(format!(
                        "{} {} belongs to another zone (received from global): choose another name",
                        existing.resource_type().name(),
                        existing.meta.name
                    )),
                ));
            }
            Ok(existing) => Ok(existing),
            Err(e) => Err(e),
        };
        let written = match stored {
            Ok(existing) => upsert_over(self.store.as_ref(), &proxy.dataplane, existing).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let status = match e {
                StoreError::MeshNotFound(m) => Status::failed_precondition(format!(
                    "mesh {m:?} does not exist in this zone: create it (or fix the Dataplane's mesh)"
                )),
                e => {
                    tracing::error!(proxy = node_id, error = %e, "xDS: cannot store the Dataplane");
                    Status::internal("the zone cannot store the Dataplane; see its log")
                }
            };
            return Err(self.refused(node_id, &peer, status));
        }
        let key = proxy.key();
        let (snapshots, connection) = self.cache.connect(&proxy);
        let insight = self.cache.insights().stream_opened(&key, kind);
        self.metrics.streams.inc();
        tracing::info!(proxy = %key, %peer, ?kind, "xDS: stream opened");
        Ok(Session {
            key,
            snapshots,
            _connection: connection,
            _insight: insight,
            _open: OpenStream(self.metrics.clone()),
        })
    }

    fn refused(&self, node_id: &str, peer: &str, status: Status) -> Status {
        self.metrics.refused.inc();
        tracing::warn!(node = node_id, %peer, code = ?status.code(), reason = status.message(), "xDS: proxy refused");
        status
    }
}

/// A resource this zone received from global (`kuma.io/origin: global`).
pub fn is_from_global(res: &weft_model::resource::Resource) -> bool {
    res.meta
        .labels
        .get(weft_model::resource::tags::ORIGIN)
        .map(String::as_str)
        == Some("global")
}

/// No or unacceptable token: `UNAUTHENTICATED`; a genuine token for another mesh,
/// name or tags: `PERMISSION_DENIED` (decision 0006).
fn admission_status(e: AdmissionError) -> Status {
    match e {
        AdmissionError::Denied(_) => Status::permission_denied(e.to_string()),
        AdmissionError::MissingToken | AdmissionError::Refused(_) => {
            Status::unauthenticated(e.to_string())
        }
    }
}

/// Waits for a stream's first request.
async fn first_request<T>(incoming: &mut Streaming<T>) -> Result<T, Status> {
    match tokio::time::timeout(FIRST_REQUEST_TIMEOUT, incoming.message()).await {
        Err(_) => Err(Status::deadline_exceeded(
            "no request within 15 s of opening the stream",
        )),
        Ok(Err(status)) => Err(status),
        Ok(Ok(None)) => Err(Status::cancelled(
            "the stream closed before its first request",
        )),
        Ok(Ok(Some(m))) => Ok(m),
    }
}

type RespStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// `first`, then the rest of `incoming`.
fn rejoin<T: Send + 'static>(
    first: T,
    incoming: Streaming<T>,
) -> impl Stream<Item = Result<T, Status>> + Send {
    futures::stream::once(async move { Ok(first) }).chain(incoming)
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = RespStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = RespStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let md = request.metadata().clone();
        let peer = request.remote_addr();
        let mut incoming = request.into_inner();
        let first: DiscoveryRequest = first_request(&mut incoming).await?;
        let session = self
            .ctx
            .open(&md, peer, first.node.as_ref(), StreamKind::Sotw)
            .await?;
        let (tx, rx) = mpsc::channel(16);
        let ctx = self.ctx.clone();
        // The engine's own logs (stalls, NACKs) name the proxy through this span.
        let span = tracing::info_span!("xds", proxy = %session.key, kind = "sotw");
        tokio::spawn(async move {
            let Session { key, snapshots, .. } = &session;
            let mut sender = SotwSender::new(ctx.sender.clone());
            let mut kuma = ctx.metrics.kuma.streams.stream();
            let observe = |s: &SotwSender, ev: SotwEvent| {
                match &ev {
                    SotwEvent::Sent { type_url, nonce, bytes, .. } => {
                        let published = s.snapshot().and_then(|s| s.published_at());
                        kuma.sent(type_url, nonce, *bytes, published);
                        ctx.metrics.responses.inc()
                    }
                    SotwEvent::Request(r) => match &r.verdict {
                        Some(super::sotw::SotwVerdict::Ack { nonce }) => {
                            if r.type_url == SECRET_TYPE
                                && let Some(held) = s.held_resources(SECRET_TYPE)
                            {
                                ctx.cache.secrets_acked(key, held);
                            }
                            kuma.answered(&r.type_url, Answer::Ack { nonce });
                            ctx.metrics.acks.inc()
                        }
                        Some(super::sotw::SotwVerdict::Nack { nonce, .. }) => {
                            kuma.answered(&r.type_url, Answer::Nack { nonce });
                            ctx.metrics.nacks.inc()
                        }
                        Some(super::sotw::SotwVerdict::Stale { nonce }) => {
                            kuma.superseded(nonce);
                            0
                        }
                        None => 0,
                    },
                    SotwEvent::Stalled(_) => ctx.metrics.stalls.inc(),
                };
                ctx.cache.insights().record(key, s.all_stats());
            };
            let pump = run_sotw(
                &mut sender,
                rejoin(first, incoming),
                tx,
                snapshots.clone(),
                observe,
            );
            tokio::select! {
                end = pump => match end {
                    Ok(why) => tracing::info!(proxy = %key, ?why, "xDS: SotW stream ended"),
                    // The proxy's connection went away (a stopped or killed Envoy):
                    // its insight says so; not worth a warning.
                    Err(e @ super::stream::SotwStreamError::Transport(_)) => {
                        tracing::info!(proxy = %key, error = %e, "xDS: SotW stream lost its connection")
                    }
                    Err(e) => tracing::warn!(proxy = %key, error = %e, "xDS: SotW stream failed"),
                },
                () = ctx.shutdown.cancelled() => {}
            }
            drop(session);
        }.instrument(span));
        let out: RespStream<DiscoveryResponse> = Box::pin(ReceiverStream::new(rx).map(Ok));
        Ok(Response::new(out))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let md = request.metadata().clone();
        let peer = request.remote_addr();
        let mut incoming = request.into_inner();
        let first: DeltaDiscoveryRequest = first_request(&mut incoming).await?;
        let session = self
            .ctx
            .open(&md, peer, first.node.as_ref(), StreamKind::Delta)
            .await?;
        let (tx, rx) = mpsc::channel(16);
        let ctx = self.ctx.clone();
        // The engine's own logs (stalls, NACKs) name the proxy through this span.
        let span = tracing::info_span!("xds", proxy = %session.key, kind = "delta");
        tokio::spawn(async move {
            let Session { key, snapshots, .. } = &session;
            let mut sender = Sender::new(ctx.sender.clone());
            let mut kuma = ctx.metrics.kuma.streams.stream();
            let observe = |s: &Sender, ev: SenderEvent| {
                match &ev {
                    SenderEvent::Sent { type_url, nonce, bytes, .. } => {
                        let published = s.snapshot().and_then(|s| s.published_at());
                        kuma.sent(type_url, nonce, *bytes, published);
                        ctx.metrics.responses.inc()
                    }
                    SenderEvent::Request(r) => match &r.verdict {
                        Some(Verdict::Ack { nonce }) => {
                            if r.type_url == SECRET_TYPE
                                && let Some(held) = s.known_versions(SECRET_TYPE)
                            {
                                ctx.cache.secrets_acked(key, held);
                            }
                            kuma.answered(&r.type_url, Answer::Ack { nonce });
                            ctx.metrics.acks.inc()
                        }
                        Some(Verdict::Nack { nonce, .. }) => {
                            kuma.answered(&r.type_url, Answer::Nack { nonce });
                            ctx.metrics.nacks.inc()
                        }
                        Some(Verdict::Stale { nonce }) => {
                            kuma.superseded(nonce);
                            0
                        }
                        None => 0,
                    },
                    SenderEvent::Error(_) | SenderEvent::Generated { .. } => 0,
                    SenderEvent::Stalled(_) => ctx.metrics.stalls.inc(),
                };
                ctx.cache.insights().record(key, s.all_stats());
            };
            let pump = driver::run_sender(
                &mut sender,
                rejoin(first, incoming),
                tx,
                snapshots.clone(),
                driver::DEFAULT_QUEUE,
                observe,
            );
            tokio::select! {
                end = pump => match end {
                    Ok(why) => tracing::info!(proxy = %key, ?why, "xDS: delta stream ended"),
                    Err(e @ weft_sync::delta::DeltaError::Transport(_)) => {
                        tracing::info!(proxy = %key, error = %e, "xDS: delta stream lost its connection")
                    }
                    Err(e) => tracing::warn!(proxy = %key, error = %e, "xDS: delta stream failed"),
                },
                () = ctx.shutdown.cancelled() => {}
            }
            drop(session);
        }.instrument(span));
        let out: RespStream<DeltaDiscoveryResponse> = Box::pin(ReceiverStream::new(rx).map(Ok));
        Ok(Response::new(out))
    }
}
