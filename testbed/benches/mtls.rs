//! Mesh mTLS benchmark (issue 10).
//!
//! 1. **Certificate issuance**: one thread issues N workload certificates from a
//!    generated mesh CA (`MeshCa::issue`, what the zone does once per proxy), with
//!    where the time goes: parsing the CA key and certificate (done on every call),
//!    generating the P-256 key, and the rest (SANs, signing, PEM).
//! 2. **The generator alone**, one thread, for N proxies of one mesh with mTLS off
//!    and on (what mTLS adds to a proxy's configuration, without its certificate).
//! 3. **Switching a mesh to mTLS**: N lightweight ADS clients (tonic; delta, one in
//!    ten SotW; in a child process, so this process's RSS is the zone's) connect to
//!    an in-process zone xDS server (sled store, the real generator, Envoy's send
//!    order) with mTLS off. Then the Mesh with a builtin mTLS backend and its two CA
//!    Secrets are written in one store transaction, as a Mesh PUT does, and the
//!    clock runs until every client holds and has ACKed `identity_cert:secret:default`
//!    and `mesh_ca:secret:default` and the zone has recorded every one of those ACKs.
//!    A client subscribes to the two SDS names when a cluster or listener it received
//!    names them, and drops them when none does any more (as Envoy does), so the
//!    path measured is PUT → regeneration (one certificate issued per proxy) →
//!    CDS/LDS with TLS → SDS subscription → secrets → ACK. Between rounds mTLS is
//!    turned off (the Mesh without `mtls`); each round writes a fresh CA, so every
//!    round issues every certificate anew (the same CA would keep them). Also
//!    reported: the zone's and the clients' CPU time over the switch, the number of
//!    certificates issued, the zone's RSS growth, and, as a baseline, turning mTLS
//!    off again (every proxy regenerated and pushed, no certificates).
//!
//! `cargo bench -p weft-testbed --bench mtls` runs 1,000 proxies and 3 rounds
//! (override the count with `WEFT_MTLS_BENCH_PROXIES`); under `cargo test` it runs 20
//! and 2 rounds, to keep the code exercised. Proxies share HTTP/2 connections, 100
//! streams per connection, as in the `xds` bench.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use prost::Message;
use rcgen::{Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};
use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;
use weft_model::resource::{Resource, Spec, parse_resource, tags};
use weft_runtime::shutdown::CancellationToken;
use weft_security::pki::mesh_ca;
use weft_security::pki::workload::{MeshCa, WorkloadIdentity};
use weft_store::{ResourceStore, SledStore, WriteOp};
use weft_sync::delta::{DeltaDiscoveryRequest, SenderConfig};
use weft_testbed::ads::{
    self, CLUSTER_TYPE, DeltaStream, DiscoveryRequest, ENDPOINT_TYPE, LISTENER_TYPE, SECRET_TYPE,
    SotwStream,
};
use weft_zone::xds::cache::{self, Cache, CacheConfig, CacheStats};
use weft_zone::xds::generate::{self, MeshView};
use weft_zone::xds::insight::Insights;
use weft_zone::xds::metrics::XdsMetrics;
use weft_zone::xds::node::ProxyKey;
use weft_zone::xds::server::{self, AdsContext};
use weft_zone::xds::{Admit, XdsEndpoint};

const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const TYPES: [&str; 4] = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];
const IDENTITY_SECRET: &str = "identity_cert:secret:default";
const CA_SECRET: &str = "mesh_ca:secret:default";
const SECRETS: [&str; 2] = [IDENTITY_SECRET, CA_SECRET];
const SERVICES: usize = 50;
const OUTBOUNDS: usize = 5;
/// Every tenth proxy speaks SotW, the others delta.
const SOTW_EVERY: usize = 10;
const STREAMS_PER_CONNECTION: usize = 100;

const MESH_PLAIN: &str = "type: Mesh\nname: default\n";
const MESH_MTLS: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n";

// ---------------------------------------------------------------- issuance

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

/// Issues `n` certificates per round on this thread; prints the rate and a breakdown.
fn issuance(n: usize, rounds: usize) {
    let ca = MeshCa::generate("default", Duration::from_secs(3600 * 24 * 365)).unwrap();
    // Per round: whole issues, then the parts `MeshCa::issue` does on every call
    // timed alone (the CA's key and certificate parsed, a key generated).
    let (mut took, mut parse, mut keygen) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for i in 0..n {
            let service = format!("svc-{i}");
            let values = BTreeMap::from([
                (tags::SERVICE.to_string(), vec![service.clone()]),
                ("kuma.io/protocol".to_string(), vec!["http".to_string()]),
            ]);
            let identity = WorkloadIdentity::mesh_service("default", &service, &values).unwrap();
            black_box(ca.issue(&identity, Duration::from_secs(86_400)).unwrap());
        }
        took.push(t.elapsed());
        let t = Instant::now();
        for _ in 0..n {
            let key = KeyPair::from_pem(ca.key_pem().expose()).unwrap();
            black_box(Issuer::from_ca_cert_der(ca.cert_der(), key).unwrap());
        }
        parse.push(t.elapsed());
        let t = Instant::now();
        for _ in 0..n {
            black_box(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap());
        }
        keygen.push(t.elapsed());
    }
    let (best, worst) = (took.iter().min().copied(), took.iter().max().copied());
    let mid = micros(median(&mut took), n);
    let parse = micros(median(&mut parse), n);
    let keygen = micros(median(&mut keygen), n);
    println!(
        "mtls: certificate issuance (MeshCa::issue, P-256), one thread, {n} per round, {rounds} rounds"
    );
    println!(
        "  median {:.0} certificates/s ({mid:.1} µs per certificate); best {:.1} µs, worst {:.1} µs",
        1e6 / mid,
        micros(best.unwrap(), n),
        micros(worst.unwrap(), n),
    );
    println!(
        "  per certificate (medians): CA key + certificate parsed {parse:.1} µs, P-256 key generated {keygen:.1} µs, the rest (SANs, signing, PEM) {:.1} µs",
        (mid - parse - keygen).max(0.0)
    );
}

// ---------------------------------------------------------------- clients

/// Proxy `i`: one HTTP inbound of `svc-(i mod 50)` and outbounds to the next
/// `OUTBOUNDS` services (the `xds` bench's proxies).
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

/// Whether an encoded cluster or listener names the proxy's certificate over SDS.
fn names_secrets(encoded: &[u8]) -> bool {
    let needle = IDENTITY_SECRET.as_bytes();
    encoded.windows(needle.len()).any(|w| w == needle)
}

/// What one client knows of the SDS secrets its configuration names.
#[derive(Default)]
struct Sds {
    /// Per type (clusters, listeners): the resources naming the secrets.
    naming: BTreeMap<String, BTreeSet<String>>,
    subscribed: bool,
    /// Secret names held (ACKed once the response is answered).
    held: BTreeSet<String>,
    /// Counted in the shared `complete` count.
    complete: bool,
}

/// A subscription change the client must send.
enum Change {
    Subscribe,
    Unsubscribe,
}

impl Sds {
    /// After a cluster or listener response: subscribe when something names the
    /// secrets, drop them when nothing does any more.
    fn change(&mut self) -> Option<Change> {
        let wanted = self.naming.values().any(|s| !s.is_empty());
        match (wanted, self.subscribed) {
            (true, false) => {
                self.subscribed = true;
                Some(Change::Subscribe)
            }
            (false, true) => {
                self.subscribed = false;
                self.held.clear();
                Some(Change::Unsubscribe)
            }
            _ => None,
        }
    }

    /// Updates `complete` (clients holding both secrets) after a response was ACKed.
    fn count(&mut self, complete: &AtomicUsize) {
        let now = self.subscribed && SECRETS.iter().all(|s| self.held.contains(*s));
        if now != self.complete {
            if now {
                complete.fetch_add(1, Ordering::Relaxed);
            } else {
                complete.fetch_sub(1, Ordering::Relaxed);
            }
            self.complete = now;
        }
    }
}

/// Counters the clients share with the reporting loop.
#[derive(Default)]
struct Progress {
    /// (proxy, type) pairs of the four initial types that got a first response.
    initial: AtomicUsize,
    /// Proxies holding both secrets, ACKed.
    complete: AtomicUsize,
}

async fn delta_client(i: usize, ch: tonic::transport::Channel, progress: Arc<Progress>) {
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
    let mut sds = Sds::default();
    let mut seen = BTreeSet::new();
    while let Ok(r) = s.next().await {
        if r.type_url == CLUSTER_TYPE || r.type_url == LISTENER_TYPE {
            let naming = sds.naming.entry(r.type_url.clone()).or_default();
            for res in &r.resources {
                if res
                    .resource
                    .as_ref()
                    .is_some_and(|a| names_secrets(&a.value))
                {
                    naming.insert(res.name.clone());
                } else {
                    naming.remove(&res.name);
                }
            }
            for gone in &r.removed_resources {
                naming.remove(gone);
            }
            match sds.change() {
                Some(Change::Subscribe) => s.subscribe(SECRET_TYPE, &SECRETS).await.unwrap(),
                Some(Change::Unsubscribe) => s.unsubscribe(SECRET_TYPE, &SECRETS).await.unwrap(),
                None => {}
            }
        } else if r.type_url == SECRET_TYPE && sds.subscribed {
            for res in &r.resources {
                sds.held.insert(res.name.clone());
            }
            for gone in &r.removed_resources {
                sds.held.remove(gone);
            }
        }
        s.ack(&r).await.unwrap();
        sds.count(&progress.complete);
        if TYPES.contains(&r.type_url.as_str()) && seen.insert(r.type_url.clone()) {
            progress.initial.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A SotW proxy: all clusters and listeners, every endpoint and route config (`*`),
/// and the two secrets by name while its configuration names them.
async fn sotw_client(i: usize, ch: tonic::transport::Channel, progress: Arc<Progress>) {
    let names = |ty: &str| -> Vec<&'static str> {
        if ty == ENDPOINT_TYPE || ty == ROUTE_TYPE {
            vec!["*"]
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
        s.subscribe(ty, &names(ty)).await.unwrap();
    }
    let mut sds = Sds::default();
    let mut seen = BTreeSet::new();
    while let Ok(r) = s.next().await {
        if r.type_url == CLUSTER_TYPE || r.type_url == LISTENER_TYPE {
            // Full state: the type's resources are all in the response.
            let naming = sds.naming.entry(r.type_url.clone()).or_default();
            naming.clear();
            if r.resources.iter().any(|a| names_secrets(&a.value)) {
                naming.insert("*".into());
            }
            match sds.change() {
                Some(Change::Subscribe) => s.subscribe(SECRET_TYPE, &SECRETS).await.unwrap(),
                Some(Change::Unsubscribe) => s.subscribe(SECRET_TYPE, &[]).await.unwrap(),
                None => {}
            }
        } else if r.type_url == SECRET_TYPE && sds.subscribed {
            sds.held = r
                .resources
                .iter()
                .map(|a| Secret::decode(a.value.as_slice()).unwrap().name)
                .collect();
        }
        let keep = if r.type_url == SECRET_TYPE {
            if sds.subscribed {
                SECRETS.to_vec()
            } else {
                Vec::new()
            }
        } else {
            names(&r.type_url)
        };
        s.ack(&r, &keep).await.unwrap();
        sds.count(&progress.complete);
        if TYPES.contains(&r.type_url.as_str()) && seen.insert(r.type_url.clone()) {
            progress.initial.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The client side, run in a child process: opens `n` streams, prints `ready` once
/// every proxy has its initial configuration, then `on` each time every proxy holds
/// (and ACKed) both secrets and `off` each time none does; runs until stdin closes.
async fn clients(n: usize, xds: XdsEndpoint) {
    let progress = Arc::new(Progress::default());
    let connections = n.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(ads::channel(&xds).await.unwrap());
    }
    for i in 0..n {
        let ch = channels[i % connections].clone();
        if i % SOTW_EVERY == 0 {
            tokio::spawn(sotw_client(i, ch, progress.clone()));
        } else {
            tokio::spawn(delta_client(i, ch, progress.clone()));
        }
    }
    let every = Duration::from_millis(1);
    wait_until(
        "every proxy ACKs its initial config",
        Duration::from_secs(300),
        every,
        || progress.initial.load(Ordering::Relaxed) == n * TYPES.len(),
    )
    .await;
    println!("ready");
    let mut stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|r| r > 0) {}
    });
    let mut expect_on = true;
    loop {
        tokio::select! {
            _ = &mut stdin_closed => return,
            () = tokio::time::sleep(every) => {}
        }
        let complete = progress.complete.load(Ordering::Relaxed);
        if expect_on && complete == n {
            println!("on");
            expect_on = false;
        } else if !expect_on && complete == 0 {
            println!("off");
            expect_on = true;
        }
    }
}

// ---------------------------------------------------------------- zone side

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

/// Waits until the generation counter stops moving.
async fn settle(stats: &CacheStats) {
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

fn vm_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) of process `pid`, or of this one, in ms;
/// clock ticks of 10 ms (Linux's usual 100 Hz), so good to ±10 ms.
fn cpu_ms(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command's closing parenthesis start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10
}

/// The next line the clients print, which must be `want`.
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, want: &str, limit: Duration) {
    let line = tokio::time::timeout(limit, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("clients print {want:?} within {limit:?}"))
        .unwrap();
    assert_eq!(line.as_deref(), Some(want));
}

/// Per proxy: the zone's count of Secret ACKs, and whether every Secret response
/// sent has been answered.
fn secret_acks(insights: &Insights, keys: &[ProxyKey]) -> Vec<(u64, bool)> {
    keys.iter()
        .map(|k| {
            let t = insights
                .get(k)
                .and_then(|i| i.types.get(SECRET_TYPE).cloned())
                .unwrap_or_default();
            (t.acked, t.acked + t.nacked == t.responses_sent)
        })
        .collect()
}

/// Certificates the zone has issued to `keys` so far (first issues and renewals).
fn issued(cache: &Cache, keys: &[ProxyKey]) -> u64 {
    keys.iter()
        .filter_map(|k| cache.certificate(k))
        .map(|c| c.certificate_regenerations)
        .sum()
}

/// The Mesh with its builtin backend, then that backend's two CA Secrets (a fresh
/// CA): what a Mesh PUT stores.
fn mtls_resources() -> Vec<Resource> {
    let mesh = parse_resource(MESH_MTLS.as_bytes(), false).unwrap();
    let Spec::Mesh(spec) = &mesh.spec else {
        panic!("not a Mesh")
    };
    let backend = &spec.mtls.as_ref().unwrap().backends[0];
    let (_, secrets) = mesh_ca::builtin_ca_secrets("default", backend).unwrap();
    let mut out = vec![mesh];
    out.extend(secrets);
    out
}

/// The generator alone (no certificate issued), on this thread, for `n` proxies
/// of one mesh, with mTLS off and on; and the mesh view builds (with mTLS on, the
/// view loads the CA from its Secrets).
fn generation(n: usize) {
    let dataplanes: Vec<Arc<Resource>> = (0..n)
        .map(|i| Arc::new(parse_resource(dataplane_json(i).as_bytes(), true).unwrap()))
        .collect();
    let mut on = mtls_resources().into_iter().map(Arc::new);
    let mesh_on = on.next().unwrap();
    let mesh_off = Arc::new(parse_resource(MESH_PLAIN.as_bytes(), false).unwrap());
    let measure = |mesh: Arc<Resource>, extra: Vec<Arc<Resource>>| {
        let mtls = !extra.is_empty();
        let resources = dataplanes.iter().cloned().chain(extra).collect();
        let t = Instant::now();
        let view = MeshView::new(mesh, resources);
        let build = t.elapsed();
        // With mTLS on, the CA must load (else the proxies get no certificate).
        assert_eq!(
            view.mtls.as_ref().map(|tls| tls.ca.is_ok()),
            mtls.then_some(true)
        );
        let t = Instant::now();
        for dp in &dataplanes {
            black_box(generate::generate(&view, dp).unwrap());
        }
        (build, micros(t.elapsed(), n))
    };
    let (view_off, off) = measure(mesh_off, Vec::new());
    let (view_on, with) = measure(mesh_on, on.collect());
    println!(
        "mtls: the generator alone (no certificate issued), one thread, {n} proxies: {off:.1} µs per proxy with mTLS off, {with:.1} µs with mTLS on; mesh view built in {view_off:?} off, {view_on:?} on (loads the CA)"
    );
}

/// What one round measured.
struct Round {
    /// Every proxy regenerated (its certificate issued).
    generated: Duration,
    /// Every client holds both secrets and has sent its ACK.
    clients: Duration,
    /// The zone has recorded every client's Secret ACK.
    acked: Duration,
    certificates: u64,
    rebuilds: u64,
    generation_per_proxy: Duration,
    /// CPU used from the write until the zone recorded every ACK, in ms.
    zone_cpu: u64,
    clients_cpu: u64,
}

async fn switch(n: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ResourceStore> =
        Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    store
        .create(parse_resource(MESH_PLAIN.as_bytes(), false).unwrap())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let metrics = XdsMetrics::default();
    let cache = Cache::start(
        store.clone(),
        cache::default_generator(),
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
            metrics: metrics.clone(),
            sender: SenderConfig::envoy(),
            shutdown: shutdown.clone(),
        },
    )
    .await
    .unwrap();
    tokio::spawn(serving);
    let ca_file = dir.path().join("xds-ca.pem");
    std::fs::write(&ca_file, &xds.endpoint.ca_pem).unwrap();

    let start = Instant::now();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("WEFT_MTLS_BENCH_ROLE", "clients")
        .env("WEFT_MTLS_BENCH_PROXIES", n.to_string())
        .env("WEFT_MTLS_BENCH_ADDR", xds.endpoint.address.to_string())
        .env("WEFT_MTLS_BENCH_CA", &ca_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "ready", Duration::from_secs(300)).await;
    let connect = start.elapsed();
    let insights = cache.insights().clone();
    assert_eq!(insights.connected(), n);
    let stats = cache.stats();
    settle(stats).await;
    let keys: Vec<ProxyKey> = insights.ack_state().into_keys().collect();
    assert_eq!(keys.len(), n);
    let (nacks0, errors0, stalls0) = (
        metrics.nacks.get(),
        metrics.generation_errors.get(),
        metrics.stalls.get(),
    );

    let mut measured = Vec::new();
    // Turning mTLS off again, the baseline without it: until every client dropped
    // its secrets, the zone's CPU (ms), and generation per proxy.
    let mut off: Vec<(Duration, u64)> = Vec::new();
    let mut plain_generation = Vec::new();
    let mut rss = (0, 0);
    for round in 1..=rounds {
        let rss_before = vm_rss_kb();
        let acks_before = secret_acks(&insights, &keys);
        let issued_before = issued(&cache, &keys);
        let g0 = stats.generations.load(Ordering::Relaxed);
        let ns0 = stats.generation_nanos.load(Ordering::Relaxed)
            + stats.view_nanos.load(Ordering::Relaxed);
        let rebuilds0 = stats.rebuilds.load(Ordering::Relaxed);

        let cpu0 = (cpu_ms(None), cpu_ms(child.id()));
        // The clock starts where a Mesh PUT's handler would: before the CA exists.
        let t = Instant::now();
        let watcher = cache.clone();
        let generated = tokio::spawn(async move {
            let stats = watcher.stats();
            let target = g0 + n as u64;
            while stats.generations.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            t.elapsed()
        });
        let written = tokio::task::spawn_blocking(mtls_resources).await.unwrap();
        store
            .transact(written.into_iter().map(WriteOp::Upsert).collect())
            .await
            .unwrap();
        expect_line(&mut lines, "on", Duration::from_secs(120)).await;
        let clients = t.elapsed();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = secret_acks(&insights, &keys);
            let waiting: Vec<usize> = (0..n)
                .filter(|&i| !(now[i].0 > acks_before[i].0 && now[i].1))
                .collect();
            if waiting.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "round {round}: the zone has not recorded the Secret ACK of {} proxies within 60 s; e.g. {}: {:?}",
                    waiting.len(),
                    keys[waiting[0]],
                    insights.get(&keys[waiting[0]]),
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let acked = t.elapsed();
        let cpu = (cpu_ms(None) - cpu0.0, cpu_ms(child.id()) - cpu0.1);
        let generated = tokio::time::timeout(Duration::from_secs(10), generated)
            .await
            .expect("every proxy regenerated")
            .unwrap();
        eprintln!("round {round}: all ACKed their secrets after {acked:?}");
        settle(stats).await;
        if round == 1 {
            rss = (rss_before, vm_rss_kb());
        }
        let g = stats.generations.load(Ordering::Relaxed) - g0;
        let ns = stats.generation_nanos.load(Ordering::Relaxed)
            + stats.view_nanos.load(Ordering::Relaxed)
            - ns0;
        measured.push(Round {
            generated,
            clients,
            acked,
            certificates: issued(&cache, &keys) - issued_before,
            rebuilds: stats.rebuilds.load(Ordering::Relaxed) - rebuilds0,
            generation_per_proxy: Duration::from_nanos(ns / g.max(1)),
            zone_cpu: cpu.0,
            clients_cpu: cpu.1,
        });

        if round < rounds {
            let (g0, ns0) = (
                stats.generations.load(Ordering::Relaxed),
                stats.generation_nanos.load(Ordering::Relaxed)
                    + stats.view_nanos.load(Ordering::Relaxed),
            );
            let plain = parse_resource(MESH_PLAIN.as_bytes(), false).unwrap();
            let cpu0 = cpu_ms(None);
            let t = Instant::now();
            store.transact(vec![WriteOp::Upsert(plain)]).await.unwrap();
            expect_line(&mut lines, "off", Duration::from_secs(120)).await;
            off.push((t.elapsed(), cpu_ms(None) - cpu0));
            settle(stats).await;
            let g = stats.generations.load(Ordering::Relaxed) - g0;
            let ns = stats.generation_nanos.load(Ordering::Relaxed)
                + stats.view_nanos.load(Ordering::Relaxed)
                - ns0;
            plain_generation.push(Duration::from_nanos(ns / g.max(1)));
        }
    }

    let connections = n.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let stat = |f: fn(&Round) -> Duration| {
        let mut v: Vec<Duration> = measured.iter().map(f).collect();
        let max = v.iter().max().copied().unwrap();
        (median(&mut v), max)
    };
    println!(
        "mtls: switching mesh default to mTLS with {n} ADS clients (1 in {SOTW_EVERY} SotW, the rest delta) over {connections} TLS connections (child process), real generator, Envoy send order"
    );
    println!("  connect + initial ACK of 4 types by all (mTLS off): {connect:?}");
    let (med, max) = stat(|r| r.generated);
    println!(
        "  write (fresh CA + Mesh + 2 Secrets, one transaction) -> every proxy regenerated, certificate issued: median {med:?}, max {max:?} ({rounds} rounds)"
    );
    let (med, max) = stat(|r| r.clients);
    println!(
        "  write -> all {n} clients hold and ACKed {IDENTITY_SECRET} + {CA_SECRET}: median {med:?}, max {max:?}"
    );
    let (med, max) = stat(|r| r.acked);
    println!("  write -> the zone recorded all {n} Secret ACKs: median {med:?}, max {max:?}");
    let (med, _) = stat(|r| r.generation_per_proxy);
    println!(
        "  generation per proxy during the switch (incl. the mesh view and certificate issuance): median {med:?}"
    );
    let mut zone_cpu: Vec<u64> = measured.iter().map(|r| r.zone_cpu).collect();
    let mut clients_cpu: Vec<u64> = measured.iter().map(|r| r.clients_cpu).collect();
    zone_cpu.sort();
    clients_cpu.sort();
    let zone_cpu = zone_cpu[zone_cpu.len() / 2];
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "  CPU from the write until the zone recorded every ACK (median, ±10 ms; {cores} cores): zone {zone_cpu} ms ({:.0} µs per proxy), clients {} ms",
        zone_cpu as f64 * 1000.0 / n as f64,
        clients_cpu[clients_cpu.len() / 2]
    );
    if !off.is_empty() {
        off.sort();
        let (wall, cpu) = off[off.len() / 2];
        println!(
            "  turning mTLS off again (Mesh without mtls) -> every client dropped its secrets: median {wall:?}, zone CPU {cpu} ms, generation per proxy {:?}",
            median(&mut plain_generation)
        );
    }
    let certs: Vec<String> = measured
        .iter()
        .map(|r| r.certificates.to_string())
        .collect();
    let rebuilds: Vec<String> = measured.iter().map(|r| r.rebuilds.to_string()).collect();
    println!(
        "  certificates issued per round: {}; mesh rebuilds per round: {}",
        certs.join(", "),
        rebuilds.join(", ")
    );
    let (rss_before, rss_after) = rss;
    println!(
        "  zone RSS growth from turning mTLS on (first round): {:.1} KB per proxy (VmRSS {rss_before} -> {rss_after} kB)",
        rss_after.saturating_sub(rss_before) as f64 / n as f64
    );
    println!(
        "  NACKs: {}, generation errors: {}, stalls: {}",
        metrics.nacks.get() - nacks0,
        metrics.generation_errors.get() - errors0,
        metrics.stalls.get() - stalls0
    );
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    shutdown.cancel();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = std::env::var("WEFT_MTLS_BENCH_PROXIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1000 } else { 20 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::var("WEFT_MTLS_BENCH_ROLE").as_deref() == Ok("clients") {
        let address = std::env::var("WEFT_MTLS_BENCH_ADDR")
            .unwrap()
            .parse()
            .unwrap();
        let ca_pem = std::fs::read_to_string(std::env::var("WEFT_MTLS_BENCH_CA").unwrap()).unwrap();
        rt.block_on(clients(n, XdsEndpoint { address, ca_pem }));
        return;
    }
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::io::stderr)
        .init();
    issuance(n, if full { 5 } else { 1 });
    generation(n);
    rt.block_on(switch(n, if full { 3 } else { 2 }));
}
