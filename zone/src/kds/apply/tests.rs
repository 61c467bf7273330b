//! The zone's apply step: one transaction per initial sync, orphans rejected in their
//! own type, the sync marker.

use super::*;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use weft_model::resource::parse_resource;
use weft_store::fault::FaultyStore;
use weft_store::{MemoryStore, SledStore};
use weft_sync::delta::driver::{self, SenderEvent};
use weft_sync::delta::{
    Node, Receiver, Resource as DeltaResource, Sender, SenderConfig, Snapshot, TypeResources,
    Verdict,
};

/// A store that counts its transactions (each is one durable write: one fsync on sled).
fn counting(inner: impl ResourceStore) -> Arc<FaultyStore> {
    Arc::new(FaultyStore::new(Arc::new(inner)))
}

fn mesh(name: &str) -> Resource {
    let doc = format!("type: Mesh\nname: {name}\n");
    kds::stamp_global(&parse_resource(doc.as_bytes(), false).unwrap())
}

fn timeout(mesh: &str, name: &str, idle: &str) -> Resource {
    let doc = format!(
        "type: MeshTimeout\nname: {name}\nmesh: {mesh}\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: {idle}\n"
    );
    kds::stamp_global(&parse_resource(doc.as_bytes(), false).unwrap())
}

fn last(ty: ResourceType, resources: Vec<DeltaResource>, completes: bool) -> Update {
    Update {
        type_url: ty.name().into(),
        kind: UpdateKind::InitialLast {
            full_state: resources.iter().map(|r| r.name.clone()).collect(),
        },
        resources,
        removed: vec![],
        completes_initial_sync: completes,
    }
}

fn apply_to(store: Arc<dyn ResourceStore>) -> (ZoneApply, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    (ZoneApply::new(store, "east".into(), tx), rx)
}

// A 10,000-policy initial sync with one orphan (a policy of a mesh the zone lacks)
// commits in ONE transaction on sled; the orphan alone is rejected, in its own type.
// (Before: one transaction per resource after the first failure, 10,003 in all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_and_one_orphan_commit_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = counting(SledStore::open(dir.path()).unwrap());
    let (mut apply, mut committed) = apply_to(store.clone());
    let mut policies: Vec<DeltaResource> = (0..10_000)
        .map(|i| kds::to_delta(&timeout("default", &format!("t{i:05}"), "1h")))
        .collect();
    policies.push(kds::to_delta(&timeout("ghost", "orphan", "1h")));

    let started = std::time::Instant::now();
    let mesh_update = last(
        ResourceType::Mesh,
        vec![kds::to_delta(&mesh("default"))],
        false,
    );
    assert!(apply.apply_update(mesh_update).await.unwrap().is_empty());
    assert_eq!(store.transactions(), 0, "the initial sync is staged");
    let rejected = apply
        .apply_update(last(ResourceType::MeshTimeout, policies, true))
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!(
        "measured: 10,000 policies + 1 orphan: {} transaction(s), {} rejection(s), {took:?}",
        store.transactions(),
        rejected.len()
    );
    assert_eq!(store.transactions(), 1);
    assert_eq!(
        rejected,
        [Rejection::of_type(
            "MeshTimeout",
            "ghost/orphan",
            "mesh \"ghost\" does not exist: create the Mesh first"
        )]
    );
    let stored = store
        .list(ResourceType::MeshTimeout, None, Page::all())
        .await
        .unwrap();
    assert_eq!(stored.total, 10_000);
    assert!(committed.try_recv().is_ok(), "the commit is reported");
    assert!(last_sync(store.as_ref(), "east").await.unwrap().is_some());
}

// The marker exists only once an initial sync is committed, and a restarted client
// reads when that was.
#[tokio::test]
async fn the_marker_is_written_with_the_initial_sync() {
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    assert_eq!(last_sync(store.as_ref(), "east").await.unwrap(), None);
    let (mut apply, _committed) = apply_to(store.clone());
    let staged = last(ResourceType::Mesh, vec![kds::to_delta(&mesh("m"))], false);
    apply.apply_update(staged).await.unwrap();
    assert_eq!(last_sync(store.as_ref(), "east").await.unwrap(), None);
    let done = last(ResourceType::MeshTimeout, vec![], true);
    apply.apply_update(done).await.unwrap();
    let at = last_sync(store.as_ref(), "east").await.unwrap();
    assert!(at.is_some_and(|t| t > SystemTime::UNIX_EPOCH));
    assert_eq!(last_sync(store.as_ref(), "west").await.unwrap(), None);
}

// Within a staged initial sync the last operation on a resource wins (a part adds it,
// a later part removes it, the last part adds it back: it is stored).
#[tokio::test]
async fn the_last_staged_operation_on_a_resource_wins() {
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    let (mut apply, _committed) = apply_to(store.clone());
    apply
        .apply_update(last(
            ResourceType::Mesh,
            vec![kds::to_delta(&mesh("m"))],
            false,
        ))
        .await
        .unwrap();
    let part = |resources, removed| Update {
        type_url: "MeshTimeout".into(),
        kind: UpdateKind::InitialPart,
        resources,
        removed,
        completes_initial_sync: false,
    };
    apply
        .apply_update(part(vec![kds::to_delta(&timeout("m", "x", "1h"))], vec![]))
        .await
        .unwrap();
    apply
        .apply_update(part(vec![], vec!["m/x".into()]))
        .await
        .unwrap();
    apply
        .apply_update(last(
            ResourceType::MeshTimeout,
            vec![kds::to_delta(&timeout("m", "x", "2h"))],
            true,
        ))
        .await
        .unwrap();
    let key = ResourceKey::new(ResourceType::MeshTimeout, Some("m"), "x");
    let x = store.get(&key).await.unwrap().map(|r| kds::to_kds(&r).spec);
    assert!(x.is_some_and(|spec| String::from_utf8_lossy(&spec).contains("2h")));
}

/// A snapshot of global's side: every type the zone subscribes to, with `resources`.
fn snapshot(resources: &[Resource]) -> Snapshot {
    let mut snap = Snapshot::new();
    for ty in kds::global_to_zone_types() {
        let mut t = TypeResources::new();
        for r in resources.iter().filter(|r| r.resource_type() == ty) {
            let d = kds::to_delta(r);
            t.insert(d.name, d.version, d.resource.unwrap_or_default());
        }
        snap.set_type(ty.name(), t);
    }
    snap
}

// Over the real delta engine (global's sender, the zone's receiver and apply step): the
// orphan is NACKed by MeshTimeout's answer, every answer goes out only after the one
// commit, and global's sender then knows every resource but the orphan.
#[tokio::test]
async fn the_orphan_is_nacked_in_its_own_type_after_the_commit() {
    let store = counting(MemoryStore::new());
    let global_side = [
        mesh("default"),
        timeout("default", "t1", "1h"),
        timeout("ghost", "orphan", "1h"),
    ];
    let (snap_tx, snap_rx) = watch::channel(Some(snapshot(&global_side)));
    let (req_tx, req_rx) = mpsc::channel(64);
    let (resp_tx, resp_rx) = mpsc::channel(64);
    let (verdicts_tx, mut verdicts) = mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        let mut sender = Sender::new(SenderConfig::default());
        let _ = driver::run_sender(
            &mut sender,
            ReceiverStream::new(req_rx).map(Ok::<_, std::convert::Infallible>),
            resp_tx,
            snap_rx,
            64,
            |_, event| {
                if let SenderEvent::Request(summary) = event
                    && let Some(verdict) = summary.verdict
                {
                    let _ = verdicts_tx.send((summary.type_url, verdict));
                }
            },
        )
        .await;
        sender
    });
    let (mut apply, _committed) = apply_to(store.clone());
    let types: Vec<(String, std::collections::BTreeMap<String, String>)> =
        kds::global_to_zone_types()
            .iter()
            .map(|t| (t.name().to_string(), Default::default()))
            .collect();
    let n_types = types.len();
    let receiver = tokio::spawn(async move {
        let mut receiver = Receiver::new(Node::default(), types);
        let end = driver::run_receiver(
            &mut receiver,
            ReceiverStream::new(resp_rx).map(Ok::<_, std::convert::Infallible>),
            req_tx,
            &mut apply,
            64,
        )
        .await;
        (end.map_err(|e| e.to_string()), receiver)
    });
    let mut answers = Vec::new();
    while answers.len() < n_types {
        let next = tokio::time::timeout(Duration::from_secs(10), verdicts.recv()).await;
        match next {
            Ok(Some(v)) => answers.push(v),
            other => panic!("only {} of {n_types} answers: {other:?}", answers.len()),
        }
    }
    assert_eq!(
        store.transactions(),
        1,
        "one commit for the whole initial sync"
    );
    let nacks: Vec<(&str, &[String])> = answers
        .iter()
        .filter_map(|(t, v)| match v {
            Verdict::Nack { rejected, .. } => Some((t.as_str(), rejected.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(nacks, [("MeshTimeout", &["ghost/orphan".to_string()][..])]);
    // The orphan's type is not the last to arrive: before, its rejection went into the
    // last type's NACK, which the sender ignored.
    assert_ne!(answers.last().map(|(t, _)| t.as_str()), Some("MeshTimeout"));
    drop(snap_tx);
    let sender = sender.await.unwrap();
    let known = sender
        .known_versions("MeshTimeout")
        .cloned()
        .unwrap_or_default();
    assert_eq!(known.keys().collect::<Vec<_>>(), ["default/t1"]);
    let (_, receiver) = receiver.await.unwrap();
    assert!(receiver.is_initial_sync_complete());
}
