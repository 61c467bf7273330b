//! Global's KDS server: zones dial in over TLS, authenticate every RPC with their
//! zone token, and receive meshes, secrets and policies on `GlobalToZoneSync`
//! through the shared delta engine, fed by the store's watch.
//!
//! `ZoneToGlobalSync` (dataplanes and zone ingresses reported up) is answered
//! `UNIMPLEMENTED` for now; see docs/kds.md.

use kds_proto::{KdsSyncService, KdsSyncServiceServer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};
use weft_shared::delta::driver::{self, SenderEvent};
use weft_shared::delta::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, Sender, SenderConfig};
use weft_shared::kds::{self, SnapshotFeed};
use weft_shared::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_shared::server::ServerError;
use weft_shared::shutdown::CancellationToken;
use weft_shared::store::{ResourceStore, StoreError};

/// gRPC metadata key carrying the zone's name (Kuma's `client-id`).
pub const CLIENT_ID: &str = "client-id";

/// How often either side pings an idle HTTP/2 connection, and how long it waits
/// for the answer: a dead or half-open peer is noticed within 20 s.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// Checks a zone's credentials on every RPC.
pub trait ZoneAuthenticator: Send + Sync + 'static {
    /// `authorization` is the raw metadata value (`Bearer <jwt>`), `zone` the
    /// claimed zone name. `UNAUTHENTICATED` or `PERMISSION_DENIED` on refusal.
    fn authenticate(&self, authorization: Option<&str>, zone: &str) -> Result<(), Status>;
}

impl ZoneAuthenticator for crate::tokens::ZoneTokens {
    fn authenticate(&self, authorization: Option<&str>, zone: &str) -> Result<(), Status> {
        use weft_shared::tokens::TokenError;
        match self.validate_for_zone(authorization.unwrap_or_default(), zone) {
            Ok(_) => Ok(()),
            Err(e @ TokenError::PermissionDenied(_)) => {
                Err(Status::permission_denied(e.to_string()))
            }
            Err(e) => Err(Status::unauthenticated(e.to_string())),
        }
    }
}

/// TLS identity of the KDS server, as PEM.
pub struct KdsIdentity {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

pub struct KdsServer {
    pub address: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

/// Binds `address` and serves KDS over TLS until `shutdown`.
pub async fn serve(
    address: SocketAddr,
    identity: KdsIdentity,
    store: Arc<dyn ResourceStore>,
    auth: Arc<dyn ZoneAuthenticator>,
    shutdown: CancellationToken,
) -> Result<KdsServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            what: "KDS",
            addr: address,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ServerError::Bind {
        what: "KDS",
        addr: address,
        source,
    })?;
    let tls = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(identity.cert_chain_pem, identity.key_pem),
    );
    let service = KdsSyncServiceServer::new(Kds { store, auth })
        .max_decoding_message_size(4 * 1024 * 1024)
        .max_encoding_message_size(4 * 1024 * 1024);
    let mut builder = tonic::transport::Server::builder()
        .tls_config(tls)
        .map_err(|e| ServerError::Serve {
            what: "KDS",
            source: std::io::Error::other(e),
        })?
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE));
    let router = builder.add_service(service);
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await
            .map_err(|e| ServerError::Serve {
                what: "KDS",
                source: std::io::Error::other(e),
            })
    });
    Ok(KdsServer {
        address: bound,
        task,
    })
}

struct Kds {
    store: Arc<dyn ResourceStore>,
    auth: Arc<dyn ZoneAuthenticator>,
}

impl Kds {
    /// The authenticated zone name of a request, or the gRPC refusal.
    fn authenticate<T>(&self, req: &Request<T>) -> Result<String, Status> {
        let md = req.metadata();
        let zone = md
            .get(CLIENT_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|z| !z.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("missing client-id metadata: the zone must send its name")
            })?
            .to_string();
        let authorization = md.get("authorization").and_then(|v| v.to_str().ok());
        let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        if let Err(status) = self.auth.authenticate(authorization, &zone) {
            tracing::warn!(%zone, %peer, code = ?status.code(), reason = status.message(), "KDS: zone refused");
            return Err(status);
        }
        Ok(zone)
    }

    /// Creates the Zone resource on the first authenticated connection.
    async fn ensure_zone(&self, zone: &str) -> Result<(), Status> {
        let key = ResourceKey::new(ResourceType::Zone, None, zone);
        if self.store.get(&key).await.map_err(internal)?.is_some() {
            return Ok(());
        }
        let res = Resource::new(zone, None, Spec::Zone(Default::default()));
        match self.store.create(res).await {
            Ok(_) => {
                tracing::info!(%zone, "KDS: zone registered");
                Ok(())
            }
            Err(StoreError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(internal(e)),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "KDS: internal error");
    Status::internal("global control plane error; see its log")
}

type RespStream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

/// What global offers zone `zone`: its own meshes, secrets and policies (never
/// zone-originated copies), marked as global's.
fn offer_for(_zone: String) -> kds::Select {
    Arc::new(move |res: &Resource| {
        let origin = res
            .meta
            .labels
            .get(weft_shared::resource::tags::ORIGIN)
            .map(String::as_str);
        match origin {
            None | Some(kds::ORIGIN_GLOBAL) => Some(kds::stamp_global(res)),
            Some(_) => None,
        }
    })
}

#[tonic::async_trait]
impl KdsSyncService for Kds {
    type GlobalToZoneSyncStream = RespStream<DeltaDiscoveryResponse>;
    type ZoneToGlobalSyncStream = RespStream<DeltaDiscoveryRequest>;

    async fn global_to_zone_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::GlobalToZoneSyncStream>, Status> {
        let zone = self.authenticate(&request)?;
        self.ensure_zone(&zone).await?;
        let snapshots = SnapshotFeed::start(
            self.store.clone(),
            kds::global_to_zone_types(),
            offer_for(zone.clone()),
        )
        .await
        .map_err(internal)?;
        let incoming = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tracing::info!(%zone, "KDS: GlobalToZoneSync stream opened");
        tokio::spawn(async move {
            let mut sender = Sender::new(SenderConfig {
                control_plane_id: Some("global".into()),
                ..SenderConfig::default()
            });
            let observe = |_: &Sender, ev: SenderEvent| {
                if let SenderEvent::Sent {
                    type_url,
                    resources,
                    removed,
                    bytes,
                    ..
                } = ev
                {
                    tracing::debug!(type_url, resources, removed, bytes, "KDS: sent");
                }
            };
            let end = driver::run_sender(
                &mut sender,
                incoming,
                tx,
                snapshots,
                driver::DEFAULT_QUEUE,
                observe,
            )
            .await;
            match end {
                Ok(why) => tracing::info!(%zone, ?why, "KDS: GlobalToZoneSync stream ended"),
                Err(e) => tracing::warn!(%zone, error = %e, "KDS: GlobalToZoneSync stream failed"),
            }
        });
        let out = futures::StreamExt::map(ReceiverStream::new(rx), Ok);
        Ok(Response::new(Box::pin(out)))
    }

    async fn zone_to_global_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalSyncStream>, Status> {
        let zone = self.authenticate(&request)?;
        tracing::info!(%zone, "KDS: ZoneToGlobalSync not served yet");
        Err(Status::unimplemented(
            "ZoneToGlobalSync is not served by this global yet",
        ))
    }
}
