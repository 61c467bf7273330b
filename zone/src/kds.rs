//! The zone's KDS client: dials global over verified TLS, authenticates with the
//! zone token, and keeps the zone's store in sync with global's meshes, secrets and
//! policies through the shared delta engine.
//!
//! The connection is an explicit state machine ([`State`]): `Connecting` (dial,
//! authenticate, then sync for as long as the stream lives; the first full sync is
//! applied in ONE store transaction, after which the zone is ready) → `Backoff`
//! when the stream ends or fails (exponential, with jitter) → `Connecting`. While global is unreachable the zone keeps
//! serving from its store; after a restart it declares the versions it holds, so
//! only differences travel.

use hyper_util::rt::TokioIo;
use kds_proto::KdsSyncServiceClient;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tonic::metadata::MetadataValue;
use tonic::transport::{Endpoint, Uri};
use weft_model::resource::{ResourceType, Spec};
use weft_runtime::shutdown::CancellationToken;
use weft_security::pki::ServerTrust;
use weft_store::{Page, ResourceStore, StoreError, WriteOp};
use weft_sync::delta::driver::{self, Apply, StreamEnd};
use weft_sync::delta::{
    BoxError, DeltaDiscoveryRequest, DeltaDiscoveryResponse, Node, Receiver, Rejection, Sender,
    SenderConfig, Update, UpdateKind,
};
use weft_sync::kds::{self, zone_names};

/// Where and how to reach global.
#[derive(Clone)]
pub struct KdsClientConfig {
    pub zone: String,
    /// `grpcs://host:port`.
    pub global: Uri,
    /// The zone token (never logged).
    pub token: Arc<str>,
    pub trust: Arc<ServerTrust>,
}

impl std::fmt::Debug for KdsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdsClientConfig")
            .field("zone", &self.zone)
            .field("global", &self.global)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The states of the connection to global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting { attempt: u32 },
    Backoff { attempt: u32, delay: Duration },
}

const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// A session that lasted this long resets the back-off.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Runs until `shutdown`: connect, sync, back off, again. `ready` turns true after
/// the first complete sync and stays true (the store keeps serving offline).
pub async fn run(
    config: KdsClientConfig,
    store: Arc<dyn ResourceStore>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut state = State::Connecting { attempt: 0 };
    loop {
        tracing::debug!(?state, zone = %config.zone, "KDS client state");
        state = match state {
            State::Connecting { attempt } => {
                let started = tokio::time::Instant::now();
                let result = tokio::select! {
                    r = session(&config, store.clone(), &ready) => r,
                    () = shutdown.cancelled() => return,
                };
                // A session that lived a while was healthy: start the back-off afresh.
                let attempt = if started.elapsed() > HEALTHY_SESSION {
                    0
                } else {
                    attempt
                };
                match result {
                    Ok(end) => tracing::info!(?end, "KDS: stream to global ended"),
                    Err(e) => {
                        tracing::warn!(error = %e, global = %config.global, "KDS: connection to global failed")
                    }
                }
                let attempt = attempt.saturating_add(1);
                State::Backoff {
                    attempt,
                    delay: backoff(attempt),
                }
            }
            State::Backoff { attempt, delay } => {
                tokio::select! {
                    () = tokio::time::sleep(delay) => State::Connecting { attempt },
                    () = shutdown.cancelled() => return,
                }
            }
        };
    }
}

/// Exponential back-off with ±25 % jitter.
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(8))
        .min(BACKOFF_MAX);
    let jitter = rand::random_range(0.75..1.25);
    exp.mul_f64(jitter)
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("global refused the stream: {code:?}: {message}")]
    Refused { code: tonic::Code, message: String },
    #[error("cannot read the local store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Delta(#[from] weft_sync::delta::DeltaError),
}

/// One connection: TLS, both metadata headers, the GlobalToZoneSync receiver.
async fn session(
    config: &KdsClientConfig,
    store: Arc<dyn ResourceStore>,
    ready: &watch::Sender<bool>,
) -> Result<StreamEnd, SessionError> {
    let channel = connect(config).await?;
    let mut client = KdsSyncServiceClient::new(channel)
        .max_decoding_message_size(4 * 1024 * 1024)
        .max_encoding_message_size(4 * 1024 * 1024);
    let types = kds::global_to_zone_types();
    let mut local = Vec::new();
    for ty in &types {
        let mut versions = BTreeMap::new();
        for res in store.list(*ty, None, Page::all()).await?.items {
            if kds::is_from_global(&res) {
                versions.insert(kds::delta_name(&res.key()), res.content_hash());
            }
        }
        local.push((ty.name().to_string(), versions));
    }
    let node = Node {
        id: config.zone.clone(),
        ..Default::default()
    };
    let mut receiver = Receiver::new(node, local);
    let (tx, rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryRequest>(16);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    add_metadata(&mut request, config);
    // Global answers the headers once the zone is authenticated, before any message.
    let incoming = client
        .global_to_zone_sync(request)
        .await
        .map_err(|s| SessionError::Refused {
            code: s.code(),
            message: s.message().to_string(),
        })?
        .into_inner();
    tracing::info!(zone = %config.zone, global = %config.global, "KDS: connected; syncing from global");

    // Zone → global: this zone's dataplanes, ingresses and egresses (never what
    // came from global), over the same delta engine with the roles inverted.
    let zone = config.zone.clone();
    let select: kds::Select =
        Arc::new(move |r| (!kds::is_from_global(r)).then(|| zone_names::stamp_zone(r, &zone)));
    let snapshots =
        kds::SnapshotFeed::start(store.clone(), kds::ZONE_TO_GLOBAL_TYPES.to_vec(), select).await?;
    let (up_tx, up_rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryResponse>(16);
    let mut up_request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(up_rx));
    add_metadata(&mut up_request, config);
    let up_incoming = client
        .zone_to_global_sync(up_request)
        .await
        .map_err(|s| SessionError::Refused {
            code: s.code(),
            message: s.message().to_string(),
        })?
        .into_inner();
    let mut sender = Sender::new(SenderConfig {
        control_plane_id: Some(config.zone.clone()),
        ..SenderConfig::default()
    });
    let up = driver::run_sender(
        &mut sender,
        up_incoming,
        up_tx,
        snapshots,
        driver::DEFAULT_QUEUE,
        |_, _| {},
    );

    let mut apply = ZoneApply {
        store,
        ready: ready.clone(),
        staged: Vec::new(),
        initial_done: false,
    };
    let down = driver::run_receiver(
        &mut receiver,
        incoming,
        tx,
        &mut apply,
        driver::DEFAULT_QUEUE,
    );
    // Either direction ending ends the session; the next one resumes both.
    tokio::select! {
        end = down => Ok(end?),
        end = up => Ok(end?),
    }
}

/// Connects and opens `GlobalToZoneSync` once, without syncing: `Ok` when global
/// accepts this zone, the refusal otherwise (for checks and tests).
pub async fn probe(config: &KdsClientConfig) -> Result<(), SessionError> {
    let channel = connect(config).await?;
    let mut client = KdsSyncServiceClient::new(channel);
    let (_tx, rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryRequest>(1);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    add_metadata(&mut request, config);
    client
        .global_to_zone_sync(request)
        .await
        .map(|_| ())
        .map_err(|s| SessionError::Refused {
            code: s.code(),
            message: s.message().to_string(),
        })
}

/// Opens `GlobalToZoneSync` and waits for global to end it; returns the status it
/// ended with (e.g. `UNAUTHENTICATED` once the token is revoked). For tests.
pub async fn wait_for_end(config: &KdsClientConfig) -> Result<tonic::Status, SessionError> {
    let channel = connect(config).await?;
    let mut client = KdsSyncServiceClient::new(channel);
    let (_tx, rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryRequest>(1);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    add_metadata(&mut request, config);
    let mut incoming = client
        .global_to_zone_sync(request)
        .await
        .map_err(|s| SessionError::Refused {
            code: s.code(),
            message: s.message().to_string(),
        })?
        .into_inner();
    loop {
        match incoming.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(tonic::Status::ok("stream closed")),
            Err(status) => return Ok(status),
        }
    }
}

fn add_metadata<T>(request: &mut tonic::Request<T>, config: &KdsClientConfig) {
    let md = request.metadata_mut();
    if let Ok(v) = MetadataValue::try_from(format!("Bearer {}", config.token)) {
        md.insert("authorization", v);
    }
    if let Ok(v) = MetadataValue::try_from(config.zone.as_str()) {
        md.insert("client-id", v);
    }
    md.insert(
        "x-weft-version",
        MetadataValue::from_static(env!("CARGO_PKG_VERSION")),
    );
}

/// A TLS channel to global, verified against the configured trust.
async fn connect(config: &KdsClientConfig) -> Result<tonic::transport::Channel, SessionError> {
    let tls = weft_security::pki::client_config(&config.trust)
        .map_err(|e| SessionError::Connect(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let host = config
        .global
        .host()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_string();
    let port = config.global.port_u16().unwrap_or(5685);
    // tonic itself speaks plain HTTP/2 over our TLS stream.
    let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
        .map_err(|e| SessionError::Connect(e.to_string()))?
        .http2_keep_alive_interval(crate::KDS_KEEPALIVE)
        .keep_alive_timeout(crate::KDS_KEEPALIVE)
        .keep_alive_while_idle(true)
        .connect_timeout(Duration::from_secs(10));
    let server_name =
        weft_security::pki::server_name(&host).map_err(|e| SessionError::Connect(e.to_string()))?;
    let connector = tower::service_fn(move |_: Uri| {
        let tls = tls.clone();
        let server_name = server_name.clone();
        let addr = format!("{host}:{port}");
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let stream = tls.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| match source_chain(&e) {
            chain if chain.is_empty() => SessionError::Connect(e.to_string()),
            chain => SessionError::Connect(format!("{e}: {chain}")),
        })
}

/// The sources under an error, each once (tonic's and rustls' messages repeat their sources).
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut seen = vec![e.to_string()];
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !seen.iter().any(|t| t.contains(&text)) {
            out.push(text.clone());
        }
        seen.push(text);
        cur = s.source();
    }
    out.join(": ")
}

/// Applies what global sends to the zone's store.
struct ZoneApply {
    store: Arc<dyn ResourceStore>,
    ready: watch::Sender<bool>,
    /// The initial sync, held back until every type has arrived.
    staged: Vec<WriteOp>,
    initial_done: bool,
}

impl ZoneApply {
    async fn apply_update(&mut self, update: Update) -> Result<Vec<Rejection>, BoxError> {
        let Some(ty) = ResourceType::from_name(&update.type_url) else {
            return Err(format!("global sent unknown type {:?}", update.type_url).into());
        };
        let mut rejections = Vec::new();
        let mut ops = Vec::new();
        for r in &update.resources {
            match kds::from_delta(ty, r.resource.as_ref()) {
                Ok(res) if kds::delta_name(&res.key()) == r.name => ops.push(WriteOp::Upsert(res)),
                Ok(_) => {
                    rejections.push(Rejection::new(&r.name, "name does not match the payload"))
                }
                Err(e) => rejections.push(Rejection::new(&r.name, e.to_string())),
            }
        }
        for name in &update.removed {
            if let Some(key) = kds::key_of(ty, name) {
                ops.push(WriteOp::Delete(key));
            }
        }
        if let UpdateKind::InitialLast { full_state } = &update.kind {
            ops.extend(self.stale_deletes(ty, full_state).await?);
        }
        if self.initial_done {
            rejections.extend(self.commit(ops).await?);
        } else {
            self.staged.extend(ops);
            if update.completes_initial_sync {
                let staged = order(std::mem::take(&mut self.staged));
                let n = staged.len();
                rejections.extend(self.commit(staged).await?);
                self.initial_done = true;
                tracing::info!(operations = n, "KDS: initial sync from global applied");
                self.ready.send_replace(true);
            }
        }
        Ok(rejections)
    }

    /// Local copies from global that global no longer holds.
    async fn stale_deletes(
        &self,
        ty: ResourceType,
        full_state: &BTreeSet<String>,
    ) -> Result<Vec<WriteOp>, BoxError> {
        let mut ops = Vec::new();
        for res in self.store.list(ty, None, Page::all()).await?.items {
            if kds::is_from_global(&res) && !full_state.contains(&kds::delta_name(&res.key())) {
                ops.push(WriteOp::Delete(res.key()));
            }
        }
        Ok(ops)
    }

    /// One transaction; if a resource's mesh is missing, falls back to one
    /// operation at a time and rejects just the ones that fail.
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<Rejection>, BoxError> {
        let name_of = |op: &WriteOp| match op {
            WriteOp::Upsert(r) => kds::delta_name(&r.key()),
            WriteOp::Delete(k) => kds::delta_name(k),
        };
        Ok(kds::transact_or_reject(self.store.as_ref(), ops, name_of).await?)
    }
}

/// Meshes first, then what lives in them; deletes after upserts, meshes last.
fn order(mut ops: Vec<WriteOp>) -> Vec<WriteOp> {
    ops.sort_by_key(|op| match op {
        WriteOp::Upsert(r) if matches!(r.spec, Spec::Mesh(_)) => 0,
        WriteOp::Upsert(_) => 1,
        WriteOp::Delete(k) if k.ty == ResourceType::Mesh => 3,
        WriteOp::Delete(_) => 2,
    });
    ops
}

impl Apply for ZoneApply {
    fn apply(
        &mut self,
        update: Update,
    ) -> impl Future<Output = Result<Vec<Rejection>, BoxError>> + Send {
        self.apply_update(update)
    }
}
