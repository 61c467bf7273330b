//! The watch stream both backends share.
//!
//! A backend publishes each committed change on a broadcast channel, in revision
//! order, after it is durable, and keeps the same changes in its log. A watch
//! subscribes first, then notes the last published revision and replays the log up
//! to it in chunks, then follows the channel, skipping what it already yielded: no
//! gap and no duplicate at the boundary. A watcher that falls behind the channel
//! goes back to the log for what it missed; if the log has been compacted past it,
//! the stream ends with [`StoreError::Lagged`].
//!
//! The stream holds the store only weakly: dropping the store ends every stream,
//! and dropping a stream releases its subscription.

use super::{Change, StoreError, Watch};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// How many logged changes a watch reads at a time.
const CHUNK: usize = 512;

/// What a backend offers its watchers.
#[async_trait]
pub(crate) trait ChangeLog: Send + Sync + 'static {
    fn subscribe(&self) -> broadcast::Receiver<Change>;

    /// The revision of the last change sent on the channel.
    fn published(&self) -> u64;

    /// Logged changes with `after < revision <= upto`, in order, at most `limit`.
    /// `Compacted` when changes right after `after` are no longer kept.
    async fn read(
        self: Arc<Self>,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError>;
}

/// Every change after `after`, then live ones (see the module docs).
pub(crate) async fn watch<L: ChangeLog>(log: &Arc<L>, after: u64) -> Result<Watch, StoreError> {
    let rx = log.subscribe();
    let target = log.published();
    let first = log.clone().read(after, target, CHUNK).await?;
    let state = Follow {
        log: Arc::downgrade(log),
        rx,
        last: after,
        target,
        buffer: first.into(),
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(state, next)))
}

struct Follow<L> {
    log: Weak<L>,
    rx: broadcast::Receiver<Change>,
    /// Revision of the last change yielded (or the starting point).
    last: u64,
    /// Replay from the log until `last` reaches this.
    target: u64,
    buffer: VecDeque<Change>,
    done: bool,
}

async fn next<L: ChangeLog>(mut st: Follow<L>) -> Option<(Result<Change, StoreError>, Follow<L>)> {
    loop {
        if st.done {
            return None;
        }
        if let Some(change) = st.buffer.pop_front() {
            st.last = change.revision;
            return Some((Ok(change), st));
        }
        if st.last < st.target {
            let log = st.log.upgrade()?;
            match log.read(st.last, st.target, CHUNK).await {
                // Cannot happen with a contiguous log; never spin on it.
                Ok(chunk) if chunk.is_empty() => st.target = st.last,
                Ok(chunk) => st.buffer = chunk.into(),
                Err(e) => {
                    st.done = true;
                    let e = match e {
                        StoreError::Compacted { .. } => StoreError::Lagged,
                        e => e,
                    };
                    return Some((Err(e), st));
                }
            }
            continue;
        }
        match st.rx.recv().await {
            Ok(change) if change.revision <= st.last => {}
            Ok(change) => {
                st.last = change.revision;
                return Some((Ok(change), st));
            }
            Err(RecvError::Lagged(_)) => {
                let log = st.log.upgrade()?;
                st.target = log.published();
            }
            Err(RecvError::Closed) => return None,
        }
    }
}
