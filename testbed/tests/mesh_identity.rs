//! MeshIdentity and MeshTrust across zones, with real processes: global and two
//! federated zones. Each zone creates the CA of its own trust domain and keeps its
//! key to itself; its MeshTrust reaches the other zone through global with no
//! manual step; deleting a zone's MeshTrust on global withdraws it from the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use weft_testbed::wait::until;
use weft_testbed::{Client, ControlPlane};

const IDENTITY: &str = "type: MeshIdentity\nmesh: default\nname: identity\nspec:\n  selector: {dataplane: {matchLabels: {}}}\n  spiffeID: {trustDomain: \"{{ .Mesh }}.{{ .Zone }}.mesh.local\"}\n  provider: {type: Bundled, bundled: {autogenerate: {enabled: true}}}\n";

/// The trust domains of the MeshTrusts `api` holds in mesh `default`.
async fn trust_domains(api: &Client) -> Vec<String> {
    let (s, body) = api.get("/meshes/default/meshtrusts").await;
    if !s.is_success() {
        return Vec::new();
    }
    let mut out: Vec<String> = body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["spec"]["trustDomain"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// The SPIFFE trust domains `api`'s zone has its proxies verify peers in.
async fn verified_domains(api: &Client) -> Vec<String> {
    let (_, body) = api.get("/meshes/default/_mtls").await;
    body["trustDomains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect()
}

/// Every file under `dir` whose content holds a private key.
fn key_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(key_files(&p));
        } else if std::fs::read(&p)
            .map(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY"))
            .unwrap_or(false)
        {
            out.push(p);
        }
    }
    out
}

// Two zones, each with its own trust domain: the MeshIdentity written on global
// makes each zone create its CA and publish its MeshTrust; each zone holds the
// other's within a second; no CA key exists outside its zone (not in global's or
// the other zone's store, API or data dir); deleting west's MeshTrust on global
// withdraws it from east within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_exchange_trust_and_keep_their_keys() {
    let (global, east, west) = tokio::task::spawn_blocking(|| {
        let global = ControlPlane::global(&[]).unwrap();
        let east = ControlPlane::federated_zone(&global, "east", &[]).unwrap();
        let west = ControlPlane::federated_zone(&global, "west", &[]).unwrap();
        (global, east, west)
    })
    .await
    .unwrap();
    let g = Client::new(global.api_url(), global.token());
    let e = Client::new(east.api_url(), east.token());
    let w = Client::new(west.api_url(), west.token());
    for api in [&e, &w] {
        until(Duration::from_secs(15), "mesh default synced", || async {
            api.get("/meshes/default").await.0 == 200
        })
        .await;
    }

    let written = Instant::now();
    let (s, body) = g
        .put("/meshes/default/meshidentities/identity", IDENTITY)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let both = vec![
        "default.east.mesh.local".to_string(),
        "default.west.mesh.local".to_string(),
    ];
    until(
        Duration::from_secs(10),
        "both zones hold both trust domains",
        || async { trust_domains(&e).await == both && trust_domains(&w).await == both },
    )
    .await;
    let exchanged = written.elapsed();
    assert_eq!(trust_domains(&g).await, both);
    // What east's proxies verify peers against: both domains.
    until(
        Duration::from_secs(5),
        "east's proxies trust both domains",
        || async { verified_domains(&e).await == both },
    )
    .await;
    eprintln!("MeshIdentity PUT on global → both zones hold both MeshTrusts: {exchanged:?}");
    assert!(exchanged < Duration::from_secs(2), "took {exchanged:?}");

    // Keys: each zone's data dir holds exactly its own CA key; global's none.
    let east_keys = key_files(&east.data_dir().join("mesh-identities"));
    let west_keys = key_files(&west.data_dir().join("mesh-identities"));
    assert_eq!(east_keys.len(), 1, "{east_keys:?}");
    assert_eq!(west_keys.len(), 1, "{west_keys:?}");
    let east_key = std::fs::read_to_string(&east_keys[0]).unwrap();
    let west_key = std::fs::read_to_string(&west_keys[0]).unwrap();
    assert_ne!(east_key, west_key);
    for (who, dir) in [("global", global.data_dir()), ("west", west.data_dir())] {
        for f in key_files(dir) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains(east_key.trim()),
                "east's CA key in {who}'s {f:?}"
            );
        }
    }
    for (who, api) in [("global", &g), ("east", &e), ("west", &w)] {
        for path in [
            "/meshes/default/secrets",
            "/meshes/default/meshtrusts",
            "/meshes/default/meshidentities",
        ] {
            let (_, body) = api.get(path).await;
            assert!(
                !body.to_string().contains("PRIVATE KEY"),
                "{who} {path}: {body}"
            );
        }
    }

    // Cut west off: delete its MeshTrust on global.
    let (_, list) = g.get("/meshes/default/meshtrusts").await;
    let west_trust = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["spec"]["trustDomain"] == "default.west.mesh.local")
        .and_then(|i| i["name"].as_str())
        .unwrap()
        .to_string();
    let deleted = Instant::now();
    let (s, body) = g
        .delete(&format!("/meshes/default/meshtrusts/{west_trust}"))
        .await;
    assert!(s.is_success(), "{s} {body}");
    until(
        Duration::from_secs(10),
        "east no longer trusts west",
        || async { trust_domains(&e).await == ["default.east.mesh.local".to_string()] },
    )
    .await;
    let withdrawn = deleted.elapsed();
    eprintln!(
        "west's MeshTrust deleted on global → east's proxies stop trusting west: {withdrawn:?}"
    );
    assert!(withdrawn < Duration::from_secs(1), "took {withdrawn:?}");
    drop((east, west, global));
}

// A standalone zone with a MeshIdentity and no Mesh mTLS: every proxy gets the
// SPIFFE id `spiffe://default.default.mesh.local/workload/<workload>` from the
// zone's CA; traffic is mTLS (plaintext to an inbound fails); a permission by
// SPIFFE id lets frontend in and refuses another workload with 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_identity_secures_traffic_in_a_zone() {
    use weft_testbed::mesh::traffic::status;
    use weft_testbed::mesh::{AppSpec, MeshHarness};
    let mut mesh = MeshHarness::start().await.unwrap();
    let (s, body) = mesh
        .api()
        .put("/meshes/default/meshidentities/identity", IDENTITY)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let doc = "type: MeshTrafficPermission\nmesh: default\nname: frontend-only\nspec:\n  targetRef: {kind: MeshService, name: backend}\n  rules:\n    - default:\n        allow:\n          - spiffeID: {type: Exact, value: \"spiffe://default.default.mesh.local/workload/frontend\"}\n";
    let (s, body) = mesh
        .api()
        .put("/meshes/default/meshtrafficpermissions/frontend-only", doc)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let app = |service: &str| {
        AppSpec::http(service, &format!("{service}-1")).label("kuma.io/workload", service)
    };
    mesh.start_app(app("backend")).await.unwrap();
    for client in ["frontend", "other"] {
        mesh.start_app(app(client).outbound("backend"))
            .await
            .unwrap()
            .until_healthy_hosts("backend", 1)
            .await;
    }
    let frontend = mesh.app("frontend-1").unwrap().outbound_url("backend", "/");
    let other = mesh.app("other-1").unwrap().outbound_url("backend", "/");
    let backend = mesh.app("backend-1").unwrap();
    let direct = format!("http://{}:{}/", backend.ip, backend.inbound_port);
    until(
        Duration::from_secs(10),
        "frontend → backend 200",
        || async { status(&frontend).await == 200 },
    )
    .await;
    assert_eq!(status(&other).await, 403);
    assert_eq!(
        status(&direct).await,
        0,
        "plaintext into an identity's inbound"
    );
    let certs = backend.admin.get("/certs").await.unwrap();
    assert!(
        certs.contains("spiffe://default.default.mesh.local/workload/backend"),
        "{certs}"
    );
    let (_, overview) = mesh
        .api()
        .get("/meshes/default/dataplanes/backend-1/_overview")
        .await;
    assert_eq!(
        overview["dataplaneInsight"]["mTLS"]["issuedBackend"], "MeshIdentity/identity",
        "{overview}"
    );
    let (_, trust) = mesh.api().get("/meshes/default/_mtls").await;
    assert_eq!(
        trust["trustDomains"],
        serde_json::json!(["default.default.mesh.local"]),
        "{trust}"
    );
    let rejected = mesh.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
}

// Replacing a MeshIdentity's CA (provided CA ca-1 → ca-2, from Secrets) under a
// continuous HTTP loop and a loop of new TCP connections (one mTLS handshake each):
// ca-2 is trusted first, certificates move to it once every proxy trusts it, and
// ca-1 is dropped once every proxy holds a ca-2 certificate — no failure, and
// afterwards the zone's MeshTrust carries ca-2 alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_identity_ca_rotation_without_failures() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use weft_security::pki::workload::MeshCa;
    use weft_testbed::mesh::traffic::{http_until, status, tcp_until};
    use weft_testbed::mesh::{AppSpec, MeshHarness};
    let mut mesh = MeshHarness::start().await.unwrap();
    let api = mesh.api();
    let mut fingerprints = Vec::new();
    for n in ["ca-1", "ca-2"] {
        let ca =
            MeshCa::generate("default.default.mesh.local", Duration::from_secs(86_400)).unwrap();
        fingerprints.push(ca.fingerprint().to_string());
        api.put_secret("default", &format!("{n}-cert"), ca.cert_pem().as_bytes())
            .await
            .unwrap();
        api.put_secret(
            "default",
            &format!("{n}-key"),
            ca.key_pem().expose().as_bytes(),
        )
        .await
        .unwrap();
    }
    let identity = |ca: &str| {
        format!(
            "type: MeshIdentity\nmesh: default\nname: identity\nspec:\n  selector: {{dataplane: {{matchLabels: {{}}}}}}\n  provider:\n    type: Bundled\n    bundled:\n      ca:\n        certificate: {{type: Secret, secretRef: {{kind: Secret, name: {ca}-cert}}}}\n        privateKey: {{type: Secret, secretRef: {{kind: Secret, name: {ca}-key}}}}\n"
        )
    };
    let (s, body) = api
        .put("/meshes/default/meshidentities/identity", &identity("ca-1"))
        .await;
    assert!(s.is_success(), "{s} {body}");
    let allow_all = "type: MeshTrafficPermission\nmesh: default\nname: all\nspec:\n  targetRef: {kind: Mesh}\n  rules:\n    - default:\n        allow:\n          - spiffeID: {type: Prefix, value: \"spiffe://default.default.mesh.local/workload\"}\n";
    let (s, body) = api
        .put("/meshes/default/meshtrafficpermissions/all", allow_all)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let app = |service: &str| {
        AppSpec::http(service, &format!("{service}-1")).label("kuma.io/workload", service)
    };
    mesh.start_app(app("backend")).await.unwrap();
    mesh.start_app(AppSpec::tcp("db", "db-1").label("kuma.io/workload", "db"))
        .await
        .unwrap();
    let client = mesh
        .start_app(app("client").outbound("backend").outbound("db"))
        .await
        .unwrap();
    client.until_healthy_hosts("backend", 1).await;
    client.until_healthy_hosts("db", 1).await;
    let url = client.outbound_url("backend", "/");
    let db = client.outbound_address("db");
    until(Duration::from_secs(10), "client → backend 200", || async {
        status(&url).await == 200
    })
    .await;
    let issued_by = |fingerprint: String| {
        let api = api.clone();
        async move {
            for app in ["backend-1", "db-1", "client-1"] {
                let (_, body) = api
                    .get(&format!("/meshes/default/dataplanes/{app}/_overview"))
                    .await;
                if body["dataplaneInsight"]["mTLS"]["caFingerprint"] != fingerprint.as_str() {
                    return false;
                }
            }
            true
        }
    };
    until(Duration::from_secs(10), "every proxy on ca-1", || {
        issued_by(fingerprints[0].clone())
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let http = http_until(&url, &stop);
    let tcp = tcp_until(db, &stop);
    let started = Instant::now();
    let (s, body) = api
        .put("/meshes/default/meshidentities/identity", &identity("ca-2"))
        .await;
    assert!(s.is_success(), "{s} {body}");
    until(
        Duration::from_secs(30),
        "every proxy on ca-2, ca-1 dropped",
        || async {
            let (_, trust) = api.get("/meshes/default/meshtrusts/identity").await;
            let bundles = trust["spec"]["caBundles"].as_array().map_or(0, Vec::len);
            let (_, plan) = api.get("/meshes/default/_mtls").await;
            bundles == 1 && plan["rotating"] == false && issued_by(fingerprints[1].clone()).await
        },
    )
    .await;
    let took = started.elapsed();
    until(
        Duration::from_secs(5),
        "traffic after the rotation",
        || async { status(&url).await == 200 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = http.await.unwrap();
    let (echoed, broken) = tcp.await.unwrap();
    assert!(
        failed.is_empty() && ok > 0,
        "{ok} HTTP 200, failed: {failed:?}"
    );
    assert!(
        broken.is_empty() && echoed > 0,
        "{echoed} TCP echoed, failed: {broken:?}"
    );
    eprintln!(
        "MeshIdentity CA rotation settled in {took:?}; {ok} HTTP requests and {echoed} TCP connections, 0 failed"
    );
    let rejected = mesh.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
}
