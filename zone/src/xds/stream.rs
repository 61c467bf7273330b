//! The async pump of a SotW stream: feeds requests and new snapshots into a
//! [`SotwSender`] and sends what it has due. (Delta streams use the shared engine's
//! `weft_sync::delta::driver::run_sender`.)
//!
//! Outgoing traffic is bounded by the protocol — at most one response per type in
//! flight — so a small outgoing queue never blocks the loop for long and requests
//! keep being read.

use super::sotw::{SotwError, SotwRequest, SotwSender, SotwVerdict};
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use futures::{Stream, StreamExt};
use std::fmt::Display;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use weft_sync::delta::driver::StreamEnd;
use weft_sync::delta::{Snapshot, Stall};

#[derive(Debug, thiserror::Error)]
pub enum SotwStreamError {
    #[error(transparent)]
    Protocol(#[from] SotwError),
    #[error("stream transport failed: {0}")]
    Transport(String),
}

/// Something the pump did, for insights and metrics.
#[derive(Debug)]
pub enum SotwEvent {
    Request(SotwRequest),
    Sent {
        type_url: String,
        nonce: String,
        resources: usize,
        /// The response's encoded size.
        bytes: usize,
    },
    /// A response has awaited its ACK for `SenderConfig::stall_after` (logged as a
    /// warning too).
    Stalled(Stall),
}

/// Serves `sender` until the peer, the outgoing queue or the snapshot source goes away.
pub async fn run_sotw<S, E>(
    sender: &mut SotwSender,
    incoming: S,
    outgoing: mpsc::Sender<DiscoveryResponse>,
    mut snapshots: watch::Receiver<Option<Snapshot>>,
    mut observe: impl FnMut(&SotwSender, SotwEvent),
) -> Result<StreamEnd, SotwStreamError>
where
    S: Stream<Item = Result<DiscoveryRequest, E>>,
    E: Display,
{
    let mut incoming = std::pin::pin!(incoming);
    if let Some(s) = snapshots.borrow_and_update().clone() {
        sender.set_snapshot(s);
    }
    loop {
        for resp in sender.poll(Instant::now()) {
            let event = SotwEvent::Sent {
                type_url: resp.type_url.clone(),
                nonce: resp.nonce.clone(),
                resources: resp.resources.len(),
                bytes: prost::Message::encoded_len(&resp),
            };
            observe(sender, event);
            if outgoing.send(resp).await.is_err() {
                return Ok(StreamEnd::OutgoingClosed);
            }
        }
        for stall in sender.take_stalls(Instant::now()) {
            tracing::warn!(
                type_url = %stall.type_url, nonce = %stall.nonce,
                waited_ms = stall.waited.as_millis() as u64, holding = ?stall.holding,
                "xDS SotW: stream stalled: {stall}"
            );
            observe(sender, SotwEvent::Stalled(stall));
        }
        let deadline = sender.next_deadline();
        tokio::select! {
            msg = incoming.next() => match msg {
                None => return Ok(StreamEnd::PeerClosed),
                Some(Err(e)) => return Err(SotwStreamError::Transport(e.to_string())),
                Some(Ok(req)) => {
                    let summary = sender.on_request(&req, Instant::now())?;
                    log_request(&summary);
                    observe(sender, SotwEvent::Request(summary));
                }
            },
            changed = snapshots.changed() => match changed {
                Ok(()) => {
                    if let Some(s) = snapshots.borrow_and_update().clone() {
                        sender.set_snapshot(s);
                    }
                }
                Err(_) => return Ok(StreamEnd::SourceClosed),
            },
            () = sleep_until(deadline) => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn log_request(summary: &SotwRequest) {
    match &summary.verdict {
        Some(SotwVerdict::Nack {
            nonce,
            reason,
            backoff,
        }) => tracing::warn!(
            type_url = %summary.type_url, %nonce, %reason,
            backoff_ms = backoff.as_millis() as u64, "xDS SotW: NACK"
        ),
        Some(SotwVerdict::Stale { nonce }) => {
            tracing::debug!(type_url = %summary.type_url, %nonce, "xDS SotW: stale nonce ignored")
        }
        _ => tracing::trace!(?summary, "xDS SotW: request"),
    }
}
