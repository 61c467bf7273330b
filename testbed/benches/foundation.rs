//! Foundation benchmarks: sled store put / get / list throughput and REST API
//! PUT latency (p50 / p99) of an in-process global on loopback.
//!
//! `cargo bench -p weft-testbed --bench foundation` prints the numbers that go in
//! docs/performance.md. Under `cargo test` (no `--bench` flag) it runs a few
//! iterations only, so the code stays exercised.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use weft_model::resource::{ResourceKey, ResourceType, parse_resource};
use weft_runtime::shutdown::CancellationToken;
use weft_store::{Page, ResourceStore, sled_store::SledStore};

fn policy(name: &str) -> weft_model::resource::Resource {
    let doc = format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: MeshService\n        name: backend\n      default:\n        idleTimeout: 1h\n        http:\n          requestTimeout: 5s\n"
    );
    parse_resource(doc.as_bytes(), false).expect("bench policy is valid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn store_bench(n: usize, concurrency: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(SledStore::open(dir.path()).expect("open sled"));
    let mesh = parse_resource(b"type: Mesh\nname: default\n", false).expect("mesh");
    store.create(mesh).await.expect("create mesh");

    // Sequential puts: each one durable before the next starts.
    let start = Instant::now();
    for i in 0..n {
        store
            .create(policy(&format!("seq-{i}")))
            .await
            .expect("create");
    }
    let seq = start.elapsed();

    // Concurrent puts: `concurrency` writers, flushes may be shared.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / concurrency {
                store
                    .create(policy(&format!("par-{w}-{i}")))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let par = start.elapsed();
    let par_n = (n / concurrency) * concurrency;

    let start = Instant::now();
    for i in 0..n {
        let key = ResourceKey::new(
            ResourceType::MeshTimeout,
            Some("default"),
            &format!("seq-{i}"),
        );
        assert!(store.get(&key).await.expect("get").is_some());
    }
    let get = start.elapsed();

    let total = n + par_n;
    let lists = 20.max(n / 100);
    let start = Instant::now();
    for _ in 0..lists {
        let page = store
            .list(
                ResourceType::MeshTimeout,
                Some("default"),
                Page {
                    size: 100,
                    offset: 0,
                },
            )
            .await
            .expect("list");
        assert_eq!(page.total, total);
    }
    let list = start.elapsed();
    println!("sled store ({total} policies stored):");
    println!(
        "  put, 1 writer (durable each):    {:>9.0} writes/s",
        rate(n, seq)
    );
    println!(
        "  put, {concurrency} writers (durable each):  {:>9.0} writes/s",
        rate(par_n, par)
    );
    println!(
        "  get:                             {:>9.0} reads/s",
        rate(n, get)
    );
    println!(
        "  list, page of 100 of {total}:      {:>9.0} lists/s",
        rate(lists, list)
    );
}

async fn api_bench(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let shutdown = CancellationToken::new();
    let bound = weft_global::build(
        weft_global::GlobalConfig::for_test(dir.path()),
        shutdown.clone(),
    )
    .await
    .expect("global");
    let url = format!("http://{}/meshes/default/meshtimeouts", bound.api_address);
    let token = bound.token.expose().to_string();
    let http = reqwest::Client::new();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let body = format!(
            "type: MeshTimeout\nname: api-{i}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 1h\n"
        );
        let start = Instant::now();
        let r = http
            .put(format!("{url}/api-{i}"))
            .bearer_auth(&token)
            .body(body)
            .send()
            .await
            .expect("put");
        lat.push(start.elapsed());
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    }
    lat.sort();
    println!("REST API PUT (create, one client, {n} requests):");
    println!(
        "  p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
    shutdown.cancel();
    bound.wait().await.expect("drain");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, api_n) = if full { (5_000, 2_000) } else { (40, 20) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        store_bench(n, 8).await;
        api_bench(api_n).await;
    });
}
