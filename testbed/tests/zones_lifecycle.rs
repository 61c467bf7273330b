//! Zones as Kuma runs them, in-process: global persists each zone's KDS
//! insight (so a restarted global shows the zone's last known state), a zone
//! with `enabled: false` is disconnected and refused, a connected zone cannot
//! be deleted, deleting a zone deletes what it reported, and offline zones are
//! cleaned up after `--zone-cleanup-after`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use weft_model::resource::{ResourceKey, ResourceType, Spec};
use weft_testbed::inprocess;
use weft_testbed::wait::eventually;

/// `/zones/{zone}/_overview` on `global`.
async fn overview(global: &inprocess::Running, zone: &str) -> Value {
    let (s, ov) = global.api.get(&format!("/zones/{zone}/_overview")).await;
    assert_eq!(s, StatusCode::OK, "{ov}");
    ov
}

/// Waits until global shows `zone` online (or offline); a zone that has not
/// connected yet is not listed.
async fn until_online(global: &inprocess::Running, zone: &str, online: bool) -> Value {
    eventually(
        Duration::from_secs(20),
        &format!("zone {zone} online={online} on global"),
        || async {
            let (s, ov) = global.api.get(&format!("/zones/{zone}/_overview")).await;
            (s == StatusCode::OK && ov["zoneInsight"]["online"] == online).then_some(ov)
        },
    )
    .await
}

/// Puts Dataplane `name` on a zone and waits until global lists it.
async fn report_dataplane(global: &inprocess::Running, zone: &inprocess::Running, name: &str) {
    let dp = weft_testbed::ads::dataplane_json("default", name, name, 8080);
    // Accepted once the zone holds the mesh from global.
    eventually(
        Duration::from_secs(10),
        "dataplane accepted by the zone",
        || async {
            let (s, _) = zone
                .api
                .put(&format!("/meshes/default/dataplanes/{name}"), &dp)
                .await;
            s.is_success().then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(10), "dataplane on global", || async {
        let (_, list) = global.api.get("/meshes/default/dataplanes").await;
        list["items"]
            .as_array()?
            .iter()
            .any(|d| d["labels"]["kuma.io/display-name"] == name)
            .then_some(())
    })
    .await;
}

async fn dataplanes_on_global(global: &inprocess::Running) -> u64 {
    let (_, list) = global.api.get("/meshes/default/dataplanes").await;
    list["total"].as_u64().unwrap()
}

// Global writes the zone's KDS subscription (with its per-type counters) to
// its store; after global is killed and restarted on the same data dir, the
// zone's overview shows that subscription, closed by the new instance, in
// Kuma's ZoneOverview shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_insight_survives_a_restart_of_global() {
    let dir = tempfile::tempdir().unwrap();
    let global = inprocess::global_in(dir.path()).await;
    let zone = inprocess::federated_zone(&global, "zone-1").await;
    let live = until_online(&global, "zone-1", true).await;
    report_dataplane(&global, &zone, "web-1").await;
    // The counters reach the store within the flush interval.
    let key = ResourceKey::new(ResourceType::ZoneInsight, None, "zone-1");
    let persisted = eventually(
        Duration::from_secs(20),
        "the zone's insight persisted with ACKed Meshes",
        || async {
            let r = global.store.get(&key).await.ok()??;
            let Spec::ZoneInsight(spec) = r.spec else {
                return None;
            };
            let sub = spec.subscriptions.last()?.clone();
            (sub.status.stat.get("Mesh")?.responses_acknowledged >= 1).then_some(sub)
        },
    )
    .await;
    assert!(persisted.disconnect_time.is_none());
    assert_eq!(
        Some(persisted.connect_time.clone().unwrap()),
        live["zoneInsight"]["connectTime"]
            .as_str()
            .map(String::from)
    );
    global.stop().await;

    let global = inprocess::global_in(dir.path()).await;
    let ov = overview(&global, "zone-1").await;
    assert_eq!(ov["type"], "ZoneOverview", "{ov}");
    assert_eq!(ov["name"], "zone-1");
    assert_eq!(ov["zone"]["enabled"], true, "{ov}");
    let insight = &ov["zoneInsight"];
    assert_eq!(insight["online"], false, "{ov}");
    let subs = insight["subscriptions"].as_array().unwrap();
    let last = subs.last().unwrap();
    assert_eq!(last["id"], persisted.id.as_str(), "{ov}");
    assert_eq!(
        last["connectTime"],
        persisted.connect_time.unwrap().as_str()
    );
    assert!(
        last["disconnectTime"].is_string(),
        "closed by the new instance: {ov}"
    );
    assert_eq!(
        last["version"]["kumaCp"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(last["version"]["kumaCp"]["kumaCpGlobalCompatible"], true);
    assert!(
        last["status"]["stat"]["Mesh"]["responsesAcknowledged"]
            .as_u64()
            .unwrap()
            >= 1,
        "{ov}"
    );
    assert!(last["status"]["total"]["responsesSent"].as_u64().unwrap() >= 1);
    // Weft's summary reads the same last known state.
    assert_eq!(insight["version"], env!("CARGO_PKG_VERSION"), "{ov}");
    assert_eq!(insight["connectTime"], last["connectTime"]);
    assert_eq!(ov["proxies"]["dataplanes"]["total"], 1, "{ov}");
    // The list and Kuma's legacy path answer alike.
    let (_, all) = global.api.get("/zones+insights").await;
    assert_eq!(
        all["items"][0]["zoneInsight"]["subscriptions"],
        insight["subscriptions"]
    );
    zone.stop().await;
    global.stop().await;
}

// `enabled: false` ends the zone's streams at once and refuses it until it is
// enabled again; the zone says why on /ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_zone_is_disconnected_until_enabled() {
    let global = inprocess::global().await;
    let zone = inprocess::federated_zone(&global, "zone-1").await;
    until_online(&global, "zone-1", true).await;
    let (s, body) = global
        .api
        .put(
            "/zones/zone-1",
            "type: Zone\nname: zone-1\nenabled: false\n",
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    let ov = until_online(&global, "zone-1", false).await;
    assert_eq!(ov["zone"]["enabled"], false, "{ov}");
    eventually(
        Duration::from_secs(10),
        "the zone says it is disabled",
        || async {
            let r = zone
                .api
                .http()
                .get(zone.api.url("/ready"))
                .send()
                .await
                .ok()?;
            let body: Value = r.json().await.ok()?;
            body["reason"]
                .as_str()?
                .contains("global has disabled this zone")
                .then_some(())
        },
    )
    .await;
    // Still refused after the zone's next attempts.
    let ov = overview(&global, "zone-1").await;
    assert_eq!(ov["zoneInsight"]["online"], false, "{ov}");
    let (s, body) = global
        .api
        .put("/zones/zone-1", "type: Zone\nname: zone-1\nenabled: true\n")
        .await;
    assert!(s.is_success(), "{s} {body}");
    until_online(&global, "zone-1", true).await;
    zone.stop().await;
    global.stop().await;
}

// A connected zone cannot be deleted (400, saying to shut it down first).
// Once it is gone, deleting its Zone deletes the Dataplanes it reported and
// its ZoneInsight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_zone_needs_it_offline_and_takes_what_it_reported() {
    let global = inprocess::global().await;
    let zone = inprocess::federated_zone(&global, "zone-1").await;
    until_online(&global, "zone-1", true).await;
    report_dataplane(&global, &zone, "web-1").await;
    let (s, body) = global.api.delete("/zones/zone-1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("still connected"),
        "{body}"
    );
    zone.stop().await;
    until_online(&global, "zone-1", false).await;
    assert_eq!(
        dataplanes_on_global(&global).await,
        1,
        "kept while the zone is offline"
    );
    let (s, body) = global.api.delete("/zones/zone-1").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    eventually(
        Duration::from_secs(10),
        "the zone's Dataplanes deleted",
        || async { (dataplanes_on_global(&global).await == 0).then_some(()) },
    )
    .await;
    let key = ResourceKey::new(ResourceType::ZoneInsight, None, "zone-1");
    eventually(
        Duration::from_secs(10),
        "its ZoneInsight deleted",
        || async { global.store.get(&key).await.ok()?.is_none().then_some(()) },
    )
    .await;
    let (s, _) = global.api.get("/zones/zone-1/_overview").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    global.stop().await;
}

// A zone offline longer than --zone-cleanup-after is deleted with what it
// reported; an online zone is kept however long it has been connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_zones_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let global = inprocess::global_configured(dir.path(), |c| {
        c.zone_cleanup_after = Some(Duration::from_secs(2));
    })
    .await;
    let gone = inprocess::federated_zone(&global, "zone-gone").await;
    let kept = inprocess::federated_zone(&global, "zone-kept").await;
    until_online(&global, "zone-gone", true).await;
    until_online(&global, "zone-kept", true).await;
    report_dataplane(&global, &gone, "web-gone").await;
    report_dataplane(&global, &kept, "web-kept").await;
    gone.stop().await;
    until_online(&global, "zone-gone", false).await;
    eventually(
        Duration::from_secs(20),
        "the offline zone cleaned up",
        || async {
            let (s, _) = global.api.get("/zones/zone-gone").await;
            (s == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(10), "its Dataplane deleted", || async {
        (dataplanes_on_global(&global).await == 1).then_some(())
    })
    .await;
    let (s, _) = global.api.get("/zones/zone-kept").await;
    assert_eq!(s, StatusCode::OK, "the online zone stays");
    kept.stop().await;
    global.stop().await;
}
