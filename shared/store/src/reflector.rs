//! One "list, watch, relist on error" loop for every follower of the store (the
//! KDS feeds, the xDS cache, the revocation follower), as kube-runtime's watcher.
//!
//! A [`Reflector`] is an explicit state machine driven by [`Reflector::next`]:
//!
//! ```text
//!   Listing ──ok──▶ Watching ──changes──▶ Watching
//!      ▲  │            │ watch lagged / compacted: relist at once
//!      │  │err         │ watch failed or ended:    back off, relist
//!      │  ▼            ▼
//!      └─ Backoff ◀────┘
//! ```
//!
//! It yields [`Event::Init`] (everything of its types, replacing what the
//! consumer holds) after every successful list, [`Event::Changes`] for changes
//! that arrived together, and [`Event::Broken`] when the store fails, before each
//! pause. It never gives up: a store that stays broken yields `Broken` after every
//! back-off, so the consumer can keep its health at "down" with the reason.

use crate::{Change, Page, ResourceStore, StoreError, Watch};
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use weft_model::resource::{Resource, ResourceType};

/// What the consumer sees.
#[derive(Debug)]
pub enum Event {
    /// Every resource of the reflector's types as of `revision`; replaces the
    /// consumer's whole view. Changes after `revision` follow as [`Event::Changes`].
    Init {
        revision: u64,
        resources: Vec<Resource>,
    },
    /// Changes committed after the last event, in commit order (never empty). A
    /// change may repeat one already reflected by the `Init` before it (a write
    /// between reading the revision and listing), so applying must be idempotent.
    Changes(Vec<Change>),
    /// The store failed; the reflector relists after `retry_in`.
    Broken {
        error: StoreError,
        retry_in: Duration,
    },
}

/// Pauses between failed attempts: doubling from `start` to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub start: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            start: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    fn delay(&self, failures: u32) -> Duration {
        self.start
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(self.max)
    }
}

enum State {
    Listing,
    Watching { revision: u64, watch: Option<Watch> },
    Backoff { delay: Duration },
}

/// Follows some types of a store; see the module docs.
pub struct Reflector {
    store: Arc<dyn ResourceStore>,
    types: Vec<ResourceType>,
    backoff: Backoff,
    state: State,
    /// Failures since the last successful list.
    failures: u32,
}

impl Reflector {
    pub fn new(store: Arc<dyn ResourceStore>, types: Vec<ResourceType>) -> Self {
        Reflector {
            store,
            types,
            backoff: Backoff::default(),
            state: State::Listing,
            failures: 0,
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The next event; waits for the store as needed. Cancel-safe between events
    /// only in the sense that dropping the future loses at most a batch that was
    /// being read: the next call relists.
    pub async fn next(&mut self) -> Event {
        loop {
            match std::mem::replace(&mut self.state, State::Listing) {
                State::Listing => match list(self.store.clone(), self.types.clone()).await {
                    Ok((revision, resources)) => {
                        self.failures = 0;
                        self.state = State::Watching {
                            revision,
                            watch: None,
                        };
                        return Event::Init {
                            revision,
                            resources,
                        };
                    }
                    Err(error) => return self.broken(error),
                },
                State::Watching {
                    revision,
                    watch: None,
                } => match self.store.clone().watch(revision).await {
                    Ok(watch) => {
                        self.state = State::Watching {
                            revision,
                            watch: Some(watch),
                        }
                    }
                    // Too far behind the log: a fresh list catches up, no pause needed.
                    Err(StoreError::Compacted { .. }) => self.state = State::Listing,
                    Err(error) => return self.broken(error),
                },
                State::Watching {
                    revision,
                    watch: Some(mut watch),
                } => match watch.next().await {
                    Some(Ok(first)) => {
                        let mut batch = vec![first];
                        let mut failed = None;
                        // Whatever has already arrived goes in the same batch.
                        while let Some(Some(more)) = watch.next().now_or_never() {
                            match more {
                                Ok(c) => batch.push(c),
                                Err(e) => {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        let revision = batch.last().map_or(revision, |c| c.revision);
                        self.state = match failed {
                            None => State::Watching {
                                revision,
                                watch: Some(watch),
                            },
                            // The changes read so far are good; the next call relists.
                            Some(e) => self.after_watch_error(e),
                        };
                        return Event::Changes(batch);
                    }
                    Some(Err(e)) => {
                        if let State::Backoff { delay } = self.after_watch_error(e.clone()) {
                            return self.broken_with(e, delay);
                        }
                        self.state = State::Listing;
                    }
                    None => {
                        return self.broken(StoreError::Io(crate::IoError::msg(
                            "the store's change stream ended (store closed?)",
                        )));
                    }
                },
                State::Backoff { delay } => {
                    tokio::time::sleep(delay).await;
                    self.state = State::Listing;
                }
            }
        }
    }

    /// Lagging or compaction → relist at once; anything else → back off first.
    fn after_watch_error(&mut self, e: StoreError) -> State {
        match e {
            StoreError::Lagged | StoreError::Compacted { .. } => State::Listing,
            _ => {
                self.failures = self.failures.saturating_add(1);
                State::Backoff {
                    delay: self.backoff.delay(self.failures),
                }
            }
        }
    }

    fn broken(&mut self, error: StoreError) -> Event {
        self.failures = self.failures.saturating_add(1);
        let delay = self.backoff.delay(self.failures);
        self.broken_with(error, delay)
    }

    fn broken_with(&mut self, error: StoreError, retry_in: Duration) -> Event {
        self.state = State::Backoff { delay: retry_in };
        Event::Broken { error, retry_in }
    }
}

/// Everything of `types`, and the revision it reflects (at least). Takes owned
/// arguments: the reflector holds a watch stream, which is `Send` but not `Sync`,
/// so no `&Reflector` may live across an await.
async fn list(
    store: Arc<dyn ResourceStore>,
    types: Vec<ResourceType>,
) -> Result<(u64, Vec<Resource>), StoreError> {
    let revision = store.revision().await?;
    let mut resources = Vec::new();
    for ty in types {
        resources.extend(store.list(ty, None, Page::all()).await?.items);
    }
    Ok((revision, resources))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::MemoryStore;
    use crate::fault::FaultyStore;
    use weft_model::resource::parse_resource;

    fn mesh(name: &str) -> Resource {
        parse_resource(format!("type: Mesh\nname: {name}\n").as_bytes(), false).unwrap()
    }

    fn names(resources: &[Resource]) -> Vec<String> {
        resources.iter().map(|r| r.meta.name.clone()).collect()
    }

    // The first event is a full list; later writes arrive as changes in order.
    #[tokio::test]
    async fn lists_then_follows() {
        let store = Arc::new(MemoryStore::new());
        store.create(mesh("a")).await.unwrap();
        let mut r = Reflector::new(store.clone(), vec![ResourceType::Mesh]);
        let Event::Init { resources, .. } = r.next().await else {
            panic!("expected Init")
        };
        assert_eq!(names(&resources), ["a"]);
        store.create(mesh("b")).await.unwrap();
        let Event::Changes(changes) = r.next().await else {
            panic!("expected Changes")
        };
        assert_eq!(changes[0].key.name, "b");
    }

    // A failing store yields Broken after every back-off, doubling the pause, and
    // the reflector relists by itself once the store answers again.
    #[tokio::test(start_paused = true)]
    async fn broken_store_backs_off_then_recovers() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        store.create(mesh("a")).await.unwrap();
        store.set_failing(true);
        let mut r = Reflector::new(store.clone(), vec![ResourceType::Mesh]);
        let mut pauses = Vec::new();
        for _ in 0..3 {
            match r.next().await {
                Event::Broken { retry_in, error } => {
                    assert!(error.to_string().contains("injected"), "{error}");
                    pauses.push(retry_in);
                }
                other => panic!("expected Broken, got {other:?}"),
            }
        }
        assert_eq!(pauses, [100, 200, 400].map(Duration::from_millis).to_vec());
        store.set_failing(false);
        let Event::Init { resources, .. } = r.next().await else {
            panic!("expected Init after recovery")
        };
        assert_eq!(names(&resources), ["a"]);
    }

    // A watch that breaks mid-stream leads to a relist that sees what was written
    // meanwhile; nothing is lost.
    #[tokio::test(start_paused = true)]
    async fn broken_watch_relists_without_loss() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let mut r = Reflector::new(store.clone(), vec![ResourceType::Mesh]);
        assert!(matches!(r.next().await, Event::Init { .. }));
        // Open the watch, then break it and write while it is down.
        store.create(mesh("a")).await.unwrap();
        assert!(matches!(r.next().await, Event::Changes(_)));
        store.break_watches();
        store.set_failing(true);
        assert!(matches!(r.next().await, Event::Broken { .. }));
        store.set_failing(false);
        store.create(mesh("b")).await.unwrap();
        let Event::Init { resources, .. } = r.next().await else {
            panic!("expected a relist")
        };
        assert_eq!(names(&resources), ["a", "b"]);
    }

    // Changes that arrived together come as one batch.
    #[tokio::test]
    async fn coalesces_a_burst() {
        let store = Arc::new(MemoryStore::new());
        let mut r = Reflector::new(store.clone(), vec![ResourceType::Mesh]);
        assert!(matches!(r.next().await, Event::Init { .. }));
        // Open the watch before the burst: the next call reads the whole log.
        for name in ["a", "b", "c"] {
            store.create(mesh(name)).await.unwrap();
        }
        let Event::Changes(changes) = r.next().await else {
            panic!("expected Changes")
        };
        let seen: Vec<_> = changes.into_iter().map(|c| c.key.name).collect();
        assert_eq!(seen, ["a", "b", "c"]);
    }
}
