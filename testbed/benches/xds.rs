//! xDS server benchmark: many lightweight ADS clients (tonic; delta, one in ten SotW) on one
//! in-process zone xDS server.
//!
//! Reports: time to connect N proxies and have every initial response ACKed,
//! generation time per proxy, RSS per connected proxy (VmRSS after − before, / N;
//! clients and server share this process, so the number includes the client side),
//! and the time from a mesh-wide policy PUT (a MeshTimeout written to the sled
//! store) to every proxy having ACKed the resulting update.
//!
//! `cargo bench -p weft-testbed --bench xds` runs 1,000 proxies (override with
//! `WEFT_XDS_BENCH_PROXIES`); under `cargo test` it runs 20, to keep the code
//! exercised. Proxies share HTTP/2 connections, 100 streams per connection (Envoys
//! would each have their own; the per-stream server state is what is measured).
//!
//! Generator: the zone's real one (`xds::generate::generate`) when it produces
//! configuration; while it is a stub that produces nothing, a synthetic one shaped
//! like Kuma's sidecar config (an inbound listener, a cluster and a load assignment
//! per service of the mesh, the mesh's MeshTimeouts folded into every cluster) so a
//! policy change reaches every proxy. The report says which ran.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_model::resource::{Resource, Spec, parse_resource};
use weft_runtime::shutdown::CancellationToken;
use weft_store::{ResourceStore, SledStore};
use weft_sync::delta::{Any, DeltaDiscoveryRequest, SenderConfig, Snapshot, TypeResources};
use weft_testbed::ads::{
    self, CLUSTER_TYPE, DeltaStream, DiscoveryRequest, ENDPOINT_TYPE, LISTENER_TYPE, SotwStream,
};
use weft_zone::xds::cache::{Cache, CacheConfig, Generator};
use weft_zone::xds::generate::{self, GenerateError, MeshView};
use weft_zone::xds::metrics::XdsMetrics;
use weft_zone::xds::server::{self, AdsContext};
use weft_zone::xds::{Admit, XdsEndpoint};

const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const TYPES: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];
const SERVICES: usize = 50;
const OUTBOUNDS: usize = 5;
/// Every tenth proxy speaks SotW, the others delta.
const SOTW_EVERY: usize = 10;
const STREAMS_PER_CONNECTION: usize = 100;

fn any<M: prost::Message + prost::Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn service_of(dp: &Resource) -> Option<(String, String, u32)> {
    let Spec::Dataplane(spec) = &dp.spec else {
        return None;
    };
    let net = spec.networking.as_ref()?;
    let inbound = net.inbound.first()?;
    let service = inbound.tags.get("kuma.io/service")?;
    Some((service.clone(), net.address.clone(), inbound.port))
}

/// What every proxy of a mesh shares: clusters and load assignments per service.
struct Shared {
    clusters: Arc<TypeResources>,
    endpoints: Arc<TypeResources>,
}

/// The shared part is computed once per mesh view (as the real generator does in
/// `MeshView::new`). A rebuild builds its view while the previous one is alive, so
/// consecutive views never share an address; the resource count guards the rest.
static SHARED: Mutex<Option<(ViewKey, Arc<Shared>)>> = Mutex::new(None);

type ViewKey = (usize, usize, u64);

fn view_key(view: &MeshView) -> ViewKey {
    let count = view.resources.values().map(BTreeMap::len).sum();
    (
        std::ptr::from_ref(view) as usize,
        count,
        view.mesh.meta.version,
    )
}

fn shared(view: &MeshView) -> Arc<Shared> {
    let key = view_key(view);
    let mut slot = SHARED.lock().unwrap();
    if let Some((k, s)) = slot.as_ref()
        && *k == key
    {
        return s.clone();
    }
    let mut by_service: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    if let Some(dps) = view.resources.get("Dataplane") {
        for other in dps.values() {
            if let Some((svc, ip, port)) = service_of(other) {
                by_service.entry(svc).or_default().push((ip, port));
            }
        }
    }
    let timeouts = view
        .resources
        .get("MeshTimeout")
        .map(|p| p.len() as i64)
        .unwrap_or(0);
    let mut clusters = TypeResources::new();
    let mut endpoints = TypeResources::new();
    for (svc, eps) in &by_service {
        let c = Cluster {
            name: svc.clone(),
            connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: 5 + timeouts,
                nanos: 0,
            }),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            )),
            eds_cluster_config: Some(cluster::EdsClusterConfig {
                service_name: svc.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        clusters.insert_hashed(svc.clone(), any(&c));
        let l = ClusterLoadAssignment {
            cluster_name: svc.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: eps
                    .iter()
                    .map(|(ip, port)| LbEndpoint {
                        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                            address: Some(socket(ip, *port)),
                            ..Default::default()
                        })),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        endpoints.insert_hashed(svc.clone(), any(&l));
    }
    let s = Arc::new(Shared {
        clusters: Arc::new(clusters),
        endpoints: Arc::new(endpoints),
    });
    *slot = Some((key, s.clone()));
    s
}

/// Kuma-shaped sidecar config (see the module doc).
fn synthetic(view: &MeshView, dp: &Resource) -> Result<Snapshot, GenerateError> {
    let shared = shared(view);
    let mut listeners = TypeResources::new();
    if let Some((_, ip, port)) = service_of(dp) {
        let name = format!("inbound:{ip}:{port}");
        let l = Listener {
            name: name.clone(),
            address: Some(socket(&ip, port)),
            ..Default::default()
        };
        listeners.insert_hashed(name, any(&l));
    }
    let mut s = Snapshot::new();
    s.set_type_shared(CLUSTER_TYPE, shared.clusters.clone());
    s.set_type_shared(ENDPOINT_TYPE, shared.endpoints.clone());
    s.set_type(LISTENER_TYPE, listeners);
    s.set_type(ROUTE_TYPE, TypeResources::new());
    Ok(s)
}

/// Proxy `i`: one inbound of `svc-(i mod 50)` and outbounds to the next
/// `OUTBOUNDS` services (what a sidecar declares without transparent proxying).
fn dataplane_json(i: usize) -> String {
    let outbound: Vec<_> = (1..=OUTBOUNDS)
        .map(|k| {
            serde_json::json!({
                "port": 20_000 + k,
                "tags": {"kuma.io/service": format!("svc-{}", (i + k) % SERVICES)}
            })
        })
        .collect();
    serde_json::json!({
        "type": "Dataplane",
        "mesh": "default",
        "name": format!("dp-{i}"),
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{
                "port": 10_000 + i,
                "tags": {"kuma.io/service": format!("svc-{}", i % SERVICES), "kuma.io/protocol": "http"}
            }],
            "outbound": outbound
        }
    })
    .to_string()
}

/// The real generator when it produces anything, else the synthetic one.
fn pick_generator() -> (Generator, &'static str) {
    let mesh = Arc::new(parse_resource(b"type: Mesh\nname: default\n", false).unwrap());
    let dp = Arc::new(parse_resource(dataplane_json(0).as_bytes(), true).unwrap());
    let view = MeshView::new(mesh, vec![dp.clone()]);
    match generate::generate(&view, &dp) {
        Ok(s) if s.type_urls().next().is_some() => (Arc::new(generate::generate), "real"),
        _ => (
            Arc::new(synthetic),
            "synthetic (the real generator is still a stub)",
        ),
    }
}

fn vm_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The mesh-wide MeshTimeout of round `i`: one policy, its values changed each round
/// (a PUT that updates it), so every proxy's outbound config changes.
fn policy(i: usize) -> Resource {
    let doc = format!(
        "type: MeshTimeout\nname: bench-timeout\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        connectionTimeout: {}s\n        idleTimeout: {}s\n        http:\n          requestTimeout: {}s\n",
        1 + i,
        60 + i,
        10 + i
    );
    parse_resource(doc.as_bytes(), false).unwrap()
}

/// The client side, run in a child process (so the parent's RSS is the zone's):
/// opens `n` delta streams, ACKs every response, prints `ready` once every proxy
/// has ACKed its initial configuration, and runs until its stdin closes.
async fn clients(n: usize, xds: XdsEndpoint) {
    let initial = Arc::new(AtomicUsize::new(0));
    let connections = n.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(ads::channel(&xds).await.unwrap());
    }
    for i in 0..n {
        let ch = channels[i % connections].clone();
        let initial = initial.clone();
        if i % SOTW_EVERY == 0 {
            tokio::spawn(sotw_client(i, ch, initial));
            continue;
        }
        tokio::spawn(async move {
            let name = format!("dp-{i}");
            let json = dataplane_json(i);
            let first = DeltaDiscoveryRequest {
                node: Some(ads::node("default", &name, &json)),
                type_url: CLUSTER_TYPE.into(),
                ..Default::default()
            };
            let mut s = DeltaStream::open(ch, Some("bench"), first)
                .await
                .expect("stream opens");
            for ty in &TYPES[1..] {
                s.send(DeltaDiscoveryRequest {
                    type_url: ty.to_string(),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
            let mut seen = 0;
            while let Ok(r) = s.next().await {
                s.ack(&r).await.unwrap();
                if seen < TYPES.len() {
                    seen += 1;
                    initial.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let every = Duration::from_millis(1);
    wait_until(
        "every proxy ACKs its initial config",
        Duration::from_secs(300),
        every,
        || initial.load(Ordering::Relaxed) == n * TYPES.len(),
    )
    .await;
    println!("ready");
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|r| r > 0) {}
    })
    .await;
}

/// A SotW proxy: all clusters and listeners, every endpoint and route config (`*`).
async fn sotw_client(i: usize, ch: tonic::transport::Channel, initial: Arc<AtomicUsize>) {
    let names = |ty: &str| -> Vec<String> {
        if ty == ENDPOINT_TYPE || ty == ROUTE_TYPE {
            vec!["*".to_string()]
        } else {
            Vec::new()
        }
    };
    let name = format!("dp-{i}");
    let json = dataplane_json(i);
    let first = DiscoveryRequest {
        node: Some(ads::node("default", &name, &json)),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let mut s = SotwStream::open(ch, Some("bench"), first)
        .await
        .expect("stream opens");
    for ty in &TYPES[1..] {
        s.send(DiscoveryRequest {
            type_url: ty.to_string(),
            resource_names: names(ty),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let mut seen = 0;
    while let Ok(r) = s.next().await {
        let keep = names(&r.type_url);
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        s.ack(&r, &keep).await.unwrap();
        if seen < TYPES.len() {
            seen += 1;
            initial.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Polls `cond` every `every` until it holds; panics after `limit`.
async fn wait_until(
    what: &str,
    limit: Duration,
    every: Duration,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(every).await;
    }
    start.elapsed()
}

/// Waits until the generation counter stops moving (connect-time rebuilds done).
async fn settle(stats: &weft_zone::xds::cache::CacheStats) {
    let mut last = stats.generations.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = stats.generations.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

async fn bench(n: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ResourceStore> =
        Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    store
        .create(parse_resource(b"type: Mesh\nname: default\n", false).unwrap())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let metrics = XdsMetrics::default();
    let (generator, which) = pick_generator();
    let cache = Cache::start(
        store.clone(),
        generator,
        CacheConfig::default(),
        metrics.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let tls =
        weft_zone::xds::tls::load_xds_tls(dir.path(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let admit: Admit = Arc::new(|_, _| Ok(()));
    let (xds, serving) = server::serve(
        "127.0.0.1:0".parse().unwrap(),
        &tls,
        AdsContext {
            store: store.clone(),
            cache: cache.clone(),
            admit,
            metrics,
            sender: SenderConfig::default(),
            shutdown: shutdown.clone(),
        },
    )
    .await
    .unwrap();
    tokio::spawn(serving);
    let ca_file = dir.path().join("xds-ca.pem");
    std::fs::write(&ca_file, &xds.endpoint.ca_pem).unwrap();

    let rss_before = vm_rss_kb();
    let start = Instant::now();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("WEFT_XDS_BENCH_ROLE", "clients")
        .env("WEFT_XDS_BENCH_PROXIES", n.to_string())
        .env("WEFT_XDS_BENCH_ADDR", xds.endpoint.address.to_string())
        .env("WEFT_XDS_BENCH_CA", &ca_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
        .await
        .expect("clients ready within 300 s")
        .unwrap();
    assert_eq!(line.as_deref(), Some("ready"));
    let connect = start.elapsed();
    let insights = cache.insights().clone();
    assert_eq!(insights.connected(), n);
    let stats = cache.stats();
    settle(stats).await;
    let rss_after = vm_rss_kb();
    let rss_per_proxy_kb = rss_after.saturating_sub(rss_before) as f64 / n as f64;

    let mut put_to_ack = Vec::new();
    let mut gen_per_proxy = Vec::new();
    for round in 1..=rounds {
        let before = insights.ack_state();
        let g0 = stats.generations.load(Ordering::Relaxed);
        let ns0 = stats.generation_nanos.load(Ordering::Relaxed)
            + stats.view_nanos.load(Ordering::Relaxed);
        let t = Instant::now();
        weft_store::put(store.as_ref(), policy(round), None)
            .await
            .unwrap();
        let mut waiting: Vec<_> = before.keys().cloned().collect();
        // Polled every 5 ms (the result is at most that late): each poll reads every
        // proxy's insight under the lock the streams record into. Done for a proxy:
        // it ACKed something since the PUT and answered everything sent to it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = insights.ack_state();
            waiting.retain(|k| match (now.get(k), before.get(k)) {
                (Some((acked, answered)), Some((acked_before, _))) => {
                    !(acked > acked_before && *answered)
                }
                _ => true,
            });
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let sample = insights.get(&waiting[0]);
                panic!(
                    "round {round}: {} proxies have not ACKed the update within 60 s; e.g. {}: {sample:?}; generations {}",
                    waiting.len(),
                    waiting[0],
                    stats.generations.load(Ordering::Relaxed) - g0,
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!("round {round}: all ACKed after {:?}", t.elapsed());
        put_to_ack.push(t.elapsed());
        settle(stats).await;
        let g = stats.generations.load(Ordering::Relaxed) - g0;
        let ns = stats.generation_nanos.load(Ordering::Relaxed)
            + stats.view_nanos.load(Ordering::Relaxed)
            - ns0;
        gen_per_proxy.push(Duration::from_nanos(ns / g.max(1)));
    }
    put_to_ack.sort();
    gen_per_proxy.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    let connections = n.div_ceil(STREAMS_PER_CONNECTION).max(1);
    println!(
        "xds: {n} ADS clients (1 in {SOTW_EVERY} SotW, the rest delta) over {connections} TLS connections (child process), generator: {which}"
    );
    println!("  connect + initial ACK of 4 types by all: {connect:?}");
    println!(
        "  generation per proxy (incl. the mesh view): median {:?} over {rounds} mesh-wide updates",
        median(&gen_per_proxy)
    );
    println!(
        "  zone RSS per connected proxy: {rss_per_proxy_kb:.1} KB (VmRSS {rss_before} -> {rss_after} kB)"
    );
    println!(
        "  policy PUT -> all {n} ACKed: median {:?}, max {:?} ({rounds} rounds)",
        median(&put_to_ack),
        put_to_ack[put_to_ack.len() - 1]
    );
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    shutdown.cancel();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("WEFT_XDS_BENCH_PROXIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1000 } else { 20 });
    let rounds = if full { 5 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var("WEFT_XDS_BENCH_ROLE").as_deref() == Ok("clients") {
        let address = std::env::var("WEFT_XDS_BENCH_ADDR")
            .unwrap()
            .parse()
            .unwrap();
        let ca_pem = std::fs::read_to_string(std::env::var("WEFT_XDS_BENCH_CA").unwrap()).unwrap();
        rt.block_on(clients(n, XdsEndpoint { address, ca_pem }));
    } else {
        rt.block_on(bench(n, rounds));
    }
}
