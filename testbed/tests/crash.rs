//! Durability under SIGKILL: a real `weft-global` is written to through its API
//! as fast as several clients can, killed with SIGKILL mid-storm, and its store
//! reopened: every write the API acknowledged must be there. Twenty rounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use weft_model::resource::{ResourceKey, ResourceType, Spec};
use weft_store::ResourceStore;
use weft_store::sled_store::SledStore;
use weft_testbed::ControlPlane;

const ROUNDS: usize = 20;
const WRITERS: usize = 8;

fn timeout_doc(name: &str, seconds: u64) -> String {
    format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: {seconds}s\n"
    )
}

#[derive(Default)]
struct Acked {
    /// Unique creates that got 201.
    created: Vec<String>,
    /// For each writer's hot key, the last value an update was acknowledged with.
    hot: BTreeMap<String, u64>,
}

// Every acknowledged create and update survives SIGKILL, in 20 rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut total_acked = 0;
    for round in 0..ROUNDS {
        let mut cp = ControlPlane::global(&[]).unwrap();
        let dir = cp.take_dir().unwrap();
        let (url, token) = (cp.api_url(), cp.token());
        let acked = Arc::new(Mutex::new(Acked::default()));
        let count = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (http, url, token, acked, count) = (
                http.clone(),
                url.clone(),
                token.clone(),
                acked.clone(),
                count.clone(),
            );
            writers.push(tokio::spawn(async move {
                // Bounded: at most 10 000 writes per writer; stops at the first failure (the kill).
                for i in 0..10_000u64 {
                    let (name, hot) = if i % 2 == 0 {
                        (format!("w{w}-{i}"), false)
                    } else {
                        (format!("hot-{w}"), true)
                    };
                    let resp = http
                        .put(format!("{url}/meshes/default/meshtimeouts/{name}"))
                        .bearer_auth(&token)
                        .body(timeout_doc(&name, i + 1))
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().is_success() => {
                            let mut a = acked.lock().await;
                            if hot {
                                a.hot.insert(name, i + 1);
                            } else {
                                a.created.push(name);
                            }
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => panic!("unexpected status {} for {name}", r.status()),
                        Err(_) => return,
                    }
                }
            }));
        }
        // Kill mid-storm: once a varying number of writes has been acknowledged.
        let threshold = 20 + (round * 37) % 200;
        let deadline = Instant::now() + Duration::from_secs(60);
        while count.load(Ordering::Relaxed) < threshold {
            assert!(
                Instant::now() < deadline,
                "round {round}: only {} writes acknowledged in 60 s",
                count.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        cp.process.kill();
        for w in writers {
            w.await.unwrap();
        }
        drop(cp);

        let store = SledStore::open(&dir.path().join("store")).unwrap();
        let a = acked.lock().await;
        for name in &a.created {
            let key = ResourceKey::new(ResourceType::MeshTimeout, Some("default"), name);
            assert!(
                store.get(&key).await.unwrap().is_some(),
                "round {round}: acknowledged create of {name} was lost"
            );
        }
        for (name, acked_value) in &a.hot {
            let key = ResourceKey::new(ResourceType::MeshTimeout, Some("default"), name);
            let res = store
                .get(&key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: {name} lost"));
            let Spec::MeshTimeout(spec) = &res.spec else {
                panic!("{name} has the wrong type")
            };
            let value = serde_json::to_value(spec).unwrap();
            let idle = value["to"][0]["default"]["idleTimeout"]
                .as_str()
                .unwrap()
                .trim_end_matches('s')
                .parse::<u64>()
                .unwrap();
            assert!(
                idle >= *acked_value,
                "round {round}: {name} went back to {idle}s after {acked_value}s was acknowledged"
            );
        }
        total_acked += a.created.len() + a.hot.len();
    }
    eprintln!("{ROUNDS} rounds, {total_acked} acknowledged writes checked after SIGKILL");
}
