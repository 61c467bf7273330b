//! The receiving side of one stream: subscribes, applies responses through the
//! caller, and answers each with an ACK or a NACK. Pure state, no IO.
//!
//! Use [`Receiver::on_response`] with a synchronous apply function, or the split
//! form [`Receiver::begin`] → (apply, possibly async) → [`Receiver::finish`].

use super::nack::{Rejection, nack_status};
use super::{BoxError, DeltaError, MORE_FOLLOWS, SenderConfig};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};

/// Where a response stands in its type's life on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateKind {
    /// Part of the type's initial sync; more parts follow. Stage it.
    InitialPart,
    /// Ends the type's initial sync. `full_state` names every resource the sender
    /// holds for the type (what the receiver declared, plus everything received,
    /// minus everything removed, during the initial sync — rejected names included,
    /// so a rejected update keeps the local copy). Delete local resources of this type
    /// that are not in it.
    InitialLast { full_state: BTreeSet<String> },
    /// A change after the initial sync: upsert `resources`, delete `removed`.
    Incremental,
}

/// One response, handed to the caller's apply step.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub type_url: String,
    pub kind: UpdateKind,
    /// Added or changed resources (name, version, payload).
    pub resources: Vec<Resource>,
    /// Names deleted by the sender.
    pub removed: Vec<String>,
    /// True on the update that ends the initial sync of the last subscribed type:
    /// commit everything staged (atomically) and become ready.
    pub completes_initial_sync: bool,
}

/// What to send back after a response was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The ACK, or the NACK naming each rejected resource.
    pub request: DeltaDiscoveryRequest,
    /// Names the apply step rejected (empty for an ACK).
    pub rejected: Vec<String>,
    /// True exactly once: the first time every subscribed type has finished its
    /// initial sync.
    pub initial_sync_complete: bool,
}

impl Reply {
    pub fn is_nack(&self) -> bool {
        self.request.error_detail.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Subscribed, nothing received yet.
    AwaitingFirst,
    /// Initial sync under way (the sender split it).
    Initial,
    /// Initial sync done; responses are incremental.
    Synced,
}

#[derive(Debug)]
struct TypeState {
    phase: Phase,
    /// What the caller said it holds (sent as `initial_resource_versions`).
    declared: BTreeMap<String, String>,
    /// During the initial sync: declared ∪ received − removed so far.
    initial_names: BTreeSet<String>,
    /// name → version applied on this stream (starting from `declared`).
    known: BTreeMap<String, String>,
}

/// A response between [`Receiver::begin`] and [`Receiver::finish`].
#[derive(Debug)]
struct Pending {
    type_url: String,
    nonce: String,
    versions: Vec<(String, String)>,
    removed: Vec<String>,
    /// Phase after the response, and the initial names to keep if still initial.
    next_phase: Phase,
    next_initial_names: Option<BTreeSet<String>>,
}

/// The receiver state of one stream.
#[derive(Debug)]
pub struct Receiver {
    node: Node,
    max_message_bytes: usize,
    types: BTreeMap<String, TypeState>,
    order: Vec<String>,
    pending: Option<Pending>,
    synced: bool,
}

impl Receiver {
    /// A receiver for `types`, each with the caller's current local state of that
    /// type (name → version, as the sender computes versions). Requests go out in
    /// the given order and stay within the default 1 MiB message limit.
    pub fn new<I, T>(node: Node, types: I) -> Self
    where
        I: IntoIterator<Item = (T, BTreeMap<String, String>)>,
        T: Into<String>,
    {
        Self::with_max_message_bytes(node, types, SenderConfig::DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// Like [`Receiver::new`], with no request larger than `max_message_bytes`. A
    /// type's declared versions that do not all fit are cut (in name order): the
    /// sender then resends the undeclared resources it has, and the initial
    /// full-state reconciliation deletes the undeclared ones it does not — correct,
    /// only less economical.
    pub fn with_max_message_bytes<I, T>(node: Node, types: I, max_message_bytes: usize) -> Self
    where
        I: IntoIterator<Item = (T, BTreeMap<String, String>)>,
        T: Into<String>,
    {
        let mut r = Receiver {
            node,
            max_message_bytes,
            types: BTreeMap::new(),
            order: Vec::new(),
            pending: None,
            synced: false,
        };
        for (t, mut declared) in types {
            let t = t.into();
            if r.types.contains_key(&t) {
                continue;
            }
            let base = r.request(&t, &BTreeMap::new()).encoded_len();
            let mut size = base;
            let mut fitting = 0;
            for (n, v) in &declared {
                let entry = map_entry_len(n, v);
                if size + entry > max_message_bytes {
                    break;
                }
                size += entry;
                fitting += 1;
            }
            if fitting < declared.len() {
                let cut = declared.keys().nth(fitting).cloned();
                if let Some(cut) = cut {
                    declared.split_off(&cut);
                }
            }
            r.order.push(t.clone());
            r.types.insert(
                t,
                TypeState {
                    phase: Phase::AwaitingFirst,
                    initial_names: BTreeSet::new(),
                    known: declared.clone(),
                    declared,
                },
            );
        }
        // Nothing to wait for: trivially synced.
        r.synced = r.types.is_empty();
        r
    }

    fn request(
        &self,
        type_url: &str,
        declared: &BTreeMap<String, String>,
    ) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: type_url.to_string(),
            resource_names_subscribe: vec!["*".to_string()],
            initial_resource_versions: declared
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    /// One wildcard subscription per type, carrying the node and the declared
    /// versions, so the sender sends only what differs.
    pub fn initial_requests(&self) -> Vec<DeltaDiscoveryRequest> {
        self.order
            .iter()
            .filter_map(|t| self.types.get(t).map(|s| self.request(t, &s.declared)))
            .collect()
    }

    /// Whether every subscribed type has finished its initial sync.
    pub fn is_initial_sync_complete(&self) -> bool {
        self.synced
    }

    /// Types subscribed, in request order.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// name → version applied so far for `type_url` (rejected versions excluded).
    pub fn known_versions(&self, type_url: &str) -> Option<&BTreeMap<String, String>> {
        self.types.get(type_url).map(|s| &s.known)
    }

    /// Checks a response and turns it into the [`Update`] to apply. Exactly one
    /// response may be between `begin` and [`Receiver::finish`].
    pub fn begin(&mut self, resp: DeltaDiscoveryResponse) -> Result<Update, DeltaError> {
        if self.pending.is_some() {
            return Err(DeltaError::ApplyPending);
        }
        let Some(state) = self.types.get(&resp.type_url) else {
            return Err(DeltaError::UnexpectedType {
                type_url: resp.type_url,
            });
        };
        if resp.nonce.is_empty() {
            return Err(DeltaError::MissingNonce {
                type_url: resp.type_url,
            });
        }
        let more = resp.system_version_info == MORE_FOLLOWS;
        let (kind, next_phase, next_initial_names) = match state.phase {
            Phase::Synced => (UpdateKind::Incremental, Phase::Synced, None),
            phase => {
                let mut names = if phase == Phase::AwaitingFirst {
                    state.declared.keys().cloned().collect()
                } else {
                    state.initial_names.clone()
                };
                for n in &resp.removed_resources {
                    names.remove(n);
                }
                names.extend(resp.resources.iter().map(|r| r.name.clone()));
                if more {
                    (UpdateKind::InitialPart, Phase::Initial, Some(names))
                } else {
                    let kind = UpdateKind::InitialLast { full_state: names };
                    (kind, Phase::Synced, None)
                }
            }
        };
        let completes_initial_sync = !self.synced
            && next_phase == Phase::Synced
            && self
                .types
                .iter()
                .all(|(t, s)| *t == resp.type_url || s.phase == Phase::Synced);
        self.pending = Some(Pending {
            type_url: resp.type_url.clone(),
            nonce: resp.nonce,
            versions: resp
                .resources
                .iter()
                .map(|r| (r.name.clone(), r.version.clone()))
                .collect(),
            removed: resp.removed_resources.clone(),
            next_phase,
            next_initial_names,
        });
        Ok(Update {
            type_url: resp.type_url,
            kind,
            resources: resp.resources,
            removed: resp.removed_resources,
            completes_initial_sync,
        })
    }

    /// Records the apply step's outcome and builds the ACK (no rejection) or the
    /// NACK (naming each rejected resource; the others count as applied).
    pub fn finish(&mut self, rejections: Vec<Rejection>) -> Result<Reply, DeltaError> {
        let Some(p) = self.pending.take() else {
            return Err(DeltaError::NothingPending);
        };
        let Some(state) = self.types.get_mut(&p.type_url) else {
            return Err(DeltaError::UnexpectedType {
                type_url: p.type_url,
            });
        };
        let rejected: BTreeSet<&str> = rejections.iter().map(|r| r.name.as_str()).collect();
        for n in &p.removed {
            state.known.remove(n);
        }
        for (n, v) in &p.versions {
            if !rejected.contains(n.as_str()) {
                state.known.insert(n.clone(), v.clone());
            }
        }
        state.phase = p.next_phase;
        state.initial_names = p.next_initial_names.unwrap_or_default();
        let initial_sync_complete =
            !self.synced && self.types.values().all(|s| s.phase == Phase::Synced);
        self.synced |= initial_sync_complete;
        let mut request = DeltaDiscoveryRequest {
            type_url: p.type_url,
            response_nonce: p.nonce,
            ..Default::default()
        };
        if !rejections.is_empty() {
            // Room left for error_detail: its tag and length prefix take at most 6 bytes.
            let budget = self
                .max_message_bytes
                .saturating_sub(request.encoded_len() + 6);
            request.error_detail = Some(nack_status(&request.type_url, &rejections, budget));
        }
        Ok(Reply {
            request,
            rejected: rejections.into_iter().map(|r| r.name).collect(),
            initial_sync_complete,
        })
    }

    /// Drops a response whose apply failed fatally (the stream is going down).
    pub fn abandon(&mut self) {
        self.pending = None;
    }

    /// [`Receiver::begin`], `apply`, [`Receiver::finish`] in one call. A fatal error
    /// from `apply` comes back as [`DeltaError::Apply`]: tear the stream down.
    pub fn on_response<E>(
        &mut self,
        resp: DeltaDiscoveryResponse,
        apply: impl FnOnce(Update) -> Result<Vec<Rejection>, E>,
    ) -> Result<Reply, DeltaError>
    where
        E: Into<BoxError>,
    {
        let update = self.begin(resp)?;
        let type_url = update.type_url.clone();
        match apply(update) {
            Ok(rejections) => self.finish(rejections),
            Err(e) => {
                self.abandon();
                Err(DeltaError::Apply {
                    type_url,
                    source: e.into(),
                })
            }
        }
    }
}

/// Encoded size of one `initial_resource_versions` map entry (field 5); never less
/// than prost's (which may leave out an empty key or value).
fn map_entry_len(name: &str, version: &str) -> usize {
    let entry = string_len(1, name) + string_len(2, version);
    prost::encoding::key_len(5) + prost::encoding::encoded_len_varint(entry as u64) + entry
}

fn string_len(tag: u32, s: &str) -> usize {
    prost::encoding::key_len(tag) + prost::encoding::encoded_len_varint(s.len() as u64) + s.len()
}
