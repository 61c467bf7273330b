//! Durable backend on sled 0.34.
//!
//! Layout (schema 1; byte formats in [`codec`]):
//! - tree `resources`: `<type> 00 00 <mesh> 00 00 <name>` → resource record
//!   (canonical JSON of the universal format, plus version and times);
//! - tree `changes`: big-endian u64 revision → change record. Contiguous: it holds
//!   every revision from `log_start` to `revision`; older ones are compacted away
//!   so that at most [`StoreOptions::max_changes`] remain;
//! - tree `meta`: `schema` → 1, `revision` → last revision, `log_start` → oldest
//!   revision kept (all big-endian u64).
//!
//! A write takes the writer lock, then (1) reads the contents of any Mesh it
//! deletes (sled transactions cannot scan; the lock keeps that read current),
//! (2) runs ONE transaction over the three trees that reads the revision, checks
//! every precondition through the transaction, writes resources, log entries and
//! meta, and compacts the log, (3) flushes (blocking, off the runtime), (4) publishes the changes
//! to watchers and answers. It runs on its own task, so a caller that stops
//! waiting cannot leave a committed change unpublished. Blocking sled work runs on
//! the blocking pool.
//!
//! Reads go straight to sled: they may observe a write whose flush is still in
//! flight; acknowledgements, [`ResourceStore::revision`] and watch events never do.
//! If a flush fails, the write is reported failed but stays visible (sled cannot
//! take it back), and it is still published so watchers stay consistent with reads.

mod codec;

use super::plan::{self, Op};
use super::watch::{self, ChangeLog};
use super::{
    Change, IoError, ListPage, Page, ResourceStore, StoreError, StoreOptions, Watch, WriteOp,
    page_bounds, stored,
};
use async_trait::async_trait;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

const SCHEMA: u64 = 1;
const META_SCHEMA: &[u8] = b"schema";
const META_REVISION: &[u8] = b"revision";
const META_LOG_START: &[u8] = b"log_start";

/// The durable store. Clones share the same database; it closes when the last
/// clone is dropped (watch streams do not keep it open: they end).
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    resources: sled::Tree,
    changes: sled::Tree,
    meta: sled::Tree,
    /// Serialises writers from commit through publication.
    writer: tokio::sync::Mutex<()>,
    /// Revision of the last change sent to watchers (durable).
    published: AtomicU64,
    tx: broadcast::Sender<Change>,
    options: StoreOptions,
    path: PathBuf,
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(IoError::new(e))
}

impl SledStore {
    /// Opens (or creates) the store in `dir` with default options. Blocks while
    /// sled recovers; call it before serving, or from `spawn_blocking`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).open().map_err(io)?;
        let resources = db.open_tree("resources").map_err(io)?;
        let changes = db.open_tree("changes").map_err(io)?;
        let meta = db.open_tree("meta").map_err(io)?;
        match meta.get(META_SCHEMA).map_err(io)? {
            Some(v) => {
                let v = codec::decode_u64(&v)?;
                if v != SCHEMA {
                    return Err(StoreError::Corrupt(format!(
                        "{} has store schema {v}; this build reads schema {SCHEMA}",
                        dir.display()
                    )));
                }
            }
            None => {
                if !resources.is_empty() || !changes.is_empty() {
                    return Err(StoreError::Corrupt(format!(
                        "{} holds data without a schema version",
                        dir.display()
                    )));
                }
                meta.insert(META_SCHEMA, &SCHEMA.to_be_bytes())
                    .map_err(io)?;
                db.flush().map_err(io)?;
            }
        }
        let revision = match meta.get(META_REVISION).map_err(io)? {
            Some(v) => codec::decode_u64(&v)?,
            None => 0,
        };
        let (tx, _) = broadcast::channel(options.watch_buffer.max(1));
        Ok(SledStore {
            inner: Arc::new(Inner {
                db,
                resources,
                changes,
                meta,
                writer: tokio::sync::Mutex::new(()),
                published: AtomicU64::new(revision),
                tx,
                options,
                path: dir.to_path_buf(),
            }),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn options(&self) -> StoreOptions {
        self.inner.options
    }

    async fn write(&self, ops: Vec<Op>) -> Result<Vec<Change>, StoreError> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.write(ops).await })
            .await
            .map_err(|e| StoreError::Io(IoError::new(e)))?
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || f(&inner)).await
    }
}

async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(IoError::new(e)))?
}

impl Inner {
    async fn write(self: Arc<Self>, ops: Vec<Op>) -> Result<Vec<Change>, StoreError> {
        let _writer = self.writer.lock().await;
        let this = self.clone();
        let changes = blocking(move || this.commit(&ops)).await?;
        let Some(last) = changes.last().map(|c| c.revision) else {
            return Ok(changes);
        };
        // A blocking flush on tokio's blocking pool, not `flush_async`: the latter
        // runs on sled's small shared I/O pool, where flushes of several stores in
        // one process (in-process tests, benchmarks) can occupy every thread while
        // waiting on sled's process-wide lock that a queued transaction blocks, so
        // the buffer write they wait for never runs (sled issues #1241, #1308).
        let db = self.db.clone();
        let flushed = blocking(move || db.flush().map_err(io)).await;
        self.published.store(last, Ordering::SeqCst);
        for change in &changes {
            // No receiver is not an error: nobody is watching.
            let _ = self.tx.send(change.clone());
        }
        flushed?;
        Ok(changes)
    }

    /// Plans and applies `ops` in one transaction (not yet flushed).
    fn commit(&self, ops: &[Op]) -> Result<Vec<Change>, StoreError> {
        let mut members = BTreeMap::new();
        for mesh in Op::deleted_meshes(ops) {
            let keys = self.mesh_members(&mesh)?;
            members.insert(mesh, keys);
        }
        let now = plan::now();
        let max = self.options.max_changes.max(1);
        let result =
            (&self.resources, &self.changes, &self.meta).transaction(|(res, log, meta)| {
                let revision = tx_u64(meta, META_REVISION)?.unwrap_or(0);
                let mut state = TxState {
                    tree: res,
                    members: &members,
                };
                let changes = plan::plan(&mut state, revision, now, ops)?;
                let Some(last) = changes.last().map(|c| c.revision) else {
                    return Ok(changes);
                };
                for change in &changes {
                    let key = codec::encode_key(&change.key);
                    match &change.resource {
                        Some(r) => res.insert(key, codec::encode_resource(r))?,
                        None => res.remove(key)?,
                    };
                    log.insert(
                        &codec::revision_key(change.revision)[..],
                        codec::encode_change(change),
                    )?;
                }
                meta.insert(META_REVISION, &last.to_be_bytes()[..])?;
                let mut start = tx_u64(meta, META_LOG_START)?.unwrap_or(1);
                let keep_from = last.saturating_sub(max - 1).max(1);
                if start < keep_from {
                    while start < keep_from {
                        log.remove(&codec::revision_key(start)[..])?;
                        start += 1;
                    }
                    meta.insert(META_LOG_START, &start.to_be_bytes()[..])?;
                }
                Ok(changes)
            });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => io(e),
        })
    }

    /// Keys of every mesh-scoped resource in `mesh`, in key order.
    fn mesh_members(&self, mesh: &str) -> Result<Vec<ResourceKey>, StoreError> {
        let mut keys = Vec::new();
        for &ty in ResourceType::ALL.iter().filter(|t| t.is_mesh_scoped()) {
            for entry in self
                .resources
                .scan_prefix(codec::mesh_prefix(ty, mesh))
                .keys()
            {
                keys.push(codec::decode_key(&entry.map_err(io)?)?);
            }
        }
        Ok(keys)
    }

    fn list(
        &self,
        ty: ResourceType,
        mesh: Option<&str>,
        page: Page,
    ) -> Result<ListPage, StoreError> {
        let prefix = match mesh {
            Some(_) if !ty.is_mesh_scoped() => {
                return Ok(ListPage {
                    items: Vec::new(),
                    total: 0,
                    next_offset: None,
                });
            }
            Some(m) => codec::mesh_prefix(ty, m),
            None => codec::type_prefix(ty),
        };
        // Counting needs the whole range; only the page is decoded.
        let mut total = 0;
        let mut raw = Vec::new();
        let end_hint = page.offset.saturating_add(page.size);
        for entry in self.resources.scan_prefix(&prefix).values() {
            let value = entry.map_err(io)?;
            if total >= page.offset && total < end_hint {
                raw.push(value);
            }
            total += 1;
        }
        let (_, _, next_offset) = page_bounds(total, page);
        let items = raw
            .iter()
            .map(|v| codec::decode_resource(v))
            .collect::<Result<_, _>>()?;
        Ok(ListPage {
            items,
            total,
            next_offset,
        })
    }

    fn read_log(&self, after: u64, upto: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        if after >= upto {
            return Ok(Vec::new());
        }
        let from = after.saturating_add(1);
        let mut out = Vec::new();
        let range = codec::revision_key(from)..=codec::revision_key(upto);
        for entry in self.changes.range(range).values().take(limit) {
            out.push(codec::decode_change(&entry.map_err(io)?)?);
        }
        // The log is contiguous: if `from` is missing, it was compacted away.
        if out.first().map(|c| c.revision) != Some(from) {
            let oldest = match self.changes.first().map_err(io)? {
                Some((k, _)) => codec::decode_u64(&k)?,
                None => upto.saturating_add(1),
            };
            return Err(StoreError::Compacted {
                requested: after,
                oldest,
            });
        }
        Ok(out)
    }
}

fn tx_u64(
    tree: &TransactionalTree,
    key: &[u8],
) -> Result<Option<u64>, ConflictableTransactionError<StoreError>> {
    match tree.get(key)? {
        Some(v) => Ok(Some(
            codec::decode_u64(&v).map_err(ConflictableTransactionError::Abort)?,
        )),
        None => Ok(None),
    }
}

/// The planner's view of the store inside a transaction.
struct TxState<'a> {
    tree: &'a TransactionalTree,
    /// Contents of the Meshes the write deletes, read before the transaction.
    members: &'a BTreeMap<String, Vec<ResourceKey>>,
}

impl From<StoreError> for ConflictableTransactionError<StoreError> {
    fn from(e: StoreError) -> Self {
        ConflictableTransactionError::Abort(e)
    }
}

impl plan::State for TxState<'_> {
    type Error = ConflictableTransactionError<StoreError>;

    fn stamp(&mut self, key: &ResourceKey) -> Result<Option<plan::Stamp>, Self::Error> {
        match self.tree.get(codec::encode_key(key))? {
            Some(v) => Ok(Some(codec::decode_stamp(&v)?)),
            None => Ok(None),
        }
    }

    fn mesh_members(&mut self, mesh: &str) -> Result<Vec<ResourceKey>, Self::Error> {
        self.members.get(mesh).cloned().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "contents of mesh {mesh:?} were not read before the write"
            ))
            .into()
        })
    }
}

#[async_trait]
impl ChangeLog for Inner {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    fn published(&self) -> u64 {
        self.published.load(Ordering::SeqCst)
    }

    async fn read(
        self: Arc<Self>,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        blocking(move || self.read_log(after, upto, limit)).await
    }
}

#[async_trait]
impl ResourceStore for SledStore {
    async fn get(&self, key: &ResourceKey) -> Result<Option<Resource>, StoreError> {
        let key = codec::encode_key(key);
        self.blocking(move |inner| match inner.resources.get(key).map_err(io)? {
            Some(v) => codec::decode_resource(&v).map(Some),
            None => Ok(None),
        })
        .await
    }

    async fn list(
        &self,
        ty: ResourceType,
        mesh: Option<&str>,
        page: Page,
    ) -> Result<ListPage, StoreError> {
        let mesh = mesh.map(str::to_string);
        self.blocking(move |inner| inner.list(ty, mesh.as_deref(), page))
            .await
    }

    async fn create(&self, resource: Resource) -> Result<Resource, StoreError> {
        stored(self.write(vec![Op::Create(resource)]).await?)
    }

    async fn update(
        &self,
        resource: Resource,
        expected_version: Option<u64>,
    ) -> Result<Resource, StoreError> {
        stored(
            self.write(vec![Op::Update {
                resource,
                expected: expected_version,
            }])
            .await?,
        )
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        expected_version: Option<u64>,
    ) -> Result<Vec<ResourceKey>, StoreError> {
        let changes = self
            .write(vec![Op::Delete {
                key: key.clone(),
                expected: expected_version,
            }])
            .await?;
        Ok(changes.into_iter().map(|c| c.key).collect())
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<Change>, StoreError> {
        self.write(ops.into_iter().map(Op::from).collect()).await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.inner.published.load(Ordering::SeqCst))
    }

    async fn watch(&self, after: u64) -> Result<Watch, StoreError> {
        watch::watch(&self.inner, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, Backend, SledBackend, mesh};
    use futures::StreamExt;

    // The shared suite holds for the sled backend, reopening included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        conformance::run_all(&SledBackend::default()).await;
    }

    // The suite also holds when the runtime has a single thread.
    #[tokio::test]
    async fn conformance_current_thread() {
        conformance::run_all(&SledBackend::default()).await;
    }

    // A dropped watch releases its subscription; the store keeps no trace of it.
    #[tokio::test]
    async fn dropped_watch_unsubscribes() {
        let backend = SledBackend::default();
        let s = backend.fresh(StoreOptions::default());
        let mut w = s.watch(0).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.inner.tx.receiver_count(), 1);
        s.create(mesh("m")).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(w.next().await, Some(Ok(_))));
        drop(w);
        assert_eq!(s.inner.tx.receiver_count(), 0);
    }

    // A record whose spec no longer decodes fails to read but can still be deleted.
    #[tokio::test]
    async fn undecodable_record_can_be_deleted() {
        let backend = SledBackend::default();
        let s = backend.fresh(StoreOptions::default());
        let m = s.create(mesh("m")).await.unwrap_or_else(|e| panic!("{e}"));
        let mut body = m.to_value();
        body["mtls"] = serde_json::json!(5);
        let record = serde_json::json!({"version": m.meta.version, "resource": body});
        s.inner
            .resources
            .insert(codec::encode_key(&m.key()), record.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(s.get(&m.key()).await, Err(StoreError::Corrupt(_))));
        let deleted = s.delete(&m.key(), Some(m.meta.version)).await;
        assert_eq!(deleted, Ok(vec![m.key()]));
        assert_eq!(s.get(&m.key()).await, Ok(None));
    }

    // A directory written by another schema is refused, not misread.
    #[test]
    fn refuses_other_schema() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            let db = sled::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let meta = db.open_tree("meta").unwrap_or_else(|e| panic!("{e}"));
            meta.insert(META_SCHEMA, &2u64.to_be_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            db.flush().unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::Corrupt(_))
        ));
    }
}
