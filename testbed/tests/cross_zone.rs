//! Traffic across zones, with real processes and real Envoy: a global, zones
//! `east` and `west` federated with it over KDS, an ingress per zone (`weft-dp
//! --proxy-type ingress`), and apps with sidecars in each zone, all on loopback.
//! The mesh has mTLS (cross-zone traffic needs it: the ingress routes on SNI and
//! never decrypts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use weft_testbed::mesh::AppSpec;
use weft_testbed::mesh::traffic::{LoopOptions, request_loop};
use weft_testbed::multizone::{ALLOW_ALL, TwoZones};
use weft_testbed::process::ControlPlane;
use weft_testbed::wait::until;

/// Sequential requests through `url`, by answering instance.
async fn tally(url: &str, n: usize) -> weft_testbed::mesh::Tally {
    request_loop(url, n, &LoopOptions::default()).await
}

// east's frontend calls backend, which runs only in west: the call crosses
// west's ingress over mTLS and is answered by west; the ingress's Envoy holds no
// TLS-terminating listener or cluster (it passes the bytes through by SNI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_reaches_west_through_wests_ingress() {
    let mut zones = TwoZones::start().await.unwrap();
    zones.start_backends_and_frontend(false).await.unwrap();
    let frontend = zones.east.app("frontend-east-1").unwrap();
    let url = frontend.outbound_url("backend", "/");
    let t = tally(&url, 20).await;
    assert_eq!(t.status(200), 20, "{t:?}");
    assert_eq!(t.instance("backend-west-1"), 20, "{t:?}");

    let ingress = &zones.west.ingresses[0];
    let listeners = ingress
        .admin
        .get("/config_dump?resource=dynamic_listeners")
        .await
        .unwrap();
    assert!(
        listeners.contains("backend{mesh=default}"),
        "the ingress routes on backend's SNI: {listeners}"
    );
    let clusters = ingress
        .admin
        .get("/config_dump?resource=dynamic_active_clusters")
        .await
        .unwrap();
    assert!(clusters.contains("default:backend"), "{clusters}");
    for (what, dump) in [("listener", &listeners), ("cluster", &clusters)] {
        assert!(
            !dump.contains("transport_socket"),
            "an ingress {what} terminates or originates TLS: {dump}"
        );
    }
    let stats = ingress.admin.stats().await.unwrap();
    let forwarded = stats
        .iter()
        .find(|(k, _)| {
            k.starts_with("cluster.default_backend.") && k.ends_with("upstream_cx_total")
        })
        .map(|(_, v)| *v)
        .unwrap_or(0);
    assert!(forwarded >= 1, "the ingress forwarded nothing: {stats:?}");
    // Global's overview of west shows its ingress, what it offers, its Dataplanes.
    let g = weft_testbed::Client::new(zones.global.api_url(), zones.global.token());
    let (_, ov) = g.get("/zones/west/_overview").await;
    let proxies = &ov["proxies"];
    assert_eq!(proxies["ingresses"][0]["name"], "ingress-west", "{ov}");
    assert_eq!(proxies["ingresses"][0]["availableServices"], 1, "{ov}");
    assert_eq!(proxies["dataplanes"]["byMesh"]["default"], 1, "{ov}");
    // Online from west's persisted DataplaneInsight (it travels like the Dataplane).
    until(
        Duration::from_secs(5),
        "west's backend online on global",
        || async {
            let (_, ov) = g.get("/zones/west/_overview").await;
            ov["proxies"]["dataplanes"]["online"] == 1
                && ov["proxies"]["dataplanes"]["offline"] == 0
        },
    )
    .await;
    assert_eq!(proxies["notes"], serde_json::json!([]), "{ov}");
    for h in [&zones.east, &zones.west] {
        let rejected = h.rejected_updates().await;
        assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
    }
    drop(zones.global);
}

/// What a request loop saw: per request, when it finished and who answered
/// (`None`: it failed).
#[derive(Debug, Default)]
struct Timeline {
    answers: Vec<(std::time::Instant, Option<String>)>,
}

impl Timeline {
    fn failed(&self) -> usize {
        self.answers.iter().filter(|(_, a)| a.is_none()).count()
    }
}

/// Sequential GETs of `url` (a fresh connection each) until `enough` answers
/// came from `instance` (at most 20,000 requests); `done` counts the requests.
fn record(
    url: String,
    instance: &'static str,
    enough: usize,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<Timeline> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut t = Timeline::default();
        let mut from_instance = 0;
        for _ in 0..20_000 {
            if from_instance >= enough {
                break;
            }
            let answer = match client
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|b| b["instance"].as_str().map(str::to_string)),
                _ => None,
            };
            from_instance += usize::from(answer.as_deref() == Some(instance));
            t.answers.push((std::time::Instant::now(), answer));
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        t
    })
}

// backend runs in both zones: east's frontend stays in east. East's backend
// stops (SIGTERM: it leaves the mesh, then drains): traffic moves to west
// within 5 s with under 1 % failed requests. A new backend in east takes the
// traffic back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_other_zone_and_back() {
    let mut zones = TwoZones::start().await.unwrap();
    zones.start_backends_and_frontend(true).await.unwrap();
    let frontend = zones.east.app("frontend-east-1").unwrap();
    let url = frontend.outbound_url("backend", "/");
    let t = tally(&url, 40).await;
    assert_eq!(
        t.instance("backend-east-1"),
        40,
        "traffic stays in east: {t:?}"
    );

    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let running = record(url.clone(), "backend-west-1", 300, done.clone());
    until(Duration::from_secs(10), "traffic flowing", || async {
        done.load(std::sync::atomic::Ordering::Relaxed) >= 50
    })
    .await;
    let i = zones
        .east
        .apps
        .iter()
        .position(|a| a.spec.instance == "backend-east-1")
        .unwrap();
    let mut backend = zones.east.apps.remove(i);
    let stopped_at = std::time::Instant::now();
    backend.dp.signal(rustix::process::Signal::TERM).unwrap();
    assert!(
        backend
            .dp
            .wait_exit(Duration::from_secs(10))
            .await
            .is_some(),
        "weft-dp did not stop"
    );
    drop(backend);
    let timeline = running.await.unwrap();
    let moved = timeline
        .answers
        .iter()
        .find(|(at, a)| *at > stopped_at && a.as_deref() == Some("backend-west-1"))
        .map(|(at, _)| at.duration_since(stopped_at))
        .expect("west never answered");
    let total = timeline.answers.len();
    let failed = timeline.failed();
    eprintln!(
        "failover: {total} requests, {failed} failed, west answered {moved:?} after the stop"
    );
    assert!(moved < Duration::from_secs(5), "moved after {moved:?}");
    assert!(failed * 100 < total, "{failed} of {total} failed");
    let after: Vec<_> = timeline
        .answers
        .iter()
        .filter(|(at, _)| *at > stopped_at + moved)
        .collect();
    assert!(
        after
            .iter()
            .all(|(_, a)| a.as_deref() == Some("backend-west-1")),
        "after the move every answer is west's: {after:?}"
    );

    // Restore: a new backend in east takes the traffic back.
    zones
        .east
        .start_app(AppSpec::http("backend", "backend-east-2"))
        .await
        .unwrap();
    let frontend = zones.east.app("frontend-east-1").unwrap();
    frontend.until_healthy_hosts("backend", 2).await;
    let t = tally(&url, 20).await;
    assert_eq!(
        t.instance("backend-east-2"),
        20,
        "traffic is back in east: {t:?}"
    );

    // localityAwareness disabled: both zones at priority 0, weighted.
    let g = weft_testbed::Client::new(zones.global.api_url(), zones.global.token());
    let mlbs = "type: MeshLoadBalancingStrategy\nmesh: default\nname: flat\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default:\n        localityAwareness: {disabled: true}\n";
    let (s, body) = g
        .put("/meshes/default/meshloadbalancingstrategies/flat", mlbs)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let ingress = &zones.west.ingresses[0];
    let ingress_host = format!("{}:{}", ingress.ip, ingress.port);
    until(
        Duration::from_secs(10),
        "west's ingress at priority 0",
        || async {
            frontend
                .admin
                .get("/clusters")
                .await
                .is_ok_and(|c| c.contains(&format!("backend::{ingress_host}::priority::0")))
        },
    )
    .await;
    let t = tally(&url, 40).await;
    assert_eq!(t.status(200), 40, "{t:?}");
    assert!(
        t.instance("backend-east-2") > 0 && t.instance("backend-west-1") > 0,
        "both zones answer: {t:?}"
    );
    let rejected = zones.east.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
    drop(zones.global);
}

/// The weight east's `frontend` gives west's ingress in cluster `backend`.
async fn west_weight(zones: &TwoZones) -> Option<u32> {
    let ingress = &zones.west.ingresses[0];
    let host = format!("{}:{}", ingress.ip, ingress.port);
    let frontend = zones.east.app("frontend-east-1")?;
    frontend
        .admin
        .host_weights("backend")
        .await
        .ok()?
        .get(&host)
        .copied()
}

async fn until_west_weight(zones: &TwoZones, weight: u32, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    until(
        within,
        &format!("east weighs west's ingress {weight}"),
        || async { west_weight(zones).await == Some(weight) },
    )
    .await;
    started.elapsed()
}

// A new backend instance in west raises the weight east's Envoy gives west's
// ingress, and stopping it lowers it again. With global SIGKILLed, cross-zone
// traffic keeps flowing; an instance started in west meanwhile reaches east
// once global is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_propagate_and_survive_globals_death() {
    let mut zones = TwoZones::start().await.unwrap();
    zones.start_backends_and_frontend(false).await.unwrap();
    let frontend = zones.east.app("frontend-east-1").unwrap();
    let url = frontend.outbound_url("backend", "/");
    until_west_weight(&zones, 1, Duration::from_secs(5)).await;

    zones
        .west
        .start_app(AppSpec::http("backend", "backend-west-2"))
        .await
        .unwrap();
    let took = until_west_weight(&zones, 2, Duration::from_secs(5)).await;
    eprintln!(
        "measured: a new instance in west weighed in by east's Envoy {took:?} after it was ready"
    );
    let second = zones.west.apps.pop().unwrap();
    second.dp.signal(rustix::process::Signal::TERM).unwrap();
    let took = until_west_weight(&zones, 1, Duration::from_secs(5)).await;
    eprintln!("measured: a stopped instance in west left east's Envoy in {took:?}");
    drop(second);

    // Global dies: east's Envoy keeps its endpoints and traffic flows.
    let global_dir = zones.global.take_dir().unwrap();
    let kds = zones.global.kds_address().unwrap();
    zones.global.process.kill();
    let t = tally(&url, 20).await;
    assert_eq!(t.instance("backend-west-1"), 20, "{t:?}");
    zones
        .west
        .start_app(AppSpec::http("backend", "backend-west-3"))
        .await
        .unwrap();
    let t = tally(&url, 20).await;
    assert_eq!(t.status(200), 20, "{t:?}");
    // Global back on its data dir and KDS port: west reports, east learns.
    let port = kds.to_string();
    zones.global =
        ControlPlane::start_in("weft-global", global_dir.path(), &["--kds-address", &port])
            .unwrap();
    // The zones' KDS back-off caps at 15 s.
    let took = until_west_weight(&zones, 2, Duration::from_secs(30)).await;
    eprintln!("measured: after global's restart, west's new instance reached east in {took:?}");
    // The restarted global's overview of west, from its store: the ingress and
    // both instances, online.
    let g = weft_testbed::Client::new(zones.global.api_url(), zones.global.token());
    until(
        Duration::from_secs(10),
        "west's overview after global's restart",
        || async {
            let (_, ov) = g.get("/zones/west/_overview").await;
            let p = &ov["proxies"];
            p["ingresses"][0]["name"] == "ingress-west"
                && p["ingresses"][0]["instances"] == 2
                && p["dataplanes"]["online"] == 2
        },
    )
    .await;
    let t = tally(&url, 40).await;
    assert_eq!(t.status(200), 40, "{t:?}");
    // The ingress balances connections, not requests (east's Envoy keeps one
    // HTTP/2 connection to it): both instances are among its endpoints.
    let hosts = zones.west.ingresses[0]
        .admin
        .cluster_hosts("default:backend")
        .await
        .unwrap();
    assert_eq!(
        hosts.values().filter(|f| *f == "healthy").count(),
        2,
        "west's ingress forwards to both instances: {hosts:?}"
    );
    drop(global_dir);
}

// A mesh without Mesh mTLS whose workloads take a MeshIdentity with a trust
// domain per zone: the zones exchange their MeshTrusts through global by
// themselves, and east's frontend reaches west's backend through west's
// ingress, each side verifying the other's SPIFFE id against the other zone's
// domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_identity_per_zone_across_zones() {
    const IDENTITY: &str = "type: MeshIdentity\nmesh: default\nname: identity\nspec:\n  selector: {dataplane: {matchLabels: {}}}\n  spiffeID: {trustDomain: \"{{ .Mesh }}.{{ .Zone }}.mesh.local\"}\n  provider: {type: Bundled, bundled: {autogenerate: {enabled: true}}}\n";
    let mut zones = TwoZones::start_with(
        "type: Mesh\nname: default\n",
        &[
            ("/meshes/default/meshidentities/identity", IDENTITY),
            (
                "/meshes/default/meshtrafficpermissions/allow-all",
                ALLOW_ALL,
            ),
        ],
    )
    .await
    .unwrap();
    let app = |service: &str, instance: &str| {
        AppSpec::http(service, instance).label("kuma.io/workload", service)
    };
    zones
        .west
        .start_app(app("backend", "backend-west-1"))
        .await
        .unwrap();
    let frontend = zones
        .east
        .start_app(app("frontend", "frontend-east-1").outbound("backend"))
        .await
        .unwrap();
    frontend.until_healthy_hosts("backend", 1).await;
    let url = frontend.outbound_url("backend", "/");
    until(Duration::from_secs(10), "east → west 200", || async {
        weft_testbed::mesh::traffic::status(&url).await == 200
    })
    .await;
    let t = tally(&url, 20).await;
    assert_eq!(t.instance("backend-west-1"), 20, "{t:?}");
    let backend_certs = zones
        .west
        .app("backend-west-1")
        .unwrap()
        .admin
        .get("/certs")
        .await
        .unwrap();
    assert!(
        backend_certs.contains("spiffe://default.west.mesh.local/workload/backend"),
        "{backend_certs}"
    );
    let frontend_certs = frontend.admin.get("/certs").await.unwrap();
    assert!(
        frontend_certs.contains("spiffe://default.east.mesh.local/workload/frontend"),
        "{frontend_certs}"
    );
    // east's cluster accepts west's domain only for backend's ids.
    let clusters = frontend
        .admin
        .get("/config_dump?resource=dynamic_active_clusters")
        .await
        .unwrap();
    assert!(
        clusters.contains("spiffe://default.west.mesh.local/"),
        "{clusters}"
    );
    for h in [&zones.east, &zones.west] {
        let rejected = h.rejected_updates().await;
        assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
    }
}

// With the Mesh's routing.zoneEgress on, traffic leaving east goes through
// east's egress: east → west passes it (and west's ingress) still encrypted,
// and an ExternalService — an HTTPS echo outside the mesh — is reached through
// it, the egress terminating the sidecar's mTLS and originating TLS verified
// against the service's CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_egress_carries_cross_zone_and_external_traffic() {
    let mesh = format!(
        "{}routing: {{zoneEgress: true}}\n",
        weft_testbed::multizone::MESH_MTLS
    );
    let dir = tempfile::tempdir().unwrap();
    let (_external, external) = external_https(dir.path()).await;
    let mes = mes_of(&external);
    let mut zones = TwoZones::start_with(
        &mesh,
        &[
            (
                "/meshes/default/meshtrafficpermissions/allow-all",
                ALLOW_ALL,
            ),
            ("/meshes/default/externalservices/httpbin", &external),
            ("/meshes/default/meshexternalservices/httpbin-mes", &mes),
        ],
    )
    .await
    .unwrap();
    zones.east.start_egress("egress-east").await.unwrap();
    zones
        .west
        .start_app(AppSpec::http("backend", "backend-west-1"))
        .await
        .unwrap();
    zones
        .east
        .start_app(
            AppSpec::http("frontend", "frontend-east-1")
                .outbound("backend")
                .outbound("httpbin")
                .outbound_mes("httpbin-mes"),
        )
        .await
        .unwrap();
    let frontend = zones.east.app("frontend-east-1").unwrap();
    let egress = &zones.east.egresses[0];
    let egress_host = format!("{}:{}", egress.ip, egress.port);
    until(
        Duration::from_secs(10),
        "backend through east's egress",
        || async {
            frontend
                .admin
                .cluster_hosts("backend")
                .await
                .is_ok_and(|h| h.get(&egress_host).map(String::as_str) == Some("healthy"))
        },
    )
    .await;
    let t = tally(&frontend.outbound_url("backend", "/"), 10).await;
    assert_eq!(t.instance("backend-west-1"), 10, "{t:?}");
    let t = tally(&frontend.outbound_url("httpbin", "/"), 10).await;
    assert_eq!(t.instance("external-https"), 10, "{t:?}");
    // The same service as a MeshExternalService (Kuma 2.14's SecureDataSource shape).
    let t = tally(&frontend.outbound_url("mes:httpbin-mes", "/"), 10).await;
    assert_eq!(t.instance("external-https"), 10, "{t:?}");

    let stats = egress.admin.stats().await.unwrap();
    let cx = |cluster: &str| {
        stats
            .get(&format!("cluster.{cluster}.upstream_cx_total"))
            .copied()
            .unwrap_or(0)
    };
    assert!(
        cx("default_backend") >= 1,
        "east → west through the egress: {stats:?}"
    );
    assert!(
        cx("default_httpbin") >= 1,
        "the external service through the egress: {stats:?}"
    );
    assert!(
        cx("default_meshexternalservice_httpbin-mes") >= 1,
        "the MeshExternalService through the egress: {stats:?}"
    );
    // Cross-zone bytes pass the egress encrypted: its backend chain has no TLS.
    let listeners = egress
        .admin
        .get("/config_dump?resource=dynamic_listeners")
        .await
        .unwrap();
    let dump: serde_json::Value = serde_json::from_str(&listeners).unwrap();
    let chains = dump["configs"][0]["active_state"]["listener"]["filter_chains"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_sni = |sni: &str| {
        chains
            .iter()
            .find(|c| c["filter_chain_match"]["server_names"][0] == sni)
            .cloned()
            .unwrap_or_else(|| panic!("no chain for {sni}: {listeners}"))
    };
    assert!(
        by_sni("backend{mesh=default}")
            .get("transport_socket")
            .is_none()
    );
    assert!(
        by_sni("httpbin{mesh=default}.external")
            .get("transport_socket")
            .is_some()
    );
    let rejected = weft_testbed::mesh::envoy_admin::rejected(&stats);
    assert!(
        rejected.is_empty(),
        "the egress rejected updates: {rejected:?}"
    );
    for h in [&zones.east, &zones.west] {
        let rejected = h.rejected_updates().await;
        assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
    }
}

/// An HTTPS echo outside the mesh (service `httpbin`, instance
/// `external-https`) on 127.0.0.1 with a certificate for `localhost` from a
/// fresh CA; the process and the ExternalService that reaches it (TLS verified
/// against that CA).
async fn external_https(dir: &std::path::Path) -> (weft_testbed::mesh::GroupProcess, String) {
    use weft_testbed::mesh::GroupProcess;
    let ca = weft_security::pki::Ca::generate().unwrap();
    let leaf = ca
        .issue_server_cert(&["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, leaf.chain_pem(&ca)).unwrap();
    std::fs::write(&key, leaf.key_pem.expose()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut echo =
        std::process::Command::new(weft_testbed::process::bin_dir().unwrap().join("weft-echo"));
    echo.args(["--address", &format!("127.0.0.1:{port}")])
        .args(["--service", "httpbin", "--instance", "external-https"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key);
    let process = GroupProcess::spawn("weft-echo external", echo, dir).unwrap();
    until(
        Duration::from_secs(10),
        "the external HTTPS echo listening",
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    let indented: String = ca
        .cert_pem()
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    let resource = format!(
        "type: ExternalService\nmesh: default\nname: httpbin\ntags:\n  kuma.io/service: httpbin\n  kuma.io/protocol: http\nnetworking:\n  address: localhost:{port}\n  tls:\n    enabled: true\n    serverName: localhost\n    caCert:\n      inlineString: |\n{indented}"
    );
    (process, resource)
}

/// The MeshExternalService equivalent of ExternalService `external` (same
/// host, port and CA; the CA as a Secret reference's sibling shape:
/// `type: InsecureInline`).
fn mes_of(external: &str) -> String {
    let port = external
        .split("address: localhost:")
        .nth(1)
        .and_then(|r| r.split('\n').next())
        .unwrap()
        .to_string();
    let ca: String = external
        .split("inlineString: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        "type: MeshExternalService\nmesh: default\nname: httpbin-mes\nspec:\n  match: {{port: 443, protocol: http}}\n  endpoints:\n    - {{address: localhost, port: {port}}}\n  tls:\n    enabled: true\n    verification:\n      serverName: localhost\n      caCert:\n        type: InsecureInline\n        insecureInline:\n          value: |\n{ca}"
    )
}

// Without an egress, a sidecar reaches an ExternalService by itself, over the
// TLS the ExternalService asks for (verified against its CA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_reach_external_services_directly() {
    let dir = tempfile::tempdir().unwrap();
    let (_external, external) = external_https(dir.path()).await;
    let mut mesh = weft_testbed::mesh::MeshHarness::start().await.unwrap();
    let (s, body) = mesh
        .api()
        .put("/meshes/default/externalservices/httpbin", &external)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let client = mesh
        .start_app(AppSpec::http("client", "client-1").outbound("httpbin"))
        .await
        .unwrap();
    let t = tally(&client.outbound_url("httpbin", "/"), 10).await;
    assert_eq!(t.instance("external-https"), 10, "{t:?}");
    let rejected = mesh.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
}
