//! Envoy admin through the control planes (decision 0015), real processes and
//! real Envoy: a global, zones `east` and `west` federated with it over KDS, an
//! ingress per zone and `backend-west-1` (a sidecar in west). Its Envoy's admin
//! listens on 127.0.0.1 only; west reaches it through the proxy's `weft-dp`
//! relay, global through west over KDS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_testbed::Client;
use weft_testbed::mesh::AppSpec;
use weft_testbed::multizone::TwoZones;
use weft_testbed::wait::until;

/// GET `path`: status, content type and body text.
async fn get(c: &Client, path: &str) -> (u16, String, String) {
    let r = c.request(Method::GET, path).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, r.text().await.unwrap())
}

/// The cluster names in Envoy's `/clusters` text (`name::field::value` lines).
fn cluster_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split("::").next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The name global lists for the `display` proxy under `list` (`kuma.io/display-name`).
async fn global_name(g: &Client, list: &str, display: &str) -> String {
    let found = Arc::new(Mutex::new(String::new()));
    until(
        Duration::from_secs(20),
        &format!("{display} on global"),
        || {
            let (g, found) = (g.clone(), found.clone());
            async move {
                let (_, body) = g.get(list).await;
                let hit = body["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["labels"]["kuma.io/display-name"] == display);
                let name = hit.and_then(|i| i["name"].as_str()).unwrap_or_default();
                *found.lock().unwrap() = name.to_string();
                !name.is_empty()
            }
        },
    )
    .await;
    found.lock().map(|n| n.clone()).unwrap()
}

// stats, xds and clusters of west's sidecar, asked of west and of global, are
// that Envoy's own (compared with what its admin says directly); west's ingress
// through global too; an unknown proxy is a 404 naming it; bad queries a 400
// naming the parameter; with east gone, its proxies answer 503 naming zone east.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_admin_through_the_zone_and_through_global() {
    let mut zones = TwoZones::start().await.unwrap();
    zones
        .west
        .start_app(AppSpec::http("backend", "backend-west-1"))
        .await
        .unwrap();
    let app = zones.west.app("backend-west-1").unwrap();
    let inbound = format!("inbound:{}:{}", app.ip, app.inbound_port);
    // A stat only this proxy has: its inbound listener's, named by its address.
    let own_stat = format!("listener.{}_{}.", app.ip, app.inbound_port);
    let direct_clusters = cluster_names(&app.admin.get("/clusters").await.unwrap());
    assert!(!direct_clusters.is_empty());

    let west = zones.west.api();
    let g = Client::new(zones.global.api_url(), zones.global.token());
    let on_global = global_name(&g, "/meshes/default/dataplanes", "backend-west-1").await;
    assert_ne!(
        on_global, "backend-west-1",
        "global lists zone proxies under hashed names"
    );

    for (side, client, name) in [
        ("west", &west, "backend-west-1".to_string()),
        ("global", &g, on_global.clone()),
    ] {
        let base = format!("/meshes/default/dataplanes/{name}");
        // The relay (and, for global, west's admin streams) may still be opening.
        until(
            Duration::from_secs(20),
            &format!("{side} relays stats of backend-west-1"),
            || async { get(client, &format!("{base}/stats")).await.0 == 200 },
        )
        .await;
        let (s, ct, stats) = get(client, &format!("{base}/stats")).await;
        assert_eq!(s, 200, "{side}: {stats}");
        assert!(ct.starts_with("text/plain"), "{side}: {ct}");
        assert!(
            stats.lines().any(|l| l == "server.live: 1"),
            "{side}: {stats}"
        );
        assert!(
            stats.contains(&own_stat),
            "{side}: no {own_stat} in {stats}"
        );

        let (s, _, filtered) =
            get(client, &format!("{base}/stats?filter=%5Eserver%5C.live%24")).await;
        assert_eq!(s, 200, "{side}: {filtered}");
        assert_eq!(filtered.trim(), "server.live: 1", "{side}");

        let (s, ct, json) = get(client, &format!("{base}/stats?format=json")).await;
        assert_eq!(s, 200, "{side}: {json}");
        assert!(ct.starts_with("application/json"), "{side}: {ct}");
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(
            json["stats"].as_array().is_some_and(|a| !a.is_empty()),
            "{side}"
        );

        let (s, ct, dump) = get(client, &format!("{base}/xds")).await;
        assert_eq!(s, 200, "{side}: {dump}");
        assert!(ct.starts_with("application/json"), "{side}: {ct}");
        let dump_json: serde_json::Value = serde_json::from_str(&dump).unwrap();
        assert!(dump_json["configs"].is_array(), "{side}");
        assert!(
            dump.contains(&format!("\"name\": \"{inbound}\""))
                || dump.contains(&format!("\"name\":\"{inbound}\"")),
            "{side}: no listener {inbound}"
        );
        assert!(
            !dump.contains("EndpointsConfigDump"),
            "{side}: EDS without include_eds"
        );
        let (s, _, with_eds) = get(client, &format!("{base}/xds?include_eds=true")).await;
        assert_eq!(s, 200, "{side}");
        assert!(
            with_eds.contains("EndpointsConfigDump"),
            "{side}: include_eds ignored"
        );

        let (s, _, clusters) = get(client, &format!("{base}/clusters")).await;
        assert_eq!(s, 200, "{side}: {clusters}");
        assert_eq!(cluster_names(&clusters), direct_clusters, "{side}");

        // Unknown proxy: 404 naming it.
        let (s, _, body) = get(client, "/meshes/default/dataplanes/ghost-1/stats").await;
        assert_eq!(s, 404, "{side}: {body}");
        assert!(
            body.contains("Dataplane default/ghost-1 not found"),
            "{side}: {body}"
        );
        // Bad query: 400 naming the parameter; nothing but the three reads exists.
        let (s, _, body) = get(client, &format!("{base}/stats?reset_counters=true")).await;
        assert_eq!(s, 400, "{side}: {body}");
        assert!(body.contains("reset_counters"), "{side}: {body}");
        let (s, _, _) = get(client, &format!("{base}/quitquitquit")).await;
        assert_eq!(s, 404, "{side}");
    }

    // West's ingress, through global.
    let ingress = global_name(&g, "/zoneingresses", "ingress-west").await;
    until(
        Duration::from_secs(20),
        "global relays the ingress's stats",
        || async { get(&g, &format!("/zoneingresses/{ingress}/stats")).await.0 == 200 },
    )
    .await;
    let (_, _, stats) = get(&g, &format!("/zoneingresses/{ingress}/stats")).await;
    assert!(stats.lines().any(|l| l == "server.live: 1"), "{stats}");
    let ingress_admin = zones.west.ingresses[0]
        .admin
        .get("/clusters")
        .await
        .unwrap();
    let (s, _, clusters) = get(&g, &format!("/zoneingresses/{ingress}/clusters")).await;
    assert_eq!(s, 200);
    assert_eq!(cluster_names(&clusters), cluster_names(&ingress_admin));

    // East goes away: its ingress, still listed on global, answers 503 naming east.
    let east_ingress = global_name(&g, "/zoneingresses", "ingress-east").await;
    zones.east.zone.process.kill();
    let path = format!("/zoneingresses/{east_ingress}/stats");
    until(
        Duration::from_secs(30),
        "global answers 503 for east's proxies",
        || async { get(&g, &path).await.0 == 503 },
    )
    .await;
    let (_, _, body) = get(&g, &path).await;
    assert!(body.contains("zone east is offline"), "{body}");
    // West still answers.
    let (s, _, _) = get(&g, &format!("/meshes/default/dataplanes/{on_global}/stats")).await;
    assert_eq!(s, 200);
}
