//! Policies change real traffic: a standalone zone, echo apps, `weft-dp` + Envoy.
//! MeshTimeout → 504, MeshRetry turns a flaky backend into successes, a policy
//! change under a request loop takes effect within 1 s without failed requests,
//! MeshHTTPRoute 90/10 split, MeshFaultInjection abort 50 %, outlier ejection,
//! MeshRateLimit 429, MeshAccessLog file lines, MeshTrace spans at a Zipkin
//! collector, MeshMetric's Prometheus endpoint. Every test ends by checking
//! Envoy's own counters: no rejected update on any xDS type (SotW and delta).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_testbed::mesh::traffic::{LoopOptions, request_loop_for};
use weft_testbed::mesh::{AppSpec, MeshHarness, request_loop};
use weft_testbed::wait::{eventually, until};

/// What a request loop saw: when, status, and the `x-marker` header the app got.
type Seen = Arc<Mutex<Vec<(Instant, u16, Option<String>)>>>;

async fn put(mesh: &MeshHarness, plural: &str, name: &str, spec: &str) {
    let doc = format!(
        "type: {ty}\nmesh: default\nname: {name}\nspec:\n{spec}",
        ty = kind_of(plural)
    );
    let (s, body) = mesh
        .api()
        .put(&format!("/meshes/default/{plural}/{name}"), &doc)
        .await;
    assert!(s.is_success(), "PUT {plural}/{name}: {s} {body}\n{doc}");
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "meshtimeouts" => "MeshTimeout",
        "meshretries" => "MeshRetry",
        "meshhttproutes" => "MeshHTTPRoute",
        "meshfaultinjections" => "MeshFaultInjection",
        "meshcircuitbreakers" => "MeshCircuitBreaker",
        "meshratelimits" => "MeshRateLimit",
        "meshaccesslogs" => "MeshAccessLog",
        "meshhealthchecks" => "MeshHealthCheck",
        "meshmetrics" => "MeshMetric",
        "meshtraces" => "MeshTrace",
        other => panic!("unknown plural {other}"),
    }
}

/// Client `client-1`'s retries for backend: none (`numRetries: 0`), more specific
/// than the mesh's default MeshRetry (top-level MeshService beats Mesh).
async fn no_retries(mesh: &MeshHarness) {
    put(
        mesh,
        "meshretries",
        "client-no-retry",
        "  targetRef: {kind: MeshService, name: client}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default: {http: {numRetries: 0}}\n",
    )
    .await;
}

async fn no_rejections(mesh: &MeshHarness) {
    let rejected = mesh.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
}

/// Waits until some of `n` requests to `url` are answered `status`.
async fn until_some(url: &str, n: usize, status: u16) {
    let what = format!("a {status} within {n} requests");
    until(Duration::from_secs(10), &what, || async {
        request_loop(url, n, &LoopOptions::default())
            .await
            .status(status)
            > 0
    })
    .await;
}

async fn status_of(url: &str, headers: &[(&str, &str)]) -> (u16, Duration) {
    let opts = LoopOptions {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoopOptions::default()
    };
    let started = Instant::now();
    let t = request_loop(url, 1, &opts).await;
    let status = t.by_status.keys().next().copied().unwrap_or(0);
    (status, started.elapsed())
}

// MeshTimeout 1 s (selecting MeshServices by label) against a 2 s backend → 504;
// MeshRetry 0 then 3 retries on a flaky backend; a MeshHTTPRoute header change
// under a request loop is seen within 1 s with every request answered 200.
// Client on SotW, backend on delta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_retry_and_live_change() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_backend_and_client(true).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    let url = client.outbound_url("backend", "/slow?delay=2s");

    // Written as kuma.io's 2.14 pages do: MeshServices selected by their
    // `kuma.io/display-name` label.
    put(
        &mesh,
        "meshtimeouts",
        "client-timeout",
        "  targetRef: {kind: MeshService, labels: {kuma.io/display-name: client}}\n  to:\n    - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}}\n      default: {http: {requestTimeout: 1s}}\n",
    )
    .await;
    until(
        Duration::from_secs(15),
        "504 after the 1s timeout",
        || async {
            let (s, took) = status_of(&url, &[]).await;
            s == 504 && took < Duration::from_millis(1900)
        },
    )
    .await;

    // Retries: none → the flaky backend's every-second failure shows; 3 → none does.
    no_retries(&mesh).await;
    let flaky = client.outbound_url("backend", "/flaky");
    let fail = [("x-echo-fail", "0.5")];
    until(
        Duration::from_secs(10),
        "a 503 with retries off",
        || async { status_of(&flaky, &fail).await.0 == 503 },
    )
    .await;
    let opts = LoopOptions {
        headers: vec![("x-echo-fail".into(), "0.5".into())],
        ..LoopOptions::default()
    };
    let t = request_loop(&flaky, 20, &opts).await;
    assert!(t.status(503) >= 8, "without retries about half fail: {t:?}");
    put(
        &mesh,
        "meshretries",
        "client-no-retry",
        "  targetRef: {kind: MeshService, name: client}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default: {http: {numRetries: 3, retryOn: [5xx]}}\n",
    )
    .await;
    until(Duration::from_secs(10), "20 successes in a row", || async {
        request_loop(&flaky, 20, &opts).await.status(200) == 20
    })
    .await;
    let t = request_loop(&flaky, 40, &opts).await;
    assert_eq!(
        t.status(200),
        40,
        "MeshRetry turns the flaky backend into successes: {t:?}"
    );

    // A route change while requests flow: no failure, visible within 1 s.
    let loop_url = client.outbound_url("backend", "/loop");
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let runner = tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(4);
        let mut n = 0;
        while Instant::now() < end && n < 20_000 {
            n += 1;
            let r = http
                .get(&loop_url)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let (status, marker) = match r {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    let m = body["headers"]["x-marker"].as_str().map(str::to_string);
                    (s, m)
                }
                Err(_) => (0, None),
            };
            seen2.lock().unwrap().push((Instant::now(), status, marker));
        }
    });
    until(Duration::from_secs(3), "the loop runs", || async {
        seen.lock().unwrap().len() > 20
    })
    .await;
    let changed_at = Instant::now();
    put(
        &mesh,
        "meshhttproutes",
        "marker",
        "  targetRef: {kind: MeshService, name: client}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      rules:\n        - matches: [{path: {type: PathPrefix, value: /}}]\n          default:\n            filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-marker, value: v2}]}}]\n",
    )
    .await;
    runner.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let failed: Vec<_> = seen.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the change",
        failed.len(),
        seen.len()
    );
    let first = seen
        .iter()
        .find(|(_, _, m)| m.as_deref() == Some("v2"))
        .expect("the new route applied");
    let lag = first.0.duration_since(changed_at);
    assert!(lag < Duration::from_secs(1), "took {lag:?}");
    assert!(
        seen.iter()
            .filter(|(t, _, _)| *t > first.0)
            .all(|(_, _, m)| m.as_deref() == Some("v2")),
        "no request went back to the old route"
    );
    println!(
        "live route change: visible after {lag:?}, {} requests, 0 failed",
        seen.len()
    );
    no_rejections(&mesh).await;
}

// MeshHTTPRoute 90/10 by version tag over 500 requests; then MeshFaultInjection
// abort 50 % on the backends' inbounds → about half 503 (retries off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_fault_injection() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_app(AppSpec::http("backend", "backend-v1").tag("version", "v1"))
        .await
        .unwrap();
    mesh.start_app(
        AppSpec::http("backend", "backend-v2")
            .tag("version", "v2")
            .sotw(),
    )
    .await
    .unwrap();
    mesh.start_app(AppSpec::http("client", "client-1").outbound("backend"))
        .await
        .unwrap();
    let client = mesh.app("client-1").unwrap();
    client.until_healthy_hosts("backend", 2).await;
    put(
        &mesh,
        "meshhttproutes",
        "split",
        "  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      rules:\n        - matches: [{path: {type: PathPrefix, value: /}}]\n          default:\n            backendRefs:\n              - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}\n              - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}\n",
    )
    .await;
    until(Duration::from_secs(10), "the split clusters", || async {
        let stats = client.admin.stats().await.unwrap_or_default();
        stats
            .keys()
            .filter(|k| k.starts_with("cluster.backend-") && k.ends_with(".membership_healthy"))
            .filter(|k| stats[*k] == 1)
            .count()
            == 2
    })
    .await;
    let url = client.outbound_url("backend", "/split");
    let t = request_loop(&url, 500, &LoopOptions::default()).await;
    assert_eq!(t.status(200), 500, "{t:?}");
    let v1 = t.instance("backend-v1") as f64 / 500.0;
    println!(
        "split: v1 {:.3}, v2 {:.3}",
        v1,
        t.instance("backend-v2") as f64 / 500.0
    );
    assert!((0.85..=0.95).contains(&v1), "90/10 within tolerance: {t:?}");

    no_retries(&mesh).await;
    put(
        &mesh,
        "meshfaultinjections",
        "abort-half",
        "  targetRef: {kind: MeshService, name: backend}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {http: [{abort: {httpStatus: 503, percentage: 50}}]}\n",
    )
    .await;
    let plain = client.outbound_url("backend", "/fault");
    until_some(&plain, 10, 503).await;
    let t = request_loop(&plain, 400, &LoopOptions::default()).await;
    let share = t.share(503);
    println!("fault abort 50%: {share:.3} answered 503");
    assert!((0.4..=0.6).contains(&share), "about half 503: {t:?}");
    assert_eq!(t.status(503) + t.status(200), 400, "{t:?}");
    no_rejections(&mesh).await;
}

// MeshCircuitBreaker outlier detection ejects the failing instance: after it,
// every request reaches the healthy one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_ejects_failing_instance() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_app(AppSpec::http("backend", "backend-good"))
        .await
        .unwrap();
    mesh.start_app(
        AppSpec::http("backend", "backend-bad")
            .echo_arg("--fail-rate")
            .echo_arg("1.0"),
    )
    .await
    .unwrap();
    mesh.start_app(
        AppSpec::http("client", "client-1")
            .outbound("backend")
            .sotw(),
    )
    .await
    .unwrap();
    let client = mesh.app("client-1").unwrap();
    client.until_healthy_hosts("backend", 2).await;
    no_retries(&mesh).await;
    put(
        &mesh,
        "meshcircuitbreakers",
        "eject",
        "  targetRef: {kind: MeshService, name: client}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default:\n        outlierDetection: {interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100, detectors: {totalFailures: {consecutive: 3}}}\n",
    )
    .await;
    let url = client.outbound_url("backend", "/od");
    until(
        Duration::from_secs(20),
        "the bad instance ejected",
        || async {
            request_loop(&url, 5, &LoopOptions::default()).await;
            client
                .admin
                .stat("cluster.backend.outlier_detection.ejections_enforced_total")
                .await
                >= 1
        },
    )
    .await;
    let t = request_loop(&url, 50, &LoopOptions::default()).await;
    assert_eq!(t.status(200), 50, "{t:?}");
    assert_eq!(t.instance("backend-good"), 50, "{t:?}");
    no_rejections(&mesh).await;
}

// MeshRateLimit 10 req/s on the backend's inbound → 429 beyond it; MeshAccessLog
// writes Kuma-format lines to a file. (The TCP backend is covered by envoy
// validation only: its collector cluster and the listener arrive in one update and
// Envoy can reject the listener if it is applied before the cluster.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_access_log() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_backend_and_client(false).await.unwrap();
    let log_path = mesh.log_dir().join("client-access.log");
    let client = mesh.app("client-1").unwrap();
    put(
        &mesh,
        "meshaccesslogs",
        "client-log",
        &format!(
            "  targetRef: {{kind: MeshService, name: client}}\n  to:\n    - targetRef: {{kind: MeshService, name: backend}}\n      default:\n        backends:\n          - {{type: File, file: {{path: {}}}}}\n",
            log_path.display()
        ),
    )
    .await;
    put(
        &mesh,
        "meshratelimits",
        "backend-10rps",
        "  targetRef: {kind: MeshService, name: backend}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {local: {http: {requestRate: {num: 10, interval: 1s}, onRateLimit: {status: 429}}}}\n",
    )
    .await;
    let url = client.outbound_url("backend", "/limited");
    until_some(&url, 15, 429).await;
    // Connections the client's Envoy opened before the change stay on the old
    // (unlimited) filter chain until it has drained (Envoy's in-place update).
    let backend = mesh.app("backend-1").unwrap();
    until(
        Duration::from_secs(30),
        "the old inbound filter chain drained",
        || async {
            let s = backend.admin.stats().await.unwrap_or_default();
            s.get("listener_manager.total_filter_chains_draining") == Some(&0)
                && s.get("listener_manager.total_listeners_draining") == Some(&0)
        },
    )
    .await;
    let t = request_loop_for(&url, Duration::from_secs(2), 2_000, &LoopOptions::default()).await;
    println!(
        "rate limit 10/s over 2s: {} x 200, {} x 429 of {}",
        t.status(200),
        t.status(429),
        t.total
    );
    assert!(t.status(429) > 0, "{t:?}");
    assert!(t.status(200) <= 35, "at most ~10/s pass: {t:?}");
    assert_eq!(t.status(200) + t.status(429), t.total, "{t:?}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains("\"backend\"") && l.contains("/limited"))
        {
            println!(
                "access log line: {}",
                text.lines().next().unwrap_or_default()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no access log line in {}: {text:?}",
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    no_rejections(&mesh).await;
}

// MeshAccessLog with a TCP backend: Envoy logs through the bootstrap's static
// access_log_sink (weft-dp's socket, no per-collector cluster), so the listener is
// accepted at once and weft-dp writes the line with the request path to the collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_access_log_reaches_the_collector() {
    use tokio::io::AsyncReadExt;
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = collector.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = received.clone();
    let accept = tokio::spawn(async move {
        while let Ok((mut conn, _)) = collector.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });

    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_backend_and_client(false).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    put(
        &mesh,
        "meshaccesslogs",
        "client-tcp-log",
        &format!(
            "  targetRef: {{kind: MeshService, name: client}}\n  to:\n    - targetRef: {{kind: MeshService, name: backend}}\n      default:\n        backends:\n          - {{type: Tcp, tcp: {{address: \"{address}\"}}}}\n"
        ),
    )
    .await;
    let url = client.outbound_url("backend", "/tcp-logged");
    until(
        Duration::from_secs(20),
        "an access log record at the TCP collector",
        || async {
            let t = request_loop(&url, 3, &LoopOptions::default()).await;
            assert_eq!(t.status(200), t.total, "{t:?}");
            let seen = received.lock().unwrap();
            seen.windows(b"/tcp-logged".len())
                .any(|w| w == b"/tcp-logged")
        },
    )
    .await;
    no_rejections(&mesh).await;
    accept.abort();
}

// Every Kuma access-log placeholder is substituted as Kuma does (the proxy's
// own address as the source, this zone, the direction, the workload's KRI):
// Envoy accepts the format — it refuses an unknown %COMMAND% — and the line
// carries the values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_placeholders_as_kuma() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_app(AppSpec::http("backend", "backend-1"))
        .await
        .unwrap();
    mesh.start_app(
        AppSpec::http("client", "client-1")
            .outbound("backend")
            .label("kuma.io/workload", "client"),
    )
    .await
    .unwrap()
    .until_healthy_hosts("backend", 1)
    .await;
    let log_path = mesh.log_dir().join("placeholders.log");
    let format = "%KUMA_MESH% %KUMA_ZONE% %KUMA_TRAFFIC_DIRECTION% %KUMA_WORKLOAD% %KUMA_SOURCE_SERVICE% %KUMA_DESTINATION_SERVICE% %KUMA_SOURCE_ADDRESS% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT% %RESPONSE_CODE%";
    put(
        &mesh,
        "meshaccesslogs",
        "placeholders",
        &format!(
            "  targetRef: {{kind: MeshService, name: client}}\n  to:\n    - targetRef: {{kind: MeshService, name: backend}}\n      default:\n        backends:\n          - type: File\n            file:\n              path: {}\n              format: {{type: Plain, plain: \"{format}\"}}\n",
            log_path.display()
        ),
    )
    .await;
    let client = mesh.app("client-1").unwrap();
    let ip = client.ip;
    let url = client.outbound_url("backend", "/");
    let expected = format!(
        "default default OUTBOUND kri_wl_default_default__client_ client backend {ip}:0 {ip} 200"
    );
    until(
        Duration::from_secs(20),
        &format!("the line {expected:?} in {}", log_path.display()),
        || async {
            let _ = status_of(&url, &[]).await;
            std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .lines()
                .any(|l| l == expected)
        },
    )
    .await;
    no_rejections(&mesh).await;
}

// MeshHealthCheck: an HTTP check the backend answers 500 marks its one instance
// unhealthy. In panic mode Envoy still sends traffic to it (200) until the policy
// adds failTrafficOnPanic, then it fails every request (503); eventLogPath's file
// receives the checker's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_panic_mode_and_event_log() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_backend_and_client(false).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    no_retries(&mesh).await;
    let events = mesh.log_dir().join("hc-events.log");
    let policy = |fail: bool| {
        format!(
            "  targetRef: {{kind: MeshService, name: client}}\n  to:\n    - targetRef: {{kind: MeshService, name: backend}}\n      default:\n        interval: 1s\n        timeout: 1s\n        unhealthyThreshold: 1\n        alwaysLogHealthCheckFailures: true\n        eventLogPath: {}\n        failTrafficOnPanic: {fail}\n        http: {{path: \"/hc?status=500\"}}\n",
            events.display()
        )
    };
    put(&mesh, "meshhealthchecks", "hc", &policy(false)).await;
    until(
        Duration::from_secs(20),
        "the backend instance failing its health check",
        || async {
            client
                .admin
                .cluster_hosts("backend")
                .await
                .unwrap_or_default()
                .values()
                .any(|f| f.contains("failed_active_hc"))
        },
    )
    .await;
    let url = client.outbound_url("backend", "/panic");
    let t = request_loop(&url, 20, &LoopOptions::default()).await;
    assert_eq!(
        t.status(200),
        20,
        "panic mode routes to the unhealthy host: {t:?}"
    );
    until(
        Duration::from_secs(20),
        "health check events in the event log file",
        || async {
            let text = std::fs::read_to_string(&events).unwrap_or_default();
            text.lines()
                .any(|l| l.contains("health_checker_type") && l.contains("backend"))
        },
    )
    .await;

    put(&mesh, "meshhealthchecks", "hc", &policy(true)).await;
    until(
        Duration::from_secs(20),
        "503 once failTrafficOnPanic is on",
        || async { status_of(&url, &[]).await.0 == 503 },
    )
    .await;
    let t = request_loop(&url, 20, &LoopOptions::default()).await;
    assert_eq!(
        t.status(503),
        20,
        "failTrafficOnPanic fails every request: {t:?}"
    );
    no_rejections(&mesh).await;
}

// Source-specific MeshFaultInjection, as Kuma: clients send their tags in
// `x-kuma-tags` (their outbound routes add it), the backend's fault filter
// matches them. A 100 % abort from client-a applies to client-a only; client-b
// is answered, and the backend app never sees the header (the inbound strips it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_from_one_source_only() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_app(AppSpec::http("backend", "backend-1"))
        .await
        .unwrap();
    for (service, instance) in [("client-a", "client-a-1"), ("client-b", "client-b-1")] {
        mesh.start_app(AppSpec::http(service, instance).outbound("backend"))
            .await
            .unwrap()
            .until_healthy_hosts("backend", 1)
            .await;
    }
    put(
        &mesh,
        "meshfaultinjections",
        "abort-client-a",
        "  targetRef: {kind: MeshService, name: backend}\n  from:\n    - targetRef: {kind: MeshService, name: client-a}\n      default: {http: [{abort: {httpStatus: 418, percentage: 100}}]}\n",
    )
    .await;
    let a = mesh
        .app("client-a-1")
        .unwrap()
        .outbound_url("backend", "/fault");
    let b = mesh
        .app("client-b-1")
        .unwrap()
        .outbound_url("backend", "/fault");
    until(
        Duration::from_secs(15),
        "client-a aborted with 418",
        || async { status_of(&a, &[]).await.0 == 418 },
    )
    .await;
    // Connections opened before the change stay on the old inbound filter chain
    // until it has drained (Envoy's in-place listener update).
    let backend = mesh.app("backend-1").unwrap();
    until(
        Duration::from_secs(30),
        "the old inbound filter chain drained",
        || async {
            let s = backend.admin.stats().await.unwrap_or_default();
            s.get("listener_manager.total_filter_chains_draining") == Some(&0)
                && s.get("listener_manager.total_listeners_draining") == Some(&0)
        },
    )
    .await;
    let t = request_loop(&a, 30, &LoopOptions::default()).await;
    assert_eq!(
        t.status(418),
        30,
        "every request of client-a aborted: {t:?}"
    );
    let t = request_loop(&b, 30, &LoopOptions::default()).await;
    assert_eq!(
        t.status(200),
        30,
        "client-b is not a source of the fault: {t:?}"
    );
    let body: serde_json::Value = reqwest::get(&b).await.unwrap().json().await.unwrap();
    assert!(
        body["headers"].get("x-kuma-tags").is_none(),
        "the inbound strips x-kuma-tags: {body}"
    );
    no_rejections(&mesh).await;
}

/// The body of `GET url` when it answers 200.
async fn scrape(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.text().await.ok()
}

/// Whether the Prometheus text lists a sample of the metric family `name`.
fn lists(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

// MeshMetric with a Prometheus backend: the client's Envoy serves its stats as
// Prometheus text on <proxy address>:<port><path>; used stats only by default
// (Kuma's usedonly), unused ones too with includeUnused, and `sidecar.regex`
// narrows them with Envoy's stats filter. Envoy rejects no update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_metric_prometheus_endpoint() {
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_backend_and_client(false).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    until_some(&client.outbound_url("backend", "/"), 5, 200).await;
    let port = std::net::TcpListener::bind((client.ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://{}:{port}/prom", client.ip);
    let metric = |sidecar: &str| {
        format!(
            "  targetRef: {{kind: MeshService, name: client}}\n  default:\n    sidecar: {sidecar}\n    backends:\n      - {{type: Prometheus, prometheus: {{port: {port}, path: /prom}}}}\n"
        )
    };
    put(&mesh, "meshmetrics", "client-metrics", &metric("{}")).await;
    let text = eventually(Duration::from_secs(15), "the Prometheus endpoint", || {
        scrape(&url)
    })
    .await;
    assert!(lists(&text, "envoy_server_live"), "{text}");
    assert!(lists(&text, "envoy_cluster_upstream_rq_total"), "{text}");
    // Never incremented: left out by usedonly.
    assert!(
        !lists(&text, "envoy_cluster_upstream_cx_overflow"),
        "{text}"
    );

    put(
        &mesh,
        "meshmetrics",
        "client-metrics",
        &metric("{includeUnused: true}"),
    )
    .await;
    until(Duration::from_secs(15), "unused stats listed", || async {
        scrape(&url)
            .await
            .is_some_and(|t| lists(&t, "envoy_cluster_upstream_cx_overflow"))
    })
    .await;

    put(
        &mesh,
        "meshmetrics",
        "client-metrics",
        &metric("{includeUnused: true, regex: '^server\\.'}"),
    )
    .await;
    let text = eventually(Duration::from_secs(15), "only server stats", || async {
        scrape(&url)
            .await
            .filter(|t| !lists(t, "envoy_cluster_upstream_rq_total"))
    })
    .await;
    assert!(lists(&text, "envoy_server_live"), "{text}");
    // Only the stats endpoint is reachable through the listener (a raw request:
    // an HTTP client would resolve the `..` itself).
    let addr = std::net::SocketAddr::from((client.ip, port));
    let other = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(
            b"GET /prom/../../config_dump HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(other.contains("envoy_server_live"), "{other}");
    assert!(!other.contains("\"configs\""), "{other}");
    no_rejections(&mesh).await;
}

/// Zipkin JSON spans POSTed to a collector on loopback: its address and what it got.
async fn zipkin_collector() -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<serde_json::Value>>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::routing::post;
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/api/v2/spans",
        post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let batch: Vec<serde_json::Value> =
                    serde_json::from_slice(&body).expect("a JSON list of spans");
                sink.lock().unwrap().extend(batch);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (address, spans, server)
}

// MeshTrace with a Zipkin backend at 100 % sampling: one request through the
// client's sidecar (SotW) and the backend's (delta) is reported by both to the
// collector, a CLIENT span from service `client` and a SERVER span from
// `backend` in the same trace, each with the policy's literal and header tags
// and Kuma's kuma.mesh / kuma.zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_spans_reach_a_zipkin_collector() {
    let (collector, spans, server) = zipkin_collector().await;
    let mut mesh = MeshHarness::start().await.unwrap();
    mesh.start_backend_and_client(true).await.unwrap();
    put(
        &mesh,
        "meshtraces",
        "zipkin",
        &format!(
            "  targetRef: {{kind: Mesh}}\n  default:\n    backends:\n      - {{type: Zipkin, zipkin: {{url: \"http://{collector}/api/v2/spans\", traceId128bit: true}}}}\n    sampling: {{overall: 100, random: 100, client: 100}}\n    tags:\n      - {{name: team, literal: payments}}\n      - {{name: user, header: {{name: x-user, default: anonymous}}}}\n"
        ),
    )
    .await;
    let url = mesh
        .app("client-1")
        .unwrap()
        .outbound_url("backend", "/traced");
    let opts = LoopOptions {
        headers: vec![("x-user".into(), "alice".into())],
        ..LoopOptions::default()
    };
    let tag = |s: &serde_json::Value, k: &str| s["tags"][k].as_str().map(str::to_string);
    let is_ours = |s: &serde_json::Value, service: &str, kind: &str| {
        s["localEndpoint"]["serviceName"] == service
            && s["kind"] == kind
            && tag(s, "http.url").is_some_and(|u| u.ends_with("/traced"))
            && tag(s, "team").as_deref() == Some("payments")
            && tag(s, "user").as_deref() == Some("alice")
            && tag(s, "kuma.mesh").as_deref() == Some("default")
            && tag(s, "kuma.zone").is_some()
    };
    // Envoy flushes every 5 spans or 5 s: a few requests per round.
    let (client_span, server_span) = weft_testbed::wait::eventually(
        Duration::from_secs(30),
        "a CLIENT span from client and a SERVER span from backend of one trace",
        || async {
            let t = request_loop(&url, 5, &opts).await;
            assert_eq!(t.status(200), t.total, "{t:?}");
            let seen = spans.lock().unwrap();
            seen.iter()
                .filter(|c| is_ours(c, "client", "CLIENT"))
                .find_map(|c| {
                    seen.iter()
                        .find(|s| is_ours(s, "backend", "SERVER") && s["traceId"] == c["traceId"])
                        .map(|s| (c.clone(), s.clone()))
                })
        },
    )
    .await;
    // traceId128bit: 32 hex digits. sharedSpanContext (default true): the
    // server span reuses the client's span id. Span names are Envoy's default,
    // the request's authority (Kuma sets none).
    assert_eq!(
        client_span["traceId"].as_str().unwrap().len(),
        32,
        "{client_span}"
    );
    assert_eq!(server_span["id"], client_span["id"], "{server_span}");
    assert_eq!(server_span["shared"], true, "{server_span}");
    let authority = url.trim_start_matches("http://").split('/').next().unwrap();
    assert_eq!(client_span["name"], authority, "{client_span}");
    assert_eq!(server_span["name"], authority, "{server_span}");
    no_rejections(&mesh).await;
    server.abort();
}
