//! KDS benchmarks, in-process over loopback TLS with zone tokens:
//!
//! - propagation latency: a policy PUT on global's REST API until the change is
//!   committed in a zone's store (seen on the zone store's watch, not by polling
//!   an API), p50 / p99 / max, with 1 and with 10 zones connected;
//! - initial sync: how long a fresh zone takes, from its start, until the 10,000
//!   policies global holds are committed in its store (it turns ready right after
//!   that one transaction).
//!
//! `cargo bench -p weft-testbed --bench kds` prints the numbers that go in
//! docs/performance.md (`-- initial_sync` or `-- propagation` runs one section). Under `cargo test` (no `--bench` flag) it runs a few
//! iterations only, so the code stays exercised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use weft_model::resource::{Resource, ResourceType, parse_resource};
use weft_store::WriteOp;
use weft_testbed::inprocess::{self, Running};

/// A MeshTimeout as the REST API takes it.
fn timeout_doc(name: &str, seconds: usize) -> String {
    format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: MeshService\n        name: backend\n      default:\n        idleTimeout: {seconds}s\n        http:\n          requestTimeout: 5s\n"
    )
}

fn policy(name: &str, seconds: usize) -> Resource {
    parse_resource(timeout_doc(name, seconds).as_bytes(), false).expect("bench policy is valid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "  {what:<34} p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms   ({} samples)",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat[lat.len() - 1]),
        lat.len()
    );
}

/// Waits until `zone` is ready (first sync applied), at most 30 s.
async fn until_ready(zone: &Running) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = zone.api.http().get(zone.api.url("/ready")).send().await;
        if r.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
            return;
        }
        assert!(Instant::now() < deadline, "zone not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Forwards (zone index, policy name, when) for every MeshTimeout committed in
/// each zone's store from now on.
async fn watch_zones(zones: &[Running]) -> mpsc::UnboundedReceiver<(usize, String, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    for (i, z) in zones.iter().enumerate() {
        let after = z.store.revision().await.expect("revision");
        let mut changes = z.store.watch(after).await.expect("watch");
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(c)) = changes.next().await {
                let at = Instant::now();
                if c.key.ty == ResourceType::MeshTimeout && tx.send((i, c.key.name, at)).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// `puts` sequential policy PUTs on global; for each, the time until each zone's
/// store committed it, and until all zones had.
async fn propagation(zone_count: usize, puts: usize) {
    let global = inprocess::global().await;
    let mut zones = Vec::new();
    for i in 0..zone_count {
        zones.push(inprocess::federated_zone(&global, &format!("zone-{i}")).await);
    }
    for z in &zones {
        until_ready(z).await;
    }
    let mut seen = watch_zones(&zones).await;
    let mut each = Vec::with_capacity(puts * zone_count);
    let mut all = Vec::with_capacity(puts);
    // Warm-up: connections, caches, the first sled flushes.
    let warmup = puts.min(20);
    for i in 0..puts + warmup {
        let name = format!("lat-{i}");
        let start = Instant::now();
        let (status, body) = global
            .api
            .put(
                &format!("/meshes/default/meshtimeouts/{name}"),
                &timeout_doc(&name, i + 1),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        let mut arrived: BTreeMap<usize, Instant> = BTreeMap::new();
        while arrived.len() < zone_count {
            let (z, n, at) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
                .await
                .expect("a zone did not receive the policy within 10 s")
                .expect("watch channel");
            if n == name {
                arrived.insert(z, at);
            }
        }
        if i >= warmup {
            each.extend(arrived.values().map(|at| *at - start));
            all.push(
                arrived
                    .values()
                    .max()
                    .map(|at| *at - start)
                    .unwrap_or_default(),
            );
        }
    }
    println!("propagation, PUT on global → committed in a zone's store, {zone_count} zone(s):");
    report("each zone", each);
    if zone_count > 1 {
        report("all zones", all);
    }
    for z in zones {
        z.stop().await;
    }
    global.stop().await;
}

/// Global holds `n` policies; a fresh zone starts; how long until its store holds them all.
async fn initial_sync(n: usize, rounds: usize) {
    let global = inprocess::global().await;
    let names: Vec<String> = (0..n).map(|i| format!("sync-{i:05}")).collect();
    for chunk in names.chunks(1_000) {
        let ops = chunk
            .iter()
            .enumerate()
            .map(|(i, name)| WriteOp::Upsert(policy(name, i + 1)))
            .collect();
        global.store.transact(ops).await.expect("write policies");
    }
    // The `n` plus the mesh's default MeshTimeouts (decision 0005).
    let on_global = global
        .store
        .list(ResourceType::MeshTimeout, None, weft_store::Page::all())
        .await
        .expect("list")
        .total;
    let mut took = Vec::new();
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("tempdir");
        let start = Instant::now();
        let zone =
            inprocess::federated_zone_in(&global, &format!("fresh-{round}"), dir.path()).await;
        // The zone turns ready right after it commits its initial sync (one
        // transaction). Watching its store instead would decode 10,000 changes on
        // the same 2 cores while the sync runs; readiness costs a GET every 2 ms.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = zone.api.http().get(zone.api.url("/ready")).send().await;
            if r.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the zone did not sync within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(start.elapsed());
        let held = zone
            .store
            .list(ResourceType::MeshTimeout, None, weft_store::Page::all())
            .await
            .expect("list")
            .total;
        assert_eq!(held, on_global, "the ready zone holds every policy");
        zone.stop().await;
    }
    println!("initial sync of a fresh zone, {n} policies on global (zone start → all committed):");
    for (i, t) in took.iter().enumerate() {
        println!("  round {}: {:>8.1} ms", i + 1, ms(*t));
    }
    global.stop().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench");
    // Like other bench harnesses: plain arguments select sections by name.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let run = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let (puts, puts_10, sync_n, rounds) = if full {
        (1_000, 500, 10_000, 3)
    } else {
        (10, 5, 300, 1)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if run("propagation") {
            propagation(1, puts).await;
            propagation(10, puts_10).await;
        }
        if run("initial_sync") {
            initial_sync(sync_n, rounds).await;
        }
    });
}
