//! Per-peer stream bookkeeping behind the insight endpoints (a zone's KDS
//! connection on global, a proxy's ADS connection on a zone): a map of peer →
//! insight, and a guard per open stream that marks the peer offline, with the
//! time, when its last stream ends — however the stream ends.
//!
//! Kept in memory: insights describe live connections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An insight that counts its peer's open streams.
pub trait StreamInsight {
    /// The number of open streams of this peer.
    fn streams_mut(&mut self) -> &mut u32;
    /// The peer's last stream closed at `at`: mark it offline.
    fn all_streams_closed(&mut self, at: Option<String>);
}

/// The current time as RFC 3339, as insights show it.
pub fn now() -> Option<String> {
    OffsetDateTime::now_utc().format(&Rfc3339).ok()
}

/// Every peer's insight; cheap to clone.
pub struct Registry<K, V> {
    inner: Arc<Mutex<BTreeMap<K, V>>>,
}

impl<K, V> Clone for Registry<K, V> {
    fn clone(&self) -> Self {
        Registry {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> Default for Registry<K, V> {
    fn default() -> Self {
        Registry {
            inner: Arc::default(),
        }
    }
}

impl<K: Ord + Clone, V: StreamInsight + Default + Clone> Registry<K, V> {
    /// The map; a panic elsewhere while holding it does not poison the insights.
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// A stream of `key` opened: `opened` sees the peer's insight with the
    /// stream not yet counted, then the count goes up. The guard records the
    /// stream's end when dropped.
    pub fn stream_opened(&self, key: &K, opened: impl FnOnce(&mut V)) -> StreamGuard<K, V> {
        let mut all = self.lock();
        let insight = all.entry(key.clone()).or_default();
        opened(insight);
        *insight.streams_mut() += 1;
        StreamGuard {
            registry: self.clone(),
            key: key.clone(),
        }
    }
}

/// Marks a stream closed when dropped.
pub struct StreamGuard<K: Ord + Clone, V: StreamInsight + Default + Clone> {
    registry: Registry<K, V>,
    key: K,
}

impl<K: Ord + Clone, V: StreamInsight + Default + Clone> Drop for StreamGuard<K, V> {
    fn drop(&mut self) {
        let mut all = self.registry.lock();
        if let Some(insight) = all.get_mut(&self.key) {
            let streams = insight.streams_mut();
            *streams = streams.saturating_sub(1);
            if *streams == 0 {
                insight.all_streams_closed(now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Peer {
        streams: u32,
        online: bool,
        closed_at: Option<String>,
    }

    impl StreamInsight for Peer {
        fn streams_mut(&mut self) -> &mut u32 {
            &mut self.streams
        }
        fn all_streams_closed(&mut self, at: Option<String>) {
            self.online = false;
            self.closed_at = at;
        }
    }

    // A peer goes offline, with a time, only when its last open stream ends.
    #[test]
    fn offline_after_the_last_stream() {
        let r = Registry::<String, Peer>::default();
        let key = "p".to_string();
        let a = r.stream_opened(&key, |p| p.online = true);
        let b = r.stream_opened(&key, |p| p.online = true);
        assert_eq!(r.get(&key).map(|p| p.streams), Some(2));
        drop(a);
        assert!(
            r.get(&key)
                .is_some_and(|p| p.online && p.closed_at.is_none())
        );
        drop(b);
        let p = r.get(&key).unwrap_or_default();
        assert!(!p.online && p.closed_at.is_some() && p.streams == 0);
    }

    // A guard whose peer was forgotten meanwhile does nothing when dropped.
    #[test]
    fn forgotten_peer_is_not_recreated() {
        let r = Registry::<String, Peer>::default();
        let key = "p".to_string();
        let g = r.stream_opened(&key, |_| {});
        r.lock().remove(&key);
        drop(g);
        assert!(r.get(&key).is_none());
    }
}
