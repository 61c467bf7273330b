//! The resource store: one trait, several backends, one conformance suite.
//!
//! Every write is atomic and acknowledged only once durable. Every change gets
//! the next value of one monotonic revision counter, is appended to a change log
//! and published to watchers; a watcher can start from any revision still in the
//! log and sees every later change exactly once, in order. Nothing polls.
//!
//! A resource's `meta.version` is the revision of its last write; updates and
//! deletes may name the version they expect (optimistic concurrency).
//!
//! Backends: [`MemoryStore`] (tests, and the model) and [`SledStore`] (durable).
//! Both share the write planner (`plan`) and the watch stream (`watch`), so they
//! agree on every rule; [`conformance`] checks that they do.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod fault;
pub mod memory;
mod plan;
pub mod reflector;
pub mod sled_store;
mod watch;

pub use memory::MemoryStore;
pub use reflector::Reflector;
pub use sled_store::SledStore;

use async_trait::async_trait;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

/// Tuning shared by the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How many changes the log keeps; older ones are compacted away and a watch
    /// from before them fails with [`StoreError::Compacted`]. At least 1.
    pub max_changes: u64,
    /// How many published changes a watcher may fall behind before it goes back to
    /// the log to catch up. At least 1.
    pub watch_buffer: usize,
}

impl StoreOptions {
    pub const DEFAULT_MAX_CHANGES: u64 = 100_000;
    pub const DEFAULT_WATCH_BUFFER: usize = 1024;
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_changes: Self::DEFAULT_MAX_CHANGES,
            watch_buffer: Self::DEFAULT_WATCH_BUFFER,
        }
    }
}

/// Which slice of a list to return. `offset` counts items from the start of the
/// (name-ordered) list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub offset: usize,
}

impl Page {
    pub const DEFAULT_SIZE: usize = 100;
    pub const MAX_SIZE: usize = 1000;

    /// Everything (for internal callers that need whole lists).
    pub fn all() -> Self {
        Page {
            size: usize::MAX,
            offset: 0,
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            size: Self::DEFAULT_SIZE,
            offset: 0,
        }
    }
}

/// One page of a list, ordered by (mesh, name).
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub items: Vec<Resource>,
    /// How many items match in all.
    pub total: usize,
    /// Offset of the next page, when there is one.
    pub next_offset: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// One committed change, as watchers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub revision: u64,
    pub kind: ChangeKind,
    pub key: ResourceKey,
    /// The resource after the change; `None` for deletes.
    pub resource: Option<Resource>,
}

/// One operation in an atomic batch ([`ResourceStore::transact`]).
// Typed policy specs make `Resource` a few hundred bytes; batches are short-lived
// and small, so boxing every upsert would cost more than it saves.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create or replace, no version check.
    Upsert(Resource),
    /// Delete if present (a Mesh takes everything in it along).
    Delete(ResourceKey),
}

pub type Watch = Pin<Box<dyn Stream<Item = Result<Change, StoreError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(ResourceKey),
    #[error("{0} already exists")]
    AlreadyExists(ResourceKey),
    #[error(
        "{key} was changed concurrently: expected version {expected}, it is at version {actual}; read it again and retry"
    )]
    Conflict {
        key: ResourceKey,
        expected: u64,
        actual: u64,
    },
    #[error("mesh {0:?} does not exist: create the Mesh first")]
    MeshNotFound(String),
    #[error(
        "revision {requested} is no longer in the change log (oldest kept is {oldest}): list again and watch from the current revision"
    )]
    Compacted { requested: u64, oldest: u64 },
    #[error(
        "the watcher fell behind and missed changes; list again and watch from the current revision"
    )]
    Lagged,
    #[error("store I/O failed: {0}")]
    Io(#[source] IoError),
    #[error("store data is corrupt: {0}")]
    Corrupt(String),
}

/// The failure under a [`StoreError::Io`], kept as the error it was (a `sled`
/// error, a join error, ...) so callers can walk and downcast the chain. Shared,
/// so `StoreError` stays cloneable; two are equal when they say the same.
#[derive(Debug, Clone)]
pub struct IoError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl IoError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        IoError(Arc::new(e))
    }

    /// A failure with no underlying error value, only its description.
    pub fn msg(message: impl Into<String>) -> Self {
        IoError(Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(
            message.into(),
        )))
    }

    /// The underlying error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for IoError {}

#[async_trait]
pub trait ResourceStore: Send + Sync + 'static {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError>;

    /// Resources of one type, in one mesh (`Some`) or across all (`None`), ordered by
    /// (mesh, name).
    async fn list(
        &self,
        ty: ResourceType,
        mesh: Option<&str>,
        page: Page,
    ) -> Result<ListPage, StoreError>;

    /// Stores a new resource; sets version and both times. Fails with
    /// `AlreadyExists`, or `MeshNotFound` when its mesh does not exist.
    async fn create(&self, resource: Resource) -> Result<Resource, StoreError>;

    /// Replaces an existing resource, keeping its creation time. With
    /// `expected_version`, fails with `Conflict` unless it is still at that version.
    async fn update(
        &self,
        resource: Resource,
        expected_version: Option<u64>,
    ) -> Result<Resource, StoreError>;

    /// Deletes a resource; deleting a Mesh deletes everything in it in the same
    /// atomic write. Returns every deleted key (the Mesh last).
    async fn delete(
        &self,
        key: &ResourceKey,
        expected_version: Option<u64>,
    ) -> Result<Vec<ResourceKey>, StoreError>;

    /// Applies all operations atomically (all or nothing, one durable write),
    /// e.g. a zone swapping in its initial sync. Returns the committed changes.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<Change>, StoreError>;

    /// Revision of the last committed change (0 for an empty store).
    async fn revision(&self) -> Result<u64, StoreError>;

    /// Every change with a revision greater than `after`, in order, then every new
    /// one as it commits. `Compacted` when `after` is older than the log keeps.
    /// A watcher that falls behind catches up from the log; if the log has been
    /// compacted past it meanwhile, the stream ends with `Lagged`. Streams end
    /// when the store is dropped.
    async fn watch(&self, after: u64) -> Result<Watch, StoreError>;
}

/// Creates, or updates when it exists: what a PUT does. Returns the stored
/// resource and whether it was created.
pub async fn put(
    store: &dyn ResourceStore,
    resource: Resource,
    expected_version: Option<u64>,
) -> Result<(Resource, bool), StoreError> {
    let key = resource.key();
    if expected_version.is_none() {
        match store.create(resource.clone()).await {
            Ok(r) => return Ok((r, true)),
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    } else if store.get(&key).await?.is_none() {
        return Err(StoreError::NotFound(key));
    }
    store
        .update(resource, expected_version)
        .await
        .map(|r| (r, false))
}

/// Cuts one page out of an ordered list of `total` items.
pub(crate) fn page_bounds(total: usize, page: Page) -> (usize, usize, Option<usize>) {
    let start = page.offset.min(total);
    let end = start.saturating_add(page.size).min(total);
    let next = (end < total && end > start).then_some(end);
    (start, end, next)
}

/// The resource the first write of `changes` wrote (a single create or update,
/// or the first operation of a transaction).
pub fn stored(changes: Vec<Change>) -> Result<Resource, StoreError> {
    changes
        .into_iter()
        .next()
        .and_then(|c| c.resource)
        .ok_or_else(|| StoreError::Corrupt("a write returned no resource".into()))
}
