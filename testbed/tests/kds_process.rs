//! KDS with real processes: a `weft-global` and two `weft-zone` processes joined
//! over TLS with zone tokens issued by global's API. Policies flow to both zones
//! (create, update, delete); a zone is ready only once synced; wrong credentials,
//! a wrong CA and plaintext get nothing; the zones keep serving through a SIGKILL
//! of global, reconnect by themselves when it comes back on the same port, and
//! receive what changed in global's store while it was down.
//!
//! Timings are printed (`--nocapture`) as `measured: ...` lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_model::resource::{ResourceKey, ResourceType, parse_resource};
use weft_store::ResourceStore;
use weft_store::sled_store::SledStore;
use weft_testbed::wait::eventually;
use weft_testbed::{Client, ControlPlane};

const POLICY: &str = "/meshes/default/meshtimeouts";
const DATAPLANES: &str = "/meshes/default/dataplanes";
const INGRESS: &str = "type: ZoneIngress\nname: ingress-a\nnetworking:\n  address: 127.0.0.1\n  advertisedAddress: 127.0.0.1\n  port: 10001\n  advertisedPort: 10001\n";

fn dataplane_doc(name: &str) -> String {
    format!(
        "type: Dataplane\nname: {name}\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: backend\n"
    )
}

fn timeout_doc(name: &str, idle: &str) -> String {
    format!(
        "type: MeshTimeout\nname: {name}\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: {idle}\n"
    )
}

fn api(cp: &ControlPlane) -> Client {
    Client::new(cp.api_url(), cp.token())
}

/// `GET /ready` (no token needed).
async fn ready(cp: &ControlPlane) -> StatusCode {
    reqwest::get(format!("{}/ready", cp.api_url()))
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// `GET /ready`: its status and body (`{"ready": .., "reason": ..}`).
async fn readiness(cp: &ControlPlane) -> (StatusCode, serde_json::Value) {
    match reqwest::get(format!("{}/ready", cp.api_url())).await {
        Ok(r) => {
            let status = r.status();
            (status, r.json().await.unwrap_or_default())
        }
        Err(_) => (StatusCode::BAD_GATEWAY, serde_json::Value::Null),
    }
}

/// The MeshTimeout's idleTimeout as `cp` serves it, `None` if it has none.
async fn idle_timeout(cp: &ControlPlane, name: &str) -> Option<String> {
    let (s, body) = api(cp).get(&format!("{POLICY}/{name}")).await;
    (s == StatusCode::OK).then(|| {
        body["spec"]["to"][0]["default"]["idleTimeout"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

/// Waits until every zone serves `name` with `idle` (`None`: not at all); how long it took.
async fn until_zones_serve(
    zones: &[ControlPlane],
    name: &str,
    idle: Option<&str>,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    for z in zones {
        let what = format!("{} serves {name} = {idle:?}", z.api_url());
        eventually(within, &what, || async {
            (idle_timeout(z, name).await.as_deref() == idle).then_some(())
        })
        .await;
    }
    start.elapsed()
}

/// Waits until global lists a dataplane `name` reported by `zone`; how long it took.
async fn until_global_has_dataplane(global: &ControlPlane, zone: &str, name: &str) -> Duration {
    let start = Instant::now();
    let what = format!("{zone}'s dataplane {name} on global");
    eventually(Duration::from_secs(30), &what, || async {
        let (_, list) = api(global).get(DATAPLANES).await;
        list["items"]
            .as_array()?
            .iter()
            .any(|dp| {
                dp["labels"]["kuma.io/zone"] == zone && dp["labels"]["kuma.io/display-name"] == name
            })
            .then_some(())
    })
    .await;
    start.elapsed()
}

/// The first line of `cp`'s log for which `pred` holds, waiting up to `within`.
async fn log_line(
    cp: &ControlPlane,
    within: Duration,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    eventually(within, what, || async {
        cp.process
            .log()
            .lines()
            .find(|l| pred(l))
            .map(str::to_string)
    })
    .await
}

// Two zone processes: /ready is 503 until their first sync, then 200; a policy PUT
// on global reaches both, its update and delete follow; after a SIGKILL of global
// the zones keep serving every policy they hold, and when global restarts on the
// same data dir and KDS port they reconnect by themselves and receive what changed
// in global's store while it was down, and new policies. A dataplane applied on a
// zone reaches global, also one applied while global was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_zones_follow_global_and_survive_its_restart() {
    let mut global = ControlPlane::global(&[]).unwrap();
    let kds = global.kds_address().expect("global prints kds=");
    let global_dir = global.take_dir().unwrap();
    let tokens = ["zone-a", "zone-b"].map(|z| (z, global.issue_zone_token(z, "1h").unwrap()));

    // Freeze global: the kernel still accepts the zones' connections, but nothing
    // is served, so the zones are deterministically unsynced.
    global.process.signal("STOP").unwrap();
    let zones: Vec<ControlPlane> = tokens
        .iter()
        .map(|(z, t)| ControlPlane::federated_zone_with_token(&global, z, t, &[]).unwrap())
        .collect();
    for z in &zones {
        assert_eq!(ready(z).await, StatusCode::SERVICE_UNAVAILABLE);
        let (s, _) = api(z).get("/meshes/default").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "nothing synced yet");
    }
    global.process.signal("CONT").unwrap();
    let resumed = Instant::now();
    for z in &zones {
        eventually(Duration::from_secs(10), "zone ready", || async {
            (ready(z).await == StatusCode::OK).then_some(())
        })
        .await;
    }
    eprintln!(
        "measured: both zones ready {:?} after global resumed",
        resumed.elapsed()
    );
    let (s, mesh) = api(&zones[0]).get("/meshes/default").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(mesh["labels"]["kuma.io/origin"], "global");

    // Create, update, delete on global; both zones follow.
    let gapi = api(&global);
    let (s, _) = gapi
        .put(&format!("{POLICY}/t1"), &timeout_doc("t1", "1h"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let took = until_zones_serve(&zones, "t1", Some("1h"), Duration::from_secs(10)).await;
    eprintln!("measured: a new policy on both zones after {took:?}");
    let (s, _) = gapi
        .put(&format!("{POLICY}/t1"), &timeout_doc("t1", "2h"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let took = until_zones_serve(&zones, "t1", Some("2h"), Duration::from_secs(10)).await;
    eprintln!("measured: an update on both zones after {took:?}");
    let (s, _) = gapi.delete(&format!("{POLICY}/t1")).await;
    assert_eq!(s, StatusCode::OK);
    let took = until_zones_serve(&zones, "t1", None, Duration::from_secs(10)).await;
    eprintln!("measured: a delete on both zones after {took:?}");

    // Zone → global: a dataplane applied on zone-a is reported to global.
    let (s, body) = api(&zones[0])
        .put(&format!("{DATAPLANES}/dp-1"), &dataplane_doc("dp-1"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let took = until_global_has_dataplane(&global, "zone-a", "dp-1").await;
    eprintln!("measured: a zone's dataplane on global after {took:?}");

    // zone-a's ZoneIngress reaches zone-b through global, and never comes back to
    // zone-a as a second copy.
    let (s, body) = api(&zones[0])
        .put("/zoneingresses/ingress-a", INGRESS)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let started = Instant::now();
    let ingress = eventually(
        Duration::from_secs(10),
        "zone-a's ingress on zone-b",
        || async {
            let (_, list) = api(&zones[1]).get("/zoneingresses").await;
            list["items"].as_array()?.first().cloned()
        },
    )
    .await;
    eprintln!(
        "measured: zone-a's ingress on zone-b after {:?}",
        started.elapsed()
    );
    assert_eq!(ingress["zone"], "zone-a", "{ingress}");
    assert_eq!(ingress["labels"]["kuma.io/origin"], "global", "{ingress}");
    let (_, own) = api(&zones[0]).get("/zoneingresses").await;
    assert_eq!(own["total"], 1, "zone-a holds only its own ingress: {own}");
    let (_, on_global) = api(&global).get("/zoneingresses").await;
    assert_eq!(
        on_global["items"][0]["labels"]["kuma.io/zone"], "zone-a",
        "{on_global}"
    );

    // SIGKILL global: the zones notice, and keep serving every policy they synced.
    for (name, idle) in [("t2", "5m"), ("t5", "9m")] {
        let (s, _) = gapi
            .put(&format!("{POLICY}/{name}"), &timeout_doc(name, idle))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        until_zones_serve(&zones, name, Some(idle), Duration::from_secs(10)).await;
    }
    global.process.kill();
    let killed = Instant::now();
    // Zone-owned writes go on while global is away, and are reported once it is back.
    let (s, body) = api(&zones[0])
        .put(&format!("{DATAPLANES}/dp-2"), &dataplane_doc("dp-2"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // The outage lasts 30 s (the issue's figure, past the zones' 15 s back-off
    // cap): every second of it, both zones stay ready and serve every synced
    // policy from their own stores.
    let outage_for = Duration::from_secs(30);
    let mut checks = 0;
    while killed.elapsed() < outage_for {
        for z in &zones {
            assert_eq!(ready(z).await, StatusCode::OK, "stays ready offline");
            let (s, list) = api(z).get(POLICY).await;
            assert_eq!(s, StatusCode::OK);
            let names: Vec<&str> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                // The mesh's default MeshTimeouts (decision 0005) are synced too.
                .filter(|n| !n.ends_with("-default"))
                .collect();
            assert_eq!(names, ["t2", "t5"], "every synced policy is served");
            assert_eq!(idle_timeout(z, "t2").await.as_deref(), Some("5m"));
        }
        checks += 1;
        // The outage itself is the scenario: the pause is its clock, not a wait
        // for a condition.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for z in &zones {
        assert!(z.kds_losses() >= 3, "the zone kept trying to reach global");
    }
    eprintln!("measured: {checks} rounds of checks during the 30 s outage, all served");
    drop(global);
    // Global's API is down with it, so changes made "on global meanwhile" are
    // written straight into its store: an update, a create and a delete.
    {
        let store = SledStore::open(&global_dir.path().join("store")).unwrap();
        for (name, idle) in [("t2", "6m"), ("t4", "8m")] {
            let res = parse_resource(timeout_doc(name, idle).as_bytes(), false).unwrap();
            weft_store::put(&store, res, None).await.unwrap();
        }
        let t5 = ResourceKey::new(ResourceType::MeshTimeout, Some("default"), "t5");
        store.delete(&t5, None).await.unwrap();
    }
    let outage = killed.elapsed();

    // Same data dir, same KDS port: the zones' address and pinned CA still hold.
    let port = kds.to_string();
    let global =
        ControlPlane::start_in("weft-global", global_dir.path(), &["--kds-address", &port])
            .unwrap();
    assert_eq!(global.kds_address(), Some(kds));
    let (s, _) = api(&global)
        .put(&format!("{POLICY}/t3"), &timeout_doc("t3", "7m"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // The zones' back-off caps at 15 s.
    let took = until_zones_serve(&zones, "t3", Some("7m"), Duration::from_secs(30)).await;
    eprintln!(
        "measured: after global's restart ({outage:?} outage), a new policy on both zones in {took:?}",
    );
    until_global_has_dataplane(&global, "zone-a", "dp-2").await;
    // What changed in global's store while it was down has arrived too.
    until_zones_serve(&zones, "t2", Some("6m"), Duration::from_secs(10)).await;
    until_zones_serve(&zones, "t4", Some("8m"), Duration::from_secs(10)).await;
    until_zones_serve(&zones, "t5", None, Duration::from_secs(10)).await;
    for z in &zones {
        let connects = z
            .process
            .log()
            .matches("KDS: connected; syncing from global")
            .count();
        assert!(connects >= 2, "the zone reconnected ({connects} connects)");
    }
}

// zone-a's token presented by a zone calling itself zone-b: global refuses it with
// PERMISSION_DENIED on every attempt, the zone's log says so, and the zone never
// becomes ready nor registered on global.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_zone_is_refused() {
    let global = ControlPlane::global(&[]).unwrap();
    let token_a = global.issue_zone_token("zone-a", "1h").unwrap();
    let zone = ControlPlane::federated_zone_with_token(&global, "zone-b", &token_a, &[]).unwrap();

    let refused = |l: &str| {
        l.contains("KDS: zone refused")
            && l.contains("zone=zone-b")
            && l.contains("PermissionDenied")
    };
    let line = log_line(
        &global,
        Duration::from_secs(10),
        "global logs the refusal",
        refused,
    )
    .await;
    assert!(line.contains("WARN"), "{line}");
    let line = log_line(
        &zone,
        Duration::from_secs(10),
        "zone logs PermissionDenied",
        |l| l.contains("PermissionDenied"),
    )
    .await;
    assert!(line.contains("global refused the stream"), "{line}");
    // The log tells the operator what to do.
    assert!(
        line.contains("weft-global token zone --zone zone-b"),
        "{line}"
    );
    // It keeps trying, with the long back-off of a refused token (first retry after
    // 7.5–12.5 s), and keeps being refused.
    eventually(Duration::from_secs(20), "a second refusal", || async {
        (global.process.log().lines().filter(|l| refused(l)).count() >= 2).then_some(())
    })
    .await;
    let (status, body) = readiness(&zone).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("never synced with global: global refuses this zone's token since"),
        "{body}"
    );
    assert_eq!(
        api(&zone).get("/meshes/default").await.0,
        StatusCode::NOT_FOUND
    );
    let gapi = api(&global);
    assert_eq!(gapi.get("/zones/zone-b").await.0, StatusCode::NOT_FOUND);
    assert_eq!(gapi.get("/zones/zone-a").await.0, StatusCode::NOT_FOUND);
}

// KDS is TLS only: a plaintext gRPC client with a valid token gets no stream, and an
// HTTP/2 preface sent in clear gets no HTTP/2 answer. A zone that trusts another CA
// never syncs, while a zone using the CA its token pins does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_a_wrong_ca_get_nothing() {
    let global = ControlPlane::global(&[]).unwrap();
    let port = global.kds_address().unwrap().port();

    let token = global.issue_zone_token("zone-c", "1h").unwrap();
    let plaintext = tokio::time::timeout(Duration::from_secs(5), async {
        let mut client =
            kds_proto::KdsSyncServiceClient::connect(format!("http://127.0.0.1:{port}"))
                .await
                .map_err(|e| e.to_string())?;
        let stream = futures::stream::pending::<weft_sync::delta::DeltaDiscoveryRequest>();
        let mut req = tonic::Request::new(stream);
        let md = req.metadata_mut();
        md.insert("authorization", format!("Bearer {token}").parse().unwrap());
        md.insert("client-id", "zone-c".parse().unwrap());
        client
            .global_to_zone_sync(req)
            .await
            .map(drop)
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    })
    .await;
    eprintln!("plaintext gRPC client: {plaintext:?}");
    assert!(
        !matches!(plaintext, Ok(Ok(()))),
        "a plaintext client must not get a stream"
    );

    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The HTTP/2 client preface and an empty SETTINGS frame.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    tcp.write_all(&hello).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server must close the connection");
    eprintln!("answer to a clear HTTP/2 preface: {answer:02x?}");
    let h2_settings = answer.len() >= 9 && answer[3] == 0x04;
    assert!(!h2_settings, "an HTTP/2 answer in clear: {answer:02x?}");
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "nothing but a TLS alert: {answer:02x?}"
    );

    // A CA that is not global's: the zone's TLS verification fails.
    let other = tempfile::tempdir().unwrap();
    weft_security::pki::KdsTls::load_or_create(other.path(), &weft_security::pki::default_sans())
        .unwrap();
    let other_ca = other.path().join("ca.crt");
    let wrong_ca = ControlPlane::federated_zone(
        &global,
        "zone-d",
        &["--global-ca-file", other_ca.to_str().unwrap()],
    )
    .unwrap();
    let started = Instant::now();
    let good = ControlPlane::federated_zone(&global, "zone-c", &[]).unwrap();
    eventually(Duration::from_secs(10), "zone-c ready", || async {
        (ready(&good).await == StatusCode::OK).then_some(())
    })
    .await;
    eprintln!(
        "measured: a federated zone process ready {:?} after spawn",
        started.elapsed()
    );
    let line = log_line(
        &wrong_ca,
        Duration::from_secs(10),
        "zone-d logs the certificate failure",
        |l| l.contains("KDS: connection to global failed"),
    )
    .await;
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    assert_eq!(ready(&wrong_ca).await, StatusCode::SERVICE_UNAVAILABLE);
    let gapi = api(&global);
    assert_eq!(gapi.get("/zones/zone-c").await.0, StatusCode::OK);
    assert_eq!(gapi.get("/zones/zone-d").await.0, StatusCode::NOT_FOUND);
}

// A zone that synced once serves from its store after a restart while global is
// down: `/ready` is 200 and says "serving from store, global unreachable since
// <time>" (so does `/`), and it serves the synced policies. A fresh zone pointed at
// the same unreachable global is not ready: 503, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_zone_serves_from_its_store_while_global_is_down() {
    let global = ControlPlane::global(&[]).unwrap();
    let port = global.kds_address().expect("global prints kds=").port();
    let fresh_token = global.issue_zone_token("zone-f", "1h").unwrap();
    let mut zone = ControlPlane::federated_zone(&global, "zone-a", &[]).unwrap();
    let (s, _) = api(&global)
        .put(&format!("{POLICY}/t1"), &timeout_doc("t1", "1h"))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    until_zones_serve(
        std::slice::from_ref(&zone),
        "t1",
        Some("1h"),
        Duration::from_secs(10),
    )
    .await;
    // Readiness follows the commit a moment later (the client's state machine
    // hears of it after the store does).
    eventually(Duration::from_secs(5), "ready and synced", || async {
        let (status, body) = readiness(&zone).await;
        (status == StatusCode::OK && body["reason"] == "synced with global").then_some(())
    })
    .await;

    // Stop both; restart the zone alone, on its data dir, dialing the dead global.
    let zone_dir = zone.take_dir().unwrap();
    zone.process.kill();
    drop(zone);
    drop(global);
    let global_address = format!("grpcs://localhost:{port}");
    let token_file = zone_dir.path().join("zone.token");
    let restarted_at = Instant::now();
    let zone = ControlPlane::start_in(
        "weft-zone",
        &zone_dir.path().join("data"),
        &[
            "--zone",
            "zone-a",
            "--global-address",
            &global_address,
            "--zone-token-file",
            token_file.to_str().unwrap(),
        ],
    )
    .unwrap();
    // Ready from the start (it holds a full sync), and once the first attempt has
    // failed it says since when global is unreachable.
    assert_eq!(readiness(&zone).await.0, StatusCode::OK);
    let body = eventually(
        Duration::from_secs(10),
        "the unreachable reason",
        || async {
            let (status, body) = readiness(&zone).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["reason"]
                .as_str()?
                .starts_with("serving from store, global unreachable since ")
                .then_some(body)
        },
    )
    .await;
    eprintln!(
        "measured: restarted zone ready and reporting {:?} {:?} after start",
        body["reason"],
        restarted_at.elapsed()
    );
    let (_, overview) = api(&zone).get("/").await;
    assert_eq!(overview["status"]["ready"], true, "{overview}");
    assert!(
        overview["status"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("global unreachable since"),
        "{overview}"
    );
    assert_eq!(idle_timeout(&zone, "t1").await.as_deref(), Some("1h"));
    let (s, mesh) = api(&zone).get("/meshes/default").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(mesh["labels"]["kuma.io/origin"], "global");

    // A zone that never synced, pointed at the same unreachable global: 503 and why.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_token_file = fresh.path().join("zone.token");
    std::fs::write(&fresh_token_file, &fresh_token).unwrap();
    let never = ControlPlane::start_in(
        "weft-zone",
        &fresh.path().join("data"),
        &[
            "--zone",
            "zone-f",
            "--global-address",
            &global_address,
            "--zone-token-file",
            fresh_token_file.to_str().unwrap(),
        ],
    )
    .unwrap();
    let body = eventually(
        Duration::from_secs(10),
        "the never-synced reason",
        || async {
            let (status, body) = readiness(&never).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            body["reason"]
                .as_str()?
                .starts_with("never synced with global: global unreachable since ")
                .then_some(body)
        },
    )
    .await;
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(
        api(&never).get("/meshes/default").await.0,
        StatusCode::NOT_FOUND
    );
}
