#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use envoy_types::pb::google::protobuf::Any;
use std::sync::mpsc as std_mpsc;
use weft_model::resource::parse_resource;
use weft_store::MemoryStore;
use weft_sync::delta::TypeResources;

const CLUSTERS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

fn dataplane(name: &str) -> Resource {
    let yaml = format!(
        "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 1000\n      servicePort: 1001\n      tags:\n        kuma.io/service: {name}\n"
    );
    parse_resource(yaml.as_bytes(), false).unwrap()
}

/// The Dataplane names of a view, as a snapshot (one "cluster" each).
fn names_of(view: &MeshView) -> Snapshot {
    let mut clusters = TypeResources::new();
    for name in view
        .resources
        .get("Dataplane")
        .into_iter()
        .flat_map(|m| m.keys())
    {
        let any = Any {
            type_url: "t".into(),
            value: name.as_bytes().to_vec(),
        };
        clusters.insert_hashed(name.clone(), any);
    }
    Snapshot::new().with_type(CLUSTERS, clusters)
}

fn has(snapshot: &Option<Snapshot>, name: &str) -> bool {
    snapshot
        .as_ref()
        .and_then(|s| s.get(CLUSTERS))
        .is_some_and(|c| c.contains(name))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// Invariant: a proxy's snapshot never goes back to an older mesh view. The
// generation of a connecting proxy (from the view current at connect) and a
// rebuild's (from a newer view) run concurrently; when the older one finishes
// last it is dropped, so the proxy does not lose a service registered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_from_an_older_view_never_overwrites_a_newer_one() {
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    store
        .create(parse_resource(b"type: Mesh\nname: default\n", false).unwrap())
        .await
        .unwrap();
    // The client's generation from a view without the backend blocks until released.
    let (entered_tx, entered_rx) = std_mpsc::channel::<()>();
    let (release_tx, release_rx) = std_mpsc::channel::<()>();
    let gate = Mutex::new(Some((entered_tx, release_rx)));
    let generator: Generator = Arc::new(move |view: &MeshView, dp: &Resource| {
        let backend = view
            .resources
            .get("Dataplane")
            .is_some_and(|m| m.contains_key("backend"));
        if !backend && dp.meta.name == "client" {
            let held = gate.lock().ok().and_then(|mut g| g.take());
            if let Some((entered, release)) = held {
                entered.send(()).unwrap();
                release.recv().unwrap();
            }
        }
        Ok(names_of(view))
    });
    let shutdown = CancellationToken::new();
    let cache = Cache::start(
        store.clone(),
        generator,
        CacheConfig::default(),
        XdsMetrics::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    eventually("the mesh's first view", || {
        cache.stats().rebuilds.load(Ordering::Relaxed) >= 1
    })
    .await;

    let proxy = Proxy {
        mesh: "default".into(),
        name: "client".into(),
        dataplane: dataplane("client"),
    };
    let c = cache.clone();
    let connecting = tokio::task::spawn_blocking(move || c.connect(&proxy));
    tokio::task::spawn_blocking(move || entered_rx.recv())
        .await
        .unwrap()
        .unwrap();

    // The backend registers while the client's first generation is under way: the
    // rebuild publishes a snapshot with it.
    weft_store::put(store.as_ref(), dataplane("backend"), None)
        .await
        .unwrap();
    eventually("the rebuild's snapshot", || {
        cache.stats().published.load(Ordering::Relaxed) >= 1
    })
    .await;

    // The stale generation finishes last.
    release_tx.send(()).unwrap();
    let (rx, _guard) = connecting.await.unwrap();
    assert!(
        has(&rx.borrow(), "backend"),
        "the client's snapshot lost the backend: {:?}",
        rx.borrow()
            .as_ref()
            .and_then(|s| s.get(CLUSTERS))
            .map(|c| c.len())
    );
    shutdown.cancel();
}

// The cache's follow / rebuild / publish / grace behaviour, with its own fake generator.
mod lifecycle;
