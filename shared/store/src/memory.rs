//! In-memory backend: the model the durable backends must match, and the store
//! tests use. Resources sit in a `BTreeMap` (whose key order is the list order),
//! the change log in a bounded queue, both under one lock; a write plans, applies
//! and publishes under that lock, so publication order is revision order.

use super::plan::{self, Op};
use super::watch::{self, ChangeLog};
use super::{
    Change, ListPage, Page, ResourceStore, StoreError, StoreOptions, Watch, WriteOp, page_bounds,
    stored,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

/// A store that keeps everything in memory and loses it on drop. Clones share the
/// same store.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    tx: broadcast::Sender<Change>,
    max_changes: u64,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<ResourceKey, Resource>,
    log: VecDeque<Change>,
    revision: u64,
    /// First revision still in the log (or the next one when the log is empty).
    log_start: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_options(StoreOptions::default())
    }

    pub fn with_options(options: StoreOptions) -> Self {
        let (tx, _) = broadcast::channel(options.watch_buffer.max(1));
        MemoryStore {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    log_start: 1,
                    ..State::default()
                }),
                tx,
                max_changes: options.max_changes.max(1),
            }),
        }
    }

    fn write(&self, ops: &[Op]) -> Result<Vec<Change>, StoreError> {
        let mut st = self.inner.lock();
        let revision = st.revision;
        let changes = plan::plan(&mut *st, revision, plan::now(), ops)?;
        for change in &changes {
            match &change.resource {
                Some(r) => st.resources.insert(change.key.clone(), r.clone()),
                None => st.resources.remove(&change.key),
            };
            st.log.push_back(change.clone());
            st.revision = change.revision;
        }
        while st.log.len() as u64 > self.inner.max_changes {
            st.log.pop_front();
        }
        st.log_start = st.log.front().map_or(st.revision + 1, |c| c.revision);
        for change in &changes {
            // No receiver is not an error: nobody is watching.
            let _ = self.inner.tx.send(change.clone());
        }
        Ok(changes)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written: every
        // write is planned before anything is applied.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl plan::State for State {
    type Error = StoreError;

    fn stamp(&mut self, key: &ResourceKey) -> Result<Option<plan::Stamp>, StoreError> {
        Ok(self.resources.get(key).map(plan::Stamp::of))
    }

    fn mesh_members(&mut self, mesh: &str) -> Result<Vec<ResourceKey>, StoreError> {
        let mut keys = Vec::new();
        for &ty in ResourceType::ALL.iter().filter(|t| t.is_mesh_scoped()) {
            keys.extend(in_scope(&self.resources, ty, Some(mesh)).map(|(k, _)| k.clone()));
        }
        Ok(keys)
    }
}

/// Resources of one type (in one mesh), in key order: (mesh, name).
fn in_scope<'a>(
    map: &'a BTreeMap<ResourceKey, Resource>,
    ty: ResourceType,
    mesh: Option<&'a str>,
) -> impl Iterator<Item = (&'a ResourceKey, &'a Resource)> + 'a {
    let start = ResourceKey {
        ty,
        mesh: mesh.map(str::to_string),
        name: String::new(),
    };
    map.range(start..)
        .take_while(move |(k, _)| k.ty == ty && (mesh.is_none() || k.mesh.as_deref() == mesh))
}

#[async_trait]
impl ChangeLog for Inner {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    fn published(&self) -> u64 {
        self.lock().revision
    }

    async fn read(
        self: Arc<Self>,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let st = self.lock();
        if after.saturating_add(1) < st.log_start {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: st.log_start,
            });
        }
        let skip = usize::try_from(after + 1 - st.log_start).unwrap_or(usize::MAX);
        Ok(st
            .log
            .iter()
            .skip(skip)
            .take_while(|c| c.revision <= upto)
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl ResourceStore for MemoryStore {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        Ok(self.inner.lock().resources.get(key).cloned())
    }

    async fn list(
        &self,
        ty: ResourceType,
        mesh: Option<&str>,
        page: Page,
    ) -> Result<ListPage, StoreError> {
        let st = self.inner.lock();
        if mesh.is_some() && !ty.is_mesh_scoped() {
            return Ok(ListPage {
                items: Vec::new(),
                total: 0,
                next_offset: None,
            });
        }
        let total = in_scope(&st.resources, ty, mesh).count();
        let (start, end, next_offset) = page_bounds(total, page);
        let items = in_scope(&st.resources, ty, mesh)
            .skip(start)
            .take(end - start)
            .map(|(_, r)| r.clone())
            .collect();
        Ok(ListPage {
            items,
            total,
            next_offset,
        })
    }

    async fn create(&self, resource: Resource) -> Result<Resource, StoreError> {
        let changes = self.write(&[Op::Create(resource)])?;
        stored(changes)
    }

    async fn update(
        &self,
        resource: Resource,
        expected_version: Option<u64>,
    ) -> Result<Resource, StoreError> {
        let changes = self.write(&[Op::Update {
            resource,
            expected: expected_version,
        }])?;
        stored(changes)
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        expected_version: Option<u64>,
    ) -> Result<Vec<ResourceKey>, StoreError> {
        let changes = self.write(&[Op::Delete {
            key: key.clone(),
            expected: expected_version,
        }])?;
        Ok(changes.into_iter().map(|c| c.key).collect())
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<Change>, StoreError> {
        let ops: Vec<Op> = ops.into_iter().map(Op::from).collect();
        self.write(&ops)
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.inner.lock().revision)
    }

    async fn watch(&self, after: u64) -> Result<Watch, StoreError> {
        watch::watch(&self.inner, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shared suite holds for the in-memory backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        super::super::conformance::run_all(&super::super::conformance::MemoryBackend).await;
    }

    // A dropped watch releases its subscription; the store keeps no trace of it.
    #[tokio::test]
    async fn dropped_watch_unsubscribes() {
        let s = MemoryStore::new();
        let w = s.watch(0).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.inner.tx.receiver_count(), 1);
        drop(w);
        assert_eq!(s.inner.tx.receiver_count(), 0);
    }

    // Pages never overlap, cover the list and say where the next one starts.
    #[test]
    fn page_bounds_cover_the_list() {
        let p = |size, offset| Page { size, offset };
        assert_eq!(page_bounds(5, p(2, 0)), (0, 2, Some(2)));
        assert_eq!(page_bounds(5, p(2, 4)), (4, 5, None));
        assert_eq!(page_bounds(5, p(2, 9)), (5, 5, None));
        assert_eq!(page_bounds(5, Page::all()), (0, 5, None));
        assert_eq!(page_bounds(0, Page::default()), (0, 0, None));
    }
}
