//! KDS at scale, in-process: global holds 10,000 policies (several MiB in all) and
//! a fresh zone receives every one; global's counters show the type was split over
//! several responses and none exceeded 1 MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use std::time::{Duration, Instant};
use weft_model::resource::{Resource, ResourceKey, ResourceType, parse_resource};
use weft_store::{Page, WriteOp};
use weft_testbed::inprocess;

const POLICIES: usize = 10_000;
const MIB: u64 = 1024 * 1024;

/// A MeshTimeout of about 600 bytes on the wire: a long name, a description label
/// and several `to` entries, so 10,000 of them are several MiB.
fn policy(i: usize) -> Resource {
    let mut to = String::new();
    for s in 0..4 {
        to.push_str(&format!(
            "    - targetRef:\n        kind: MeshService\n        name: backend-service-number-{s}\n      default:\n        idleTimeout: {i}s\n        http:\n          requestTimeout: 5s\n"
        ));
    }
    let doc = format!(
        "type: MeshTimeout\nname: scale-policy-with-a-rather-long-name-{i:05}\nmesh: default\nlabels:\n  team: platform-networking\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n{to}"
    );
    parse_resource(doc.as_bytes(), false).unwrap()
}

// 10,000 policies reach a fresh zone; no KDS response exceeds 1 MiB and the type
// needed more than one response (the data exceeds 1 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_policies_reach_a_fresh_zone_in_messages_under_1_mib() {
    let global = inprocess::global().await;
    let written = Instant::now();
    for chunk in (0..POLICIES).collect::<Vec<_>>().chunks(1_000) {
        let ops = chunk.iter().map(|i| WriteOp::Upsert(policy(*i))).collect();
        global.store.transact(ops).await.unwrap();
    }
    eprintln!(
        "measured: {POLICIES} policies written to global's store in {:?}",
        written.elapsed()
    );

    // The 10,000 plus the mesh's default MeshTimeouts (decision 0005).
    let expected = global
        .store
        .list(ResourceType::MeshTimeout, Some("default"), Page::all())
        .await
        .unwrap()
        .total;
    assert!(expected >= POLICIES, "{expected}");

    let started = Instant::now();
    let zone = inprocess::federated_zone(&global, "zone-big").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = zone
            .store
            .list(ResourceType::MeshTimeout, Some("default"), Page::all())
            .await
            .unwrap()
            .total;
        if n == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the zone holds {n} of {expected} policies after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "measured: a fresh zone synced {POLICIES} policies in {:?} (debug build)",
        started.elapsed()
    );
    let last = format!(
        "/meshes/default/meshtimeouts/scale-policy-with-a-rather-long-name-{:05}",
        POLICIES - 1
    );
    let (s, body) = zone.api.get(&last).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["labels"]["kuma.io/origin"], "global", "{body}");

    let (s, ov) = global.api.get("/zones/zone-big/_overview").await;
    assert_eq!(s, StatusCode::OK, "{ov}");
    let sent = &ov["zoneInsight"]["sent"]["MeshTimeout"];
    eprintln!("global's counters for MeshTimeout: {sent}");
    let count = |field: &str| sent[field].as_u64().unwrap();
    assert_eq!(count("resourcesSent"), expected as u64, "{sent}");
    assert!(count("bytesSent") > MIB, "the data exceeds 1 MiB: {sent}");
    assert!(count("responsesSent") >= 2, "split over responses: {sent}");
    assert!(
        count("largestResponse") <= MIB,
        "no message over 1 MiB: {sent}"
    );
    assert_eq!(count("nacked"), 0, "{sent}");
    for (ty, c) in ov["zoneInsight"]["sent"].as_object().unwrap() {
        assert!(
            c["largestResponse"].as_u64().unwrap() <= MIB,
            "{ty}: no message over 1 MiB: {c}"
        );
    }
    zone.stop().await;
    global.stop().await;
}

/// `weft_kds_largest_response_bytes` of every type and direction on `running`'s
/// `/metrics`.
async fn largest_responses(running: &inprocess::Running) -> Vec<(String, u64)> {
    let text = running
        .api
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("weft_kds_largest_response_bytes{"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

// 2,000 services behind one ingress of zone west: west's ZoneIngress lists all
// of them, reaches global and zone east, and no KDS message either way exceeds
// 1 MiB (Kuma's ZoneIngress outgrew etcd's limit at about 1,000 services).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_services_behind_one_ingress() {
    const SERVICES: usize = 2_000;
    let global = inprocess::global().await;
    let west = inprocess::federated_zone(&global, "west").await;
    let east = inprocess::federated_zone(&global, "east").await;
    let mesh = ResourceKey::new(ResourceType::Mesh, None, "default");
    for z in [&west, &east] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while z.store.get(&mesh).await.unwrap().is_none() {
            assert!(Instant::now() < deadline, "mesh default never synced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let ingress = parse_resource(
        b"type: ZoneIngress\nname: ingress-west\nnetworking: {address: 127.0.0.1, port: 10001, advertisedAddress: 192.0.2.1, advertisedPort: 10001}\n",
        false,
    )
    .unwrap();
    west.store
        .transact(vec![WriteOp::Upsert(ingress)])
        .await
        .unwrap();
    let written = Instant::now();
    for chunk in (0..SERVICES).collect::<Vec<_>>().chunks(500) {
        let ops = chunk
            .iter()
            .map(|i| {
                let doc = format!(
                    "type: Dataplane\nmesh: default\nname: dp-{i:04}\nnetworking:\n  address: 10.0.{}.{}\n  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: service-with-a-longish-name-{i:04}\n        kuma.io/protocol: http\n        version: v1\n",
                    i / 250,
                    1 + i % 250
                );
                WriteOp::Upsert(parse_resource(doc.as_bytes(), false).unwrap())
            })
            .collect();
        west.store.transact(ops).await.unwrap();
    }
    // east holds west's ingress with every service.
    let deadline = Instant::now() + Duration::from_secs(60);
    let size = loop {
        let list = east
            .store
            .list(ResourceType::ZoneIngress, None, Page::all())
            .await
            .unwrap();
        let offered = list.items.iter().find_map(|r| match &r.spec {
            weft_model::resource::Spec::ZoneIngress(zi)
                if zi.available_services.len() == SERVICES =>
            {
                Some(r.to_value().to_string().len())
            }
            _ => None,
        });
        if let Some(size) = offered {
            break size;
        }
        assert!(
            Instant::now() < deadline,
            "east never held west's {SERVICES} services"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "measured: {SERVICES} services in west → east holds them in west's ZoneIngress after {:?} (debug build); the ZoneIngress is {size} bytes of JSON",
        written.elapsed()
    );
    let mut seen = 0;
    for running in [&global, &west, &east] {
        for (series, bytes) in largest_responses(running).await {
            assert!(bytes <= MIB, "{series}: {bytes} bytes");
            if series.contains("ZoneIngress") {
                eprintln!("measured: {series} {bytes}");
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 3,
        "the ZoneIngress's way up and down was measured: {seen}"
    );
    east.stop().await;
    west.stop().await;
    global.stop().await;
}
