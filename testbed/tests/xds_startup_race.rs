//! The startup race (issue 9, item 5), with real Envoy: a client sidecar and the
//! first sidecar of a brand-new backend service start at the same instant. The
//! client's Envoy must leave `INITIALIZING` and route to the backend quickly every
//! time, not after Envoy's 15 s `initial_fetch_timeout`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tokio::time::Instant;
use weft_testbed::mesh::{App, AppSpec, MeshHarness};
use weft_testbed::wait;

/// Rounds, each with a fresh backend service and a fresh client.
const ROUNDS: usize = 20;
/// From spawning both sidecars to the client serving traffic to the backend.
const WITHIN: Duration = Duration::from_secs(5);

/// One request through the client's outbound: `Some` when the backend answered.
async fn one_request(http: &reqwest::Client, url: &str, instance: &str) -> Option<()> {
    let resp = http.get(url).send().await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    let body: serde_json::Value = resp.json().await.ok()?;
    (body.get("instance")?.as_str()? == instance).then_some(())
}

/// What the client's Envoy shows when it missed the deadline.
async fn diagnose(client: &App, service: &str) -> String {
    let state = client.admin.server_state().await.unwrap_or_else(|e| e);
    let listeners = client.admin.listeners().await.unwrap_or_default();
    let hosts = client
        .admin
        .cluster_hosts(service)
        .await
        .unwrap_or_default();
    let stats = client.admin.stats().await.unwrap_or_default();
    let xds: Vec<String> = stats
        .iter()
        .filter(|(k, _)| {
            k.starts_with("cluster_manager.cds.")
                || k.starts_with("listener_manager.lds.")
                || k.starts_with(&format!("cluster.{service}.update_"))
                || k.starts_with("cluster_manager.warming_clusters")
                || k.starts_with("control_plane.")
        })
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("state {state}, listeners {listeners:?}, {service} hosts {hosts:?}, {xds:?}")
}

/// [`ROUNDS`] rounds of a client and a brand-new backend started together on one
/// zone; every client's Envoy must be LIVE and serve the backend within [`WITHIN`],
/// and neither Envoy may NACK. `sotw` picks the client's xDS flavour.
async fn race(sotw: bool) {
    let mesh = MeshHarness::start().await.unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut missed = Vec::new();
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let service = format!("backend-r{round}");
        let instance = format!("{service}-1");
        let started = Instant::now();
        let name = format!("client-r{round}");
        let client = AppSpec::http(&name, &name).outbound(&service);
        let client = if sotw { client.sotw() } else { client };
        let (backend, client) = tokio::join!(
            mesh.spawn_app(AppSpec::http(&service, &instance)),
            mesh.spawn_app(client),
        );
        let (backend, client) = (backend.unwrap(), client.unwrap());
        let url = client.outbound_url(&service, "/race");
        let served = wait::by(started + WITHIN, || async {
            let live = client.admin.server_state().await.ok()? == "LIVE";
            if !live {
                return None;
            }
            one_request(&http, &url, &instance).await
        })
        .await;
        match served {
            Some(()) => times.push(started.elapsed()),
            None => {
                let why = diagnose(&client, &service).await;
                eprintln!("round {round}: client not serving within {WITHIN:?}: {why}");
                missed.push(format!("round {round}: {why}"));
            }
        }
        for app in [&backend, &client] {
            let rejected = app.admin.rejected_updates().await;
            assert!(
                rejected.is_empty(),
                "round {round}: {} NACKed: {rejected:?}",
                app.spec.instance
            );
        }
    }
    times.sort();
    eprintln!(
        "startup race: {} of {ROUNDS} clients served within {WITHIN:?}; times {:?}",
        times.len(),
        times
    );
    assert!(
        missed.is_empty(),
        "{} of {ROUNDS} clients were not serving within {WITHIN:?}:\n{}\nzone log:\n{}",
        missed.len(),
        missed.join("\n"),
        mesh.zone.process.log()
    );
}

// Invariant: a delta-xDS client and a brand-new backend started together — 20
// times — each time leave the client's Envoy LIVE and serving the backend within
// 5 s, NACK-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_client_and_new_backend_started_together_serve_within_5s() {
    race(false).await;
}

// Invariant: the same for a SotW client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_client_and_new_backend_started_together_serve_within_5s() {
    race(true).await;
}
