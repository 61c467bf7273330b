//! A delta [`Snapshot`] of some types of a store, kept current by a store
//! [`Reflector`]: every committed change is applied to the snapshot as it arrives
//! (changes that arrive together are coalesced into one new snapshot), and
//! published on a `tokio::sync::watch` channel that the delta sender follows.
//!
//! A [`SnapshotFeed`] outlives its follower: [`SnapshotFeed::run`] may end (an
//! abort, a restart by the supervisor) and run again, relisting, while receivers
//! keep their subscription. While the store fails the last snapshot stays
//! published, the failure is logged and reported, and the feed recovers by itself.

use super::to_delta;
use crate::delta::{Snapshot, TypeResources};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;
use weft_model::resource::{Resource, ResourceKey, ResourceType};
use weft_runtime::health::Reporter;
use weft_store::reflector::{Event, Reflector};
use weft_store::{ResourceStore, StoreError};

/// Decides whether a resource is offered, and in what form (labels stamped, ...).
pub type Select = Arc<dyn Fn(&Resource) -> Option<Resource> + Send + Sync>;

/// One published view of some types of a store.
pub struct SnapshotFeed {
    types: Vec<ResourceType>,
    select: Select,
    tx: watch::Sender<Option<Snapshot>>,
}

impl SnapshotFeed {
    /// A feed with nothing published yet (`None` until the first list).
    pub fn new(types: Vec<ResourceType>, select: Select) -> Self {
        SnapshotFeed {
            types,
            select,
            tx: watch::Sender::new(None),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<Snapshot>> {
        self.tx.subscribe()
    }

    /// Follows `store` until every receiver is dropped: lists, publishes, follows
    /// changes, and on a store failure keeps the last snapshot, reports the reason
    /// (`reporter` down) and relists once the store answers again. Running it again
    /// after it ended starts over with a fresh list.
    pub async fn run(&self, store: Arc<dyn ResourceStore>, reporter: Option<Reporter>) {
        let reflector = Reflector::new(store, self.types.clone());
        self.follow(reflector, None, reporter).await
    }

    /// [`SnapshotFeed::run`] on `reflector`, handling `first` (an event already
    /// read from it) before anything else.
    async fn follow(
        &self,
        mut reflector: Reflector,
        mut first: Option<Event>,
        reporter: Option<Reporter>,
    ) {
        let mut state = State {
            types: self
                .types
                .iter()
                .map(|t| (*t, TypeResources::new()))
                .collect(),
            select: self.select.clone(),
            published: Snapshot::new(),
        };
        let mut broken = false;
        loop {
            let event = match first.take() {
                Some(e) => e,
                None => tokio::select! {
                    e = reflector.next() => e,
                    () = self.tx.closed() => return,
                },
            };
            let snapshot = match event {
                Event::Init { resources, .. } => {
                    if broken {
                        tracing::info!(types = ?self.types, "snapshot feed: the store answers again; relisted");
                        broken = false;
                    }
                    if let Some(r) = &reporter {
                        r.ready();
                    }
                    state.reset(&resources);
                    state.snapshot(None)
                }
                Event::Changes(changes) => {
                    let mut touched = BTreeSet::new();
                    for c in changes {
                        if state.apply(&c.key, c.resource.as_ref()) {
                            touched.insert(c.key.ty);
                        }
                    }
                    if touched.is_empty() {
                        continue;
                    }
                    state.snapshot(Some(&touched))
                }
                Event::Broken { error, retry_in } => {
                    broken = true;
                    tracing::warn!(%error, ?retry_in, types = ?self.types, "snapshot feed: cannot read the store; keeping the last snapshot");
                    if let Some(r) = &reporter {
                        r.down(format!(
                            "cannot read the store: {error}; retrying in {retry_in:?}"
                        ));
                    }
                    continue;
                }
            };
            let mut snapshot = snapshot;
            snapshot.stamp(tokio::time::Instant::now());
            if self.tx.send(Some(snapshot)).is_err() {
                return;
            }
        }
    }

    /// Lists `types` from `store` through `select`, publishes the first snapshot, and
    /// spawns a task that follows the store until every receiver is dropped. Fails
    /// when the first list does: a feed that starts is a feed that has data.
    pub async fn start(
        store: Arc<dyn ResourceStore>,
        types: Vec<ResourceType>,
        select: Select,
    ) -> Result<watch::Receiver<Option<Snapshot>>, StoreError> {
        let mut reflector = Reflector::new(store, types.clone());
        let first = reflector.next().await;
        if let Event::Broken { error, .. } = first {
            return Err(error);
        }
        let feed = Arc::new(SnapshotFeed::new(types, select));
        let mut rx = feed.subscribe();
        let follower = feed.clone();
        // The list just read is the follower's first event: the store is listed once.
        tokio::spawn(async move { follower.follow(reflector, Some(first), None).await });
        // The follower's first list is published at once; wait for it.
        if rx.wait_for(Option::is_some).await.is_err() {
            return Err(StoreError::Io(weft_store::IoError::msg(
                "the snapshot feed stopped before its first list",
            )));
        }
        Ok(rx)
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
        // The union is as new as the newer of the two.
        if let Some(at) = out.published_at().max(b.published_at()) {
            out.stamp(at);
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
    /// Rebuilds every type from a full list.
    fn reset(&mut self, resources: &[Resource]) {
        for resources in self.types.values_mut() {
            *resources = TypeResources::new();
        }
        for res in resources {
            let Some(of_type) = self.types.get_mut(&res.resource_type()) else {
                continue;
            };
            if let Some(out) = (self.select)(res) {
                let d = to_delta(&out);
                if let Some(any) = d.resource {
                    of_type.insert(d.name, d.version, any);
                }
            }
        }
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
