//! End to end with real Envoy: a standalone zone, echo apps, and `weft-dp` + Envoy
//! sidecars. client → its Envoy → backend's Envoy → backend (two instances), with
//! SotW and delta xDS; refused proxies; Envoy's own counters show no rejected update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use weft_testbed::mesh::traffic::LoopOptions;
use weft_testbed::mesh::{AppSpec, MeshHarness, TokenChoice, request_loop};
use weft_testbed::wait::until;

/// Two backends and a client, `api` for the client and one backend, the other
/// backend on the other flavour; 200s spread over both instances.
async fn client_to_two_backends(client_sotw: bool) {
    let mut mesh = MeshHarness::start().await.unwrap();
    let b1 = AppSpec::http("backend", "backend-1");
    let b2 = AppSpec::http("backend", "backend-2");
    let (b1, b2) = if client_sotw {
        (b1.sotw(), b2)
    } else {
        (b1, b2.sotw())
    };
    mesh.start_app(b1).await.unwrap();
    mesh.start_app(b2).await.unwrap();
    let client = AppSpec::http("client", "client-1").outbound("backend");
    let client = if client_sotw { client.sotw() } else { client };
    mesh.start_app(client).await.unwrap();
    let client = mesh.app("client-1").unwrap();

    // Both backend instances reach the client's EDS before traffic starts.
    client.until_healthy_hosts("backend", 2).await;

    let url = client.outbound_url("backend", "/hello");
    let tally = request_loop(&url, 40, &LoopOptions::default()).await;
    assert_eq!(tally.status(200), 40, "{tally:?}");
    assert!(
        tally.instance("backend-1") >= 5 && tally.instance("backend-2") >= 5,
        "both instances answer: {tally:?}"
    );

    // The request went through both proxies: the client's outbound and the
    // backends' inbounds counted it.
    let upstream = client.admin.stat("cluster.backend.upstream_rq_200").await;
    assert_eq!(
        upstream, 40,
        "the client's Envoy sent them to cluster backend"
    );
    let mut inbound_total = 0;
    for name in ["backend-1", "backend-2"] {
        let app = mesh.app(name).unwrap();
        let stat = format!("cluster.localhost_{}.upstream_rq_200", app.app_port);
        inbound_total += app.admin.stat(&stat).await;
    }
    assert_eq!(
        inbound_total, 40,
        "backend Envoys' inbound clusters counted the requests"
    );

    // Envoy accepted every update, and it did get config over each flavour.
    assert!(
        mesh.rejected_updates().await.is_empty(),
        "rejected: {:?}",
        mesh.rejected_updates().await
    );
    for app in &mesh.apps {
        let stats = app.admin.stats().await.unwrap();
        for key in [
            "cluster_manager.cds.update_success",
            "listener_manager.lds.update_success",
        ] {
            assert!(
                stats.get(key).copied().unwrap_or(0) >= 1,
                "{}: {key} = {:?}",
                app.spec.instance,
                stats.get(key)
            );
        }
        assert_eq!(
            stats.get("control_plane.connected_state").copied(),
            Some(1),
            "{} is connected",
            app.spec.instance
        );
    }
}

// Delta for the client: client → Envoy → Envoy → backend, 200s from both instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_client_reaches_both_backends() {
    client_to_two_backends(false).await;
}

// SotW for the client: the same, over state-of-the-world ADS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_client_reaches_both_backends() {
    client_to_two_backends(true).await;
}

// A proxy with no token, a token for another name, or a forged token is refused:
// weft-dp exits non-zero with the zone's reason, and the zone logs why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_without_a_valid_token_are_refused() {
    let mesh = MeshHarness::start().await.unwrap();
    let other_name = mesh
        .issue_token(serde_json::json!({"mesh": "default", "name": "someone-else"}))
        .await
        .unwrap();
    let cases = [
        (
            TokenChoice::Missing,
            "no dataplane token: pass one with --dataplane-token-file",
        ),
        (
            TokenChoice::Given(other_name),
            "was issued for the Dataplane named \"someone-else\"",
        ),
        (
            TokenChoice::Given("eyJhbGciOiJFZERTQSJ9.e30.c2ln".into()),
            "dataplane token",
        ),
    ];
    for (i, (token, reason)) in cases.into_iter().enumerate() {
        let name = format!("intruder-{i}");
        let mut app = mesh
            .spawn_app(AppSpec::http("web", &name).token(token))
            .await
            .unwrap();
        let status = app
            .dp
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("weft-dp exits when refused");
        assert!(!status.success(), "{name}: {status}");
        let log = app.dp.log();
        assert!(
            log.contains("the zone refused the bootstrap request") && log.contains(reason),
            "{name}: weft-dp says why:\n{log}"
        );
        let zone_log = mesh.zone.process.log();
        assert!(
            zone_log.contains("refused a bootstrap request")
                && zone_log.contains(&format!("dataplane={name}")),
            "the zone logs the refusal of {name}:\n{zone_log}"
        );
    }
}

// A token constrained to tag kuma.io/service=web admits a web proxy and refuses an
// api proxy, naming the tag; the token API needs the admin token and names bad fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_constrained_tokens_and_the_token_api() {
    let mut mesh = MeshHarness::start().await.unwrap();
    let web_only = mesh
        .issue_token(serde_json::json!({"mesh": "default", "tags": {"kuma.io/service": "web"}}))
        .await
        .unwrap();
    mesh.start_app(AppSpec::http("web", "web-1").token(TokenChoice::Given(web_only.clone())))
        .await
        .unwrap();
    let mut api = mesh
        .spawn_app(AppSpec::http("api", "api-1").token(TokenChoice::Given(web_only)))
        .await
        .unwrap();
    let status = api.dp.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert!(!status.success());
    let log = api.dp.log();
    assert!(
        log.contains("403") && log.contains("tag \"kuma.io/service\"") && log.contains("[api]"),
        "{log}"
    );

    let http = reqwest::Client::new();
    let url = format!("{}/tokens/dataplane", mesh.zone.api_url());
    let anonymous = http
        .post(&url)
        .json(&serde_json::json!({"mesh": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad = http
        .post(&url)
        .bearer_auth(mesh.zone.token())
        .json(&serde_json::json!({"mesh": "default", "validFor": "forever"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["invalid_parameters"][0]["field"], "validFor", "{body}");
    assert!(mesh.rejected_updates().await.is_empty());
}

// SIGTERM to weft-dp reaches Envoy: both exit, weft-dp with Envoy's status (0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_forwarded_to_envoy() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_app(AppSpec::http("web", "web-1")).await.unwrap();
    let mut app = mesh.apps.pop().unwrap();
    app.dp
        .signal(rustix::process::Signal::TERM)
        .expect("signal weft-dp");
    let status = app
        .dp
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("weft-dp exits after SIGTERM");
    assert!(status.success(), "{status}\n{}", app.dp.log());
    assert!(app.dp.log().contains("forwarding the signal to Envoy"));
    // Envoy is gone with it: its admin port no longer answers.
    until(
        Duration::from_secs(5),
        "Envoy's admin port closes",
        || async { app.admin.get("/ready").await.is_err() },
    )
    .await;
}

// The xDS stream checks the token too: an Envoy started directly from a bootstrap
// whose token was swapped for a forged one never gets configuration, and the zone
// logs the refusal; the Envoy log carries the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xds_stream_refuses_a_bad_token() {
    let mesh = MeshHarness::start().await.unwrap();
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dataplane = format!(
        "type: Dataplane\nmesh: default\nname: direct-1\nnetworking:\n  address: 127.0.0.1\n  admin:\n    port: {admin_port}\n  inbound:\n    - port: 1\n      servicePort: 2\n      tags:\n        kuma.io/service: direct\n"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/bootstrap", mesh.zone.api_url()))
        .bearer_auth(mesh.zone.token())
        .json(&serde_json::json!({"dataplane": dataplane, "xdsApi": "sotw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut bootstrap: serde_json::Value = resp.json().await.unwrap();
    let metadata = &mut bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]["initial_metadata"]
        [0]["value"];
    assert!(metadata.as_str().unwrap().starts_with("Bearer "));
    *metadata = serde_json::json!("Bearer eyJhbGciOiJFZERTQSIsImtpZCI6IjEifQ.e30.c2ln");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.json");
    std::fs::write(&path, bootstrap.to_string()).unwrap();
    let envoy = std::env::var_os("WEFT_ENVOY_BIN").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/envoy"),
        Into::into,
    );
    let mut cmd = std::process::Command::new(envoy);
    cmd.arg("-c")
        .arg(&path)
        .args(["--use-dynamic-base-id", "-l", "warning"]);
    let envoy = weft_testbed::mesh::GroupProcess::spawn("envoy direct-1", cmd, dir.path()).unwrap();
    until(
        Duration::from_secs(15),
        "the zone refuses the stream",
        || async { mesh.zone.process.log().contains("xDS: proxy refused") },
    )
    .await;
    let zone_log = mesh.zone.process.log();
    assert!(zone_log.contains("default.direct-1"), "{zone_log}");
    until(Duration::from_secs(15), "Envoy logs the reason", || async {
        // Envoy percent-encodes the gRPC status message in its log.
        let log = envoy.log();
        log.contains("dataplane%20token%20refused") && log.contains("signature")
    })
    .await;
}

// `weft-zone token dataplane`, run offline against the running zone's data dir,
// issues a token the zone accepts; the proxy gets traffic through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_issued_token_admits_a_proxy() {
    let mut mesh = MeshHarness::start().await.unwrap();
    let out =
        std::process::Command::new(weft_testbed::process::bin_dir().unwrap().join("weft-zone"))
            .args(["token", "dataplane", "--mesh", "default", "--name", "cli-1"])
            .args([
                "--tag",
                "kuma.io/service=web",
                "--valid-for",
                "1h",
                "--data-dir",
            ])
            .arg(mesh.zone.data_dir())
            .output()
            .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    mesh.start_app(AppSpec::http("web", "cli-1").token(TokenChoice::Given(token)))
        .await
        .unwrap();
    mesh.start_app(AppSpec::http("client", "client-1").outbound("web"))
        .await
        .unwrap();
    let client = mesh.app("client-1").unwrap();
    client.until_healthy_hosts("web", 1).await;
    let tally = request_loop(&client.outbound_url("web", "/"), 5, &LoopOptions::default()).await;
    assert_eq!(tally.instance("cli-1"), 5, "{tally:?}");
    assert!(mesh.rejected_updates().await.is_empty());
}

// A federated zone serves proxies alike: the mesh comes from global over KDS, the
// proxies get their bootstrap and config from the zone, traffic flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_zone_serves_proxies() {
    let (global, zone) = tokio::task::spawn_blocking(|| {
        let global = weft_testbed::ControlPlane::global(&[]).unwrap();
        let zone = weft_testbed::ControlPlane::federated_zone(&global, "east", &[]).unwrap();
        (global, zone)
    })
    .await
    .unwrap();
    let mut mesh = MeshHarness::on_zone(zone, Some("east")).unwrap();
    let api = mesh.api();
    until(
        Duration::from_secs(15),
        "mesh default synced to the zone",
        || {
            let api = api.clone();
            async move { api.get("/meshes/default").await.0 == 200 }
        },
    )
    .await;
    mesh.start_backend_and_client(true).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    let tally = request_loop(
        &client.outbound_url("backend", "/"),
        10,
        &LoopOptions::default(),
    )
    .await;
    assert_eq!(tally.status(200), 10, "{tally:?}");
    assert_eq!(tally.instance("backend-1"), 10, "{tally:?}");
    assert!(mesh.rejected_updates().await.is_empty());
    drop(mesh);
    drop(global);
}

// POST /bootstrap names what is wrong: bad Dataplane fields, an unknown mesh, an
// unsupported proxy type; the admin token works in place of a dataplane token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_request_errors_name_the_field() {
    let mesh = MeshHarness::start().await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/bootstrap", mesh.zone.api_url());
    let post = |body: serde_json::Value| {
        http.post(&url)
            .bearer_auth(mesh.zone.token())
            .json(&body)
            .send()
    };
    let dp = |mesh: &str| {
        format!(
            "type: Dataplane\nmesh: {mesh}\nname: x\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 1\n      tags:\n        kuma.io/service: x\n"
        )
    };
    let fields =
        |body: &serde_json::Value| -> Vec<String> { weft_testbed::client::invalid_fields(body) };
    let ok = post(serde_json::json!({"dataplane": dp("default")}))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bootstrap: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(bootstrap["node"]["id"], "default.x");
    assert_eq!(
        bootstrap["dynamic_resources"]["ads_config"]["api_type"],
        "DELTA_GRPC"
    );

    let r = post(serde_json::json!({"dataplane": dp("nowhere")}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fields(&r.json().await.unwrap()), ["dataplane.mesh"]);

    let r = post(serde_json::json!({"dataplane": "type: Dataplane\nmesh: default\nname: x\nnetworking:\n  inbound:\n    - port: 0\n"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    let f = fields(&body);
    assert!(
        !f.is_empty() && f.iter().all(|f| f.starts_with("dataplane.networking")),
        "{body}"
    );

    // A Dataplane presented as an egress names the type it should be.
    let r = post(serde_json::json!({"dataplane": dp("default"), "proxyType": "egress"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(fields(&body), ["dataplane.type"]);
    assert!(body.to_string().contains("ZoneEgress"), "{body}");
}
