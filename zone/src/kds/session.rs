//! One attempt at the link to global: dial ([`connect`]), open both streams with
//! the zone token ([`Session::open`]), and run them ([`Session::next_event`]); and
//! how an attempt that failed or ended is classified ([`SessionError::class`]).

use super::KdsClientConfig;
use super::apply::ZoneApply;
use super::machine::Event;
use hyper_util::rt::TokioIo;
use kds_proto::KdsSyncServiceClient;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::Instrument;
use weft_security::pki::PkiError;
use weft_store::{Page, ResourceStore, StoreError};
use weft_sync::delta::driver::{self, StreamEnd};
use weft_sync::delta::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DeltaError, Node, Receiver, Sender, SenderConfig,
};
use weft_sync::kds::metrics::{Direction, KdsMetrics};
use weft_sync::kds::{self, zone_names};

/// gRPC messages up to this size are accepted (the delta engine keeps its own at 1 MiB).
const MAX_GRPC_MESSAGE: usize = 4 * 1024 * 1024;

/// Why global could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot set up TLS to verify global: {0}")]
    Tls(#[source] PkiError),
    #[error("invalid global address {address}: {source}")]
    Address {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot reach global at {address}: {}", chain(source))]
    Transport {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// Why an attempt failed or a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Global answered a stream with an error status (`UNAUTHENTICATED` for a bad
    /// token, `PERMISSION_DENIED` for another zone's).
    #[error("global refused the stream: {:?}: {}", .0.code(), .0.message())]
    Refused(#[source] tonic::Status),
    #[error("global closed the stream")]
    Closed,
    /// A stream failed: its transport (the source is the `tonic::Status` it ended
    /// with), or a fatal error applying what global sent.
    #[error("the stream failed: {0}")]
    Stream(#[source] DeltaError),
    #[error("cannot read the local store: {0}")]
    Store(#[from] StoreError),
}

/// How an ending is handled: how long to back off, and what to tell the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Global refused the zone's credentials (`UNAUTHENTICATED`,
    /// `PERMISSION_DENIED`): retrying soon cannot help, a new token can. Long back-off.
    Auth,
    /// Global disabled this zone (its Zone has `enabled: false`,
    /// `FAILED_PRECONDITION`): nothing to fix here; retried with the long
    /// back-off until an operator enables it on global.
    Disabled,
    /// Anything else: a refused or reset connection, TLS, GOAWAY, `UNAVAILABLE`,
    /// keepalive timeouts, a local store error. Normal back-off.
    Transient,
}

impl Class {
    /// The class of a status global (or the transport) ended a stream with.
    pub fn of_status(status: &tonic::Status) -> Class {
        match status.code() {
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => Class::Auth,
            tonic::Code::FailedPrecondition => Class::Disabled,
            _ => Class::Transient,
        }
    }

    /// What is wrong, as readiness reports it ("serving from store, <what> since ...").
    pub fn what(self) -> &'static str {
        match self {
            Class::Auth => "global refuses this zone's token",
            Class::Disabled => "global has disabled this zone",
            Class::Transient => "global unreachable",
        }
    }

    /// What an operator should do, if anything helps besides waiting.
    pub fn hint(self, zone: &str) -> Option<String> {
        match self {
            Class::Auth => Some(format!(
                "issue a new zone token on global (`weft-global token zone --zone {zone}`, \
                 or POST /tokens/zone) and restart this zone with it (--zone-token-file)"
            )),
            Class::Disabled => Some(format!(
                "enable it on global: PUT /zones/{zone} with enabled: true \
                 (or `weftctl apply` a Zone {zone} with enabled: true)"
            )),
            Class::Transient => None,
        }
    }
}

impl SessionError {
    /// How this ending is handled.
    pub fn class(&self) -> Class {
        match self {
            SessionError::Refused(status) => Class::of_status(status),
            SessionError::Stream(DeltaError::Transport(source)) => source
                .downcast_ref::<tonic::Status>()
                .map_or(Class::Transient, Class::of_status),
            _ => Class::Transient,
        }
    }
}

/// A TLS channel to global, verified against the configured trust.
pub async fn connect(config: &KdsClientConfig) -> Result<Channel, ConnectError> {
    let tls = weft_security::pki::client_config(&config.trust).map_err(ConnectError::Tls)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let host = config
        .global
        .host()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_string();
    let port = config.global.port_u16().unwrap_or(5685);
    let address = format!("{host}:{port}");
    // tonic itself speaks plain HTTP/2 over our TLS stream.
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|source| ConnectError::Address {
            address: address.clone(),
            source,
        })?
        .http2_keep_alive_interval(crate::KDS_KEEPALIVE)
        .keep_alive_timeout(crate::KDS_KEEPALIVE)
        .keep_alive_while_idle(true)
        .connect_timeout(Duration::from_secs(10));
    let server_name = weft_security::pki::server_name(&host).map_err(ConnectError::Tls)?;
    let dial = address.clone();
    let connector = tower::service_fn(move |_: Uri| {
        let tls = tls.clone();
        let server_name = server_name.clone();
        let addr = dial.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let stream = tls.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|source| ConnectError::Transport { address, source })
}

/// Puts the zone token, the zone's name and its version on a request.
pub fn add_metadata<T>(request: &mut tonic::Request<T>, config: &KdsClientConfig) {
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

/// A KDS client on `channel`, with the message limits both sides use.
pub fn client(channel: Channel) -> KdsSyncServiceClient<Channel> {
    KdsSyncServiceClient::new(channel)
        .max_decoding_message_size(MAX_GRPC_MESSAGE)
        .max_encoding_message_size(MAX_GRPC_MESSAGE)
}

/// Both streams of one accepted attempt, running.
pub struct Session {
    /// Both directions; ends when either does (the next attempt resumes both).
    run: Pin<Box<dyn Future<Output = SessionError> + Send>>,
    /// Fires once, when the initial sync is committed.
    committed: oneshot::Receiver<()>,
    commit_reported: bool,
    /// The Envoy admin streams (`crate::envoy_admin::kds`), ended with the session.
    _admin: Option<AbortOnDrop>,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Session {
    /// Opens `GlobalToZoneSync` (declaring the versions the store holds), then
    /// `ZoneToGlobalSync`, on `channel`. Global answers each once it has
    /// authenticated the zone, before any message.
    pub async fn open(
        channel: Channel,
        config: &KdsClientConfig,
        store: Arc<dyn ResourceStore>,
        metrics: &KdsMetrics,
        admin: Option<&crate::envoy_admin::Relay>,
    ) -> Result<Session, SessionError> {
        let admin_channel = channel.clone();
        let mut grpc = client(channel);
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
        let incoming = grpc
            .global_to_zone_sync(request)
            .await
            .map_err(SessionError::Refused)?
            .into_inner();

        // Zone → global: this zone's dataplanes, ingresses and egresses (never what
        // came from global), over the same delta engine with the roles inverted.
        let zone = config.zone.clone();
        let select: kds::Select =
            Arc::new(move |r| (!kds::is_from_global(r)).then(|| zone_names::stamp_zone(r, &zone)));
        let snapshots =
            kds::SnapshotFeed::start(store.clone(), kds::zone_to_global_types(), select).await?;
        let (up_tx, up_rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryResponse>(16);
        let mut up_request =
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(up_rx));
        add_metadata(&mut up_request, config);
        let up_incoming = grpc
            .zone_to_global_sync(up_request)
            .await
            .map_err(SessionError::Refused)?
            .into_inner();

        let (committed_tx, committed) = oneshot::channel();
        let mut apply = ZoneApply::new(store, config.zone.clone(), committed_tx);
        let down_metrics = metrics.stream(&config.zone, Direction::global_to_zone);
        let down = async move {
            tracing::info!("KDS: GlobalToZoneSync stream open");
            driver::run_receiver_observed(
                &mut receiver,
                incoming,
                tx,
                &mut apply,
                driver::DEFAULT_QUEUE,
                |ev| down_metrics.receiver_event(&ev),
            )
            .await
        }
        .instrument(tracing::info_span!("kds", zone = %config.zone, direction = "global_to_zone"));
        let mut sender = Sender::new(SenderConfig {
            control_plane_id: Some(config.zone.clone()),
            ..SenderConfig::default()
        });
        let mut up_metrics = metrics.stream(&config.zone, Direction::zone_to_global);
        let up = async move {
            tracing::info!("KDS: ZoneToGlobalSync stream open");
            driver::run_sender(
                &mut sender,
                up_incoming,
                up_tx,
                snapshots,
                driver::DEFAULT_QUEUE,
                |s, ev| up_metrics.sender_event(s, &ev),
            )
            .await
        }
        .instrument(tracing::info_span!("kds", zone = %config.zone, direction = "zone_to_global"));
        let run = async move {
            let end = tokio::select! {
                end = down => end,
                end = up => end,
            };
            match end {
                Ok(StreamEnd::PeerClosed | StreamEnd::OutgoingClosed | StreamEnd::SourceClosed) => {
                    SessionError::Closed
                }
                Err(e) => SessionError::Stream(e),
            }
        };
        // Envoy admin for global, on the same connection; never ends the session.
        let admin = admin.map(|relay| {
            let mut md = tonic::Request::new(());
            add_metadata(&mut md, config);
            let serve =
                crate::envoy_admin::kds::serve(admin_channel, md.metadata().clone(), relay.clone())
                    .instrument(
                        tracing::info_span!("kds", zone = %config.zone, direction = "envoy_admin"),
                    );
            AbortOnDrop(tokio::spawn(serve))
        });
        Ok(Session {
            run: Box::pin(run),
            committed,
            commit_reported: false,
            _admin: admin,
        })
    }

    /// The next thing that happens to the session: its initial sync committed
    /// (once), or its end.
    pub async fn next_event(&mut self) -> Event {
        tokio::select! {
            end = &mut self.run => Event::StreamEnded(end),
            Ok(()) = &mut self.committed, if !self.commit_reported => {
                self.commit_reported = true;
                Event::InitialSyncCommitted
            }
        }
    }
}

/// An error's sources, each once (tonic's and rustls' messages repeat their sources).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut seen = vec![e.to_string()];
    let mut out = vec![e.to_string()];
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

#[cfg(test)]
mod tests {
    use super::*;

    // Refusals of the zone's credentials are Auth, wherever they surface; everything
    // else (GOAWAY, UNAVAILABLE, resets, closes, store errors) is Transient.
    #[test]
    fn endings_are_classified() {
        let auth = [
            SessionError::Refused(tonic::Status::unauthenticated("token expired")),
            SessionError::Refused(tonic::Status::permission_denied("token is for zone-a")),
            // A live stream cut by a revocation.
            SessionError::Stream(DeltaError::Transport(Box::new(
                tonic::Status::unauthenticated("token revoked"),
            ))),
        ];
        for e in &auth {
            assert_eq!(e.class(), Class::Auth, "{e}");
        }
        let transient = [
            SessionError::Refused(tonic::Status::unavailable("global is shutting down")),
            SessionError::Stream(DeltaError::Transport(Box::new(tonic::Status::unavailable(
                "connection closed: GOAWAY",
            )))),
            SessionError::Stream(DeltaError::Transport(Box::new(tonic::Status::internal(
                "h2 protocol error: error reading a body from connection",
            )))),
            SessionError::Stream(DeltaError::Transport(Box::new(tonic::Status::cancelled(
                "keepalive timed out",
            )))),
            SessionError::Stream(DeltaError::Transport("connection reset".into())),
            SessionError::Stream(DeltaError::MissingNonce {
                type_url: "Mesh".into(),
            }),
            SessionError::Closed,
            SessionError::Store(StoreError::Io(weft_store::IoError::msg("disk full"))),
        ];
        for e in &transient {
            assert_eq!(e.class(), Class::Transient, "{e}");
        }
        assert!(
            Class::Auth
                .hint("east")
                .is_some_and(|h| h.contains("--zone east"))
        );
        assert_eq!(Class::Transient.hint("east"), None);
    }

    // A refusal keeps the status as its source and says the code and the message.
    #[test]
    fn refusals_keep_their_status() {
        let e = SessionError::Refused(tonic::Status::permission_denied("token is for zone-a"));
        assert_eq!(
            e.to_string(),
            "global refused the stream: PermissionDenied: token is for zone-a"
        );
        let source = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<tonic::Status>())
            .map(tonic::Status::code);
        assert_eq!(source, Some(tonic::Code::PermissionDenied));
    }

    // A transport failure keeps tonic's error as its source, and its message names
    // the address and the underlying cause once.
    #[tokio::test]
    async fn connect_errors_keep_their_source() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let config = KdsClientConfig {
            zone: "east".into(),
            global: format!("grpcs://127.0.0.1:{port}")
                .parse()
                .unwrap_or_default(),
            token: "t".into(),
            trust: Arc::new(weft_security::pki::ServerTrust::Pinned(
                weft_security::pki::Fingerprint::of_der(b"not global's CA"),
            )),
        };
        let err = connect(&config).await.err();
        let Some(ConnectError::Transport { address, source }) = &err else {
            panic!("expected a transport error, got {err:?}");
        };
        assert_eq!(address, &format!("127.0.0.1:{port}"));
        let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            text.starts_with(&format!("cannot reach global at 127.0.0.1:{port}")),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(std::error::Error::source(source).is_some());
        let session =
            SessionError::from(err.unwrap_or(ConnectError::Tls(PkiError::BadSan("x".into()))));
        assert_eq!(session.class(), Class::Transient);
    }
}
