//! The sending side of one stream: answers `DeltaDiscoveryRequest`s with
//! `DeltaDiscoveryResponse`s from a [`Snapshot`]. Pure state: the caller feeds
//! requests, snapshots and the current time, and sends what [`Sender::poll`] returns.

use super::DeltaError;
use super::snapshot::{Snapshot, TypeResources};
use super::stats::TypeStats;
use super::tracker::{RequestSummary, TypeTracker};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Tuning of a [`Sender`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// No response is larger than this many encoded bytes (prost `encoded_len`).
    pub max_message_bytes: usize,
    /// Delay after the first of consecutive NACKs of a type; doubles per NACK.
    pub nack_backoff_base: Duration,
    /// The delay never exceeds this.
    pub nack_backoff_max: Duration,
    /// Put in every response's `control_plane.identifier` (Kuma: "global", or the
    /// zone name), when set.
    pub control_plane_id: Option<String>,
    /// Make-before-break (xDS's "eventual consistency" rule): type → the types
    /// whose response in flight it waits for, so a listener or a route never
    /// arrives before the clusters it names. Empty for KDS; [`SenderConfig::envoy`]
    /// for Envoy.
    pub waits_for: BTreeMap<String, Vec<String>>,
    /// Type → the types whose same-named resources go out again right after a
    /// response of it carries the name, even if the receiver already holds them
    /// (only subscribed names the snapshot has). Envoy warms an updated cluster
    /// only on a fresh EDS response, and does not ask again for a name it already
    /// watches. Empty for KDS; [`SenderConfig::envoy`] for Envoy.
    pub resend_with: BTreeMap<String, Vec<String>>,
    /// A response awaiting its ACK this long is reported once as a [`Stall`]
    /// (`None`: never).
    pub stall_after: Option<Duration>,
}

impl SenderConfig {
    /// 1 MiB: DESIGN §5's bound for every KDS and xDS message.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
    pub const DEFAULT_NACK_BACKOFF_BASE: Duration = Duration::from_millis(500);
    pub const DEFAULT_NACK_BACKOFF_MAX: Duration = Duration::from_secs(30);
    /// Well under Envoy's 15 s `initial_fetch_timeout`.
    pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(5);

    /// The wait after the `n`-th consecutive NACK (n ≥ 1): base·2^(n−1), capped.
    pub fn nack_backoff(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(20);
        self.nack_backoff_base
            .saturating_mul(factor)
            .min(self.nack_backoff_max)
    }
}

impl SenderConfig {
    /// Envoy's ADS order: listeners and routes wait for the cluster update's ACK,
    /// which Envoy sends once the new clusters have warmed (received their
    /// endpoints). Endpoints wait for nothing (the cluster ACK waits for them), and
    /// routes do not wait for the listener ACK (a listener warms until its routes
    /// arrive): either would deadlock. A cluster sent is followed by its endpoints
    /// (the ClusterLoadAssignment of the same name), changed or not: an updated
    /// cluster warms only on a fresh EDS response, so without it the cluster ACK,
    /// and the listeners behind it, would wait for Envoy's `initial_fetch_timeout`.
    pub fn envoy() -> Self {
        const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
        const ENDPOINTS: &str =
            "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
        const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
        const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
        let waits_for = [LISTENER, ROUTE]
            .into_iter()
            .map(|t| (t.to_string(), vec![CLUSTER.to_string()]))
            .collect();
        SenderConfig {
            waits_for,
            resend_with: [(CLUSTER.to_string(), vec![ENDPOINTS.to_string()])].into(),
            ..SenderConfig::default()
        }
    }

    /// Whether `type_url` must wait because a type it depends on has a response in
    /// flight (`awaiting` says which types do).
    pub fn held_by_order(&self, type_url: &str, awaiting: impl Fn(&str) -> bool) -> bool {
        self.waits_for
            .get(type_url)
            .is_some_and(|deps| deps.iter().any(|t| awaiting(t)))
    }

    /// What a stall of `type_url` holds back: the types of `order` that wait for it
    /// ([`Self::waits_for`]) and for which `due` says a response may be due.
    pub fn held_behind(
        &self,
        type_url: &str,
        order: &[String],
        due: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        order
            .iter()
            .filter(|t| {
                self.waits_for
                    .get(*t)
                    .is_some_and(|deps| deps.iter().any(|d| d == type_url))
                    && due(t)
            })
            .cloned()
            .collect()
    }

    /// `types` with every type that waits for others after those that do not, so
    /// one poll sends a dependency before deciding on its dependents; first-request
    /// order is kept otherwise.
    pub fn in_send_order(&self, types: &[String]) -> Vec<String> {
        let mut sorted = types.to_vec();
        sorted.sort_by_key(|t| self.waits_for.contains_key(t));
        sorted
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            nack_backoff_base: Self::DEFAULT_NACK_BACKOFF_BASE,
            nack_backoff_max: Self::DEFAULT_NACK_BACKOFF_MAX,
            control_plane_id: None,
            waits_for: BTreeMap::new(),
            resend_with: BTreeMap::new(),
            stall_after: Some(Self::DEFAULT_STALL_AFTER),
        }
    }
}

/// What [`Sender::poll`] produced: responses to send now, in order, resources
/// that could not be sent (each reported once per version), and responses newly
/// stalled (each reported once).
#[derive(Debug, Default)]
pub struct Outgoing {
    pub responses: Vec<DeltaDiscoveryResponse>,
    pub errors: Vec<DeltaError>,
    pub stalls: Vec<Stall>,
}

/// A response that has awaited its ACK/NACK for [`SenderConfig::stall_after`]:
/// the receiver is stuck or very slow, and every type that waits for this one
/// ([`SenderConfig::waits_for`]) is held back meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub type_url: String,
    pub nonce: String,
    /// How long it has waited so far.
    pub waited: Duration,
    /// Some of the names it carried (updated, then removed).
    pub names: Vec<String>,
    /// Types that wait for it, with a response possibly due: held back.
    pub holding: Vec<String>,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the {} response (nonce {}, {:?}) has awaited its ACK for {:.1} s",
            self.type_url,
            self.nonce,
            self.names,
            self.waited.as_secs_f64()
        )?;
        if !self.holding.is_empty() {
            write!(f, "; held back behind it: {:?}", self.holding)?;
        }
        Ok(())
    }
}

/// The sender state of one stream. See the module documentation for the rules.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    snapshot: Option<Snapshot>,
    /// Trackers, and the order types were first requested in (responses go out in
    /// that order, so Envoy's CDS → EDS → LDS → RDS request order is kept).
    types: BTreeMap<String, TypeTracker>,
    order: Vec<String>,
    node: Option<Node>,
    next_nonce: u64,
}

impl Sender {
    pub fn new(config: SenderConfig) -> Self {
        Sender {
            config,
            snapshot: None,
            types: BTreeMap::new(),
            order: Vec::new(),
            node: None,
            next_nonce: 1,
        }
    }

    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// The node of the first request that carried one (Envoy sends it once).
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// Replaces what is offered. Nothing is sent before the first snapshot.
    /// Returns whether a subscribed type's resources differ from the last
    /// snapshot's (shared maps count as unchanged).
    pub fn set_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let mut changed = false;
        for (type_url, tracker) in &mut self.types {
            changed |= tracker.observe(snapshot.get_shared(type_url));
        }
        self.snapshot = Some(snapshot);
        changed
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Takes in one request: subscription changes, `initial_resource_versions` (first
    /// request of a type only) and its ACK/NACK. `now` dates a NACK's back-off.
    pub fn on_request(
        &mut self,
        req: &DeltaDiscoveryRequest,
        now: Instant,
    ) -> Result<RequestSummary, DeltaError> {
        if req.type_url.is_empty() {
            return Err(DeltaError::MissingTypeUrl);
        }
        if self.node.is_none() {
            self.node = req.node.clone();
        }
        let first = !self.types.contains_key(&req.type_url);
        let tracker = match self.types.entry(req.type_url.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                self.order.push(req.type_url.clone());
                let mut tracker = TypeTracker::first(req);
                if let Some(s) = &self.snapshot {
                    tracker.observe(s.get_shared(&req.type_url));
                }
                e.insert(tracker)
            }
        };
        let subscription_changed = first || tracker.resubscribe(req);
        let verdict = tracker.verdict(req, now, &self.config);
        Ok(RequestSummary {
            type_url: req.type_url.clone(),
            first,
            subscription_changed,
            verdict,
        })
    }

    /// The responses due now: for every requested type with nothing in flight, no
    /// back-off pending and no type it waits for in flight
    /// ([`SenderConfig::waits_for`]), what differs between the snapshot and the
    /// receiver. A response carrying names makes the same names of the types
    /// [`SenderConfig::resend_with`] lists due again, sent after it (in this poll
    /// when nothing of theirs is in flight). Also reports newly stalled responses.
    pub fn poll(&mut self, now: Instant) -> Outgoing {
        let mut out = Outgoing::default();
        let Some(snapshot) = &self.snapshot else {
            return out;
        };
        for tracker in self.types.values_mut() {
            tracker.expire_backoff(now);
        }
        let empty = TypeResources::new();
        let order = self.config.in_send_order(&self.order);
        // Each type sends at most once per poll (then it is in flight), so this
        // ends; a second pass serves what a later type's response made due again.
        let mut progress = true;
        while progress {
            progress = false;
            for type_url in &order {
                let types = &self.types;
                if self.config.held_by_order(type_url, |t| {
                    types.get(t).is_some_and(|tr| tr.awaiting().is_some())
                }) {
                    continue;
                }
                let Some(tracker) = self.types.get_mut(type_url) else {
                    continue;
                };
                if !tracker.ready(now) {
                    continue;
                }
                let nonce = self.next_nonce.to_string();
                let resources = snapshot.get(type_url).unwrap_or(&empty);
                let Some(resp) =
                    tracker.build(resources, nonce, &self.config, &mut out.errors, now)
                else {
                    continue;
                };
                self.next_nonce += 1;
                progress = true;
                for again in self.config.resend_with.get(type_url).into_iter().flatten() {
                    if let Some(t) = self.types.get_mut(again) {
                        t.resend(resp.resources.iter().map(|r| r.name.as_str()));
                    }
                }
                out.responses.push(resp);
            }
        }
        out.stalls = self.take_stalls(now);
        out
    }

    /// Responses in flight for [`SenderConfig::stall_after`], not reported yet.
    fn take_stalls(&mut self, now: Instant) -> Vec<Stall> {
        let Some(after) = self.config.stall_after else {
            return Vec::new();
        };
        let mut stalls = Vec::new();
        for type_url in &self.order {
            let Some(tracker) = self.types.get_mut(type_url) else {
                continue;
            };
            if let Some((nonce, waited, names)) = tracker.take_stall(now, after) {
                stalls.push(Stall {
                    type_url: type_url.clone(),
                    nonce,
                    waited,
                    names,
                    holding: Vec::new(),
                });
            }
        }
        for stall in &mut stalls {
            stall.holding = self.config.held_behind(&stall.type_url, &self.order, |t| {
                self.types.get(t).is_some_and(TypeTracker::pending)
            });
        }
        stalls
    }

    /// When to poll again without a new request or snapshot: the earliest end of
    /// a NACK back-off, or the moment a response in flight counts as stalled.
    pub fn next_deadline(&self) -> Option<Instant> {
        let stall = self.config.stall_after;
        self.types
            .values()
            .flat_map(|t| {
                let stalled = stall.and_then(|after| t.stall_deadline(after));
                t.not_before().into_iter().chain(stalled)
            })
            .min()
    }

    /// Types requested so far, in first-request order.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    pub fn stats(&self, type_url: &str) -> Option<&TypeStats> {
        self.types.get(type_url).map(|t| &t.stats)
    }

    /// Counters of every requested type, in first-request order.
    pub fn all_stats(&self) -> impl Iterator<Item = (&str, &TypeStats)> {
        self.order
            .iter()
            .filter_map(|t| self.types.get(t).map(|tr| (t.as_str(), &tr.stats)))
    }

    /// name → version the receiver has acknowledged for `type_url`.
    pub fn known_versions(&self, type_url: &str) -> Option<&BTreeMap<String, String>> {
        self.types.get(type_url).map(TypeTracker::known)
    }

    /// Whether the receiver subscribed to `type_url` with the wildcard.
    pub fn is_wildcard(&self, type_url: &str) -> Option<bool> {
        self.types.get(type_url).map(|t| t.subscription().wildcard)
    }

    /// Names explicitly subscribed for `type_url`.
    pub fn subscribed_names(&self, type_url: &str) -> Option<&BTreeSet<String>> {
        self.types.get(type_url).map(|t| &t.subscription().names)
    }

    /// The nonce of the response of `type_url` awaiting ACK/NACK, if any.
    pub fn awaiting(&self, type_url: &str) -> Option<&str> {
        self.types.get(type_url).and_then(TypeTracker::awaiting)
    }
}
