//! The sender's state for one type on one stream, and how it builds a response.
//!
//! `known` is what the receiver has acknowledged holding (seeded from
//! `initial_resource_versions`); it changes only on ACK (or on the accepted part of a
//! NACK that names its rejections). At most one response is in flight; the next is
//! built only after its ACK/NACK, from a fresh diff, so a split batch is simply a
//! sequence of responses each carrying what still differs.

use super::nack::rejected_names;
use super::snapshot::TypeResources;
use super::stats::TypeStats;
use super::{DeltaError, MORE_FOLLOWS, SenderConfig};
use envoy_types::pb::envoy::config::core::v3::ControlPlane;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The wildcard resource name.
const WILDCARD: &str = "*";

/// Which names of a type the receiver wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub wildcard: bool,
    pub names: BTreeSet<String>,
}

impl Subscription {
    pub fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }
}

/// How the sender judged the ACK/NACK part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The in-flight response was accepted; its versions are now known.
    Ack { nonce: String },
    /// The in-flight response was rejected. `rejected` lists the resources not to
    /// resend until they change; the type waits `backoff` before its next response.
    Nack {
        nonce: String,
        reason: String,
        rejected: Vec<String>,
        backoff: Duration,
    },
    /// The nonce is not the one awaited (an older response, another stream): ignored.
    Stale { nonce: String },
}

/// What one request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    pub type_url: String,
    /// The first request for this type on the stream.
    pub first: bool,
    /// The request changed the subscription (always true for the first).
    pub subscription_changed: bool,
    /// Present when the request carried a `response_nonce`.
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone)]
struct InFlight {
    nonce: String,
    updated: Vec<(String, String)>,
    removed: Vec<String>,
    sent_at: Instant,
    /// Already reported as stalled.
    reported: bool,
}

#[derive(Debug)]
pub(crate) struct TypeTracker {
    type_url: String,
    sub: Subscription,
    /// name → version the receiver holds (committed on ACK only).
    known: BTreeMap<String, String>,
    /// Names the receiver (re)subscribed explicitly: sent even if known.
    must_send: BTreeSet<String>,
    /// Names to send again even if known, when subscribed and present
    /// ([`SenderConfig::resend_with`]); unlike `must_send`, an absent one is dropped.
    resend: BTreeSet<String>,
    /// name → version the receiver rejected: not resent until the version changes.
    rejected: BTreeMap<String, String>,
    /// name → version too large to send alone: not retried until it changes.
    oversized: BTreeMap<String, String>,
    in_flight: Option<InFlight>,
    /// A first response went out (a wildcard type always gets one, even empty).
    initial_sent: bool,
    /// The last response said more follows: the next one is due even if empty.
    batch_open: bool,
    /// Something may differ: a diff is worth computing.
    dirty: bool,
    consecutive_nacks: u32,
    not_before: Option<Instant>,
    /// The snapshot map the last diff looked at (pointer identity = unchanged).
    seen: Option<Arc<TypeResources>>,
    pub stats: TypeStats,
}

impl TypeTracker {
    /// State from the first request of a type on a stream.
    pub fn first(req: &DeltaDiscoveryRequest) -> Self {
        let mut sub = Subscription {
            // Envoy's legacy wildcard: a first request naming nothing means everything.
            wildcard: req.resource_names_subscribe.is_empty(),
            names: BTreeSet::new(),
        };
        for n in &req.resource_names_subscribe {
            if n == WILDCARD {
                sub.wildcard = true;
            } else {
                sub.names.insert(n.clone());
            }
        }
        let known: BTreeMap<String, String> = req
            .initial_resource_versions
            .iter()
            .filter(|(n, _)| sub.wants(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        let must_send = sub
            .names
            .iter()
            .filter(|n| !known.contains_key(*n))
            .cloned()
            .collect();
        TypeTracker {
            type_url: req.type_url.clone(),
            sub,
            known,
            must_send,
            resend: BTreeSet::new(),
            rejected: BTreeMap::new(),
            oversized: BTreeMap::new(),
            in_flight: None,
            initial_sent: false,
            batch_open: false,
            dirty: true,
            consecutive_nacks: 0,
            not_before: None,
            seen: None,
            stats: TypeStats::default(),
        }
    }

    pub fn known(&self) -> &BTreeMap<String, String> {
        &self.known
    }

    pub fn subscription(&self) -> &Subscription {
        &self.sub
    }

    pub fn awaiting(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|f| f.nonce.as_str())
    }

    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// Whether a diff is due (something may differ), whether or not it may be
    /// sent now.
    pub fn pending(&self) -> bool {
        self.dirty
    }

    /// Marks subscribed `names` to be sent again even if the receiver holds them.
    pub fn resend<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if self.sub.wants(name) {
                self.resend.insert(name.to_string());
                self.dirty = true;
            }
        }
    }

    /// When the response in flight becomes stalled (`after` it was sent), unless
    /// already reported.
    pub fn stall_deadline(&self, after: Duration) -> Option<Instant> {
        let f = self.in_flight.as_ref().filter(|f| !f.reported)?;
        f.sent_at.checked_add(after)
    }

    /// The response in flight if it has awaited its ACK/NACK for `after` and was
    /// not reported yet: (nonce, how long, some of its names). Reported once.
    pub fn take_stall(
        &mut self,
        now: Instant,
        after: Duration,
    ) -> Option<(String, Duration, Vec<String>)> {
        let f = self.in_flight.as_mut().filter(|f| !f.reported)?;
        let waited = now.saturating_duration_since(f.sent_at);
        if waited < after {
            return None;
        }
        f.reported = true;
        const SHOWN: usize = 5;
        let names = f
            .updated
            .iter()
            .map(|(n, _)| n)
            .chain(&f.removed)
            .take(SHOWN)
            .cloned()
            .collect();
        Some((f.nonce.clone(), waited, names))
    }

    /// Applies a later request's subscription changes; true if anything changed.
    pub fn resubscribe(&mut self, req: &DeltaDiscoveryRequest) -> bool {
        let mut changed = false;
        for n in &req.resource_names_subscribe {
            changed = true;
            if n == WILDCARD {
                self.sub.wildcard = true;
            } else {
                // The receiver may have dropped it and regained interest: resend.
                self.sub.names.insert(n.clone());
                self.must_send.insert(n.clone());
            }
        }
        for n in &req.resource_names_unsubscribe {
            changed = true;
            if n == WILDCARD {
                self.sub.wildcard = false;
            } else {
                self.sub.names.remove(n);
                self.must_send.remove(n);
            }
        }
        if changed {
            // The receiver forgets what it no longer wants (names still matched by
            // the wildcard stay, as the protocol says).
            let sub = &self.sub;
            self.known.retain(|n, _| sub.wants(n));
            self.rejected.retain(|n, _| sub.wants(n));
            self.resend.retain(|n| sub.wants(n));
            self.dirty = true;
        }
        changed
    }

    /// Judges the ACK/NACK part of a request.
    pub fn verdict(
        &mut self,
        req: &DeltaDiscoveryRequest,
        now: Instant,
        config: &SenderConfig,
    ) -> Option<Verdict> {
        let nonce = &req.response_nonce;
        if nonce.is_empty() {
            return None;
        }
        let in_flight = match self.in_flight.take() {
            Some(f) if f.nonce == *nonce => f,
            other => {
                self.in_flight = other;
                self.stats.stale_nonces += 1;
                return Some(Verdict::Stale {
                    nonce: nonce.clone(),
                });
            }
        };
        self.dirty = true;
        let Some(status) = &req.error_detail else {
            self.stats.acks += 1;
            self.consecutive_nacks = 0;
            self.commit(&in_flight.updated, &in_flight.removed);
            return Some(Verdict::Ack {
                nonce: in_flight.nonce,
            });
        };
        self.stats.nacks += 1;
        self.stats.last_nack_reason = Some(status.message.clone());
        let rejected: Vec<(String, String)> = match rejected_names(status) {
            // The receiver applied the rest of the response: commit it.
            Some(names) => {
                let names: BTreeSet<String> = names.into_iter().collect();
                let (mut bad, good): (Vec<_>, Vec<_>) = in_flight
                    .updated
                    .into_iter()
                    .partition(|(n, _)| names.contains(n));
                self.commit(&good, &in_flight.removed);
                // Names from earlier responses of the type, ACKed provisionally (the
                // parts of a split initial sync, answered before the receiver's
                // commit refused them): the receiver does not hold them after all.
                let here: BTreeSet<String> = bad.iter().map(|(n, _)| n.clone()).collect();
                for name in names.iter().filter(|n| !here.contains(*n)) {
                    if let Some(version) = self.known.remove(name) {
                        bad.push((name.clone(), version));
                    }
                }
                bad
            }
            // Whole response rejected: nothing committed; removals stay pending.
            None => in_flight.updated,
        };
        self.stats.resources_rejected += rejected.len() as u64;
        let names = rejected.iter().map(|(n, _)| n.clone()).collect();
        self.rejected.extend(rejected);
        self.consecutive_nacks = self.consecutive_nacks.saturating_add(1);
        let backoff = config.nack_backoff(self.consecutive_nacks);
        // (An absurd configured back-off that overflows the clock means no wait.)
        self.not_before = Some(now.checked_add(backoff).unwrap_or(now));
        Some(Verdict::Nack {
            nonce: in_flight.nonce,
            reason: status.message.clone(),
            rejected: names,
            backoff,
        })
    }

    fn commit(&mut self, updated: &[(String, String)], removed: &[String]) {
        for (n, v) in updated {
            self.rejected.remove(n);
            if self.sub.wants(n) {
                self.known.insert(n.clone(), v.clone());
            }
        }
        for n in removed {
            self.known.remove(n);
        }
    }

    /// Notes the snapshot's map for this type; a different map may mean changes
    /// (returned: whether it differed).
    pub fn observe(&mut self, resources: Option<&Arc<TypeResources>>) -> bool {
        let same = match (&self.seen, resources) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.seen = resources.cloned();
            self.dirty = true;
        }
        !same
    }

    /// Clears an elapsed back-off, so [`TypeTracker::not_before`] only ever
    /// reports a deadline still ahead after a poll (also for a type held back by
    /// another, which a deadline in the past would wake in a busy loop).
    pub fn expire_backoff(&mut self, now: Instant) {
        self.not_before = self.not_before.filter(|t| *t > now);
    }

    /// Whether a response may be built now (nothing in flight, back-off over).
    pub fn ready(&mut self, now: Instant) -> bool {
        self.expire_backoff(now);
        self.not_before.is_none() && self.in_flight.is_none() && self.dirty
    }

    /// Builds the next response from the difference between `resources` and what
    /// the receiver holds, or `None` when nothing is due. Resources too large to
    /// ever fit are skipped and reported in `errors`. `now` dates the response.
    pub fn build(
        &mut self,
        resources: &TypeResources,
        nonce: String,
        config: &SenderConfig,
        errors: &mut Vec<DeltaError>,
        now: Instant,
    ) -> Option<DeltaDiscoveryResponse> {
        self.dirty = false;
        // A rejection or size failure holds only for the version it was about.
        self.rejected
            .retain(|n, v| resources.get(n).is_some_and(|e| e.version == *v));
        self.oversized
            .retain(|n, v| resources.get(n).is_some_and(|e| e.version == *v));

        let limit = config.max_message_bytes;
        let mut resp = DeltaDiscoveryResponse {
            type_url: self.type_url.clone(),
            nonce,
            system_version_info: MORE_FOLLOWS.to_string(),
            control_plane: config.control_plane_id.as_ref().map(|id| ControlPlane {
                identifier: id.clone(),
            }),
            ..Default::default()
        };
        // The empty response with the longest marker: everything added is on top.
        let base = resp.encoded_len();
        let mut size = base;
        let mut more = false;
        let mut updated = Vec::new();

        for (name, entry) in resources.iter() {
            let forced = self.must_send.contains(name);
            let again = self.resend.contains(name);
            if !self.sub.wants(name)
                || (!forced && !again && self.known.get(name) == Some(&entry.version))
                || (!forced && self.rejected.get(name) == Some(&entry.version))
                || self.oversized.get(name) == Some(&entry.version)
            {
                continue;
            }
            let res = Resource {
                name: name.to_string(),
                version: entry.version.clone(),
                resource: Some(entry.payload.clone()),
                ..Default::default()
            };
            let len = prost::encoding::message::encoded_len(2, &res);
            if base + len > limit {
                self.oversized
                    .insert(name.to_string(), entry.version.clone());
                self.must_send.remove(name);
                self.stats.oversized_resources += 1;
                errors.push(DeltaError::ResourceTooLarge {
                    type_url: self.type_url.clone(),
                    name: name.to_string(),
                    size: base + len,
                    limit,
                });
                continue;
            }
            if size + len > limit {
                more = true;
                break;
            }
            size += len;
            updated.push((name.to_string(), entry.version.clone()));
            resp.resources.push(res);
        }

        let mut removed = Vec::new();
        if !more {
            // Names the receiver holds that are gone, and explicitly wanted names
            // that do not exist (delta's "does not exist" signal).
            let gone = self.known.keys().filter(|n| !resources.contains(n));
            let missing = self
                .must_send
                .iter()
                .filter(|n| !resources.contains(n) && !self.known.contains_key(*n));
            let candidates: Vec<String> = gone.chain(missing).cloned().collect();
            for name in candidates {
                let len = prost::encoding::string::encoded_len(6, &name);
                if base + len > limit {
                    // A name longer than a whole message: it cannot be told; forget it.
                    self.known.remove(&name);
                    self.must_send.remove(&name);
                    self.stats.oversized_resources += 1;
                    errors.push(DeltaError::ResourceTooLarge {
                        type_url: self.type_url.clone(),
                        name,
                        size: base + len,
                        limit,
                    });
                    continue;
                }
                if size + len > limit {
                    more = true;
                    break;
                }
                size += len;
                removed.push(name);
            }
        }

        if more {
            for (n, _) in &updated {
                self.resend.remove(n);
            }
        } else {
            // Everything to resend went out, or is gone, rejected or oversized.
            self.resend.clear();
        }
        let due = !updated.is_empty()
            || !removed.is_empty()
            || self.batch_open
            || (self.sub.wildcard && !self.initial_sent);
        if !due {
            return None;
        }
        if !more {
            resp.system_version_info.clear();
        }
        resp.removed_resources = removed.clone();
        for (n, _) in &updated {
            self.must_send.remove(n);
        }
        for n in &removed {
            self.must_send.remove(n);
        }
        let bytes = resp.encoded_len() as u64;
        self.stats.responses_sent += 1;
        self.stats.resources_sent += updated.len() as u64;
        self.stats.removals_sent += removed.len() as u64;
        self.stats.bytes_sent += bytes;
        self.stats.largest_response = self.stats.largest_response.max(bytes);
        self.initial_sent = true;
        self.batch_open = more;
        self.in_flight = Some(InFlight {
            nonce: resp.nonce.clone(),
            updated,
            removed,
            sent_at: now,
            reported: false,
        });
        Some(resp)
    }
}
