//! The store conformance suite: what every [`ResourceStore`] backend must do,
//! checked the same way for each. Run it with [`run_all`] and a [`Backend`] that
//! makes fresh stores (and, for durable backends, reopens one).
//!
//! Test resources are Meshes and Secrets built from minimal documents (structure
//! only, not validated), so the suite does not depend on spec details.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod crud;
mod watching;

use super::{Change, MemoryStore, ResourceStore, SledStore, StoreError, StoreOptions, Watch};
use futures::StreamExt;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

/// Makes the stores the suite runs against.
pub trait Backend: Sync {
    type Store: ResourceStore;

    /// A new, empty store.
    fn fresh(&self, options: StoreOptions) -> Self::Store;

    /// Closes `store` and opens the same data again; `None` when the backend keeps
    /// nothing across a restart (the durability cases are then skipped).
    fn reopen(&self, store: Self::Store) -> Option<Self::Store>;
}

/// [`MemoryStore`]s.
pub struct MemoryBackend;

impl Backend for MemoryBackend {
    type Store = MemoryStore;

    fn fresh(&self, options: StoreOptions) -> MemoryStore {
        MemoryStore::with_options(options)
    }

    fn reopen(&self, _store: MemoryStore) -> Option<MemoryStore> {
        None
    }
}

/// [`SledStore`]s in temporary directories, removed when the backend is dropped.
#[derive(Default)]
pub struct SledBackend {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl Backend for SledBackend {
    type Store = SledStore;

    fn fresh(&self, options: StoreOptions) -> SledStore {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SledStore::open_with(dir.path(), options).expect("open a fresh sled store");
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dir);
        store
    }

    fn reopen(&self, store: SledStore) -> Option<SledStore> {
        let path = store.path().to_path_buf();
        let options = store.options();
        drop(store);
        // The file lock goes with the last handle, which a blocking-pool task that
        // is finishing a write may still hold for a moment: wait for it, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match SledStore::open_with(&path, options) {
                Ok(s) => return Some(s),
                Err(e)
                    if std::time::Instant::now() < deadline && e.to_string().contains("lock") =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("reopen the sled store: {e}"),
            }
        }
    }
}

/// Runs every case, each on a fresh store; panics on the first failure.
pub async fn run_all<B: Backend>(backend: &B) {
    macro_rules! run {
        ($($module:ident :: $case:ident),* $(,)?) => {$(
            eprintln!("store conformance: {}", stringify!($case));
            $module::$case(backend).await;
        )*};
    }
    run!(
        crud::create_and_get,
        crud::create_duplicate,
        crud::get_missing,
        crud::list_order,
        crud::list_pages,
        crud::update_versions,
        crud::delete_versions,
        crud::mesh_must_exist,
        crud::mesh_delete_cascades,
        crud::transact_all_or_nothing,
        crud::revision_follows_changes,
        crud::put_creates_then_updates,
        watching::watch_from_zero,
        watching::watch_from_middle,
        watching::watch_live,
        watching::concurrent_writers,
        watching::watch_during_writes,
        watching::compacted,
        watching::lagging_watcher,
        watching::store_drop_ends_watch,
        watching::reopen_keeps_everything,
    );
}

fn options() -> StoreOptions {
    StoreOptions::default()
}

fn build(value: serde_json::Value) -> Option<Resource> {
    Resource::from_value(value).ok()
}

pub fn mesh(name: &str) -> Resource {
    build(json!({"type": "Mesh", "name": name})).expect("a minimal Mesh decodes")
}

/// A Secret (the mesh-scoped type the suite uses). The document carries `data`
/// when the Secret spec takes it; a spec without fields gets an empty body.
pub fn secret(mesh: &str, name: &str) -> Resource {
    build(json!({"type": "Secret", "name": name, "mesh": mesh, "data": "aGVsbG8="}))
        .or_else(|| build(json!({"type": "Secret", "name": name, "mesh": mesh})))
        .expect("a minimal Secret decodes")
}

/// `resource` with one more label: a content change that needs no spec field.
pub fn labelled(mut resource: Resource, key: &str, value: &str) -> Resource {
    resource.meta.labels.insert(key.into(), value.into());
    resource
}

pub fn secret_key(mesh: &str, name: &str) -> ResourceKey {
    ResourceKey::new(ResourceType::Secret, Some(mesh), name)
}

pub fn mesh_key(name: &str) -> ResourceKey {
    ResourceKey::new(ResourceType::Mesh, None, name)
}

/// How long a watch may take to deliver a change that is due.
const DUE: Duration = Duration::from_secs(10);
/// How long a watch must stay silent to count as having nothing more.
const QUIET: Duration = Duration::from_millis(100);

/// The next change; fails when the stream stalls, ends or errs.
pub async fn next_change(watch: &mut Watch) -> Change {
    match tokio::time::timeout(DUE, watch.next()).await {
        Err(_) => panic!("watch delivered nothing within {DUE:?}"),
        Ok(None) => panic!("watch ended"),
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(Some(Ok(change))) => change,
    }
}

pub async fn next_changes(watch: &mut Watch, n: usize) -> Vec<Change> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_change(watch).await);
    }
    out
}

/// Fails if the watch yields anything soon.
pub async fn assert_quiet(watch: &mut Watch) {
    if let Ok(item) = tokio::time::timeout(QUIET, watch.next()).await {
        panic!(
            "watch should have nothing more, got {:?}",
            item.map(|r| r.map(|c| (c.revision, c.key)))
        );
    }
}

pub async fn watch_err<S: ResourceStore>(store: &S, after: u64) -> StoreError {
    match store.watch(after).await {
        Ok(_) => panic!("watch({after}) should fail"),
        Err(e) => e,
    }
}

pub fn revisions(changes: &[Change]) -> Vec<u64> {
    changes.iter().map(|c| c.revision).collect()
}

pub fn keys(changes: &[Change]) -> Vec<ResourceKey> {
    changes.iter().map(|c| c.key.clone()).collect()
}
