//! KDS authentication and ownership, in-process: an expired zone token is refused
//! with UNAUTHENTICATED and a message saying it expired (in global's log and the
//! zone's), and a zone cannot create, change or delete another zone's resources
//! on global, whatever names and labels it puts on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use weft_model::resource::{ResourceKey, ResourceType, parse_resource};
use weft_sync::delta::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use weft_sync::kds::{self, zone_names};
use weft_testbed::inprocess;
use weft_testbed::wait::eventually;

/// Every log line this test binary writes (both tests share one subscriber).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    static INIT: OnceLock<()> = OnceLock::new();
    let buf = LOGS.get_or_init(|| Mutex::new(Vec::new()));
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_writer(|| Capture)
            .try_init();
    });
    buf
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        logs().lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured log line mentioning `who` and containing every one of `needles`.
fn log_line(who: &str, needles: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .find(|l| l.contains(who) && needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
}

// A zone token whose `exp` has passed is refused with UNAUTHENTICATED and a message
// saying it expired: on the wire, in global's log, and in the zone's log; the zone
// never becomes ready and is never registered on global.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_zone_token_is_refused() {
    logs();
    let started = std::time::Instant::now();
    let global = inprocess::global().await;
    let bound = global.global().unwrap();
    // Signed with global's own key, as if issued two hours ago for one hour.
    let keys = bound.zone_tokens.key_dir().load_existing().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let issued = weft_global::tokens::issue_with(
        &keys,
        bound.zone_tokens.kds_ca_fingerprint(),
        &weft_security::tokens::ManualClock::new(now - 7200),
        weft_security::tokens::ZoneTokenBody {
            zone: "zone-exp".into(),
            scope: vec![],
            valid_for: "1h".into(),
        },
    )
    .unwrap();
    let mut config = inprocess::kds_client_config(&global, "zone-exp").await;
    weft_zone::kds::probe(&config)
        .await
        .expect("a fresh token for the same zone is accepted");
    config.token = issued.token.expose().into();

    match weft_zone::kds::probe(&config).await {
        Err(weft_zone::kds::SessionError::Refused(status)) => {
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status}");
            assert!(status.message().contains("expired"), "{status}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let line = eventually(Duration::from_secs(5), "global's refusal log", || async {
        log_line(
            "zone-exp",
            &["KDS: zone refused", "Unauthenticated", "expired"],
        )
    })
    .await;
    assert!(!line.contains(issued.token.expose()), "no secret in logs");

    // A real zone with that token: refused on every attempt, says why, never ready.
    // The zone's log names the global it dials (this test's port), not itself.
    let global_url = config.global.to_string();
    let dir = tempfile::tempdir().unwrap();
    let zone = inprocess::federated_zone_with(config, dir.path()).await;
    let line = eventually(Duration::from_secs(5), "the zone's refusal log", || async {
        log_line(
            global_url.trim_end_matches('/'),
            &[
                "KDS: connection to global failed",
                "Unauthenticated",
                "expired",
            ],
        )
    })
    .await;
    eprintln!("zone logged: {line}");
    let ready = zone
        .api
        .http()
        .get(zone.api.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_ne!(ready.status(), StatusCode::OK);
    zone.stop().await;
    global.stop().await;
    eprintln!("expired_zone_token_is_refused took {:?}", started.elapsed());
}

const DATAPLANE: &str = "type: Dataplane\nname: dp-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: backend\n";

/// A TLS channel to global's KDS port, trusting its KDS certificate chain.
async fn kds_channel(global: &inprocess::Running) -> Channel {
    let bound = global.global().unwrap();
    Endpoint::from_shared(format!("https://localhost:{}", bound.kds_address.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(bound.kds_tls.cert_chain_pem()))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A `ZoneToGlobalSync` stream driven by hand, authenticated as one zone.
struct RawZone {
    tx: tokio::sync::mpsc::Sender<DeltaDiscoveryResponse>,
    rx: tonic::Streaming<DeltaDiscoveryRequest>,
    nonce: u32,
}

impl RawZone {
    async fn open(global: &inprocess::Running, zone: &str) -> RawZone {
        let config = inprocess::kds_client_config(global, zone).await;
        let mut client = kds_proto::KdsSyncServiceClient::new(kds_channel(global).await);
        let (tx, out) = tokio::sync::mpsc::channel(4);
        let mut req = tonic::Request::new(ReceiverStream::new(out));
        let md = req.metadata_mut();
        md.insert(
            "authorization",
            format!("Bearer {}", config.token).parse().unwrap(),
        );
        md.insert("client-id", zone.parse().unwrap());
        let rx = client.zone_to_global_sync(req).await.unwrap().into_inner();
        // Like a real zone, send the other subscribed types their (empty) first
        // response: global answers nothing of the initial sync until every type has
        // arrived once.
        let others = weft_sync::kds::zone_to_global_types()
            .into_iter()
            .filter(|t| *t != ResourceType::Dataplane);
        for (i, ty) in others.enumerate() {
            let nonce = format!("first-{i}");
            let first = DeltaDiscoveryResponse {
                type_url: ty.name().to_string(),
                nonce: nonce.to_string(),
                ..Default::default()
            };
            tx.send(first).await.unwrap();
        }
        RawZone { tx, rx, nonce: 0 }
    }

    /// Sends one Dataplane response and returns global's answer to it (ACK/NACK).
    async fn send(
        &mut self,
        resources: Vec<weft_sync::delta::Resource>,
        removed: Vec<String>,
    ) -> DeltaDiscoveryRequest {
        self.nonce += 1;
        let nonce = self.nonce.to_string();
        self.tx
            .send(DeltaDiscoveryResponse {
                type_url: ResourceType::Dataplane.name().to_string(),
                resources,
                removed_resources: removed,
                nonce: nonce.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let m = self.rx.message().await.unwrap().expect("stream open");
                if m.response_nonce == nonce {
                    return m;
                }
            }
        })
        .await
        .expect("global answered within 5 s")
    }
}

/// Global's Dataplanes, by stored name.
async fn dataplanes_on_global(global: &inprocess::Running) -> Vec<Value> {
    let (s, list) = global.api.get("/meshes/default/dataplanes").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list["items"].as_array().cloned().unwrap_or_default()
}

// A zone cannot create, change or delete another zone's resources on global: zone-b
// reporting a same-named Dataplane with forged `kuma.io/zone: zone-a` labels gets
// its own hashed name and its own labels; zone-b removing zone-a's names (display
// or hashed) leaves zone-a's Dataplane untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_cannot_touch_another_zones_resources() {
    let started = std::time::Instant::now();
    let global = inprocess::global().await;
    let za = inprocess::federated_zone(&global, "zone-a").await;
    eventually(Duration::from_secs(10), "zone-a ready", || async {
        let r = za.api.http().get(za.api.url("/ready")).send().await.ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    // Each of the zone's streams logs inside its own span, so one stream's lines can
    // be filtered by zone and direction.
    for (direction, line) in [
        ("global_to_zone", "KDS: initial sync from global applied"),
        ("zone_to_global", "KDS: ZoneToGlobalSync stream open"),
    ] {
        let span = format!("kds{{zone=zone-a direction=\"{direction}\"}}");
        let found = eventually(
            Duration::from_secs(5),
            "a line in the stream's span",
            || async { log_line(&span, &[line]) },
        )
        .await;
        eprintln!("{found}");
    }
    let (s, body) = za
        .api
        .put("/meshes/default/dataplanes/dp-1", DATAPLANE)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let a_name = zone_names::hashed_name(Some("default"), "dp-1", "zone-a");
    let a_path = format!("/meshes/default/dataplanes/{a_name}");
    let before = eventually(
        Duration::from_secs(5),
        "zone-a's dp-1 on global",
        || async {
            let (s, dp) = global.api.get(&a_path).await;
            (s == StatusCode::OK).then_some(dp)
        },
    )
    .await;
    assert_eq!(before["labels"]["kuma.io/zone"], "zone-a");
    let a_key = ResourceKey::new(ResourceType::Dataplane, Some("default"), &a_name);
    let a_stored = global.store.get(&a_key).await.unwrap().unwrap();

    let mut zb = RawZone::open(&global, "zone-b").await;
    // (a) Same name, forged provenance, different content.
    let mut forged = parse_resource(DATAPLANE.replace("18080", "19090").as_bytes(), false).unwrap();
    for (k, v) in [
        ("kuma.io/zone", "zone-a"),
        ("kuma.io/origin", "zone"),
        ("kuma.io/display-name", "dp-1"),
    ] {
        forged.meta.labels.insert(k.into(), v.into());
    }
    // And one named exactly as zone-a's resource is stored on global.
    let mut squatter = forged.clone();
    squatter.meta.name = a_name.clone();
    let ack = zb
        .send(
            vec![kds::to_delta(&forged), kds::to_delta(&squatter)],
            vec![],
        )
        .await;
    assert!(ack.error_detail.is_none(), "{:?}", ack.error_detail);

    let b_name = zone_names::hashed_name(Some("default"), "dp-1", "zone-b");
    let (s, b_dp) = global
        .api
        .get(&format!("/meshes/default/dataplanes/{b_name}"))
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "zone-b's dp-1 under its own name: {b_dp}"
    );
    assert_eq!(b_dp["labels"]["kuma.io/zone"], "zone-b", "{b_dp}");
    assert_eq!(b_dp["labels"]["kuma.io/origin"], "zone", "{b_dp}");
    assert_eq!(b_dp["labels"]["kuma.io/display-name"], "dp-1", "{b_dp}");
    assert_eq!(b_dp["networking"]["inbound"][0]["port"], 19090, "{b_dp}");
    let sq_name = zone_names::hashed_name(Some("default"), &a_name, "zone-b");
    let (s, sq) = global
        .api
        .get(&format!("/meshes/default/dataplanes/{sq_name}"))
        .await;
    assert_eq!(s, StatusCode::OK, "the squatter is zone-b's own: {sq}");
    assert_eq!(sq["labels"]["kuma.io/zone"], "zone-b", "{sq}");
    let after = global.store.get(&a_key).await.unwrap().unwrap();
    assert_eq!(after, a_stored, "zone-a's dp-1 is unchanged");
    assert_eq!(dataplanes_on_global(&global).await.len(), 3);

    // (b) Removals of zone-a's names: the display name and the hashed global name.
    // The display name removes zone-b's own dp-1; the hashed one, zone-b's squatter.
    let ack = zb
        .send(
            vec![],
            vec!["default/dp-1".to_string(), format!("default/{a_name}")],
        )
        .await;
    assert!(ack.error_detail.is_none(), "{:?}", ack.error_detail);
    let after = global.store.get(&a_key).await.unwrap();
    let after = after.expect("zone-a's dp-1 survives zone-b's removals");
    assert_eq!(
        after, a_stored,
        "zone-a's dp-1 is unchanged by zone-b's removals"
    );
    let left = dataplanes_on_global(&global).await;
    assert_eq!(left.len(), 1, "only zone-a's remains: {left:?}");
    assert_eq!(left[0]["name"], a_name.as_str());
    assert_eq!(left[0]["labels"]["kuma.io/zone"], "zone-a");

    // Zone-a still owns it: its own delete goes through.
    let (s, _) = za.api.delete("/meshes/default/dataplanes/dp-1").await;
    assert_eq!(s, StatusCode::OK);
    eventually(
        Duration::from_secs(5),
        "zone-a's delete reaches global",
        || async { dataplanes_on_global(&global).await.is_empty().then_some(()) },
    )
    .await;
    drop(zb);
    za.stop().await;
    global.stop().await;
    eprintln!(
        "zone_cannot_touch_another_zones_resources took {:?}",
        started.elapsed()
    );
}
