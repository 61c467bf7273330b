//! A delta [`Snapshot`] of some types of a store, kept current from the store's
//! watch: every committed change is applied to the snapshot as it arrives (changes
//! that arrive together are coalesced into one new snapshot), and published on a
//! `tokio::sync::watch` channel that the delta sender follows.

use super::to_delta;
use crate::delta::{Snapshot, TypeResources};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;
use weft_model::resource::{Resource, ResourceKey, ResourceType};
use weft_store::{Page, ResourceStore, StoreError};

/// Decides whether a resource is offered, and in what form (labels stamped, ...).
pub type Select = Arc<dyn Fn(&Resource) -> Option<Resource> + Send + Sync>;

pub struct SnapshotFeed;

impl SnapshotFeed {
    /// Lists `types` from `store` through `select`, publishes the first snapshot, and
    /// spawns a task that follows the store until every receiver is dropped.
    pub async fn start(
        store: Arc<dyn ResourceStore>,
        types: Vec<ResourceType>,
        select: Select,
    ) -> Result<watch::Receiver<Option<Snapshot>>, StoreError> {
        Self::start_joinable(store, types, select)
            .await
            .map(|(rx, _)| rx)
    }

    /// Like [`SnapshotFeed::start`], with the following task's handle: abort and
    /// await it to release the store at a known point (before reopening it).
    pub async fn start_joinable(
        store: Arc<dyn ResourceStore>,
        types: Vec<ResourceType>,
        select: Select,
    ) -> Result<
        (
            watch::Receiver<Option<Snapshot>>,
            tokio::task::JoinHandle<()>,
        ),
        StoreError,
    > {
        let mut state = State {
            types: types.iter().map(|t| (*t, TypeResources::new())).collect(),
            select,
            published: Snapshot::new(),
        };
        let revision = state.relist(store.as_ref()).await?;
        let (tx, rx) = watch::channel(Some(state.snapshot(None)));
        let task = tokio::spawn(follow(store, state, revision, tx));
        Ok((rx, task))
    }
}

/// The union of two feeds: every type of `a`, and every type of `b` (which wins
/// on a type both offer), republished whenever either changes. Types keep their
/// shared maps, so merging copies no resources. Ends when either source closes or
/// every receiver of the result is dropped.
pub fn merge(
    mut a: watch::Receiver<Option<Snapshot>>,
    mut b: watch::Receiver<Option<Snapshot>>,
) -> watch::Receiver<Option<Snapshot>> {
    fn union(a: Option<Snapshot>, b: Option<Snapshot>) -> Option<Snapshot> {
        let (mut out, b) = (a?, b?);
        for ty in b.type_urls() {
            if let Some(resources) = b.get_shared(ty) {
                out.set_type_shared(ty, resources.clone());
            }
        }
        Some(out)
    }
    let first = union(a.borrow_and_update().clone(), b.borrow_and_update().clone());
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = a.changed() => if changed.is_err() { return },
                changed = b.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
            let next = union(a.borrow_and_update().clone(), b.borrow_and_update().clone());
            if tx.send(next).is_err() {
                return;
            }
        }
    });
    rx
}

struct State {
    types: BTreeMap<ResourceType, TypeResources>,
    select: Select,
    /// The last snapshot published: a new one shares every type not touched since.
    published: Snapshot,
}

impl State {
    /// Rebuilds every type from a full list; returns the revision it reflects.
    async fn relist(&mut self, store: &dyn ResourceStore) -> Result<u64, StoreError> {
        let revision = store.revision().await?;
        for (ty, resources) in self.types.iter_mut() {
            *resources = TypeResources::new();
            for res in store.list(*ty, None, Page::all()).await?.items {
                if let Some(out) = (self.select)(&res) {
                    let d = to_delta(&out);
                    if let Some(any) = d.resource {
                        resources.insert(d.name, d.version, any);
                    }
                }
            }
        }
        Ok(revision)
    }

    /// Applies one change; returns whether its type is offered at all.
    fn apply(&mut self, key: &ResourceKey, resource: Option<&Resource>) -> bool {
        let Some(resources) = self.types.get_mut(&key.ty) else {
            return false;
        };
        let name = super::delta_name(key);
        match resource.and_then(|r| (self.select)(r)) {
            Some(out) => {
                let d = to_delta(&out);
                match d.resource {
                    Some(any) => resources.insert(d.name, d.version, any),
                    None => {
                        resources.remove(&name);
                    }
                }
            }
            None => {
                resources.remove(&name);
            }
        }
        true
    }

    /// The snapshot to publish: the `touched` types (all when `None`) copied anew,
    /// every other type shared with the last one published, so a sender skips the
    /// types that did not change (pointer equality) and a change to one resource
    /// does not copy the maps of the others.
    fn snapshot(&mut self, touched: Option<&BTreeSet<ResourceType>>) -> Snapshot {
        let mut s = self.published.clone();
        for (ty, resources) in &self.types {
            if touched.is_none_or(|t| t.contains(ty)) {
                s.set_type(ty.name(), resources.clone());
            }
        }
        self.published = s.clone();
        s
    }
}

async fn follow(
    store: Arc<dyn ResourceStore>,
    mut state: State,
    revision: u64,
    tx: watch::Sender<Option<Snapshot>>,
) {
    let mut revision = revision;
    loop {
        let mut changes = match store.watch(revision).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "snapshot feed: cannot watch the store; relisting");
                match relist_and_publish(&store, &mut state, &tx).await {
                    Some(r) => {
                        revision = r;
                        continue;
                    }
                    None => return,
                }
            }
        };
        loop {
            let first = tokio::select! {
                c = changes.next() => c,
                () = tx.closed() => return,
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            // Coalesce whatever has already arrived into one snapshot.
            while let Some(Some(more)) = futures::FutureExt::now_or_never(changes.next()) {
                batch.push(more);
            }
            let mut touched = BTreeSet::new();
            let mut failed = false;
            for change in batch {
                match change {
                    Ok(c) => {
                        if state.apply(&c.key, c.resource.as_ref()) {
                            touched.insert(c.key.ty);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "snapshot feed: watch ended; relisting");
                        failed = true;
                    }
                }
            }
            if failed {
                match relist_and_publish(&store, &mut state, &tx).await {
                    Some(r) => revision = r,
                    None => return,
                }
                break;
            }
            if !touched.is_empty() && tx.send(Some(state.snapshot(Some(&touched)))).is_err() {
                return;
            }
        }
    }
}

async fn relist_and_publish(
    store: &Arc<dyn ResourceStore>,
    state: &mut State,
    tx: &watch::Sender<Option<Snapshot>>,
) -> Option<u64> {
    match state.relist(store.as_ref()).await {
        Ok(r) => tx.send(Some(state.snapshot(None))).ok().map(|()| r),
        Err(e) => {
            tracing::error!(error = %e, "snapshot feed: relist failed; stopping the feed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use weft_model::resource::parse_resource;
    use weft_store::MemoryStore;

    fn res(doc: &str) -> Resource {
        parse_resource(doc.as_bytes(), false).unwrap()
    }

    async fn wait_for(
        rx: &mut watch::Receiver<Option<Snapshot>>,
        pred: impl Fn(&Snapshot) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if rx.borrow_and_update().as_ref().is_some_and(&pred) {
                return;
            }
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .expect("snapshot condition not met in 5 s")
                .unwrap();
        }
    }

    // A change to one type publishes a snapshot that shares every other type's map.
    #[tokio::test]
    async fn untouched_types_stay_shared() {
        let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
        store.create(res("type: Mesh\nname: m\n")).await.unwrap();
        let select: Select = Arc::new(|r: &Resource| Some(super::super::stamp_global(r)));
        let mut rx = SnapshotFeed::start(
            store.clone(),
            vec![ResourceType::Mesh, ResourceType::Secret],
            select,
        )
        .await
        .unwrap();
        let before = rx.borrow_and_update().clone().unwrap();
        store
            .create(res("type: Secret\nname: s\nmesh: m\ndata: aGk=\n"))
            .await
            .unwrap();
        wait_for(&mut rx, |s| {
            s.get("Secret").is_some_and(|t| t.contains("m/s"))
        })
        .await;
        let after = rx.borrow().clone().unwrap();
        assert!(Arc::ptr_eq(
            before.get_shared("Mesh").unwrap(),
            after.get_shared("Mesh").unwrap()
        ));
        assert!(!Arc::ptr_eq(
            before.get_shared("Secret").unwrap(),
            after.get_shared("Secret").unwrap()
        ));
    }

    // A merged feed offers both feeds' types and follows changes to either.
    #[tokio::test]
    async fn merged_feeds_follow_both() {
        let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
        store.create(res("type: Mesh\nname: m\n")).await.unwrap();
        let select: Select = Arc::new(|r: &Resource| Some(super::super::stamp_global(r)));
        let meshes = SnapshotFeed::start(store.clone(), vec![ResourceType::Mesh], select.clone())
            .await
            .unwrap();
        let secrets = SnapshotFeed::start(store.clone(), vec![ResourceType::Secret], select)
            .await
            .unwrap();
        let mut rx = merge(meshes, secrets);
        wait_for(&mut rx, |s| {
            s.get("Mesh").is_some_and(|t| t.contains("m")) && s.get("Secret").is_some()
        })
        .await;
        store
            .create(res("type: Secret\nname: s\nmesh: m\ndata: aGk=\n"))
            .await
            .unwrap();
        wait_for(&mut rx, |s| {
            s.get("Secret").is_some_and(|t| t.contains("m/s")) && s.get("Mesh").is_some()
        })
        .await;
        store.create(res("type: Mesh\nname: n\n")).await.unwrap();
        wait_for(&mut rx, |s| s.get("Mesh").is_some_and(|t| t.contains("n"))).await;
    }

    // The snapshot follows creates, updates and deletes of the selected types only.
    #[tokio::test]
    async fn follows_the_store() {
        let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
        store.create(res("type: Mesh\nname: m\n")).await.unwrap();
        let select: Select = Arc::new(|r: &Resource| Some(super::super::stamp_global(r)));
        let mut rx = SnapshotFeed::start(
            store.clone(),
            vec![ResourceType::Mesh, ResourceType::Secret],
            select,
        )
        .await
        .unwrap();
        wait_for(&mut rx, |s| s.get("Mesh").is_some_and(|t| t.contains("m"))).await;
        store
            .create(res("type: Secret\nname: s\nmesh: m\ndata: aGk=\n"))
            .await
            .unwrap();
        wait_for(&mut rx, |s| {
            s.get("Secret").is_some_and(|t| t.contains("m/s"))
        })
        .await;
        let v1 = rx
            .borrow()
            .as_ref()
            .unwrap()
            .get("Secret")
            .unwrap()
            .get("m/s")
            .unwrap()
            .version
            .clone();
        store
            .update(res("type: Secret\nname: s\nmesh: m\ndata: aG8=\n"), None)
            .await
            .unwrap();
        wait_for(&mut rx, |s| {
            s.get("Secret")
                .and_then(|t| t.get("m/s"))
                .is_some_and(|e| e.version != v1)
        })
        .await;
        store
            .delete(&ResourceKey::new(ResourceType::Mesh, None, "m"), None)
            .await
            .unwrap();
        wait_for(&mut rx, |s| {
            s.get("Mesh").is_some_and(|t| t.is_empty())
                && s.get("Secret").is_some_and(|t| t.is_empty())
        })
        .await;
    }
}
