//! The one delta-xDS engine: global → zone and zone → global KDS, and zone → Envoy.
//!
//! All three are the same protocol — Envoy's `DeltaDiscoveryRequest` /
//! `DeltaDiscoveryResponse` on a bidirectional stream — so one sender and one
//! receiver serve them, whichever side opened the gRPC stream. Both are pure state
//! machines: no IO, no clock (the caller passes `now`), no randomness, so every rule
//! below is unit-tested with scripted peers. [`driver`] pumps them over async
//! streams for the usual case.
//!
//! # Snapshot
//! A [`Snapshot`] maps type URL → name → (version, payload `Any`). Versions are
//! content hashes from the caller (KDS: `Resource::content_hash()`; Envoy:
//! [`any_version`]), so equal content means equal version, across restarts too.
//! Snapshots are `Arc`-shared: one can feed many streams, and an unchanged type is
//! recognised by pointer and costs nothing.
//!
//! # Sender state, per stream and type ([`Sender`])
//! - **Subscription**: wildcard or explicit names. A first request with no names is
//!   Envoy's legacy wildcard; `*` subscribes/unsubscribes the wildcard explicitly.
//!   Explicitly (re)subscribed names are sent even if the receiver is believed to
//!   have them; a wanted name that does not exist is reported in `removed_resources`.
//! - **Known versions**: what the receiver holds, seeded from the first request's
//!   `initial_resource_versions`, so after a reconnect only differences travel, and
//!   a declared name that is gone is removed.
//! - **In flight**: at most one response per type (nonce → what it carried). The
//!   next is built only after its ACK/NACK, from a fresh diff, which is never larger
//!   than what still differs.
//! - **Order** ([`SenderConfig::waits_for`], [`SenderConfig::resend_with`]): a type
//!   may wait for another's ACK (Envoy: listeners for clusters), and a response may
//!   make the same names of another type due again, known or not (Envoy: endpoints
//!   after every cluster sent, since an updated cluster warms only on fresh EDS).
//! - **Stalls**: a response unanswered for [`SenderConfig::stall_after`] is
//!   reported once ([`Stall`]; the driver logs a warning).
//!
//! # What is committed when
//! - Known versions change **only on ACK** (sent versions become known, removed
//!   names are forgotten).
//! - A **NACK** commits nothing it rejects: its rejected (name, version) pairs are
//!   recorded and not resent until the snapshot holds a different version of them
//!   (or the stream restarts). A NACK naming its rejections (Weft's receiver, see
//!   [`Rejection`]) commits the rest of the response, which the receiver applied; a
//!   NACK naming none (Envoy's) rejects the whole response. Consecutive NACKs of a
//!   type delay its next response by [`SenderConfig::nack_backoff`] (doubling,
//!   capped); other types are not held up. [`Sender::next_deadline`] says when to
//!   poll again.
//! - A request whose nonce is not the awaited one is **stale**: its ACK/NACK part is
//!   ignored (its subscription changes still apply).
//! - The **first response of a wildcard type is always sent**, even empty: the
//!   receiver needs it to finish its initial reconciliation.
//!
//! # Message size rule
//! No response encodes (prost `encoded_len`) to more than
//! [`SenderConfig::max_message_bytes`] (1 MiB by default). A type's changes that do
//! not fit are split over several responses, one in flight at a time, each awaiting
//! its own ACK; every part but the last carries `system_version_info` =
//! [`MORE_FOLLOWS`], so the receiver knows when a split initial sync is complete. A
//! single resource that cannot fit even alone is not sent: it is reported once per
//! version as [`DeltaError::ResourceTooLarge`] and counted in [`TypeStats`]. The
//! receiver keeps its own requests under the same limit: declared versions that do
//! not fit are cut (the sender then resends the rest, still correct), and a NACK
//! shortens its reasons before it names fewer resources.
//!
//! # Receiver ([`Receiver`])
//! Sends one wildcard subscription per type with the node and its local versions,
//! then for each response calls the caller's apply step with an [`Update`]:
//! - [`UpdateKind::InitialPart`] / [`UpdateKind::InitialLast`] while the type's
//!   initial sync runs; the last part carries the full set of names the sender
//!   holds, so anything local outside it is deleted (healing missed deletions);
//! - [`UpdateKind::Incremental`] afterwards (upserts plus `removed`).
//!
//! The apply step returns per-resource [`Rejection`]s (→ NACK naming each, the
//! valid resources still applied) or a fatal error (→ [`DeltaError::Apply`], tear the
//! stream down, as Kuma's `ResourceSyncer` does). `Update::completes_initial_sync`
//! and `Answer::initial_sync_complete` mark the moment every subscribed type has
//! been received once: swap the staged initial state in atomically, then be ready.
//!
//! Until then, answers are **held**: the receiver answers each type only after the
//! single commit that ends the initial sync, so an ACK never claims what is not
//! stored, and a resource the commit refuses is NACKed in its own type's answer
//! ([`Rejection::of_type`]). Only the parts of a split initial sync are answered at
//! once (the sender waits for that answer before sending the next part); a later
//! NACK of the type may name resources of those parts, and the sender takes them
//! back out of the receiver's known versions.

pub mod driver;
mod nack;
mod receiver;
mod sender;
mod snapshot;
mod stats;
mod tracker;

#[cfg(test)]
mod tests;

pub use nack::{NACK_CODE, Rejection};
pub use receiver::{Answer, Receiver, Reply, Update, UpdateKind};
pub use sender::{Outgoing, Sender, SenderConfig, Stall};
pub use snapshot::{Entry, Snapshot, TypeResources, any_version};
pub use stats::TypeStats;
pub use tracker::{RequestSummary, Verdict};

pub use envoy_types::pb::envoy::config::core::v3::Node;
pub use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
pub use envoy_types::pb::google::protobuf::Any;

/// `system_version_info` of a response that is not the last part of a split batch.
pub const MORE_FOLLOWS: &str = "weft:more-follows";

/// A boxed error from the caller's apply step.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in the delta engine.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(
        "resource {name:?} of type {type_url} needs a {size}-byte message, over the \
         {limit}-byte limit; it is not sent until it changes (make it smaller, or raise \
         the message limit on both sides)"
    )]
    ResourceTooLarge {
        type_url: String,
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("request has no type_url (the peer is not speaking delta xDS)")]
    MissingTypeUrl,
    #[error("response for type {type_url:?}, which this stream never subscribed to")]
    UnexpectedType { type_url: String },
    #[error("response for type {type_url} has no nonce (required by delta xDS)")]
    MissingNonce { type_url: String },
    #[error("a response is already being applied; finish it before the next")]
    ApplyPending,
    #[error("no response is being applied")]
    NothingPending,
    #[error(
        "the apply step rejected {name:?} of type {type_url}, which it was not applying \
         (only the commit ending the initial sync may reject resources of other types)"
    )]
    StrayRejection { type_url: String, name: String },
    #[error("applying {type_url} failed: {source}; the stream must restart")]
    Apply {
        type_url: String,
        #[source]
        source: BoxError,
    },
    /// The incoming stream failed; the source is the transport's own error (for
    /// gRPC, the `tonic::Status` the stream ended with).
    #[error("stream transport failed: {0}")]
    Transport(#[source] BoxError),
}
