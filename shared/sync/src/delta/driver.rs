//! Async pumps for a [`Sender`] or a [`Receiver`] over any message stream.
//!
//! Transport-agnostic: incoming messages are any `Stream<Item = Result<M, E>>`
//! (tonic's `Streaming<M>`), outgoing ones go into a bounded `mpsc::Sender` (wrap
//! the receiver half in `tokio_stream::wrappers::ReceiverStream` for tonic). A
//! reader future drains the incoming stream into a bounded queue concurrently with
//! the state-machine loop, so a slow outgoing side never stops reading — the
//! deadlock Kuma hit when one loop did both. Outgoing traffic is bounded by the
//! protocol itself: at most one response per type in flight, one ACK/NACK per
//! response, so a queue of `2 × types + 10` never blocks for long.
//!
//! Liveness (a dead or half-open peer) is the transport's job: gRPC keepalive or a
//! health check ends the incoming stream, which ends these pumps.

use super::receiver::{Receiver, Reply, Update};
use super::sender::{Outgoing, Sender, Stall};
use super::snapshot::Snapshot;
use super::tracker::{RequestSummary, Verdict};
use super::{BoxError, DeltaDiscoveryRequest, DeltaDiscoveryResponse, DeltaError, Rejection};
use futures::{Stream, StreamExt};
use std::future::Future;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Inbound queue length when the caller has no better idea (Kuma: 2 × types + 10).
pub const DEFAULT_QUEUE: usize = 128;

/// Why a pump stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The peer closed its side of the stream.
    PeerClosed,
    /// The outgoing queue's consumer went away.
    OutgoingClosed,
    /// The snapshot source was dropped (shutdown).
    SourceClosed,
}

/// Something a [`run_sender`] step did, for logs, insights and metrics.
#[derive(Debug)]
pub enum SenderEvent {
    Request(RequestSummary),
    Sent {
        type_url: String,
        nonce: String,
        resources: usize,
        removed: usize,
        bytes: usize,
    },
    /// A resource could not be sent (too large); the stream goes on.
    Error(DeltaError),
    /// A response has awaited its ACK for [`super::SenderConfig::stall_after`]
    /// (logged as a warning too).
    Stalled(Stall),
    /// A new snapshot was taken in and the responses due from it built: `took`
    /// is that work (the per-stream share of a generation), `changed` whether a
    /// subscribed type differed, `first` whether it was the stream's first.
    Generated {
        took: std::time::Duration,
        changed: bool,
        first: bool,
    },
}

/// Serves `sender` until the peer, the outgoing queue or the snapshot source goes
/// away. Each new value of `snapshots` replaces the offer (`None`: nothing yet).
/// NACK back-offs are honoured per type without holding up the others. `observe`
/// sees every step with the sender's state (for stats).
pub async fn run_sender<S, E>(
    sender: &mut Sender,
    incoming: S,
    outgoing: mpsc::Sender<DeltaDiscoveryResponse>,
    mut snapshots: watch::Receiver<Option<Snapshot>>,
    queue: usize,
    mut observe: impl FnMut(&Sender, SenderEvent),
) -> Result<StreamEnd, DeltaError>
where
    S: Stream<Item = Result<DeltaDiscoveryRequest, E>>,
    E: Into<BoxError>,
{
    let (tx, mut rx) = mpsc::channel(queue.max(1));
    let reader = read_into(incoming, tx);
    let main = async {
        // Whether the next snapshot taken in is the stream's first.
        let mut first = true;
        let mut pending = snapshots
            .borrow_and_update()
            .clone()
            .map(|s| take_snapshot(sender, s, &mut first, &mut observe));
        loop {
            let out = pending.take().unwrap_or_else(|| sender.poll(now()));
            if !flush(sender, out, &outgoing, &mut observe).await {
                return Ok(StreamEnd::OutgoingClosed);
            }
            let deadline = sender.next_deadline();
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => return Ok(StreamEnd::PeerClosed),
                    Some(Err(e)) => return Err(DeltaError::Transport(e)),
                    Some(Ok(req)) => {
                        let summary = sender.on_request(&req, now())?;
                        log_request(&summary);
                        observe(sender, SenderEvent::Request(summary));
                    }
                },
                changed = snapshots.changed() => match changed {
                    Ok(()) => {
                        pending = snapshots
                            .borrow_and_update()
                            .clone()
                            .map(|s| take_snapshot(sender, s, &mut first, &mut observe));
                    }
                    Err(_) => return Ok(StreamEnd::SourceClosed),
                },
                () = sleep_until(deadline) => {}
            }
        }
    };
    alongside(reader, main).await
}

/// Takes in `snapshot` and builds what is due from it, timed for metrics.
fn take_snapshot(
    sender: &mut Sender,
    snapshot: Snapshot,
    first: &mut bool,
    observe: &mut impl FnMut(&Sender, SenderEvent),
) -> Outgoing {
    let first = std::mem::replace(first, false);
    let started = std::time::Instant::now();
    let changed = sender.set_snapshot(snapshot);
    let out = sender.poll(now());
    let took = started.elapsed();
    observe(
        sender,
        SenderEvent::Generated {
            took,
            changed,
            first,
        },
    );
    out
}

/// Sends `out` (what the sender had due); false when the outgoing side is gone.
async fn flush(
    sender: &mut Sender,
    out: Outgoing,
    outgoing: &mpsc::Sender<DeltaDiscoveryResponse>,
    observe: &mut impl FnMut(&Sender, SenderEvent),
) -> bool {
    for e in out.errors {
        tracing::warn!(error = %e, "delta: resource not sent");
        observe(sender, SenderEvent::Error(e));
    }
    for stall in out.stalls {
        tracing::warn!(
            type_url = %stall.type_url, nonce = %stall.nonce,
            waited_ms = stall.waited.as_millis() as u64, names = ?stall.names,
            holding = ?stall.holding, "delta: stream stalled: {stall}"
        );
        observe(sender, SenderEvent::Stalled(stall));
    }
    for resp in out.responses {
        let event = SenderEvent::Sent {
            type_url: resp.type_url.clone(),
            nonce: resp.nonce.clone(),
            resources: resp.resources.len(),
            removed: resp.removed_resources.len(),
            bytes: prost::Message::encoded_len(&resp),
        };
        tracing::debug!(?event, "delta: response");
        observe(sender, event);
        if outgoing.send(resp).await.is_err() {
            return false;
        }
    }
    true
}

fn log_request(summary: &RequestSummary) {
    match &summary.verdict {
        Some(Verdict::Nack {
            nonce,
            reason,
            rejected,
            backoff,
        }) => tracing::warn!(
            type_url = %summary.type_url, %nonce, %reason, rejected = rejected.len(),
            backoff_ms = backoff.as_millis() as u64, "delta: NACK"
        ),
        Some(Verdict::Stale { nonce }) => {
            tracing::debug!(type_url = %summary.type_url, %nonce, "delta: stale nonce ignored")
        }
        _ => tracing::trace!(?summary, "delta: request"),
    }
}

/// The receiver's apply step: store an [`Update`] (see [`super::UpdateKind`] for
/// what each kind asks), returning per-resource rejections, or a fatal error that
/// ends the stream.
pub trait Apply {
    fn apply(
        &mut self,
        update: Update,
    ) -> impl Future<Output = Result<Vec<Rejection>, BoxError>> + Send;
}

/// A synchronous closure as an [`Apply`].
pub struct ApplyFn<F>(pub F);

impl<F> Apply for ApplyFn<F>
where
    F: FnMut(Update) -> Result<Vec<Rejection>, BoxError>,
{
    fn apply(
        &mut self,
        update: Update,
    ) -> impl Future<Output = Result<Vec<Rejection>, BoxError>> + Send {
        std::future::ready((self.0)(update))
    }
}

/// Runs `receiver`: sends its initial requests, then applies each response through
/// `apply` and answers with its ACK/NACK, until the peer or the outgoing queue goes
/// away, or `apply` fails fatally ([`DeltaError::Apply`]: restart the stream).
pub async fn run_receiver<S, E>(
    receiver: &mut Receiver,
    incoming: S,
    outgoing: mpsc::Sender<DeltaDiscoveryRequest>,
    apply: &mut impl Apply,
    queue: usize,
) -> Result<StreamEnd, DeltaError>
where
    S: Stream<Item = Result<DeltaDiscoveryResponse, E>>,
    E: Into<BoxError>,
{
    run_receiver_observed(receiver, incoming, outgoing, apply, queue, |_| {}).await
}

/// What [`run_receiver_observed`]'s `observe` sees.
#[derive(Debug)]
pub enum ReceiverEvent<'a> {
    /// A response arrived (`bytes`: its encoded size).
    Received { type_url: &'a str, bytes: usize },
    /// An ACK or NACK is sent (held ones when the initial sync completes).
    Replied(&'a Reply),
}

/// [`run_receiver`], with `observe` told of every response and every answer
/// (for metrics).
pub async fn run_receiver_observed<S, E>(
    receiver: &mut Receiver,
    incoming: S,
    outgoing: mpsc::Sender<DeltaDiscoveryRequest>,
    apply: &mut impl Apply,
    queue: usize,
    mut observe: impl FnMut(ReceiverEvent<'_>),
) -> Result<StreamEnd, DeltaError>
where
    S: Stream<Item = Result<DeltaDiscoveryResponse, E>>,
    E: Into<BoxError>,
{
    let (tx, mut rx) = mpsc::channel(queue.max(1));
    let reader = read_into(incoming, tx);
    let main = async {
        for req in receiver.initial_requests() {
            if outgoing.send(req).await.is_err() {
                return Ok(StreamEnd::OutgoingClosed);
            }
        }
        loop {
            let resp = match rx.recv().await {
                None => return Ok(StreamEnd::PeerClosed),
                Some(Err(e)) => return Err(DeltaError::Transport(e)),
                Some(Ok(resp)) => resp,
            };
            observe(ReceiverEvent::Received {
                type_url: &resp.type_url,
                bytes: prost::Message::encoded_len(&resp),
            });
            let update = receiver.begin(resp)?;
            let type_url = update.type_url.clone();
            let answer = match apply.apply(update).await {
                Ok(rejections) => receiver.finish(rejections)?,
                Err(source) => {
                    receiver.abandon();
                    return Err(DeltaError::Apply { type_url, source });
                }
            };
            if answer.initial_sync_complete {
                tracing::info!(
                    answers = answer.replies.len(),
                    "delta: initial sync complete; sending the held answers"
                );
            }
            for reply in answer.replies {
                observe(ReceiverEvent::Replied(&reply));
                if reply.is_nack() {
                    tracing::warn!(type_url = %reply.type_url(), rejected = ?reply.rejected, "delta: sending NACK");
                }
                if outgoing.send(reply.request).await.is_err() {
                    return Ok(StreamEnd::OutgoingClosed);
                }
            }
        }
    };
    alongside(reader, main).await
}

/// Moves incoming messages into the bounded queue until the stream ends, fails
/// (the error is queued last, as it is), or the queue's reader is gone.
async fn read_into<M, S, E>(incoming: S, tx: mpsc::Sender<Result<M, BoxError>>)
where
    S: Stream<Item = Result<M, E>>,
    E: Into<BoxError>,
{
    let mut incoming = std::pin::pin!(incoming);
    while let Some(item) = incoming.next().await {
        let failed = item.is_err();
        if tx.send(item.map_err(Into::into)).await.is_err() || failed {
            return;
        }
    }
}

/// Polls `reader` alongside `main` until `main` finishes.
async fn alongside<T>(reader: impl Future<Output = ()>, main: impl Future<Output = T>) -> T {
    let mut reader = std::pin::pin!(reader);
    let mut main = std::pin::pin!(main);
    let mut reading = true;
    loop {
        tokio::select! {
            out = &mut main => return out,
            () = &mut reader, if reading => reading = false,
        }
    }
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
