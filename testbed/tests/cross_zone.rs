//! Traffic across zones, with real processes and real Envoy: a global, zones
//! `east` and `west` federated with it over KDS, an ingress per zone (`weft-dp
//! --proxy-type ingress`), and apps with sidecars in each zone, all on loopback.
//! The mesh has mTLS (cross-zone traffic needs it: the ingress routes on SNI and
//! never decrypts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use weft_testbed::mesh::traffic::{LoopOptions, request_loop};
use weft_testbed::mesh::{AppSpec, MeshHarness};
use weft_testbed::process::ControlPlane;
use weft_testbed::wait::until;

const MESH_MTLS: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n";

const ALLOW_ALL: &str = "type: MeshTrafficPermission\nmesh: default\nname: allow-all\nspec:\n  targetRef: {kind: Mesh}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {action: Allow}\n";

/// A global with mesh `default` on mTLS, and zones `east` and `west` that hold it
/// (with its CA), each with an ingress.
struct TwoZones {
    east: MeshHarness,
    west: MeshHarness,
    global: ControlPlane,
}

impl TwoZones {
    async fn start() -> TwoZones {
        let global = tokio::task::spawn_blocking(|| ControlPlane::global(&[]).unwrap())
            .await
            .unwrap();
        let api = weft_testbed::Client::new(global.api_url(), global.token());
        let (s, body) = api.put("/meshes/default", MESH_MTLS).await;
        assert!(s.is_success(), "PUT mesh on global: {s} {body}");
        // With mTLS on, nothing is allowed until a permission says so (Kuma ≥ 2.6).
        let (s, body) = api
            .put(
                "/meshes/default/meshtrafficpermissions/allow-all",
                ALLOW_ALL,
            )
            .await;
        assert!(s.is_success(), "PUT permission on global: {s} {body}");
        let mut zones = Vec::new();
        for name in ["east", "west"] {
            // Blocks until the zone prints its ready line (a second or so).
            let zone = ControlPlane::federated_zone(&global, name, &[]).unwrap();
            let mut h = MeshHarness::on_zone(zone, Some(name)).unwrap();
            let client = h.api();
            until(
                Duration::from_secs(20),
                &format!("{name} holds mesh default with mTLS"),
                || {
                    let client = client.clone();
                    async move {
                        let (s, m) = client.get("/meshes/default").await;
                        s.is_success() && m["mtls"]["enabledBackend"] == "ca-1"
                    }
                },
            )
            .await;
            h.start_ingress(&format!("ingress-{name}")).await.unwrap();
            zones.push(h);
        }
        let west = zones.pop().unwrap();
        let east = zones.pop().unwrap();
        TwoZones { east, west, global }
    }
}

/// Sequential requests through `url`, by answering instance.
async fn tally(url: &str, n: usize) -> weft_testbed::mesh::Tally {
    request_loop(url, n, &LoopOptions::default()).await
}

// east's frontend calls backend, which runs only in west: the call crosses
// west's ingress over mTLS and is answered by west; the ingress's Envoy holds no
// TLS-terminating listener or cluster (it passes the bytes through by SNI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_reaches_west_through_wests_ingress() {
    let mut zones = TwoZones::start().await;
    zones
        .west
        .start_app(AppSpec::http("backend", "backend-west-1"))
        .await
        .unwrap();
    let frontend = zones
        .east
        .start_app(AppSpec::http("frontend", "frontend-east-1").outbound("backend"))
        .await
        .unwrap();
    frontend.until_healthy_hosts("backend", 1).await;
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
    for h in [&zones.east, &zones.west] {
        let rejected = h.rejected_updates().await;
        assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
    }
    drop(zones.global);
}
