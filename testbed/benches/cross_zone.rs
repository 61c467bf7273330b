//! Cross-zone endpoint propagation, real processes and real Envoy on loopback:
//! a global, zones `east` and `west` (each with an ingress), `backend-west-1` in
//! west and `frontend-east-1` in east calling `backend`. Each round writes one
//! more `backend` Dataplane on west's REST API and measures, from the API's
//! acknowledgement, until east's frontend Envoy weighs west's ingress by the new
//! instance count (its admin `/clusters`, polled every millisecond): west's
//! available services → KDS up → global → KDS down → east's store → east's xDS →
//! Envoy. Kuma refreshes available services on 1 s ticks (about 3 s end to end).
//!
//! `cargo bench -p weft-testbed --bench cross_zone` runs 100 rounds and prints
//! p50 / p99 / max; under `cargo test` it runs 3, so the code stays exercised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use weft_testbed::multizone::TwoZones;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(rounds: usize) {
    let mut zones = TwoZones::start().await.unwrap();
    zones.start_backends_and_frontend(false).await.unwrap();
    let frontend = zones.east.app("frontend-east-1").unwrap();
    let ingress = &zones.west.ingresses[0];
    let host = format!("{}:{}", ingress.ip, ingress.port);
    let west = zones.west.api();
    let mut took = Vec::new();
    for round in 0..rounds {
        let name = format!("backend-west-extra-{round}");
        let doc = format!(
            "type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  address: 127.0.9.{}\n  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: backend\n        kuma.io/protocol: http\n",
            1 + round % 250
        );
        let want = 2 + round as u32;
        let (s, body) = west
            .put(&format!("/meshes/default/dataplanes/{name}"), &doc)
            .await;
        assert!(s.is_success(), "PUT {name}: {s} {body}");
        let written = Instant::now();
        let deadline = written + Duration::from_secs(10);
        loop {
            let weights = frontend.admin.host_weights("backend").await.unwrap();
            if weights.get(&host) == Some(&want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: east never weighed west {want}: {weights:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        took.push(written.elapsed());
    }
    took.sort();
    println!(
        "cross-zone propagation, new instance in west → east's Envoy ({rounds} rounds): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        percentile(&took, 0.99).as_secs_f64() * 1e3,
        took.last().unwrap().as_secs_f64() * 1e3,
    );
    let rejected = zones.east.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 100 } else { 3 };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(rounds));
}
