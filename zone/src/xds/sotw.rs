//! State-of-the-world ADS (`StreamAggregatedResources`) as a pure state machine: no
//! IO, no clock (the caller passes `now`), one per stream. The pump in
//! [`super::stream`] drives it.
//!
//! # Rules, per type
//! - **What a response carries**: Listener and Cluster are full-state (every resource
//!   of the snapshot, whatever names were asked); other types (endpoints, routes)
//!   carry the requested `resource_names` that exist (`*` asks for all).
//! - **Version** = a hash of the (name, version) pairs a response would carry, so it
//!   changes exactly when that content does; the proxy holds the version it ACKed
//!   (or declared in its first request after a reconnect).
//! - **When to send**: nothing in flight (one response per type awaits its
//!   ACK/NACK), no back-off pending, no type ordered before it in flight
//!   (`SenderConfig::waits_for`: listeners and routes wait for the cluster
//!   ACK), and the current version is neither the one the proxy holds nor
//!   the one it last rejected — except right after a response of a type that
//!   `SenderConfig::resend_with` names it for: endpoints follow every cluster
//!   response even unchanged, since an updated cluster warms only on a fresh EDS
//!   response (and Envoy's cluster ACK waits for that).
//! - **Stalls**: a response awaiting its ACK for `SenderConfig::stall_after` is
//!   reported once ([`SotwSender::take_stalls`]).
//! - **ACK** = a request whose `response_nonce` is the awaited nonce and has no
//!   `error_detail`: the sent version becomes held. **NACK** = the same with
//!   `error_detail`: the version is remembered as rejected (never resent as is) and
//!   the type's next response waits [`SenderConfig::nack_backoff`] (doubling per
//!   consecutive NACK). A request with another nonce is **stale**: its ACK/NACK part
//!   is ignored, its `resource_names` still apply.

use envoy_types::pb::envoy::config::core::v3::ControlPlane;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;
use weft_sync::delta::{Any, Node, SenderConfig, Snapshot, Stall, TypeResources, TypeStats};

pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/// Whether every response of `type_url` carries all its resources (LDS, CDS).
pub fn is_full_state(type_url: &str) -> bool {
    type_url == LISTENER_TYPE || type_url == CLUSTER_TYPE
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SotwError {
    #[error("request has no type_url (ADS needs one on every request)")]
    MissingTypeUrl,
}

/// How a request answered the type's response in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SotwVerdict {
    Ack {
        nonce: String,
    },
    Nack {
        nonce: String,
        reason: String,
        backoff: Duration,
    },
    /// Not the awaited nonce: ignored as ACK/NACK.
    Stale {
        nonce: String,
    },
}

/// What one request did, for logs and insights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SotwRequest {
    pub type_url: String,
    /// The first request of this type on the stream.
    pub first: bool,
    pub verdict: Option<SotwVerdict>,
}

#[derive(Debug, Default)]
struct TypeState {
    /// Asked with `*` (full-state types always send everything regardless).
    wildcard: bool,
    names: BTreeSet<String>,
    /// The version the proxy holds.
    held: Option<String>,
    /// The resources (name → version) of the response the proxy last ACKed.
    held_resources: BTreeMap<String, String>,
    /// The response awaiting ACK/NACK.
    awaiting: Option<Awaiting>,
    /// Sent again even if the proxy holds the version (`SenderConfig::resend_with`).
    resend: bool,
    /// The version the proxy last rejected.
    rejected: Option<String>,
    nacks_in_row: u32,
    not_before: Option<Instant>,
    stats: TypeStats,
}

#[derive(Debug)]
struct Awaiting {
    nonce: String,
    version: String,
    resources: usize,
    /// Name → version of what the response carried.
    names: BTreeMap<String, String>,
    sent_at: Instant,
    /// Already reported as stalled.
    reported: bool,
}

/// The SotW state of one stream.
#[derive(Debug)]
pub struct SotwSender {
    config: SenderConfig,
    snapshot: Option<Snapshot>,
    types: BTreeMap<String, TypeState>,
    /// Types in first-request order (responses keep Envoy's CDS → EDS → LDS → RDS).
    order: Vec<String>,
    node: Option<Node>,
    next_nonce: u64,
}

impl SotwSender {
    pub fn new(config: SenderConfig) -> Self {
        SotwSender {
            config,
            snapshot: None,
            types: BTreeMap::new(),
            order: Vec::new(),
            node: None,
            next_nonce: 1,
        }
    }

    /// The node of the first request that carried one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// Replaces what is offered. Nothing is sent before the first snapshot.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }

    /// What is offered now.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Takes in one request: its subscription, and its ACK/NACK of the response in
    /// flight. `now` dates a NACK's back-off.
    pub fn on_request(
        &mut self,
        req: &DiscoveryRequest,
        now: Instant,
    ) -> Result<SotwRequest, SotwError> {
        if req.type_url.is_empty() {
            return Err(SotwError::MissingTypeUrl);
        }
        if self.node.is_none() {
            self.node = req.node.clone();
        }
        let first = !self.types.contains_key(&req.type_url);
        if first {
            self.order.push(req.type_url.clone());
        }
        let ts = self.types.entry(req.type_url.clone()).or_default();
        ts.wildcard = req.resource_names.iter().any(|n| n == "*");
        ts.names = req
            .resource_names
            .iter()
            .filter(|n| *n != "*")
            .cloned()
            .collect();
        if first && !req.version_info.is_empty() {
            // A reconnecting proxy already holds this version.
            ts.held = Some(req.version_info.clone());
        }
        let verdict = if req.response_nonce.is_empty() {
            None
        } else {
            Some(Self::verdict(ts, req, now, &self.config))
        };
        Ok(SotwRequest {
            type_url: req.type_url.clone(),
            first,
            verdict,
        })
    }

    fn verdict(
        ts: &mut TypeState,
        req: &DiscoveryRequest,
        now: Instant,
        config: &SenderConfig,
    ) -> SotwVerdict {
        let nonce = req.response_nonce.clone();
        let Some(Awaiting {
            version,
            resources: count,
            names,
            ..
        }) = ts.awaiting.take_if(|a| a.nonce == nonce)
        else {
            ts.stats.stale_nonces += 1;
            return SotwVerdict::Stale { nonce };
        };
        match &req.error_detail {
            None => {
                ts.held = Some(version);
                ts.held_resources = names;
                ts.nacks_in_row = 0;
                ts.not_before = None;
                ts.stats.acks += 1;
                SotwVerdict::Ack { nonce }
            }
            Some(status) => {
                ts.rejected = Some(version);
                ts.nacks_in_row = ts.nacks_in_row.saturating_add(1);
                let backoff = config.nack_backoff(ts.nacks_in_row);
                ts.not_before = Some(now + backoff);
                ts.stats.nacks += 1;
                ts.stats.resources_rejected += count as u64;
                ts.stats.last_nack_reason = Some(status.message.clone());
                SotwVerdict::Nack {
                    nonce,
                    reason: status.message.clone(),
                    backoff,
                }
            }
        }
    }

    /// The responses due now (at most one per type). A response makes the types
    /// `SenderConfig::resend_with` lists for it due again, after it.
    pub fn poll(&mut self, now: Instant) -> Vec<DiscoveryResponse> {
        let mut out = Vec::new();
        if self.snapshot.is_none() {
            return out;
        }
        for ts in self.types.values_mut() {
            // An elapsed back-off is over (and must not stay a deadline).
            ts.not_before = ts.not_before.filter(|t| *t > now);
        }
        let order = self.config.in_send_order(&self.order);
        // Each type sends at most once per poll (then it is in flight), so this
        // ends; a second pass serves what a later type's response made due again.
        let mut progress = true;
        while progress {
            progress = false;
            for type_url in &order {
                if let Some(resp) = self.respond(type_url, now) {
                    for again in self.config.resend_with.get(type_url).into_iter().flatten() {
                        if let Some(ts) = self.types.get_mut(again) {
                            ts.resend = true;
                        }
                    }
                    out.push(resp);
                    progress = true;
                }
            }
        }
        out
    }

    /// `type_url`'s response if one is due now.
    fn respond(&mut self, type_url: &str, now: Instant) -> Option<DiscoveryResponse> {
        let snapshot = self.snapshot.as_ref()?;
        let types = &self.types;
        if self.config.held_by_order(type_url, |t| {
            types.get(t).is_some_and(|s| s.awaiting.is_some())
        }) {
            return None;
        }
        let ts = self.types.get_mut(type_url)?;
        if ts.awaiting.is_some() || ts.not_before.is_some() {
            return None;
        }
        let empty = TypeResources::new();
        let resources = snapshot.get(type_url).unwrap_or(&empty);
        let selected = select(type_url, ts, resources);
        let version = content_version(&selected);
        if ts.rejected.as_deref() == Some(version.as_str())
            || (!ts.resend && ts.held.as_deref() == Some(version.as_str()))
        {
            ts.resend = false;
            return None;
        }
        ts.resend = false;
        let nonce = self.next_nonce.to_string();
        self.next_nonce += 1;
        let resp = DiscoveryResponse {
            version_info: version.clone(),
            resources: selected.iter().map(|(_, _, a)| (*a).clone()).collect(),
            type_url: type_url.to_string(),
            nonce: nonce.clone(),
            control_plane: self
                .config
                .control_plane_id
                .as_ref()
                .map(|id| ControlPlane {
                    identifier: id.clone(),
                }),
            ..Default::default()
        };
        let bytes = prost::Message::encoded_len(&resp) as u64;
        ts.stats.responses_sent += 1;
        ts.stats.resources_sent += selected.len() as u64;
        ts.stats.bytes_sent += bytes;
        ts.stats.largest_response = ts.stats.largest_response.max(bytes);
        ts.awaiting = Some(Awaiting {
            nonce,
            version,
            resources: selected.len(),
            names: selected
                .iter()
                .map(|(n, v, _)| (n.to_string(), v.to_string()))
                .collect(),
            sent_at: now,
            reported: false,
        });
        Some(resp)
    }

    /// Responses awaiting their ACK for `SenderConfig::stall_after`, each reported
    /// once.
    pub fn take_stalls(&mut self, now: Instant) -> Vec<Stall> {
        let Some(after) = self.config.stall_after else {
            return Vec::new();
        };
        let mut stalls = Vec::new();
        for type_url in &self.order {
            let Some(a) = self
                .types
                .get_mut(type_url)
                .and_then(|ts| ts.awaiting.as_mut())
                .filter(|a| !a.reported)
            else {
                continue;
            };
            let waited = now.saturating_duration_since(a.sent_at);
            if waited < after {
                continue;
            }
            a.reported = true;
            stalls.push(Stall {
                type_url: type_url.clone(),
                nonce: a.nonce.clone(),
                waited,
                names: Vec::new(),
                holding: Vec::new(),
            });
        }
        for stall in &mut stalls {
            stall.holding = self
                .config
                .held_behind(&stall.type_url, &self.order, |_| true);
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
                let stalled = t
                    .awaiting
                    .as_ref()
                    .filter(|a| !a.reported)
                    .zip(stall)
                    .and_then(|(a, after)| a.sent_at.checked_add(after));
                t.not_before.into_iter().chain(stalled)
            })
            .min()
    }

    /// Counters of every requested type, in first-request order.
    pub fn all_stats(&self) -> impl Iterator<Item = (&str, &TypeStats)> {
        self.order
            .iter()
            .filter_map(|t| self.types.get(t).map(|s| (t.as_str(), &s.stats)))
    }

    /// The version of `type_url` the proxy has ACKed (or declared), if any.
    pub fn held_version(&self, type_url: &str) -> Option<&str> {
        self.types.get(type_url).and_then(|t| t.held.as_deref())
    }

    /// The resources (name → version) of `type_url` the proxy holds: those of the
    /// response it last ACKed.
    pub fn held_resources(&self, type_url: &str) -> Option<&BTreeMap<String, String>> {
        self.types.get(type_url).map(|t| &t.held_resources)
    }

    /// The nonce of `type_url`'s response awaiting ACK/NACK, if any.
    pub fn awaiting(&self, type_url: &str) -> Option<&str> {
        self.types
            .get(type_url)
            .and_then(|t| t.awaiting.as_ref().map(|a| a.nonce.as_str()))
    }
}

/// The (name, version, payload) a response of this type carries now.
fn select<'a>(
    type_url: &str,
    ts: &TypeState,
    resources: &'a TypeResources,
) -> Vec<(&'a str, &'a str, &'a Any)> {
    let all = is_full_state(type_url) || ts.wildcard;
    resources
        .iter()
        .filter(|(name, _)| all || ts.names.contains(*name))
        .map(|(name, e)| (name, e.version.as_str(), &e.payload))
        .collect()
}

/// A short hash over (name, version) pairs in name order.
fn content_version(selected: &[(&str, &str, &Any)]) -> String {
    let mut h = Sha256::new();
    for (name, version, _) in selected {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((version.len() as u64).to_be_bytes());
        h.update(version.as_bytes());
    }
    let digest = h.finalize();
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests;
