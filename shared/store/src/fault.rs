//! A store wrapper that fails on command, for tests of what follows a store:
//! reads (`get`, `list`, `revision`, `watch`) fail while [`FaultyStore::set_failing`]
//! is on, and [`FaultyStore::break_watches`] ends every open watch with an error.
//! Writes always go through, so a test can change the store while its followers
//! cannot read it. It also counts transactions (one durable write each).

use crate::{Change, ListPage, Page, ResourceStore, StoreError, Watch, WriteOp};
use async_trait::async_trait;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::watch;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

pub struct FaultyStore {
    inner: Arc<dyn ResourceStore>,
    failing: AtomicBool,
    /// Bumped by `break_watches`; every open watch ends when it changes.
    epoch: watch::Sender<u64>,
    transactions: AtomicU64,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ResourceStore>) -> Self {
        FaultyStore {
            inner,
            failing: AtomicBool::new(false),
            epoch: watch::Sender::new(0),
            transactions: AtomicU64::new(0),
        }
    }

    /// Makes reads fail (or answer again).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Ends every open watch with an error.
    pub fn break_watches(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Calls of `transact` (each is one durable write, one fsync on sled).
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Io(crate::IoError::msg(
                "injected fault: the store does not answer",
            )))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl ResourceStore for FaultyStore {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        self.check()?;
        self.inner.get(key).await
    }

    async fn list(
        &self,
        ty: ResourceType,
        mesh: Option<&str>,
        page: Page,
    ) -> Result<ListPage, StoreError> {
        self.check()?;
        self.inner.list(ty, mesh, page).await
    }

    async fn create(&self, resource: Resource) -> Result<Resource, StoreError> {
        self.inner.create(resource).await
    }

    async fn update(
        &self,
        resource: Resource,
        expected_version: Option<u64>,
    ) -> Result<Resource, StoreError> {
        self.inner.update(resource, expected_version).await
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        expected_version: Option<u64>,
    ) -> Result<Vec<ResourceKey>, StoreError> {
        self.inner.delete(key, expected_version).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<Change>, StoreError> {
        self.transactions.fetch_add(1, Ordering::SeqCst);
        self.inner.transact(ops).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revision().await
    }

    async fn watch(&self, after: u64) -> Result<Watch, StoreError> {
        self.check()?;
        let inner = self.inner.watch(after).await?;
        let mut epoch = self.epoch.subscribe();
        epoch.mark_unchanged();
        let stream = futures::stream::unfold(Some((inner, epoch)), |state| async move {
            let (mut inner, mut epoch) = state?;
            tokio::select! {
                biased;
                _ = epoch.changed() => Some((
                    Err(StoreError::Io(crate::IoError::msg("injected fault: the watch broke"))),
                    None,
                )),
                item = inner.next() => item.map(|i| (i, Some((inner, epoch)))),
            }
        });
        Ok(stream.boxed())
    }
}
