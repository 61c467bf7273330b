//! A store that breaks under a running control plane: the followers keep what
//! they serve, `/ready` turns 503 naming the follower and the cause, and once the
//! store answers again they relist by themselves, so what was written meanwhile
//! and what is written later reaches zones (KDS feed) and proxies (xDS cache).
//! The store is wrapped in `FaultyStore`: reads fail while writes go through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_api::server::StoreLayer;
use weft_store::ResourceStore;
use weft_store::fault::FaultyStore;
use weft_sync::delta::DeltaDiscoveryRequest;
use weft_testbed::ads::{self, CLUSTER_TYPE, DeltaStream};
use weft_testbed::inprocess::{self, Running};
use weft_testbed::wait::eventually;

const WITHIN: Duration = Duration::from_secs(20);

/// A layer that wraps the store in a `FaultyStore`, and the handle to break it.
fn faulty_layer() -> (StoreLayer, Arc<Mutex<Option<Arc<FaultyStore>>>>) {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let layer: StoreLayer = Box::new(move |store: Arc<dyn ResourceStore>| {
        let faulty = Arc::new(FaultyStore::new(store));
        *keep.lock().unwrap() = Some(faulty.clone());
        faulty
    });
    (layer, slot)
}

fn timeout_doc(name: &str, idle: &str) -> String {
    format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef: {{kind: Mesh}}\n  to:\n    - targetRef: {{kind: Mesh}}\n      default: {{idleTimeout: {idle}}}\n"
    )
}

async fn put_timeout(cp: &Running, name: &str) {
    let (status, body) = cp
        .api
        .put(
            &format!("/meshes/default/meshtimeouts/{name}"),
            &timeout_doc(name, "9s"),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

async fn has_timeout(cp: &Running, name: &str) -> bool {
    cp.api
        .get(&format!("/meshes/default/meshtimeouts/{name}"))
        .await
        .0
        == StatusCode::OK
}

/// Waits until `/ready` shows `component` in `state`; returns the body.
async fn until_component(cp: &Running, component: &str, state: &str) -> Value {
    eventually(
        WITHIN,
        &format!("{component} {state} on /ready"),
        || async {
            let (_, body) = cp.api.get("/ready").await;
            (body["components"][component]["state"] == state).then_some(body)
        },
    )
    .await
}

// Global's KDS feed: broken on relist, /ready says so, the zone keeps serving its
// copy, and after recovery a policy written meanwhile and a later one reach it.
#[tokio::test(flavor = "multi_thread")]
async fn kds_feed_recovers_and_zones_get_later_changes() {
    let (layer, slot) = faulty_layer();
    let global = inprocess::global_with(layer).await;
    let faulty = slot.lock().unwrap().clone().expect("the layer ran");
    let zone = inprocess::federated_zone(&global, "zone-a").await;
    put_timeout(&global, "before").await;
    eventually(WITHIN, "the zone has `before`", || async {
        has_timeout(&zone, "before").await.then_some(())
    })
    .await;

    faulty.set_failing(true);
    faulty.break_watches();
    let body = until_component(&global, "KDS feed", "down").await;
    let (status, _) = global.api.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let reason = body["components"]["KDS feed"]["reason"].as_str().unwrap();
    assert!(reason.contains("injected fault"), "{reason}");
    // Committed while global cannot read its store (writes still commit; the
    // API itself answers 500 then, as a policy PUT on global reads the key
    // first to keep zones' own policies read-only).
    let meanwhile =
        weft_model::resource::parse_resource(timeout_doc("meanwhile", "9s").as_bytes(), false)
            .unwrap();
    faulty
        .transact(vec![weft_store::WriteOp::Upsert(meanwhile)])
        .await
        .unwrap();
    assert!(
        has_timeout(&zone, "before").await,
        "the zone keeps its copy"
    );

    faulty.set_failing(false);
    until_component(&global, "KDS feed", "ready").await;
    eventually(WITHIN, "the zone has `meanwhile`", || async {
        has_timeout(&zone, "meanwhile").await.then_some(())
    })
    .await;
    put_timeout(&global, "after").await;
    eventually(WITHIN, "the zone has `after`", || async {
        has_timeout(&zone, "after").await.then_some(())
    })
    .await;
    zone.stop().await;
    global.stop().await;
}

/// A MeshTimeout on the calls to `backend`.
async fn put_backend_timeout(zone: &Running, name: &str, connect: &str) {
    let doc = format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef: {{kind: Mesh}}\n  to:\n    - targetRef: {{kind: MeshService, name: backend}}\n      default: {{connectionTimeout: {connect}}}\n"
    );
    let (status, body) = zone
        .api
        .put(&format!("/meshes/default/meshtimeouts/{name}"), &doc)
        .await;
    assert!(status.is_success(), "{status} {body}");
}

/// ACKs what `stream` receives until a response carrying a cluster whose name
/// contains `service` arrives (within [`WITHIN`]).
async fn until_cluster(stream: &mut DeltaStream, service: &str) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let r = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no cluster for {service} within {WITHIN:?}"))
            .unwrap();
        stream.ack(&r).await.unwrap();
        if r.type_url == CLUSTER_TYPE && r.resources.iter().any(|x| x.name.contains(service)) {
            return;
        }
    }
}

// The zone's xDS cache: broken on relist, /ready says so, the proxy keeps its
// configuration, and after recovery a policy written meanwhile and a later one
// reach the proxy.
#[tokio::test(flavor = "multi_thread")]
async fn xds_cache_recovers_and_proxies_get_later_changes() {
    let (layer, slot) = faulty_layer();
    let zone = inprocess::zone_with(None, layer).await;
    let faulty = slot.lock().unwrap().clone().expect("the layer ran");
    let bound = zone.zone().expect("a zone");
    // web-1 calls `backend`: its configuration has a `backend` cluster.
    let json = serde_json::json!({
        "type": "Dataplane", "mesh": "default", "name": "web-1",
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}],
            "outbound": [{"port": 10001, "tags": {"kuma.io/service": "backend"}}]
        }
    })
    .to_string();
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node("default", "web-1", &json)),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let channel = ads::channel(&bound.xds).await.unwrap();
    let mut stream = DeltaStream::open(channel, Some(bound.token.expose()), first)
        .await
        .unwrap();
    until_cluster(&mut stream, "backend").await;

    faulty.set_failing(true);
    faulty.break_watches();
    let body = until_component(&zone, "xDS cache", "down").await;
    let reason = body["components"]["xDS cache"]["reason"].as_str().unwrap();
    assert!(reason.contains("keep their last configuration"), "{reason}");
    // Written while the cache cannot read the store: a connect timeout for the
    // calls to `backend`, which changes web-1's `backend` cluster.
    put_backend_timeout(&zone, "meanwhile", "7s").await;

    faulty.set_failing(false);
    until_component(&zone, "xDS cache", "ready").await;
    until_cluster(&mut stream, "backend").await;
    // And a later change.
    put_backend_timeout(&zone, "after", "8s").await;
    until_cluster(&mut stream, "backend").await;
    drop(stream);
    zone.stop().await;
}
