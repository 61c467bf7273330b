//! Global's KDS server: zones dial in over TLS, authenticate every RPC with their
//! zone token, and receive meshes, secrets and policies on `GlobalToZoneSync`
//! through the shared delta engine, fed by the store's watch.
//!
//! On `ZoneToGlobalSync` the roles invert: the zone sends its dataplanes, zone
//! ingresses and egresses as delta responses and global acknowledges them, storing
//! each under a per-zone hashed name with provenance labels taken from the
//! authenticated zone (`weft_sync::kds::zone_names`). Other zones' ingresses and
//! egresses then fan out on their `GlobalToZoneSync`, never back to their origin.

use crate::insights::ZoneInsights;
use crate::tokens::ZoneTokens;
use kds_proto::{KdsSyncService, KdsSyncServiceServer};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use weft_api::grpc;
use weft_api::server::{self, ServeFuture, ServerError};
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_runtime::shutdown::CancellationToken;
use weft_security::tokens::{TokenError, Verified, ZoneClaims};
use weft_store::{Page, WriteOp};
use weft_store::{ResourceStore, StoreError};
use weft_sync::delta::driver::Apply;
use weft_sync::delta::driver::{self, SenderEvent};
use weft_sync::delta::{BoxError, Node, Receiver, Rejection, Update, UpdateKind};
use weft_sync::delta::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, Sender, SenderConfig};
use weft_sync::kds::metrics::{Direction, KdsMetrics};
use weft_sync::kds::{self, SnapshotFeed, zone_names};

/// gRPC metadata key carrying the zone's name (Kuma's `client-id`).
pub const CLIENT_ID: &str = "client-id";

/// gRPC metadata key carrying the zone's Weft version.
pub const VERSION_HEADER: &str = "x-weft-version";

/// How often either side pings an idle HTTP/2 connection, and how long it waits
/// for the answer: a dead or half-open peer is noticed within 20 s.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// Maps a token refusal onto the gRPC code DESIGN §5 asks for.
fn refusal(e: TokenError) -> Status {
    match e {
        e @ TokenError::PermissionDenied(_) => Status::permission_denied(e.to_string()),
        e => Status::unauthenticated(e.to_string()),
    }
}

/// TLS identity of the KDS server, as PEM.
pub struct KdsIdentity {
    pub cert_chain_pem: String,
    pub key_pem: String,
}

/// A bound KDS server: run `serve` (until shutdown) and `feed` as components.
pub struct KdsServer {
    pub address: SocketAddr,
    pub serve: ServeFuture,
    /// What every zone receives alike (meshes, secrets, policies), followed once
    /// for all streams: run [`SnapshotFeed::run`] on global's store. Until its first
    /// list, zone streams wait.
    pub feed: Arc<SnapshotFeed>,
    /// The zones' Envoy admin streams (`crate::envoy_admin`).
    pub admin: weft_sync::kds::admin::AdminStreams,
}

/// What the KDS server keeps of the zones: their connections' insights, and
/// which are disabled.
#[derive(Clone, Default)]
pub struct ZoneState {
    pub insights: ZoneInsights,
    pub disabled: crate::zones::Disabled,
}

/// Binds `address`; the returned server serves KDS over TLS until `shutdown`.
// One caller (`build`); each argument is a distinct handle it owns.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    address: SocketAddr,
    identity: KdsIdentity,
    store: Arc<dyn ResourceStore>,
    tokens: Arc<ZoneTokens>,
    zones: ZoneState,
    registry: &mut Registry,
    shutdown: CancellationToken,
) -> Result<KdsServer, ServerError> {
    let ZoneState { insights, disabled } = zones;
    let (listener, bound) = server::bind("KDS", address).await?;
    // What every zone receives alike is followed once for all streams: a zone
    // connecting costs no relist of the store.
    let feed = Arc::new(SnapshotFeed::new(
        global_owned_types(),
        Arc::new(|res: &Resource| {
            zone_names::zone_of(res)
                .is_none()
                .then(|| kds::stamp_global(res))
        }),
    ));
    let global_offer = feed.subscribe();
    // Envoy admin requests to the zones' proxies (decision 0015).
    let admin = weft_sync::kds::admin::AdminStreams::default();
    let admin_service =
        crate::envoy_admin::kds_service(tokens.clone(), admin.clone(), shutdown.clone());
    let service = KdsSyncServiceServer::new(Kds {
        store,
        tokens,
        insights,
        disabled,
        global_offer,
        metrics: KdsMetrics::new(registry, weft_sync::kds::metrics::Side::Global),
    })
    .max_decoding_message_size(4 * 1024 * 1024)
    .max_encoding_message_size(4 * 1024 * 1024);
    let router = grpc::tls_server(
        "KDS TLS",
        identity.cert_chain_pem,
        identity.key_pem,
        KEEPALIVE,
    )?
    .add_service(service)
    .add_service(admin_service);
    let serve = grpc::serve("KDS", router, listener, shutdown);
    Ok(KdsServer {
        address: bound,
        serve,
        feed,
        admin,
    })
}

struct Kds {
    store: Arc<dyn ResourceStore>,
    tokens: Arc<ZoneTokens>,
    insights: ZoneInsights,
    /// Zones refused because their Zone has `enabled: false`.
    disabled: crate::zones::Disabled,
    /// Global's own resources as every zone receives them.
    global_offer: tokio::sync::watch::Receiver<Option<weft_sync::delta::Snapshot>>,
    metrics: KdsMetrics,
}

impl Kds {
    /// The authenticated zone name of a request, or the gRPC refusal.
    fn authenticate<T>(&self, req: &Request<T>) -> Result<(String, Verified<ZoneClaims>), Status> {
        authenticate(&self.tokens, req)
    }

    /// Creates the Zone resource on the first authenticated connection; refuses
    /// a disabled zone.
    async fn ensure_zone(&self, zone: &str) -> Result<(), Status> {
        let key = ResourceKey::new(ResourceType::Zone, None, zone);
        if let Some(existing) = self.store.get(&key).await.map_err(internal)? {
            if matches!(&existing.spec, Spec::Zone(z) if !z.is_enabled()) {
                tracing::warn!(%zone, "KDS: disabled zone refused");
                return Err(Status::failed_precondition(crate::zones::disabled_message(
                    zone,
                )));
            }
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

/// The authenticated zone name of a request (its `client-id`, proven by its zone
/// token), or the gRPC refusal. Every KDS RPC, the Envoy admin streams included
/// (`crate::envoy_admin`), authenticates through here.
pub(crate) fn authenticate<T>(
    tokens: &ZoneTokens,
    req: &Request<T>,
) -> Result<(String, Verified<ZoneClaims>), Status> {
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
    match tokens.validate_for_zone(authorization.unwrap_or_default(), &zone) {
        Ok(verified) => Ok((zone, verified)),
        Err(e) => {
            let status = refusal(e);
            tracing::warn!(%zone, %peer, code = ?status.code(), reason = status.message(), "KDS: zone refused");
            Err(status)
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "KDS: internal error");
    Status::internal("global control plane error; see its log")
}

pub(crate) type RespStream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

/// Resolves, with the status to close the stream with, once the token a stream
/// was accepted with is revoked (or has expired at the time of a revocation check).
pub(crate) async fn revoked(tokens: Arc<ZoneTokens>, verified: Verified<ZoneClaims>) -> Status {
    let mut changes = tokens.subscribe_revocations();
    loop {
        if let Err(e) = tokens.recheck(&verified) {
            return Status::unauthenticated(e.to_string());
        }
        if changes.changed().await.is_err() {
            // The token service is gone (shutdown): never resolve.
            std::future::pending::<()>().await;
        }
    }
}

/// The messages from `rx`, then, if `end` fires, that status as the stream's end.
pub(crate) fn with_end<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
    end: tokio::sync::oneshot::Receiver<Status>,
) -> RespStream<T> {
    let state = (rx, Some(end));
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let (mut rx, mut end) = state?;
        loop {
            match end.as_mut() {
                Some(e) => tokio::select! {
                    biased;
                    msg = rx.recv() => match msg {
                        Some(m) => return Some((Ok(m), Some((rx, end)))),
                        // The pump is gone: end with its status, if it left one.
                        None => return end.take()?.await.ok().map(|s| (Err(s), None)),
                    },
                    status = e => match status {
                        Ok(s) => return Some((Err(s), None)),
                        Err(_) => end = None,
                    },
                },
                None => return rx.recv().await.map(|m| (Ok(m), Some((rx, None)))),
            }
        }
    }))
}

/// The types global sends that only global owns (every zone receives them alike).
fn global_owned_types() -> Vec<ResourceType> {
    kds::global_to_zone_types()
        .into_iter()
        .filter(|t| !kds::FANNED_OUT_TYPES.contains(t))
        .collect()
}

/// What global offers zone `zone` of the fanned-out types: global's own, and the
/// ingresses, egresses and MeshTrusts of every OTHER zone, all marked as global's.
fn offer_for(zone: String) -> kds::Select {
    Arc::new(move |res: &Resource| match zone_names::zone_of(res) {
        None => Some(kds::stamp_global(res)),
        Some(origin) if origin != zone && kds::FANNED_OUT_TYPES.contains(&res.resource_type()) => {
            Some(kds::stamp_global(res))
        }
        Some(_) => None,
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
        let (zone, verified) = self.authenticate(&request)?;
        let version = zone_version(request.metadata());
        self.ensure_zone(&zone).await?;
        // The shared offer, plus the other zones' ingresses, egresses and trusts.
        let cross_zone = SnapshotFeed::start(
            self.store.clone(),
            kds::FANNED_OUT_TYPES.to_vec(),
            offer_for(zone.clone()),
        )
        .await
        .map_err(internal)?;
        let snapshots = kds::merge(self.global_offer.clone(), cross_zone);
        let incoming = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        let tokens = self.tokens.clone();
        let disabled = self.disabled.clone();
        let span = tracing::info_span!("kds", zone = %zone, direction = "global_to_zone");
        span.in_scope(|| tracing::info!("KDS: GlobalToZoneSync stream opened"));
        let insights = self.insights.clone();
        let guard = insights.stream_opened(&zone, version);
        let zone_name = zone.clone();
        let mut metrics = self.metrics.stream(&zone, Direction::global_to_zone);
        let stream = async move {
            let _guard = guard;
            let mut sender = Sender::new(SenderConfig {
                control_plane_id: Some("global".into()),
                ..SenderConfig::default()
            });
            let observe = |sender: &Sender, ev: SenderEvent| {
                insights.record_sent(&zone_name, sender);
                metrics.sender_event(sender, &ev);
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
            let pump = driver::run_sender(
                &mut sender,
                incoming,
                tx,
                snapshots,
                driver::DEFAULT_QUEUE,
                observe,
            );
            tokio::select! {
                end = pump => match end {
                    Ok(why) => tracing::info!(%zone, ?why, "KDS: GlobalToZoneSync stream ended"),
                    Err(e) => tracing::warn!(%zone, error = %e, "KDS: GlobalToZoneSync stream failed"),
                },
                status = revoked(tokens, verified) => {
                    tracing::warn!(%zone, reason = status.message(), "KDS: GlobalToZoneSync closed: token no longer valid");
                    let _ = end_tx.send(status);
                }
                () = disabled.until_disabled(&zone) => {
                    tracing::warn!(%zone, "KDS: GlobalToZoneSync closed: zone disabled");
                    let _ = end_tx.send(Status::failed_precondition(crate::zones::disabled_message(&zone)));
                }
            }
        };
        tokio::spawn(stream.instrument(span));
        Ok(Response::new(with_end(rx, end_rx)))
    }

    async fn zone_to_global_sync(
        &self,
        request: Request<Streaming<DeltaDiscoveryResponse>>,
    ) -> Result<Response<Self::ZoneToGlobalSyncStream>, Status> {
        let (zone, verified) = self.authenticate(&request)?;
        let version = zone_version(request.metadata());
        self.ensure_zone(&zone).await?;
        let mut local = Vec::new();
        for ty in kds::zone_to_global_types() {
            let mut versions = std::collections::BTreeMap::new();
            for res in self
                .store
                .list(ty, None, Page::all())
                .await
                .map_err(internal)?
                .items
            {
                if zone_names::zone_of(&res) == Some(zone.as_str())
                    && let Some(sent) = zone_names::from_global(&res)
                {
                    versions.insert(kds::delta_name(&sent.key()), sent.content_hash());
                }
            }
            local.push((ty.name().to_string(), versions));
        }
        let node = Node {
            id: zone.clone(),
            ..Default::default()
        };
        let mut receiver = Receiver::new(node, local);
        let incoming = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (end_tx, end_rx) = tokio::sync::oneshot::channel();
        let tokens = self.tokens.clone();
        let disabled = self.disabled.clone();
        let mut apply = FromZone {
            zone: zone.clone(),
            store: self.store.clone(),
            insights: self.insights.clone(),
        };
        let metrics = self.metrics.stream(&zone, Direction::zone_to_global);
        let guard = self.insights.stream_opened(&zone, version);
        let span = tracing::info_span!("kds", zone = %zone, direction = "zone_to_global");
        span.in_scope(|| tracing::info!("KDS: ZoneToGlobalSync stream opened"));
        let stream = async move {
            let _guard = guard;
            let pump = driver::run_receiver_observed(
                &mut receiver,
                incoming,
                tx,
                &mut apply,
                driver::DEFAULT_QUEUE,
                |ev| metrics.receiver_event(&ev),
            );
            tokio::select! {
                end = pump => match end {
                    Ok(why) => tracing::info!(%zone, ?why, "KDS: ZoneToGlobalSync stream ended"),
                    Err(e) => tracing::warn!(%zone, error = %e, "KDS: ZoneToGlobalSync stream failed"),
                },
                status = revoked(tokens, verified) => {
                    tracing::warn!(%zone, reason = status.message(), "KDS: ZoneToGlobalSync closed: token no longer valid");
                    let _ = end_tx.send(status);
                }
                () = disabled.until_disabled(&zone) => {
                    tracing::warn!(%zone, "KDS: ZoneToGlobalSync closed: zone disabled");
                    let _ = end_tx.send(Status::failed_precondition(crate::zones::disabled_message(&zone)));
                }
            }
        };
        tokio::spawn(stream.instrument(span));
        Ok(Response::new(with_end(rx, end_rx)))
    }
}

/// Stores what a zone reports, under names and labels global decides.
struct FromZone {
    zone: String,
    store: Arc<dyn ResourceStore>,
    insights: ZoneInsights,
}

impl FromZone {
    async fn apply_update(&mut self, update: Update) -> Result<Vec<Rejection>, BoxError> {
        let ty = ResourceType::from_name(&update.type_url)
            .filter(|t| kds::zone_to_global_types().contains(t))
            .ok_or_else(|| {
                format!(
                    "zone {} sent type {:?}, which zones do not report",
                    self.zone, update.type_url
                )
            })?;
        let mut rejections = Vec::new();
        let mut ops = Vec::new();
        for r in &update.resources {
            match kds::from_delta(ty, r.resource.as_ref()) {
                Ok(res) if kds::delta_name(&res.key()) == r.name => {
                    let stored = zone_names::to_global(&res, &self.zone);
                    if let Some(reason) = self.trust_domain_refused(&stored).await? {
                        rejections.push(Rejection::new(&r.name, reason));
                        continue;
                    }
                    match self.owned_elsewhere(&stored.key()).await? {
                        Some(other) => rejections.push(Rejection::new(
                            &r.name,
                            format!("name taken by zone {other}"),
                        )),
                        None => ops.push(WriteOp::Upsert(stored)),
                    }
                }
                Ok(_) => {
                    rejections.push(Rejection::new(&r.name, "name does not match the payload"))
                }
                Err(e) => rejections.push(Rejection::new(&r.name, e.to_string())),
            }
        }
        for name in &update.removed {
            if let Some(key) = kds::key_of(ty, name) {
                let key = zone_names::global_key(&key, &self.zone);
                if self.owned_by_this_zone(&key).await? {
                    ops.push(WriteOp::Delete(key));
                }
            }
        }
        if let UpdateKind::InitialLast { full_state } = &update.kind {
            for res in self.store.list(ty, None, Page::all()).await?.items {
                if zone_names::zone_of(&res) == Some(self.zone.as_str())
                    && let Some(sent) = zone_names::from_global(&res)
                    && !full_state.contains(&kds::delta_name(&sent.key()))
                {
                    ops.push(WriteOp::Delete(res.key()));
                }
            }
        }
        // Rejections are named as the zone named them, so its sender can track them.
        let name_of = |op: &WriteOp| match op {
            WriteOp::Upsert(r) => zone_names::from_global(r)
                .map(|sent| kds::delta_name(&sent.key()))
                .unwrap_or_default(),
            WriteOp::Delete(k) => kds::delta_name(k),
        };
        rejections.extend(kds::transact_or_reject(self.store.as_ref(), ops, name_of).await?);
        Ok(rejections)
    }

    /// Why a zone's MeshTrust is refused: a trust domain belongs to whoever
    /// published it first (another zone, or global), and no zone may speak for a
    /// mesh's own Mesh-mTLS domain — else a compromised zone could mint another
    /// zone's identities.
    async fn trust_domain_refused(&self, res: &Resource) -> Result<Option<String>, StoreError> {
        let Spec::MeshTrust(spec) = &res.spec else {
            return Ok(None);
        };
        let mesh = res.meta.mesh.as_deref().unwrap_or_default();
        if spec.trust_domain == mesh {
            return Ok(Some(format!(
                "trust domain {:?} is the mesh's own (Mesh mTLS); a zone cannot publish it",
                spec.trust_domain
            )));
        }
        for other in self
            .store
            .list(ResourceType::MeshTrust, Some(mesh), Page::all())
            .await?
            .items
        {
            let Spec::MeshTrust(o) = &other.spec else {
                continue;
            };
            let owner = zone_names::zone_of(&other);
            if o.trust_domain == spec.trust_domain && owner != Some(self.zone.as_str()) {
                return Ok(Some(format!(
                    "trust domain {:?} already belongs to {}",
                    spec.trust_domain,
                    owner.map_or_else(|| "global".to_string(), |z| format!("zone {z}"))
                )));
            }
        }
        Ok(None)
    }

    /// The zone that owns the resource stored at `key`, when it is not this one.
    async fn owned_elsewhere(&self, key: &ResourceKey) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .get(key)
            .await?
            .and_then(|r| match zone_names::zone_of(&r) {
                Some(z) if z == self.zone => None,
                Some(z) => Some(z.to_string()),
                None => Some("global".to_string()),
            }))
    }

    async fn owned_by_this_zone(&self, key: &ResourceKey) -> Result<bool, StoreError> {
        Ok(self
            .store
            .get(key)
            .await?
            .is_some_and(|r| zone_names::zone_of(&r) == Some(self.zone.as_str())))
    }
}

impl Apply for FromZone {
    async fn apply(&mut self, update: Update) -> Result<Vec<Rejection>, BoxError> {
        let (ty, n, removed) = (
            update.type_url.clone(),
            update.resources.len(),
            update.removed.len(),
        );
        let result = self.apply_update(update).await;
        if let Ok(rejected) = &result {
            self.insights
                .record_received(&self.zone, &ty, n, removed, rejected.len());
        }
        result
    }
}

/// The zone's version, from the `x-weft-version` metadata it sends.
fn zone_version(md: &tonic::metadata::MetadataMap) -> Option<String> {
    md.get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
