//! The snapshot cache on its own, with a fake generator (one cluster per
//! non-Dataplane resource of the mesh, so adding a Dataplane changes nothing a proxy
//! gets) that counts generations per proxy: which proxies a change regenerates, when
//! a snapshot is republished, a store that breaks under the follower, a failing
//! generation, and the grace-period deletion of a gone proxy's Dataplane.

use crate::xds::cache::*;
use weft_model::resource::parse_resource;
use weft_store::MemoryStore;
use weft_store::fault::FaultyStore;
use weft_sync::delta::{Any, TypeResources};

const DEADLINE: Duration = Duration::from_secs(10);
const CLUSTERS: &str = "clusters";

/// Generations per proxy name.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<HashMap<String, usize>>>);

impl Counts {
    fn of(&self, proxy: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .get(proxy)
            .copied()
            .unwrap_or_default()
    }
}

/// One cluster per non-Dataplane resource of the mesh; a resource named
/// `break-generation` makes generation fail.
fn counting_generator(counts: &Counts) -> Generator {
    let counts = counts.clone();
    Arc::new(move |view: &MeshView, dp: &Resource| {
        *counts
            .0
            .lock()
            .unwrap()
            .entry(dp.meta.name.clone())
            .or_default() += 1;
        let mut clusters = TypeResources::new();
        for (ty, by_name) in &view.resources {
            for (name, r) in by_name {
                if name == "break-generation" {
                    return Err(GenerateError::NotADataplane(name.clone()));
                }
                if *ty != "Dataplane" {
                    let any = Any {
                        type_url: "type.googleapis.com/weft.test.Fake".into(),
                        value: r.content_hash().into_bytes(),
                    };
                    clusters.insert_hashed(format!("{ty}:{name}"), any);
                }
            }
        }
        Ok(Snapshot::new().with_type(CLUSTERS, clusters))
    })
}

fn mesh(name: &str) -> Resource {
    parse_resource(format!("type: Mesh\nname: {name}\n").as_bytes(), false).unwrap()
}

fn dataplane(mesh: &str, name: &str) -> Resource {
    parse_resource(
        format!(
            "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 10.0.0.1\n  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: {name}\n"
        )
        .as_bytes(),
        false,
    )
    .unwrap()
}

fn policy(mesh: &str, name: &str) -> Resource {
    parse_resource(
        format!(
            "type: MeshTimeout\nmesh: {mesh}\nname: {name}\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 1h\n"
        )
        .as_bytes(),
        false,
    )
    .unwrap()
}

fn proxy(mesh: &str, name: &str) -> Proxy {
    Proxy {
        mesh: mesh.into(),
        name: name.into(),
        dataplane: dataplane(mesh, name),
    }
}

async fn put(store: &dyn ResourceStore, r: Resource) {
    weft_store::put(store, r, None).await.unwrap();
}

/// The cluster names of the current snapshot.
fn clusters(rx: &watch::Receiver<Option<Snapshot>>) -> Vec<String> {
    rx.borrow()
        .as_ref()
        .and_then(|s| s.get(CLUSTERS))
        .map(|t| t.iter().map(|(n, _)| n.to_string()).collect())
        .unwrap_or_default()
}

/// Waits (with the deadline) for a published snapshot that satisfies `f`.
async fn snapshot_where(
    rx: &mut watch::Receiver<Option<Snapshot>>,
    what: &str,
    f: impl Fn(&Snapshot) -> bool,
) {
    tokio::time::timeout(DEADLINE, rx.wait_for(|s| s.as_ref().is_some_and(&f)))
        .await
        .unwrap_or_else(|_| panic!("no snapshot {what} within {DEADLINE:?}"))
        .unwrap();
}

/// Polls `f` until it holds or the deadline passes.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn has_cluster(name: &'static str) -> impl Fn(&Snapshot) -> bool {
    move |s| s.get(CLUSTERS).is_some_and(|t| t.contains(name))
}

async fn started(store: Arc<dyn ResourceStore>, counts: &Counts) -> (Cache, CancellationToken) {
    let shutdown = CancellationToken::new();
    let cache = Cache::start(
        store,
        counting_generator(counts),
        CacheConfig::default(),
        XdsMetrics::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    (cache, shutdown)
}

/// The meshes marked dirty so far (the rebuild loop's input), in order.
fn marked(cache: &Cache) -> Vec<String> {
    let mut rx = cache.inner.dirty_rx.try_lock().unwrap();
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

#[tokio::test]
async fn a_change_regenerates_only_its_meshs_proxies() {
    // A policy written in mesh a marks only a dirty, and rebuilding a regenerates a's proxies, never b's.
    let counts = Counts::default();
    let cache = Cache::new(
        Arc::new(MemoryStore::new()),
        counting_generator(&counts),
        CacheConfig::default(),
        XdsMetrics::default(),
    );
    let listed = vec![
        mesh("a"),
        mesh("b"),
        dataplane("a", "dp-a"),
        dataplane("b", "dp-b"),
    ];
    cache.handle(
        Event::Init {
            revision: 1,
            resources: listed,
        },
        None,
    );
    // (and the zone proxies, which read every mesh)
    assert_eq!(marked(&cache), ["a", "b", crate::xds::node::ZONE_INGRESS]);
    cache.rebuild("a");
    cache.rebuild("b");
    let (rx_a, _ga) = cache.connect(&proxy("a", "dp-a"));
    let (mut rx_b, _gb) = cache.connect(&proxy("b", "dp-b"));
    assert!(
        rx_a.borrow().is_some() && rx_b.borrow().is_some(),
        "generated on connect"
    );
    rx_b.mark_unchanged();
    let before = (counts.of("dp-a"), counts.of("dp-b"));

    let key = ResourceKey::new(ResourceType::MeshTimeout, Some("a"), "t1");
    let change = weft_store::Change {
        revision: 2,
        kind: weft_store::ChangeKind::Created,
        key,
        resource: Some(policy("a", "t1")),
    };
    cache.handle(Event::Changes(vec![change]), None);
    let dirty = marked(&cache);
    assert_eq!(dirty, ["a"]);
    for m in &dirty {
        cache.rebuild(m);
    }
    assert_eq!(counts.of("dp-a"), before.0 + 1);
    assert_eq!(
        counts.of("dp-b"),
        before.1,
        "mesh b's proxy was regenerated"
    );
    assert!(!rx_b.has_changed().unwrap());
    assert_eq!(clusters(&rx_a), ["MeshTimeout:t1"]);
}

#[tokio::test]
async fn the_rebuild_loop_carries_a_change_to_its_meshs_proxies_only() {
    // Through the real follower and rebuild loop: a's proxy gets a's policy, b's proxy sees no new snapshot.
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    for m in ["a", "b"] {
        put(store.as_ref(), mesh(m)).await;
        put(store.as_ref(), dataplane(m, &format!("dp-{m}"))).await;
    }
    let counts = Counts::default();
    let (cache, _stop) = started(store.clone(), &counts).await;
    let (mut rx_a, _ga) = cache.connect(&proxy("a", "dp-a"));
    let (mut rx_b, _gb) = cache.connect(&proxy("b", "dp-b"));
    snapshot_where(&mut rx_a, "for a", |_| true).await;
    snapshot_where(&mut rx_b, "for b", |_| true).await;
    rx_b.mark_unchanged();
    put(store.as_ref(), policy("a", "t1")).await;
    snapshot_where(&mut rx_a, "with a's policy", has_cluster("MeshTimeout:t1")).await;
    assert!(
        !rx_b.has_changed().unwrap(),
        "mesh b's proxy got a new snapshot"
    );
    assert_eq!(clusters(&rx_b), Vec::<String>::new());
}

#[tokio::test]
async fn an_unchanged_result_is_not_republished() {
    // A change that leaves a proxy's generated resources equal regenerates it but publishes nothing.
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    put(store.as_ref(), mesh("a")).await;
    put(store.as_ref(), policy("a", "t1")).await;
    put(store.as_ref(), dataplane("a", "dp-1")).await;
    let counts = Counts::default();
    let (cache, _stop) = started(store.clone(), &counts).await;
    let (mut rx, _g) = cache.connect(&proxy("a", "dp-1"));
    snapshot_where(&mut rx, "first", has_cluster("MeshTimeout:t1")).await;
    rx.mark_unchanged();
    // The counter follows the publication it counts.
    let published = || cache.stats().published.load(Ordering::SeqCst);
    eventually("the first publication counted", || published() == 1).await;
    let generated = counts.of("dp-1");
    // Another Dataplane: the mesh is rebuilt, dp-1 regenerated, its clusters the same.
    put(store.as_ref(), dataplane("a", "dp-2")).await;
    eventually("dp-1 regenerated", || counts.of("dp-1") > generated).await;
    assert!(
        !rx.has_changed().unwrap(),
        "an equal snapshot was republished"
    );
    assert_eq!(published(), 1);
    // A real change is published.
    put(store.as_ref(), policy("a", "t2")).await;
    snapshot_where(&mut rx, "with t2", has_cluster("MeshTimeout:t2")).await;
}

#[tokio::test]
async fn a_broken_store_keeps_proxies_on_their_config_and_recovers() {
    // While the store cannot be read, proxies keep their snapshot and health says why; writes
    // made meanwhile reach the proxies once it answers again, and health recovers.
    let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn ResourceStore> = faulty.clone();
    put(store.as_ref(), mesh("a")).await;
    put(store.as_ref(), policy("a", "t1")).await;
    put(store.as_ref(), dataplane("a", "dp-1")).await;
    let counts = Counts::default();
    let cache = Cache::new(
        store.clone(),
        counting_generator(&counts),
        CacheConfig::default(),
        XdsMetrics::default(),
    );
    let reporter = Reporter::detached("xds-cache");
    let follower = tokio::spawn({
        let (cache, reporter) = (cache.clone(), reporter.clone());
        async move { cache.follow(reporter).await }
    });
    let rebuilder = tokio::spawn({
        let cache = cache.clone();
        async move { cache.rebuild_loop().await }
    });
    let (mut rx, _g) = cache.connect(&proxy("a", "dp-1"));
    snapshot_where(&mut rx, "first", has_cluster("MeshTimeout:t1")).await;
    eventually("ready", || reporter.state() == health::State::Ready).await;

    faulty.set_failing(true);
    faulty.break_watches();
    eventually("down", || reporter.state() == health::State::Down).await;
    let kept = rx.borrow().clone();
    put(store.as_ref(), policy("a", "t2")).await;
    assert_eq!(*rx.borrow(), kept, "the proxy lost its configuration");

    faulty.set_failing(false);
    snapshot_where(
        &mut rx,
        "with the write made while broken",
        has_cluster("MeshTimeout:t2"),
    )
    .await;
    eventually("ready again", || reporter.state() == health::State::Ready).await;
    // And changes flow as before.
    put(store.as_ref(), policy("a", "t3")).await;
    snapshot_where(&mut rx, "after recovery", has_cluster("MeshTimeout:t3")).await;
    follower.abort();
    rebuilder.abort();
}

#[tokio::test]
async fn a_failed_generation_keeps_the_last_snapshot() {
    // When generation fails the proxy keeps its last good snapshot; the next good one replaces it.
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    put(store.as_ref(), mesh("a")).await;
    put(store.as_ref(), dataplane("a", "dp-1")).await;
    let metrics = XdsMetrics::default();
    let shutdown = CancellationToken::new();
    let cache = Cache::start(
        store.clone(),
        counting_generator(&Counts::default()),
        CacheConfig::default(),
        metrics.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let (mut rx, _g) = cache.connect(&proxy("a", "dp-1"));
    snapshot_where(&mut rx, "first", |_| true).await;
    rx.mark_unchanged();
    put(store.as_ref(), policy("a", "break-generation")).await;
    eventually("a failed generation", || {
        metrics.generation_errors.get() > 0
    })
    .await;
    assert!(!rx.has_changed().unwrap());
    assert!(rx.borrow().is_some());
    store
        .delete(
            &ResourceKey::new(ResourceType::MeshTimeout, Some("a"), "break-generation"),
            None,
        )
        .await
        .unwrap();
    put(store.as_ref(), policy("a", "t1")).await;
    snapshot_where(&mut rx, "after the fix", has_cluster("MeshTimeout:t1")).await;
}

/// A cache with nothing running: connect / disconnect and the grace timers only.
async fn grace_fixture(grace: Duration) -> (Cache, Arc<dyn ResourceStore>, ResourceKey) {
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    put(store.as_ref(), mesh("a")).await;
    put(store.as_ref(), dataplane("a", "dp-1")).await;
    let cache = Cache::new(
        store.clone(),
        counting_generator(&Counts::default()),
        CacheConfig {
            grace,
            ..CacheConfig::default()
        },
        XdsMetrics::default(),
    );
    let key = ResourceKey::new(ResourceType::Dataplane, Some("a"), "dp-1");
    (cache, store, key)
}

/// Lets spawned tasks run, e.g. a grace timer's task, which starts its sleep when
/// first polled (paused time: nothing else advances the clock).
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

async fn exists(store: &Arc<dyn ResourceStore>, key: &ResourceKey) -> bool {
    store.get(key).await.unwrap().is_some()
}

#[tokio::test(start_paused = true)]
async fn a_gone_proxys_dataplane_is_deleted_after_the_grace_period() {
    // The Dataplane stays while the proxy is connected and for the grace period after its last stream closes, then goes.
    let grace = Duration::from_secs(60);
    let (cache, store, key) = grace_fixture(grace).await;
    let (_rx1, g1) = cache.connect(&proxy("a", "dp-1"));
    let (_rx2, g2) = cache.connect(&proxy("a", "dp-1"));
    drop(g1);
    settle().await;
    tokio::time::advance(grace * 2).await;
    settle().await;
    assert!(
        exists(&store, &key).await,
        "deleted while a stream was open"
    );
    drop(g2);
    settle().await;
    tokio::time::advance(grace - Duration::from_secs(1)).await;
    settle().await;
    assert!(
        exists(&store, &key).await,
        "deleted before the grace period"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert!(
        !exists(&store, &key).await,
        "still there after the grace period"
    );
}

#[tokio::test(start_paused = true)]
async fn reconnecting_within_the_grace_period_cancels_the_deletion() {
    // A proxy back before the grace period ends keeps its Dataplane; leaving again starts a new period.
    let grace = Duration::from_secs(60);
    let (cache, store, key) = grace_fixture(grace).await;
    let (_rx, g) = cache.connect(&proxy("a", "dp-1"));
    drop(g);
    settle().await;
    tokio::time::advance(grace / 2).await;
    let (_rx, g) = cache.connect(&proxy("a", "dp-1"));
    // Past the first period's end: its timer fires and must do nothing.
    tokio::time::advance(grace).await;
    settle().await;
    assert!(
        exists(&store, &key).await,
        "deleted though the proxy came back"
    );
    drop(g);
    settle().await;
    tokio::time::advance(grace + Duration::from_secs(1)).await;
    settle().await;
    assert!(
        !exists(&store, &key).await,
        "the second period did not delete it"
    );
}
