//! The receiving side of one stream: subscribes, applies responses through the
//! caller, and answers each with an ACK or a NACK. Pure state, no IO.
//!
//! Use [`Receiver::on_response`] with a synchronous apply function, or the split
//! form [`Receiver::begin`] → (apply, possibly async) → [`Receiver::finish`].
//!
//! # Answers wait for the initial commit
//! A receiver may stage the initial sync and commit it once, when every type has
//! arrived (the zone does). Until then an ACK would claim what is not stored, and a
//! resource the commit refuses could only be named in the answer of whichever type
//! happened to come last, which its sender ignores. So, until the initial sync is
//! complete, the answer to each response is **held**, and all held answers go out,
//! in arrival order, when the response that completes the initial sync is finished:
//! each type's answer names that type's rejections, whenever they were found.
//!
//! The exception is a part of a split initial sync (`weft:more-follows`): the sender
//! sends the next part only after this one is answered, so it is answered at once.
//! Its ACK is provisional: the answer to the type's last part (held like the rest)
//! may still NACK resources of earlier parts, and the sender then takes them back
//! out of what it believes the receiver holds.

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

/// The answer to one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The ACK, or the NACK naming each rejected resource.
    pub request: DeltaDiscoveryRequest,
    /// Names the apply step rejected (empty for an ACK).
    pub rejected: Vec<String>,
}

impl Reply {
    pub fn is_nack(&self) -> bool {
        self.request.error_detail.is_some()
    }

    pub fn type_url(&self) -> &str {
        &self.request.type_url
    }
}

/// What to send back once a response was applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// Answers to send now, in order: none while they are held for the initial
    /// commit, every held one when the initial sync completes, otherwise one.
    pub replies: Vec<Reply>,
    /// True exactly once: the first time every subscribed type has finished its
    /// initial sync.
    pub initial_sync_complete: bool,
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
    /// Finishing this response completes the initial sync.
    completes: bool,
}

/// An applied response whose answer waits for the initial sync to complete.
#[derive(Debug)]
struct Held {
    response: Pending,
    rejections: Vec<Rejection>,
}

/// The receiver state of one stream.
#[derive(Debug)]
pub struct Receiver {
    node: Node,
    max_message_bytes: usize,
    types: BTreeMap<String, TypeState>,
    order: Vec<String>,
    pending: Option<Pending>,
    /// Answers held until the initial sync completes, in arrival order.
    held: Vec<Held>,
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
            held: Vec::new(),
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
    /// response may be between `begin` and [`Receiver::finish`] (others may be
    /// held, waiting for the initial sync to complete).
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
            completes: completes_initial_sync,
        });
        Ok(Update {
            type_url: resp.type_url,
            kind,
            resources: resp.resources,
            removed: resp.removed_resources,
            completes_initial_sync,
        })
    }

    /// Records the apply step's outcome and answers: an ACK (no rejection) or a
    /// NACK (naming each rejected resource; the others count as applied). Before
    /// the initial sync is complete the answer is held (see the module docs), except
    /// for a part of a split initial sync. A rejection naming another type
    /// ([`Rejection::of_type`]) is allowed only when this response completes the
    /// initial sync, for a type whose answer is held.
    pub fn finish(&mut self, rejections: Vec<Rejection>) -> Result<Answer, DeltaError> {
        let Some(p) = self.pending.take() else {
            return Err(DeltaError::NothingPending);
        };
        let (own, others): (Vec<Rejection>, Vec<Rejection>) = rejections
            .into_iter()
            .partition(|r| r.type_url.as_ref().is_none_or(|t| *t == p.type_url));
        if let Some(stray) = others.iter().find(|r| {
            !p.completes
                || !self
                    .held
                    .iter()
                    .any(|h| r.type_url.as_ref() == Some(&h.response.type_url))
        }) {
            return Err(DeltaError::StrayRejection {
                type_url: stray.type_url.clone().unwrap_or_default(),
                name: stray.name.clone(),
            });
        }
        let Some(state) = self.types.get_mut(&p.type_url) else {
            return Err(DeltaError::UnexpectedType {
                type_url: p.type_url,
            });
        };
        state.phase = p.next_phase;
        state.initial_names = p.next_initial_names.clone().unwrap_or_default();
        if self.synced || p.next_phase == Phase::Initial {
            return Ok(Answer {
                replies: vec![self.answer(p, own)],
                initial_sync_complete: false,
            });
        }
        let completes = p.completes;
        self.held.push(Held {
            response: p,
            rejections: own,
        });
        if !completes {
            return Ok(Answer::default());
        }
        for r in others {
            let held = self
                .held
                .iter_mut()
                .rev()
                .find(|h| r.type_url.as_ref() == Some(&h.response.type_url));
            if let Some(h) = held {
                h.rejections.push(r);
            }
        }
        self.synced = true;
        let replies = std::mem::take(&mut self.held)
            .into_iter()
            .map(|h| self.answer(h.response, h.rejections))
            .collect();
        Ok(Answer {
            replies,
            initial_sync_complete: true,
        })
    }

    /// Commits an applied response's versions (all but the rejected ones) and
    /// builds its ACK or NACK.
    fn answer(&mut self, p: Pending, rejections: Vec<Rejection>) -> Reply {
        let rejected: BTreeSet<&str> = rejections.iter().map(|r| r.name.as_str()).collect();
        if let Some(state) = self.types.get_mut(&p.type_url) {
            for n in &p.removed {
                state.known.remove(n);
            }
            for (n, v) in &p.versions {
                if !rejected.contains(n.as_str()) {
                    state.known.insert(n.clone(), v.clone());
                }
            }
            // A rejected resource of an earlier (provisionally ACKed) part: the
            // receiver holds what it declared, if anything.
            let sent: BTreeSet<&str> = p.versions.iter().map(|(n, _)| n.as_str()).collect();
            for n in rejected.iter().filter(|n| !sent.contains(*n)) {
                match state.declared.get(*n) {
                    Some(v) => state.known.insert((*n).to_string(), v.clone()),
                    None => state.known.remove(*n),
                };
            }
        }
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
        Reply {
            request,
            rejected: rejections.into_iter().map(|r| r.name).collect(),
        }
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
    ) -> Result<Answer, DeltaError>
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
