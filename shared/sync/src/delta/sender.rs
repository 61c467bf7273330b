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
}

impl SenderConfig {
    /// 1 MiB: DESIGN §5's bound for every KDS and xDS message.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
    pub const DEFAULT_NACK_BACKOFF_BASE: Duration = Duration::from_millis(500);
    pub const DEFAULT_NACK_BACKOFF_MAX: Duration = Duration::from_secs(30);

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
    /// arrive): either would deadlock.
    pub fn envoy() -> Self {
        const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
        const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
        const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
        let waits_for = [LISTENER, ROUTE]
            .into_iter()
            .map(|t| (t.to_string(), vec![CLUSTER.to_string()]))
            .collect();
        SenderConfig {
            waits_for,
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
        }
    }
}

/// What [`Sender::poll`] produced: responses to send now, in order, and resources
/// that could not be sent (each reported once per version).
#[derive(Debug, Default)]
pub struct Outgoing {
    pub responses: Vec<DeltaDiscoveryResponse>,
    pub errors: Vec<DeltaError>,
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
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        for (type_url, tracker) in &mut self.types {
            tracker.observe(snapshot.get_shared(type_url));
        }
        self.snapshot = Some(snapshot);
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
    /// receiver.
    pub fn poll(&mut self, now: Instant) -> Outgoing {
        let mut out = Outgoing::default();
        let Some(snapshot) = &self.snapshot else {
            return out;
        };
        let empty = TypeResources::new();
        for type_url in &self.config.in_send_order(&self.order) {
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
            if let Some(resp) = tracker.build(resources, nonce, &self.config, &mut out.errors) {
                self.next_nonce += 1;
                out.responses.push(resp);
            }
        }
        out
    }

    /// When the earliest NACK back-off ends; call [`Sender::poll`] then.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.types
            .values()
            .filter_map(TypeTracker::not_before)
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
