//! End to end with real Envoy: a standalone zone, echo apps, and `weft-dp` + Envoy
//! sidecars. client → its Envoy → backend's Envoy → backend (two instances), with
//! SotW and delta xDS; refused proxies; Envoy's own counters show no rejected update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use weft_testbed::mesh::traffic::LoopOptions;
use weft_testbed::mesh::{AppSpec, MeshHarness, TokenChoice, request_loop};

/// Polls `check` until it returns true or `timeout` passes.
async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within {timeout:?}");
}

/// Two backends and a client, `api` for the client and one backend, the other
/// backend on the other flavour; 200s spread over both instances.
async fn client_to_two_backends(client_sotw: bool) {
    let mut mesh = MeshHarness::start().await.unwrap();
    let b1 = AppSpec::http("backend", "backend-1");
    let b2 = AppSpec::http("backend", "backend-2");
    let (b1, b2) = if client_sotw {
        (b1.sotw(), b2)
    } else {
        (b1, b2.sotw())
    };
    mesh.start_app(b1).await.unwrap();
    mesh.start_app(b2).await.unwrap();
    let client = AppSpec::http("client", "client-1").outbound("backend");
    let client = if client_sotw { client.sotw() } else { client };
    mesh.start_app(client).await.unwrap();
    let client = mesh.app("client-1").unwrap();

    // Both backend instances reach the client's EDS before traffic starts.
    eventually(
        Duration::from_secs(10),
        "two healthy backend endpoints",
        || async {
            client
                .admin
                .cluster_hosts("backend")
                .await
                .map(|h| h.values().filter(|f| *f == "healthy").count() == 2)
                .unwrap_or(false)
        },
    )
    .await;

    let url = client.outbound_url("backend", "/hello");
    let tally = request_loop(&url, 40, &LoopOptions::default()).await;
    assert_eq!(tally.status(200), 40, "{tally:?}");
    assert!(
        tally.instance("backend-1") >= 5 && tally.instance("backend-2") >= 5,
        "both instances answer: {tally:?}"
    );

    // The request went through both proxies: the client's outbound and the
    // backends' inbounds counted it.
    let upstream = client.admin.stat("cluster.backend.upstream_rq_200").await;
    assert_eq!(
        upstream, 40,
        "the client's Envoy sent them to cluster backend"
    );
    let mut inbound_total = 0;
    for name in ["backend-1", "backend-2"] {
        let app = mesh.app(name).unwrap();
        let stat = format!("cluster.localhost_{}.upstream_rq_200", app.app_port);
        inbound_total += app.admin.stat(&stat).await;
    }
    assert_eq!(
        inbound_total, 40,
        "backend Envoys' inbound clusters counted the requests"
    );

    // Envoy accepted every update, and it did get config over each flavour.
    assert!(
        mesh.rejected_updates().await.is_empty(),
        "rejected: {:?}",
        mesh.rejected_updates().await
    );
    for app in &mesh.apps {
        let stats = app.admin.stats().await.unwrap();
        for key in [
            "cluster_manager.cds.update_success",
            "listener_manager.lds.update_success",
        ] {
            assert!(
                stats.get(key).copied().unwrap_or(0) >= 1,
                "{}: {key} = {:?}",
                app.spec.instance,
                stats.get(key)
            );
        }
        assert_eq!(
            stats.get("control_plane.connected_state").copied(),
            Some(1),
            "{} is connected",
            app.spec.instance
        );
    }
}

// Delta for the client: client → Envoy → Envoy → backend, 200s from both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_client_reaches_both_backends() {
    client_to_two_backends(false).await;
}

// SotW for the client: the same, over state-of-the-world ADS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_client_reaches_both_backends() {
    client_to_two_backends(true).await;
}

// A proxy with no token, a token for another name, or a forged token is refused:
// weft-dp exits non-zero with the zone's reason, and the zone logs why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_without_a_valid_token_are_refused() {
    let mesh = MeshHarness::start().await.unwrap();
    let other_name = mesh
        .issue_token(serde_json::json!({"mesh": "default", "name": "someone-else"}))
        .await
        .unwrap();
    let cases = [
        (
            TokenChoice::Missing,
            "no dataplane token: pass one with --dataplane-token-file",
        ),
        (
            TokenChoice::Given(other_name),
            "was issued for the Dataplane named \"someone-else\"",
        ),
        (
            TokenChoice::Given("eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
            "dataplane token",
        ),
    ];
    for (i, (token, reason)) in cases.into_iter().enumerate() {
        let name = format!("intruder-{i}");
        let mut app = mesh
            .spawn_app(AppSpec::http("web", &name).token(token))
            .await
            .unwrap();
        let status = app
            .dp
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("weft-dp exits when refused");
        assert!(!status.success(), "{name}: {status}");
        let log = app.dp.log();
        assert!(
            log.contains("the zone refused the bootstrap request") && log.contains(reason),
            "{name}: weft-dp says why:\n{log}"
        );
        let zone_log = mesh.zone.process.log();
        assert!(
            zone_log.contains("refused a bootstrap request")
                && zone_log.contains(&format!("dataplane={name}")),
            "the zone logs the refusal of {name}:\n{zone_log}"
        );
    }
}
