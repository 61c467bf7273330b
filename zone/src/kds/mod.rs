//! The zone's KDS client: dials global over verified TLS, authenticates with the
//! zone token, and keeps the zone's store in sync with global's meshes, secrets and
//! policies through the shared delta engine (and reports the zone's dataplanes,
//! ingresses and egresses back).
//!
//! The link is an explicit state machine ([`machine`]): `Connecting` →
//! `Handshaking` → `InitialSync` → `Synced`, and `Backoff` after any failure or
//! end, with a pure [`machine::step`]; [`KdsClient::run`] is the async driver that
//! performs each [`machine::Action`] and feeds back what happened. The initial
//! sync is committed in ONE store transaction ([`apply`]), with a marker that
//! tells a restarted zone it holds a full sync: such a zone is ready at once and
//! serves from its store while global is unreachable; a zone that never synced is
//! not ready (decision 0008). After a restart the zone declares the versions it
//! holds, so only differences travel.

mod apply;
pub mod machine;
mod session;

pub use machine::{Action, Event, Machine, Readiness, State};
pub use session::{Class, ConnectError, SessionError};

use machine::Now;
use session::Session;
use std::sync::Arc;
use tokio::sync::watch;
use tonic::transport::{Channel, Uri};
use weft_runtime::shutdown::CancellationToken;
use weft_security::pki::ServerTrust;
use weft_store::{ResourceStore, StoreError};
use weft_sync::delta::DeltaDiscoveryRequest;
use weft_sync::kds::metrics::KdsMetrics;

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

/// The zone's KDS client, ready to run.
pub struct KdsClient {
    config: KdsClientConfig,
    store: Arc<dyn ResourceStore>,
    machine: Machine,
    readiness: watch::Sender<Readiness>,
    metrics: KdsMetrics,
    admin: Option<crate::envoy_admin::Relay>,
}

impl KdsClient {
    /// A client for `store`, which may hold a sync from before a restart (then the
    /// zone is ready at once).
    pub async fn new(
        config: KdsClientConfig,
        store: Arc<dyn ResourceStore>,
    ) -> Result<Self, StoreError> {
        let last_sync = apply::last_sync(store.as_ref(), &config.zone).await?;
        let machine = Machine::new(last_sync);
        let (readiness, _) = watch::channel(machine.readiness());
        Ok(KdsClient {
            config,
            store,
            machine,
            readiness,
            metrics: KdsMetrics::default(),
            admin: None,
        })
    }

    /// Answers global's Envoy admin requests through `relay` (decision 0015).
    pub fn with_admin(mut self, relay: crate::envoy_admin::Relay) -> Self {
        self.admin = Some(relay);
        self
    }

    /// Records the streams in `metrics` (`weft_kds_*` on the zone's `/metrics`).
    pub fn with_metrics(mut self, metrics: KdsMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether the zone serves, and why; follows the client's state.
    pub fn readiness(&self) -> watch::Receiver<Readiness> {
        self.readiness.subscribe()
    }

    /// Runs until `shutdown`: performs what the state machine asks and feeds back
    /// what happened.
    pub async fn run(self, shutdown: CancellationToken) {
        let KdsClient {
            config,
            store,
            mut machine,
            readiness,
            metrics,
            admin,
        } = self;
        tracing::info!(zone = %config.zone, global = %config.global, readiness = ?machine.readiness(), "KDS client starting");
        let mut channel: Option<Channel> = None;
        let mut session: Option<Session> = None;
        let mut action = machine.action();
        loop {
            let event = tokio::select! {
                event = perform(action, &config, &store, &metrics, admin.as_ref(), &mut channel, &mut session) => event,
                () = shutdown.cancelled() => Event::Shutdown,
            };
            let observed = Observed::of(&event);
            let (next, next_action) = machine::step(machine, event, Now::current());
            machine = next;
            action = next_action;
            if !matches!(machine.state, State::InitialSync { .. } | State::Synced) {
                // Leaving the streams: drop them (both directions end together).
                session = None;
            }
            report(&config, &machine, observed);
            let now = machine.readiness();
            readiness.send_if_modified(|r| {
                let changed = *r != now;
                if changed {
                    tracing::info!(ready = now.ready, reason = %now.reason, "KDS: zone readiness");
                    *r = now;
                }
                changed
            });
            if action == Action::Stop {
                return;
            }
        }
    }
}

/// Does what `action` asks; what happened.
async fn perform(
    action: Action,
    config: &KdsClientConfig,
    store: &Arc<dyn ResourceStore>,
    metrics: &KdsMetrics,
    admin: Option<&crate::envoy_admin::Relay>,
    channel: &mut Option<Channel>,
    session: &mut Option<Session>,
) -> Event {
    match action {
        Action::Connect => match session::connect(config).await {
            Ok(c) => {
                *channel = Some(c);
                Event::Connected
            }
            Err(e) => Event::Failed(e.into()),
        },
        Action::Handshake => {
            let Some(c) = channel.take() else {
                return Event::Failed(SessionError::Closed);
            };
            match Session::open(c, config, store.clone(), metrics, admin).await {
                Ok(s) => {
                    *session = Some(s);
                    Event::Accepted
                }
                Err(SessionError::Refused(status)) => Event::Refused(status),
                Err(e) => Event::Failed(e),
            }
        }
        Action::Sync => match session {
            Some(s) => s.next_event().await,
            None => Event::StreamEnded(SessionError::Closed),
        },
        Action::Wait { until } => {
            tokio::time::sleep_until(until).await;
            Event::BackoffElapsed
        }
        Action::Stop => std::future::pending().await,
    }
}

/// What kind of event a step saw, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observed {
    Accepted,
    AttemptFailed,
    StreamEnded,
    Other,
}

impl Observed {
    fn of(event: &Event) -> Self {
        match event {
            Event::Accepted => Observed::Accepted,
            Event::Failed(_) | Event::Refused(_) => Observed::AttemptFailed,
            Event::StreamEnded(_) => Observed::StreamEnded,
            _ => Observed::Other,
        }
    }
}

/// Logs what a step did that an operator should see.
fn report(config: &KdsClientConfig, machine: &Machine, observed: Observed) {
    tracing::debug!(state = ?machine.state, "KDS client state");
    let zone = config.zone.as_str();
    let global = &config.global;
    match (observed, &machine.state, &machine.trouble) {
        (Observed::Accepted, _, _) => {
            tracing::info!(%zone, %global, "KDS: connected; syncing from global")
        }
        (
            Observed::AttemptFailed | Observed::StreamEnded,
            State::Backoff { until, class, .. },
            Some(t),
        ) => {
            let retry_in = until.saturating_duration_since(tokio::time::Instant::now());
            let what = if observed == Observed::StreamEnded {
                "KDS: stream to global ended"
            } else {
                "KDS: connection to global failed"
            };
            match class.hint(zone) {
                Some(hint) => tracing::warn!(
                    %zone, %global, error = %t.error, retry_in = ?retry_in,
                    "{what}: global refuses this zone's token; {hint}"
                ),
                None => tracing::warn!(
                    %zone, %global, error = %t.error, retry_in = ?retry_in, "{what}"
                ),
            }
        }
        _ => {}
    }
}

/// Connects and opens `GlobalToZoneSync` once, without syncing: `Ok` when global
/// accepts this zone, the refusal otherwise (for checks and tests).
pub async fn probe(config: &KdsClientConfig) -> Result<(), SessionError> {
    let channel = session::connect(config).await?;
    let mut client = session::client(channel);
    let (_tx, rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryRequest>(1);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    session::add_metadata(&mut request, config);
    client
        .global_to_zone_sync(request)
        .await
        .map(|_| ())
        .map_err(SessionError::Refused)
}

/// Opens `GlobalToZoneSync` and waits for global to end it; returns the status it
/// ended with (e.g. `UNAUTHENTICATED` once the token is revoked). For tests.
pub async fn wait_for_end(config: &KdsClientConfig) -> Result<tonic::Status, SessionError> {
    let channel = session::connect(config).await?;
    let mut client = session::client(channel);
    let (_tx, rx) = tokio::sync::mpsc::channel::<DeltaDiscoveryRequest>(1);
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    session::add_metadata(&mut request, config);
    let mut incoming = client
        .global_to_zone_sync(request)
        .await
        .map_err(SessionError::Refused)?
        .into_inner();
    loop {
        match incoming.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(tonic::Status::ok("stream closed")),
            Err(status) => return Ok(status),
        }
    }
}
