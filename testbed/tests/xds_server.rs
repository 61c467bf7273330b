//! The zone's ADS server in-process, driven by tonic clients over TLS: delta and
//! SotW responses per type, ACK, updates after store changes, NACK handling,
//! refusals, the Dataplane lifecycle and DataplaneInsight. A fake generator (one
//! cluster per policy, one endpoint per Dataplane) keeps the tests independent of
//! the real configuration generation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use tonic::Code;
use weft_model::resource::{Resource, ResourceKey, ResourceType, parse_resource};
use weft_runtime::shutdown::CancellationToken;
use weft_store::{MemoryStore, ResourceStore};
use weft_sync::delta::{Any, DeltaDiscoveryRequest, SenderConfig, Snapshot, TypeResources};
use weft_testbed::ads::{
    self, CLUSTER_TYPE, DeltaStream, DiscoveryRequest, ENDPOINT_TYPE, SotwStream,
};
use weft_testbed::wait::until;
use weft_zone::admission::AdmissionError;
use weft_zone::xds::Admit;
use weft_zone::xds::cache::{Cache, CacheConfig, Generator};
use weft_zone::xds::generate::{GenerateError, MeshView};
use weft_zone::xds::insight::DataplaneInsight;
use weft_zone::xds::metrics::XdsMetrics;
use weft_zone::xds::node::ProxyKey;
use weft_zone::xds::server::{self, AdsContext, XdsServer};

const DEADLINE: Duration = Duration::from_secs(10);

/// One cluster per non-Dataplane resource of the mesh, one endpoint per Dataplane;
/// a policy named `break-generation` makes generation fail.
fn fake_generate(view: &MeshView, _dp: &Resource) -> Result<Snapshot, GenerateError> {
    let mut clusters = TypeResources::new();
    let mut endpoints = TypeResources::new();
    for (ty, by_name) in &view.resources {
        for (name, r) in by_name {
            if name == "break-generation" {
                return Err(GenerateError::NotADataplane(name.clone()));
            }
            let any = Any {
                type_url: "type.googleapis.com/weft.test.Fake".into(),
                value: r.content_hash().into_bytes(),
            };
            if *ty == "Dataplane" {
                endpoints.insert_hashed(name.clone(), any);
            } else {
                clusters.insert_hashed(format!("{ty}:{name}"), any);
            }
        }
    }
    Ok(Snapshot::new()
        .with_type(CLUSTER_TYPE, clusters)
        .with_type(ENDPOINT_TYPE, endpoints))
}

struct Zone {
    xds: XdsServer,
    store: Arc<dyn ResourceStore>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Zone {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn allow_all() -> Admit {
    Arc::new(|_, _| Ok(()))
}

async fn zone_with(admit: Admit, grace: Duration) -> Zone {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    store
        .create(parse_resource(b"type: Mesh\nname: default\n", false).unwrap())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let metrics = XdsMetrics::default();
    let generator: Generator = Arc::new(fake_generate);
    let cache = Cache::start(
        store.clone(),
        generator,
        CacheConfig {
            grace,
            ..CacheConfig::default()
        },
        metrics.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let tls =
        weft_zone::xds::tls::load_xds_tls(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let context = AdsContext {
        store: store.clone(),
        cache,
        admit,
        metrics,
        sender: SenderConfig {
            nack_backoff_base: Duration::from_millis(50),
            ..SenderConfig::default()
        },
        shutdown: shutdown.clone(),
    };
    let (xds, serving) = server::serve("127.0.0.1:0".parse().unwrap(), &tls, context)
        .await
        .unwrap();
    tokio::spawn(serving);
    Zone {
        xds,
        store,
        shutdown,
        _dir: dir,
    }
}

async fn zone() -> Zone {
    zone_with(allow_all(), Duration::from_secs(60)).await
}

fn policy(name: &str, timeout: &str) -> Resource {
    let doc = format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: {timeout}\n"
    );
    parse_resource(doc.as_bytes(), false).unwrap()
}

async fn put(store: &Arc<dyn ResourceStore>, r: Resource) {
    weft_store::put(store.as_ref(), r, None).await.unwrap();
}

fn dp_key(name: &str) -> ResourceKey {
    ResourceKey::new(ResourceType::Dataplane, Some("default"), name)
}

fn delta_first(name: &str, type_url: &str) -> DeltaDiscoveryRequest {
    let json = ads::dataplane_json("default", name, "web", 8080);
    DeltaDiscoveryRequest {
        node: Some(ads::node("default", name, &json)),
        type_url: type_url.into(),
        ..Default::default()
    }
}

fn sotw_first(name: &str, type_url: &str, names: &[&str]) -> DiscoveryRequest {
    let json = ads::dataplane_json("default", name, "web", 8080);
    DiscoveryRequest {
        node: Some(ads::node("default", name, &json)),
        type_url: type_url.into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("no answer within the deadline")
}

fn insight(zone: &Zone, name: &str) -> DataplaneInsight {
    zone.xds
        .insights
        .get(&ProxyKey {
            mesh: "default".into(),
            name: name.into(),
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn delta_stream_serves_updates_and_handles_nack() {
    let zone = zone().await;
    put(&zone.store, policy("t1", "1h")).await;
    let ch = ads::channel(&zone.xds.endpoint).await.unwrap();
    let mut s = DeltaStream::open(ch, Some("tok"), delta_first("web-1", CLUSTER_TYPE))
        .await
        .unwrap();
    let r = within(s.next()).await.unwrap();
    assert_eq!(r.type_url, CLUSTER_TYPE);
    assert_eq!(r.resources.len(), 1, "{r:?}");
    assert_eq!(r.resources[0].name, "MeshTimeout:t1");
    s.ack(&r).await.unwrap();
    // The Dataplane was stored on connect.
    assert!(zone.store.get(&dp_key("web-1")).await.unwrap().is_some());
    // Endpoints: subscribing to a second type gets its own response.
    s.send(DeltaDiscoveryRequest {
        type_url: ENDPOINT_TYPE.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = within(s.next()).await.unwrap();
    assert_eq!(r.type_url, ENDPOINT_TYPE);
    assert_eq!(r.resources[0].name, "web-1");
    s.ack(&r).await.unwrap();

    // A store change: only the new cluster travels.
    put(&zone.store, policy("t2", "1h")).await;
    let r = within(s.next()).await.unwrap();
    assert_eq!(r.type_url, CLUSTER_TYPE);
    let names: Vec<_> = r.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["MeshTimeout:t2"]);
    s.ack(&r).await.unwrap();

    // NACK an update; the rejected version is not resent, the next change is.
    put(&zone.store, policy("t2", "2h")).await;
    let r = within(s.next()).await.unwrap();
    s.nack(&r, "bad cluster t2").await.unwrap();
    put(&zone.store, policy("t3", "1h")).await;
    let r = within(s.next()).await.unwrap();
    let names: Vec<_> = r.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["MeshTimeout:t3"],
        "t2's rejected version is not resent"
    );
    s.ack(&r).await.unwrap();
    until(DEADLINE, "insight counts the ACKs and the NACK", || async {
        let i = insight(&zone, "web-1");
        i.types
            .get(CLUSTER_TYPE)
            .is_some_and(|t| t.acked == 3 && t.nacked == 1)
    })
    .await;
    let i = insight(&zone, "web-1");
    assert!(i.connected);
    assert_eq!(
        i.types[CLUSTER_TYPE].last_nack_reason.as_deref(),
        Some("bad cluster t2")
    );
    assert_eq!(
        serde_json::to_value(&i).unwrap()["streamKind"],
        serde_json::json!("delta")
    );
}

#[tokio::test]
async fn sotw_stream_serves_updates_and_handles_nack() {
    let zone = zone().await;
    put(&zone.store, policy("t1", "1h")).await;
    let ch = ads::channel(&zone.xds.endpoint).await.unwrap();
    let mut s = SotwStream::open(ch, None, sotw_first("web-1", CLUSTER_TYPE, &[]))
        .await
        .unwrap();
    let r1 = within(s.next()).await.unwrap();
    assert_eq!(r1.resources.len(), 1);
    s.ack(&r1, &[]).await.unwrap();
    // EDS answers the names asked for only.
    s.send(DiscoveryRequest {
        type_url: ENDPOINT_TYPE.into(),
        resource_names: vec!["web-1".into(), "nobody".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let e = within(s.next()).await.unwrap();
    assert_eq!((e.type_url.as_str(), e.resources.len()), (ENDPOINT_TYPE, 1));
    s.ack(&e, &["web-1", "nobody"]).await.unwrap();

    // A store change resends the full cluster set.
    put(&zone.store, policy("t2", "1h")).await;
    let r2 = within(s.next()).await.unwrap();
    assert_eq!(r2.type_url, CLUSTER_TYPE);
    assert_eq!(r2.resources.len(), 2);
    assert_ne!(r2.version_info, r1.version_info);
    s.nack(&r2, &r1.version_info, "bad cluster").await.unwrap();
    // The rejected version is never resent; the next change is (after back-off).
    put(&zone.store, policy("t3", "1h")).await;
    let r3 = within(s.next()).await.unwrap();
    assert_eq!(r3.type_url, CLUSTER_TYPE);
    assert_eq!(r3.resources.len(), 3);
    assert_ne!(r3.version_info, r2.version_info);
    s.ack(&r3, &[]).await.unwrap();
    until(DEADLINE, "insight counts ACKs and the NACK", || async {
        let i = insight(&zone, "web-1");
        i.types
            .get(CLUSTER_TYPE)
            .is_some_and(|t| t.acked == 2 && t.nacked == 1)
    })
    .await;
    assert_eq!(
        insight(&zone, "web-1").stream_kind,
        Some(weft_zone::xds::insight::StreamKind::Sotw)
    );
}

#[tokio::test]
async fn generation_error_keeps_last_good_snapshot() {
    let zone = zone().await;
    let ch = ads::channel(&zone.xds.endpoint).await.unwrap();
    let mut s = DeltaStream::open(ch, None, delta_first("web-1", CLUSTER_TYPE))
        .await
        .unwrap();
    let r = within(s.next()).await.unwrap();
    s.ack(&r).await.unwrap();
    put(&zone.store, policy("break-generation", "1h")).await;
    let cache = zone.xds.cache.clone();
    let generations_before = cache
        .stats()
        .generations
        .load(std::sync::atomic::Ordering::Relaxed);
    put(&zone.store, policy("t1", "1h")).await;
    until(DEADLINE, "the failing generations ran", || async {
        cache
            .stats()
            .generations
            .load(std::sync::atomic::Ordering::Relaxed)
            > generations_before
    })
    .await;
    // Removing the culprit generates again; the proxy gets t1 now.
    zone.store
        .delete(
            &ResourceKey::new(
                ResourceType::MeshTimeout,
                Some("default"),
                "break-generation",
            ),
            None,
        )
        .await
        .unwrap();
    let r = within(s.next()).await.unwrap();
    let names: Vec<_> = r.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["MeshTimeout:t1"]);
    assert!(
        r.removed_resources.is_empty(),
        "nothing from the failed generations reached the proxy"
    );
}

#[tokio::test]
async fn refusals_say_why() {
    let refuse: Admit = Arc::new(|token, _| match token {
        None => Err(AdmissionError::MissingToken),
        Some(_) => Err(AdmissionError::Refused("token is for mesh other".into())),
    });
    let zone = zone_with(refuse, Duration::from_secs(60)).await;
    let ch = ads::channel(&zone.xds.endpoint).await.unwrap();
    let err = DeltaStream::open(ch.clone(), None, delta_first("web-1", CLUSTER_TYPE))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("no dataplane token"), "{err:?}");
    let err = SotwStream::open(
        ch.clone(),
        Some("x"),
        sotw_first("web-1", CLUSTER_TYPE, &[]),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("mesh other"), "{err:?}");
    // A refused proxy's Dataplane is not stored.
    assert!(zone.store.get(&dp_key("web-1")).await.unwrap().is_none());

    // A node that does not match its Dataplane is refused naming the field.
    let mut first = delta_first("web-1", CLUSTER_TYPE);
    first.node.as_mut().unwrap().id = "default.other".into();
    let err = DeltaStream::open(ch.clone(), None, first)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("node.id"), "{err:?}");
    // An invalid Dataplane names the bad field.
    let bad = ads::dataplane_json("default", "web-2", "web", 0);
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node("default", "web-2", &bad)),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let err = DeltaStream::open(ch, None, first).await.err().unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("networking.inbound[0].port"),
        "{err:?}"
    );
}

#[tokio::test]
async fn dataplane_removed_after_grace_unless_reconnected() {
    let zone = zone_with(allow_all(), Duration::from_millis(300)).await;
    let ch = ads::channel(&zone.xds.endpoint).await.unwrap();
    let mut s = DeltaStream::open(ch.clone(), None, delta_first("web-1", CLUSTER_TYPE))
        .await
        .unwrap();
    within(s.next()).await.unwrap();
    assert!(zone.store.get(&dp_key("web-1")).await.unwrap().is_some());
    assert!(insight(&zone, "web-1").connected);

    // Disconnect and come back at once: the Dataplane survives the grace period.
    drop(s);
    until(DEADLINE, "the insight sees the disconnect", || async {
        !insight(&zone, "web-1").connected
    })
    .await;
    assert!(insight(&zone, "web-1").disconnect_time.is_some());
    let mut s = DeltaStream::open(ch.clone(), None, delta_first("web-1", CLUSTER_TYPE))
        .await
        .unwrap();
    within(s.next()).await.unwrap();
    let started = tokio::time::Instant::now();
    until(DEADLINE, "a grace period has passed", || async {
        started.elapsed() > Duration::from_millis(600)
    })
    .await;
    assert!(
        zone.store.get(&dp_key("web-1")).await.unwrap().is_some(),
        "a reconnected proxy keeps its Dataplane"
    );

    // Gone for good: deleted after the grace period.
    drop(s);
    until(DEADLINE, "the Dataplane is deleted", || async {
        zone.store.get(&dp_key("web-1")).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn zone_serves_xds_and_overview() {
    // The real zone: TLS xDS on its own port, refusing proxies without a token
    // (admission), and the overview endpoint on its API.
    let zone = weft_testbed::inprocess::zone(None).await;
    let bound = zone.zone().expect("a zone");
    assert!(bound.xds_ca_pem().contains("BEGIN CERTIFICATE"));
    let ch = ads::channel(&bound.xds).await.unwrap();
    let err = DeltaStream::open(ch, None, delta_first("web-1", CLUSTER_TYPE))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::Unauthenticated);
    let dp = ads::dataplane_json("default", "web-1", "web", 8080);
    let dp: serde_json::Value = serde_json::from_str(&dp).unwrap();
    let yaml = serde_json::to_string(&dp).unwrap();
    let (status, body) = zone
        .api
        .put("/meshes/default/dataplanes/web-1", &yaml)
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = zone
        .api
        .get("/meshes/default/dataplanes/web-1/_overview")
        .await;
    assert_eq!(status, 200, "{body}");
    // Kuma's DataplaneOverview: meta, the spec, and an insight without
    // subscriptions (the proxy never connected).
    assert_eq!(body["type"], "DataplaneOverview", "{body}");
    assert_eq!(body["name"], "web-1");
    assert_eq!(body["mesh"], "default");
    assert_eq!(
        body["dataplane"]["networking"]["inbound"][0]["port"], 8080,
        "{body}"
    );
    assert_eq!(
        body["dataplaneInsight"]["subscriptions"],
        serde_json::json!([])
    );
    let (status, _) = zone
        .api
        .get("/meshes/default/dataplanes/nobody/_overview")
        .await;
    assert_eq!(status, 404);
}

// A zone ingress says nothing about its provenance: labels claiming another
// zone and offered services are dropped before it is stored; and a name that
// belongs to another zone's ingress (received from global) is refused, never
// overwritten.
#[tokio::test]
async fn zone_proxies_cannot_pass_for_another_zone() {
    let zone = zone().await;
    let ch = ads::channel(&zone.xds.endpoint).await.unwrap();
    let spoof = r#"{"type":"ZoneIngress","name":"zi-1","labels":{"kuma.io/origin":"global","kuma.io/zone":"west"},"networking":{"address":"127.0.0.1","port":10001},"availableServices":[{"mesh":"default","instances":4000000000,"tags":{"kuma.io/service":"db"}}]}"#;
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node("", "zi-1", spoof)),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let _stream = DeltaStream::open(ch.clone(), None, first).await.unwrap();
    let key = ResourceKey::new(ResourceType::ZoneIngress, None, "zi-1");
    let stored = within(async {
        loop {
            if let Some(r) = zone.store.get(&key).await.unwrap() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(stored.meta.labels.is_empty(), "{:?}", stored.meta.labels);
    let weft_model::resource::Spec::ZoneIngress(zi) = &stored.spec else {
        panic!("{stored:?}")
    };
    assert!(
        zi.available_services.is_empty() && zi.zone.is_none(),
        "{zi:?}"
    );

    // Another zone's ingress, as global sent it.
    let theirs = parse_resource(
        b"type: ZoneIngress\nname: west-ingress\nlabels: {kuma.io/origin: global, kuma.io/zone: west}\nnetworking: {address: 10.0.0.1, port: 10001}\n",
        false,
    )
    .unwrap();
    put(&zone.store, theirs.clone()).await;
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node(
            "",
            "west-ingress",
            r#"{"type":"ZoneIngress","name":"west-ingress","networking":{"address":"127.0.0.1","port":10002}}"#,
        )),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let err = DeltaStream::open(ch, None, first).await.err().unwrap();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("another zone"), "{err:?}");
    let kept = zone.store.get(&theirs.key()).await.unwrap().unwrap();
    assert_eq!(kept.spec, theirs.spec);
}
