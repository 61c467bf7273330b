//! xDS server benchmark: many lightweight ADS clients (tonic, delta) on one
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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use weft_shared::delta::{Any, DeltaDiscoveryRequest, SenderConfig, Snapshot, TypeResources};
use weft_shared::resource::{Resource, Spec, parse_resource};
use weft_shared::shutdown::CancellationToken;
use weft_shared::store::{ResourceStore, SledStore};
use weft_testbed::ads::{self, CLUSTER_TYPE, DeltaStream, ENDPOINT_TYPE, LISTENER_TYPE};
use weft_zone::xds::cache::{Cache, CacheConfig, Generator};
use weft_zone::xds::generate::{self, GenerateError, MeshView};
use weft_zone::xds::metrics::XdsMetrics;
use weft_zone::xds::server::{self, AdsContext};
use weft_zone::xds::{Admit, Insights};

const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const TYPES: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];
const SERVICES: usize = 50;
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

/// Kuma-shaped sidecar config (see the module doc).
fn synthetic(view: &MeshView, dp: &Resource) -> Result<Snapshot, GenerateError> {
    let mut endpoints: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    if let Some(dps) = view.resources.get("Dataplane") {
        for other in dps.values() {
            if let Some((svc, ip, port)) = service_of(other) {
                endpoints.entry(svc).or_default().push((ip, port));
            }
        }
    }
    let timeouts = view
        .resources
        .get("MeshTimeout")
        .map(|p| p.len() as i64)
        .unwrap_or(0);
    let mut clusters = TypeResources::new();
    let mut cla = TypeResources::new();
    for (svc, eps) in &endpoints {
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
        cla.insert_hashed(svc.clone(), any(&l));
    }
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
    Ok(Snapshot::new()
        .with_type(CLUSTER_TYPE, clusters)
        .with_type(ENDPOINT_TYPE, cla)
        .with_type(LISTENER_TYPE, listeners)
        .with_type(ROUTE_TYPE, TypeResources::new()))
}

fn dataplane_json(i: usize) -> String {
    ads::dataplane_json(
        "default",
        &format!("dp-{i}"),
        &format!("svc-{}", i % SERVICES),
        u16::try_from(10_000 + i).unwrap(),
    )
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

fn policy(i: usize) -> Resource {
    let doc = format!(
        "type: MeshTimeout\nname: bench-{i}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: {}s\n",
        60 + i
    );
    parse_resource(doc.as_bytes(), false).unwrap()
}

/// Shared progress of all clients.
#[derive(Default)]
struct Progress {
    /// Initial responses ACKed (one per type per proxy).
    initial_acks: AtomicUsize,
    /// The current round; a client ACKing a CDS response in a new round counts once.
    round: AtomicU64,
    round_acks: AtomicUsize,
}

async fn run_client(i: usize, channel: tonic::transport::Channel, progress: Arc<Progress>) {
    let name = format!("dp-{i}");
    let json = dataplane_json(i);
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node("default", &name, &json)),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let mut s = DeltaStream::open(channel, Some("bench"), first)
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
    let mut initial = 0;
    let mut counted_round = 0;
    while let Ok(r) = s.next().await {
        s.ack(&r).await.unwrap();
        if initial < TYPES.len() {
            initial += 1;
            progress.initial_acks.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let round = progress.round.load(Ordering::Acquire);
        if r.type_url == CLUSTER_TYPE && round > counted_round {
            counted_round = round;
            progress.round_acks.fetch_add(1, Ordering::Release);
        }
    }
}

/// Polls `cond` every millisecond until it holds; panics after `limit`.
async fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
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
    let xds = server::serve(
        "127.0.0.1:0".parse().unwrap(),
        &tls,
        AdsContext {
            store: store.clone(),
            cache: cache.clone(),
            insights: Insights::default(),
            admit,
            metrics,
            sender: SenderConfig::default(),
            shutdown: shutdown.clone(),
        },
    )
    .await
    .unwrap();
    let connections = n.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(ads::channel(&xds.endpoint).await.unwrap());
    }

    let rss_before = vm_rss_kb();
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let mut clients = Vec::new();
    for i in 0..n {
        let ch = channels[i % connections].clone();
        clients.push(tokio::spawn(run_client(i, ch, progress.clone())));
    }
    let connect = wait_until(
        "every proxy ACKs its initial config",
        Duration::from_secs(300),
        || progress.initial_acks.load(Ordering::Relaxed) == n * TYPES.len(),
    )
    .await;
    let _ = start;
    // Let the connect-time rebuilds settle: every proxy has the final endpoint set.
    let stats = cache.stats();
    let mut last = stats.generations.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = stats.generations.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let rss_after = vm_rss_kb();
    let rss_per_proxy_kb = rss_after.saturating_sub(rss_before) as f64 / n as f64;

    let mut put_to_ack = Vec::new();
    let mut gen_per_proxy = Vec::new();
    for round in 1..=rounds {
        let g0 = stats.generations.load(Ordering::Relaxed);
        let ns0 = stats.generation_nanos.load(Ordering::Relaxed);
        progress.round_acks.store(0, Ordering::Release);
        progress.round.store(round as u64, Ordering::Release);
        let t = Instant::now();
        weft_shared::store::put(store.as_ref(), policy(round), None)
            .await
            .unwrap();
        wait_until(
            "every proxy ACKs the policy update",
            Duration::from_secs(60),
            || progress.round_acks.load(Ordering::Acquire) == n,
        )
        .await;
        put_to_ack.push(t.elapsed());
        let g = stats.generations.load(Ordering::Relaxed) - g0;
        let ns = stats.generation_nanos.load(Ordering::Relaxed) - ns0;
        gen_per_proxy.push(Duration::from_nanos(ns / g.max(1)));
    }
    put_to_ack.sort();
    gen_per_proxy.sort();
    let median = |v: &[Duration]| v[v.len() / 2];
    println!("xds: {n} delta ADS clients over {connections} TLS connections, generator: {which}");
    println!("  connect + initial ACK (4 types each): {connect:?}");
    println!(
        "  generation per proxy: median {:?} (over {rounds} mesh-wide updates)",
        median(&gen_per_proxy)
    );
    println!(
        "  RSS per connected proxy: {rss_per_proxy_kb:.1} KB (VmRSS {rss_before} → {rss_after} kB, client side included)"
    );
    println!(
        "  policy PUT → all {n} ACKed: median {:?}, max {:?} ({rounds} rounds)",
        median(&put_to_ack),
        put_to_ack[put_to_ack.len() - 1]
    );
    shutdown.cancel();
    for c in clients {
        c.abort();
    }
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
    rt.block_on(bench(n, rounds));
}
