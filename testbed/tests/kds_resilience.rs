//! KDS resilience with real processes: a zone SIGKILLed and restarted on its data
//! dir resumes without a full resend (asserted from global's `sent` counters) and
//! catches up on what changed while it was down; a frozen global (SIGSTOP) is
//! noticed by the zone, and a frozen zone by global, within 30 s through HTTP/2
//! keepalive; both reconnect after SIGCONT.
//!
//! The two SIGSTOP tests wait for the real keepalive (10 s ping, 10 s timeout), so
//! each takes about 20 s; the test harness runs them side by side. Timings are
//! printed (`--nocapture`) as `measured: ...` lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use weft_testbed::wait::eventually;
use weft_testbed::{Client, ControlPlane};

const POLICIES: &str = "/meshes/default/meshtimeouts";

/// How long a peer may take to notice a frozen one (DESIGN §5 / issue 3).
const LIVENESS_BOUND: Duration = Duration::from_secs(30);

fn timeout_doc(name: &str, idle: &str) -> String {
    format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: {idle}\n"
    )
}

fn api(cp: &ControlPlane) -> Client {
    Client::new(cp.api_url(), cp.token())
}

async fn ready(cp: &ControlPlane) -> bool {
    reqwest::get(format!("{}/ready", cp.api_url()))
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
}

async fn until_ready(cp: &ControlPlane) {
    eventually(Duration::from_secs(15), "zone ready", || async {
        ready(cp).await.then_some(())
    })
    .await;
}

/// The MeshTimeout's idleTimeout as `cp` serves it, `None` if it has none.
async fn idle_timeout(cp: &ControlPlane, name: &str) -> Option<String> {
    let (s, body) = api(cp).get(&format!("{POLICIES}/{name}")).await;
    (s == StatusCode::OK).then(|| {
        body["spec"]["to"][0]["default"]["idleTimeout"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

/// Waits until `zone` serves `name` with `idle` (`None`: not at all).
async fn until_zone_serves(zone: &ControlPlane, name: &str, idle: Option<&str>) {
    let what = format!("zone serves {name} = {idle:?}");
    eventually(Duration::from_secs(30), &what, || async {
        (idle_timeout(zone, name).await.as_deref() == idle).then_some(())
    })
    .await;
}

/// PUTs a MeshTimeout on global, asserting the status.
async fn put_policy(global: &ControlPlane, name: &str, idle: &str, status: StatusCode) {
    let (s, body) = api(global)
        .put(&format!("{POLICIES}/{name}"), &timeout_doc(name, idle))
        .await;
    assert_eq!(s, status, "{body}");
}

/// Global's insight of `zone` (`zoneInsight` of `/zones/{zone}/_overview`).
async fn insight(global: &ControlPlane, zone: &str) -> Value {
    let (s, ov) = api(global).get(&format!("/zones/{zone}/_overview")).await;
    assert_eq!(s, StatusCode::OK, "{ov}");
    ov["zoneInsight"].clone()
}

/// Waits until global reports `zone` online (or offline); how long it took.
async fn until_online(
    global: &ControlPlane,
    zone: &str,
    online: bool,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    let what = format!("global reports {zone} online = {online}");
    eventually(within, &what, || async {
        let (s, ov) = api(global).get(&format!("/zones/{zone}/_overview")).await;
        (s == StatusCode::OK && ov["zoneInsight"]["online"] == online).then_some(())
    })
    .await;
    start.elapsed()
}

fn sent(insight: &Value, ty: &str, counter: &str) -> u64 {
    insight["sent"][ty][counter].as_u64().unwrap_or(0)
}

fn connects(zone: &ControlPlane) -> usize {
    zone.process
        .log()
        .matches("KDS: connected; syncing from global")
        .count()
}

/// Starts `weft-zone` named `zone` on `dir/data` (created if needed), federated with
/// the global whose KDS port is `kds_port`, with the token in `dir/zone.token`.
fn zone_in(dir: &Path, zone: &str, kds_port: u16) -> ControlPlane {
    let token_file = dir.join("zone.token");
    let global_address = format!("grpcs://localhost:{kds_port}");
    ControlPlane::start_in(
        "weft-zone",
        &dir.join("data"),
        &[
            "--zone",
            zone,
            "--global-address",
            &global_address,
            "--zone-token-file",
            token_file.to_str().unwrap(),
        ],
    )
    .unwrap()
}

// A zone SIGKILLed after syncing 20 policies, while global updates one, creates one
// and deletes one, comes back on its data dir with exactly those three changes:
// on the new connection global's counters show 2 resources and 1 removal sent for
// MeshTimeout and nothing for Mesh (no full resend), and the zone serves the
// changed state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_zone_resumes_with_only_what_changed() {
    let global = ControlPlane::global(&[]).unwrap();
    let kds_port = global.kds_address().unwrap().port();
    for i in 0..20 {
        put_policy(&global, &format!("t{i}"), "1h", StatusCode::CREATED).await;
    }
    // The 20 plus the mesh's default MeshTimeouts (decision 0005).
    let (_, list) = api(&global).get(POLICIES).await;
    let total = list["total"].as_u64().unwrap();
    assert!(total >= 20, "{list}");
    let dir = tempfile::tempdir().unwrap();
    let token = global.issue_zone_token("zone-k", "1h").unwrap();
    std::fs::write(dir.path().join("zone.token"), token).unwrap();

    let mut zone = zone_in(dir.path(), "zone-k", kds_port);
    until_ready(&zone).await;
    eventually(
        Duration::from_secs(10),
        "every policy on the zone",
        || async {
            let (_, list) = api(&zone).get(POLICIES).await;
            (list["total"] == total).then_some(())
        },
    )
    .await;
    let first = insight(&global, "zone-k").await;
    assert_eq!(
        sent(&first, "MeshTimeout", "resourcesSent"),
        total,
        "{first}"
    );
    assert_eq!(sent(&first, "Mesh", "resourcesSent"), 1, "{first}");

    zone.process.kill();
    let took = until_online(&global, "zone-k", false, Duration::from_secs(10)).await;
    eprintln!("measured: global saw the SIGKILLed zone go offline after {took:?}");
    drop(zone);

    // While the zone is down: one update, one create, one delete on global.
    put_policy(&global, "t0", "3h", StatusCode::OK).await;
    put_policy(&global, "t20", "4h", StatusCode::CREATED).await;
    let (s, _) = api(&global).delete(&format!("{POLICIES}/t1")).await;
    assert_eq!(s, StatusCode::OK);

    let restarted = Instant::now();
    let zone = zone_in(dir.path(), "zone-k", kds_port);
    // The zone serves its synced store at once, before it reconnects.
    assert_eq!(idle_timeout(&zone, "t5").await.as_deref(), Some("1h"));
    until_zone_serves(&zone, "t0", Some("3h")).await;
    until_zone_serves(&zone, "t20", Some("4h")).await;
    until_zone_serves(&zone, "t1", None).await;
    eprintln!(
        "measured: restarted zone caught up {:?} after its start",
        restarted.elapsed()
    );
    let (_, list) = api(&zone).get(POLICIES).await;
    assert_eq!(list["total"], total, "one created, one deleted: {list}");

    let second = insight(&global, "zone-k").await;
    assert_eq!(second["online"], true, "{second}");
    assert_eq!(
        sent(&second, "MeshTimeout", "resourcesSent"),
        2,
        "only the updated and the created policy travel: {second}"
    );
    assert_eq!(sent(&second, "MeshTimeout", "removalsSent"), 1, "{second}");
    assert_eq!(
        sent(&second, "Mesh", "resourcesSent"),
        0,
        "the unchanged mesh is not resent: {second}"
    );
    assert_eq!(sent(&second, "MeshTimeout", "nacked"), 0, "{second}");
}

// SIGSTOP global: the zone notices the silent peer through keepalive within 30 s
// (logs the lost connection) and keeps serving; after SIGCONT it reconnects and a
// policy PUT on global reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_notices_a_frozen_global() {
    let global = ControlPlane::global(&[]).unwrap();
    let zone = ControlPlane::federated_zone(&global, "zone-s", &[]).unwrap();
    until_ready(&zone).await;
    put_policy(&global, "before", "1h", StatusCode::CREATED).await;
    until_zone_serves(&zone, "before", Some("1h")).await;
    let lost_before = zone.kds_losses();
    let connects_before = connects(&zone);

    global.process.signal("STOP").unwrap();
    let stopped = Instant::now();
    eventually(
        LIVENESS_BOUND,
        "the zone notices the frozen global",
        || async { (zone.kds_losses() > lost_before).then_some(()) },
    )
    .await;
    let noticed = stopped.elapsed();
    eprintln!("measured: zone noticed the SIGSTOPped global after {noticed:?}");
    assert!(
        ready(&zone).await,
        "stays ready while global is unreachable"
    );
    assert_eq!(idle_timeout(&zone, "before").await.as_deref(), Some("1h"));

    global.process.signal("CONT").unwrap();
    let resumed = Instant::now();
    put_policy(&global, "after", "2h", StatusCode::CREATED).await;
    until_zone_serves(&zone, "after", Some("2h")).await;
    eprintln!(
        "measured: after SIGCONT, a new policy on the zone in {:?}",
        resumed.elapsed()
    );
    assert!(
        connects(&zone) > connects_before,
        "the zone reconnected:\n{}",
        zone.process.log()
    );
}

// SIGSTOP a zone: global notices the silent zone through keepalive within 30 s and
// reports it offline; after SIGCONT the zone reconnects, is online again and
// receives a policy PUT on global meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_notices_a_frozen_zone() {
    let global = ControlPlane::global(&[]).unwrap();
    let zone = ControlPlane::federated_zone(&global, "zone-f", &[]).unwrap();
    until_ready(&zone).await;
    until_online(&global, "zone-f", true, Duration::from_secs(10)).await;

    zone.process.signal("STOP").unwrap();
    let took = until_online(&global, "zone-f", false, LIVENESS_BOUND).await;
    eprintln!("measured: global reported the SIGSTOPped zone offline after {took:?}");
    let offline = insight(&global, "zone-f").await;
    assert!(offline["disconnectTime"].is_string(), "{offline}");
    put_policy(&global, "meanwhile", "5m", StatusCode::CREATED).await;

    zone.process.signal("CONT").unwrap();
    let took = until_online(&global, "zone-f", true, Duration::from_secs(30)).await;
    eprintln!("measured: the zone was online again {took:?} after SIGCONT");
    until_zone_serves(&zone, "meanwhile", Some("5m")).await;
}
