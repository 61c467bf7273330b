//! Mesh mTLS and MeshTrafficPermission with real Envoy and real traffic: a
//! standalone zone creates the mesh's builtin CA, issues each proxy a SPIFFE
//! certificate over SDS, inbounds require mTLS (STRICT) or also accept plaintext
//! (PERMISSIVE), and RBAC lets only permitted services in. Every test ends by
//! checking Envoy's counters: no rejected update on any xDS type, SDS included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_testbed::mesh::traffic::{http_until, status, tcp_echo as echo, tcp_until};
use weft_testbed::mesh::{AppSpec, MeshHarness};
use weft_testbed::wait::until;

fn mesh_doc(mode: &str, extra_backend: &str) -> String {
    format!(
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n      mode: {mode}\n{extra_backend}"
    )
}

async fn put_mesh(mesh: &MeshHarness, doc: &str) -> serde_json::Value {
    let (s, body) = mesh.api().put("/meshes/default", doc).await;
    assert!(s.is_success(), "PUT mesh: {s} {body}\n{doc}");
    body
}

async fn put_permission(mesh: &MeshHarness, name: &str, spec: &str) -> serde_json::Value {
    let doc = format!("type: MeshTrafficPermission\nmesh: default\nname: {name}\nspec:\n{spec}");
    let (s, body) = mesh
        .api()
        .put(
            &format!("/meshes/default/meshtrafficpermissions/{name}"),
            &doc,
        )
        .await;
    assert!(s.is_success(), "PUT permission {name}: {s} {body}\n{doc}");
    body
}

async fn no_rejections(mesh: &MeshHarness) {
    let rejected = mesh.rejected_updates().await;
    assert!(rejected.is_empty(), "Envoy rejected updates: {rejected:?}");
}

fn allow_only(source: &str) -> String {
    format!(
        "  targetRef: {{kind: MeshService, name: backend}}\n  from:\n    - targetRef: {{kind: MeshService, name: {source}}}\n      default: {{action: Allow}}\n"
    )
}

// STRICT: frontend → backend is 200 over mTLS, plaintext straight to the backend's
// inbound fails, another service is refused with 403 by RBAC; the permission
// changed to admit it takes effect within a second; PERMISSIVE lets plaintext in.
// Envoy's /certs shows the SPIFFE id and the insight the certificate's serial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_permissive_and_permissions() {
    let mut mesh = MeshHarness::start().await.unwrap();
    // A permission before mTLS is on: accepted, with a warning that it does nothing yet.
    let body = put_permission(&mesh, "backend-from-frontend", &allow_only("frontend")).await;
    let warnings = body["warnings"].to_string();
    assert!(warnings.contains("not enforced"), "{body}");

    let body = put_mesh(&mesh, &mesh_doc("STRICT", "")).await;
    assert_eq!(body["warnings"], serde_json::json!([]), "{body}");
    // The CA's key never leaves through the API.
    let (s, key) = mesh
        .api()
        .get("/meshes/default/secrets/default.ca-builtin-key-ca-1")
        .await;
    assert!(s.is_success(), "{s} {key}");
    assert!(key.get("data").is_none(), "CA key shown: {key}");
    let (s, cert) = mesh
        .api()
        .get("/meshes/default/secrets/default.ca-builtin-cert-ca-1")
        .await;
    assert!(s.is_success() && cert["data"].is_string(), "{s} {cert}");

    mesh.start_app(AppSpec::http("backend", "backend-1"))
        .await
        .unwrap();
    mesh.start_app(AppSpec::http("frontend", "frontend-1").outbound("backend"))
        .await
        .unwrap()
        .until_healthy_hosts("backend", 1)
        .await;
    mesh.start_app(AppSpec::http("other", "other-1").outbound("backend").sotw())
        .await
        .unwrap()
        .until_healthy_hosts("backend", 1)
        .await;
    let frontend = mesh.app("frontend-1").unwrap();
    let other = mesh.app("other-1").unwrap();
    let backend = mesh.app("backend-1").unwrap();
    let via_frontend = frontend.outbound_url("backend", "/");
    let via_other = other.outbound_url("backend", "/");
    let direct = format!("http://{}:{}/", backend.ip, backend.inbound_port);

    until(
        Duration::from_secs(10),
        "frontend → backend 200",
        || async { status(&via_frontend).await == 200 },
    )
    .await;
    assert_eq!(status(&via_other).await, 403, "other is not permitted");
    assert_eq!(status(&direct).await, 0, "plaintext to a STRICT inbound");

    // The certificate: SPIFFE id in Envoy, serial and expiry in the insight.
    let certs = backend.admin.get("/certs").await.unwrap();
    assert!(certs.contains("spiffe://default/backend"), "{certs}");
    let (s, overview) = mesh
        .api()
        .get("/meshes/default/dataplanes/backend-1/_overview")
        .await;
    assert!(s.is_success(), "{s} {overview}");
    let tls = &overview["dataplaneInsight"]["mTLS"];
    let serial = tls["serial"].as_str().unwrap_or_default().to_string();
    assert!(
        !serial.is_empty() && certs.contains(&serial),
        "{tls} vs {certs}"
    );
    assert_eq!(tls["issuedBackend"], "ca-1");
    assert_eq!(tls["spiffeId"], "spiffe://default/backend");

    // RBAC arrives by ECDS (its counters are what no_rejections reads).
    let stats = backend.admin.stats().await.unwrap();
    assert!(
        stats
            .iter()
            .any(|(k, v)| k.starts_with("extension_config_discovery.")
                && k.ends_with(".config_reload")
                && *v > 0),
        "no ECDS reload counted"
    );

    // Admitting `other` takes effect within a second, nothing restarted.
    put_permission(&mesh, "backend-from-other", &allow_only("other")).await;
    let changed = Instant::now();
    // A tight loop, so the first 200 is seen when it happens.
    let mut took = None;
    while changed.elapsed() < Duration::from_secs(5) {
        if status(&via_other).await == 200 {
            took = Some(changed.elapsed());
            break;
        }
    }
    let took = took.expect("other → backend never answered 200");
    assert!(took < Duration::from_secs(1), "permission took {took:?}");
    eprintln!("MeshTrafficPermission change: effective after {took:?}");
    assert_eq!(status(&via_frontend).await, 200);

    // PERMISSIVE: plaintext is accepted too, mesh traffic still mTLS.
    put_mesh(&mesh, &mesh_doc("PERMISSIVE", "")).await;
    until(
        Duration::from_secs(10),
        "plaintext 200 in PERMISSIVE",
        || async { status(&direct).await == 200 },
    )
    .await;
    assert_eq!(status(&via_frontend).await, 200);
    no_rejections(&mesh).await;
}

// A TCP service under STRICT mTLS: a permitted client's bytes are echoed, an
// unpermitted one's connection is reset by the network RBAC filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_permissions() {
    let mut mesh = MeshHarness::start().await.unwrap();
    put_permission(&mesh, "db-from-frontend", "  targetRef: {kind: MeshService, name: db}\n  from:\n    - targetRef: {kind: MeshService, name: frontend}\n      default: {action: Allow}\n").await;
    put_mesh(&mesh, &mesh_doc("STRICT", "")).await;
    mesh.start_app(AppSpec::tcp("db", "db-1")).await.unwrap();
    mesh.start_app(AppSpec::http("frontend", "frontend-1").outbound("db"))
        .await
        .unwrap()
        .until_healthy_hosts("db", 1)
        .await;
    mesh.start_app(AppSpec::http("other", "other-1").outbound("db"))
        .await
        .unwrap()
        .until_healthy_hosts("db", 1)
        .await;
    let permitted = mesh.app("frontend-1").unwrap().outbound_address("db");
    let refused = mesh.app("other-1").unwrap().outbound_address("db");
    until(
        Duration::from_secs(10),
        "db echoes for frontend",
        || async { echo(permitted).await.is_ok() },
    )
    .await;
    assert!(echo(refused).await.is_err(), "other reached db");
    no_rejections(&mesh).await;
}

// Short-lived certificates are renewed before they expire, with no failed
// request across renewals. `WEFT_CERT_LIFETIME` (default 20s) sets the lifetime;
// the issue's 2-minute run is `WEFT_CERT_LIFETIME=2m WEFT_RENEWALS=3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_renew_without_failed_requests() {
    let lifetime = std::env::var("WEFT_CERT_LIFETIME").unwrap_or_else(|_| "20s".into());
    let renewals: u64 = std::env::var("WEFT_RENEWALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut mesh = MeshHarness::start().await.unwrap();
    put_permission(
        &mesh,
        "all",
        "  targetRef: {kind: Mesh}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {action: Allow}\n",
    )
    .await;
    let backend_conf =
        format!("      dpCert:\n        rotation:\n          expiration: {lifetime}\n");
    put_mesh(&mesh, &format!("{}{backend_conf}", mesh_doc("STRICT", ""))).await;
    mesh.start_backend_and_client(false).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    let url = client.outbound_url("backend", "/");
    until(Duration::from_secs(10), "client → backend 200", || async {
        status(&url).await == 200
    })
    .await;
    let regenerations = |body: serde_json::Value| {
        body["dataplaneInsight"]["mTLS"]["certificateRegenerations"]
            .as_u64()
            .unwrap_or(0)
    };
    let api = mesh.api();
    let stop = Arc::new(AtomicBool::new(false));
    let requests = http_until(&url, &stop);
    until(
        Duration::from_secs(900),
        "both proxies renewed their certificates",
        || async {
            let (_, b) = api
                .get("/meshes/default/dataplanes/backend-1/_overview")
                .await;
            let (_, c) = api
                .get("/meshes/default/dataplanes/client-1/_overview")
                .await;
            regenerations(b) > renewals && regenerations(c) > renewals
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = requests.await.unwrap();
    assert!(
        failed.is_empty() && ok > 0,
        "{ok} answered 200, failed: {failed:?}"
    );
    no_rejections(&mesh).await;
}

/// The SHA-256 fingerprint of the CA certificate in `pem`.
fn fingerprint_of_pem(pem: &str) -> String {
    weft_security::pki::Fingerprint::of_pem(pem)
        .unwrap()
        .to_string()
}

/// The CA fingerprint in `instance`'s DataplaneInsight, once it has a certificate.
async fn issuing_ca(mesh: &MeshHarness, instance: &str) -> String {
    let (s, body) = mesh
        .api()
        .get(&format!("/meshes/default/dataplanes/{instance}/_overview"))
        .await;
    assert!(s.is_success(), "{s} {body}");
    body["dataplaneInsight"]["mTLS"]["caFingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const ALLOW_ALL: &str = "  targetRef: {kind: Mesh}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {action: Allow}\n";

// Multizone with Mesh mTLS: the CA is created on global with the Mesh and reaches
// the zone over KDS (its key hidden by both APIs); the zone issues certificates
// that chain to it, and mesh traffic in the zone flows over mTLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_creates_the_ca_and_zones_issue_from_it() {
    let (global, zone) = tokio::task::spawn_blocking(|| {
        let global = weft_testbed::ControlPlane::global(&[]).unwrap();
        let zone = weft_testbed::ControlPlane::federated_zone(&global, "east", &[]).unwrap();
        (global, zone)
    })
    .await
    .unwrap();
    let g = weft_testbed::Client::new(global.api_url(), global.token());
    let (s, body) = g.put("/meshes/default", &mesh_doc("STRICT", "")).await;
    assert!(s.is_success(), "{s} {body}");
    let doc = format!("type: MeshTrafficPermission\nmesh: default\nname: all\nspec:\n{ALLOW_ALL}");
    let (s, body) = g
        .put("/meshes/default/meshtrafficpermissions/all", &doc)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let (s, cert) = g
        .get("/meshes/default/secrets/default.ca-builtin-cert-ca-1")
        .await;
    assert!(s.is_success(), "{s} {cert}");
    let pem = weft_model::resource::secret::decode_base64(cert["data"].as_str().unwrap()).unwrap();
    let global_ca = fingerprint_of_pem(std::str::from_utf8(&pem).unwrap());
    let (_, key) = g
        .get("/meshes/default/secrets/default.ca-builtin-key-ca-1")
        .await;
    assert!(key.get("data").is_none(), "global shows the CA key: {key}");

    let mut mesh = MeshHarness::on_zone(zone, Some("east")).unwrap();
    let api = mesh.api();
    until(Duration::from_secs(15), "the CA synced to the zone", || {
        let api = api.clone();
        async move {
            api.get("/meshes/default/secrets/default.ca-builtin-key-ca-1")
                .await
                .0
                == 200
        }
    })
    .await;
    let (_, key) = api
        .get("/meshes/default/secrets/default.ca-builtin-key-ca-1")
        .await;
    assert!(
        key.get("data").is_none(),
        "the zone shows the CA key: {key}"
    );

    mesh.start_backend_and_client(false).await.unwrap();
    let client = mesh.app("client-1").unwrap();
    let url = client.outbound_url("backend", "/");
    until(Duration::from_secs(10), "client → backend 200", || async {
        status(&url).await == 200
    })
    .await;
    assert_eq!(issuing_ca(&mesh, "backend-1").await, global_ca);
    assert_eq!(issuing_ca(&mesh, "client-1").await, global_ca);
    let backend = mesh.app("backend-1").unwrap();
    let direct = format!("http://{}:{}/", backend.ip, backend.inbound_port);
    assert_eq!(status(&direct).await, 0, "plaintext to a STRICT inbound");
    no_rejections(&mesh).await;
    drop(mesh);
    drop(global);
}

// A provided CA (certificate and key in Secrets) works as a builtin one; a key
// that is not the certificate's is refused at the backend's `conf`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provided_ca_from_secrets() {
    use weft_security::pki::workload::MeshCa;
    let mut mesh = MeshHarness::start().await.unwrap();
    let ca = MeshCa::generate("default", Duration::from_secs(86_400)).unwrap();
    let other = MeshCa::generate("default", Duration::from_secs(86_400)).unwrap();
    let api = mesh.api();
    for (name, bytes) in [
        ("my-ca-cert", ca.cert_pem().as_bytes()),
        ("my-ca-key", ca.key_pem().expose().as_bytes()),
        ("wrong-key", other.key_pem().expose().as_bytes()),
    ] {
        api.put_secret("default", name, bytes).await.unwrap();
    }
    let provided = |key: &str| {
        format!(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: mine\n  backends:\n    - name: mine\n      type: provided\n      conf:\n        cert: {{secret: my-ca-cert}}\n        key: {{secret: {key}}}\n"
        )
    };
    let (s, body) = mesh
        .api()
        .put("/meshes/default", &provided("wrong-key"))
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(
        weft_testbed::client::invalid_fields(&body),
        ["mtls.backends[0].conf"],
        "{body}"
    );
    let (s, body) = mesh.api().put("/meshes/default", &provided("nope")).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(
        weft_testbed::client::invalid_fields(&body),
        ["mtls.backends[0].conf.key"],
        "{body}"
    );
    put_permission(&mesh, "all", ALLOW_ALL).await;
    put_mesh(&mesh, &provided("my-ca-key")).await;
    // The provided key is a CA key too: never shown.
    let (_, key) = mesh.api().get("/meshes/default/secrets/my-ca-key").await;
    assert!(key.get("data").is_none(), "{key}");

    mesh.start_backend_and_client(false).await.unwrap();
    let url = mesh.app("client-1").unwrap().outbound_url("backend", "/");
    until(Duration::from_secs(10), "client → backend 200", || async {
        status(&url).await == 200
    })
    .await;
    assert_eq!(
        issuing_ca(&mesh, "backend-1").await,
        ca.fingerprint().to_string()
    );
    no_rejections(&mesh).await;
}

// CA rotation ca-1 → ca-2 under a continuous request loop: both CAs are trusted
// first, then certificates are reissued from ca-2, then ca-1 is dropped — no
// request fails, and afterwards every proxy holds a ca-2 certificate and trusts
// ca-2 alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_without_failed_requests() {
    let mut mesh = MeshHarness::start().await.unwrap();
    put_permission(&mesh, "all", ALLOW_ALL).await;
    let two = |enabled: &str| {
        format!(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: {enabled}\n  backends:\n    - {{name: ca-1, type: builtin}}\n    - {{name: ca-2, type: builtin}}\n"
        )
    };
    put_mesh(&mesh, &two("ca-1")).await;
    // HTTP reuses its upstream connections; TCP makes a new mTLS handshake per
    // connection, so the TCP loop checks every step of the rotation.
    mesh.start_app(AppSpec::http("backend", "backend-1"))
        .await
        .unwrap();
    mesh.start_app(AppSpec::tcp("db", "db-1")).await.unwrap();
    let client = mesh
        .start_app(
            AppSpec::http("client", "client-1")
                .outbound("backend")
                .outbound("db")
                .sotw(),
        )
        .await
        .unwrap();
    client.until_healthy_hosts("backend", 1).await;
    client.until_healthy_hosts("db", 1).await;
    let url = client.outbound_url("backend", "/");
    let db = client.outbound_address("db");
    until(Duration::from_secs(10), "client → backend 200", || async {
        status(&url).await == 200
    })
    .await;
    let api = mesh.api();
    let trust = || async {
        let (s, body) = api.get("/meshes/default/_mtls").await;
        assert!(s.is_success(), "{s} {body}");
        body
    };
    let settled_on = |body: &serde_json::Value, backend: &str| {
        body["rotating"] == false
            && body["trusted"] == serde_json::json!([backend])
            && body["proxies"].as_array().is_some_and(|p| {
                p.len() == 3
                    && p.iter().all(|p| {
                        p["holds"] == backend && p["trusts"] == serde_json::json!([backend])
                    })
            })
    };
    until(Duration::from_secs(10), "settled on ca-1", || async {
        settled_on(&trust().await, "ca-1")
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let requests = http_until(&url, &stop);
    let connections = tcp_until(db, &stop);
    let started = Instant::now();
    put_mesh(&mesh, &two("ca-2")).await;
    until(Duration::from_secs(30), "settled on ca-2", || async {
        settled_on(&trust().await, "ca-2")
    })
    .await;
    let took = started.elapsed();
    // A little traffic after the last step, then the verdict.
    until(
        Duration::from_secs(5),
        "requests after the rotation",
        || async { status(&url).await == 200 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = requests.await.unwrap();
    assert!(
        failed.is_empty() && ok > 0,
        "rotation took {took:?}: {ok} answered 200, failed: {failed:?}"
    );
    let (echoed, broken) = connections.await.unwrap();
    assert!(
        broken.is_empty() && echoed > 0,
        "rotation took {took:?}: {echoed} TCP connections echoed, failed: {broken:?}"
    );
    for app in ["backend-1", "db-1", "client-1"] {
        let (_, body) = api
            .get(&format!("/meshes/default/dataplanes/{app}/_overview"))
            .await;
        // Envoy itself holds the ca-2 certificate the insight names.
        let serial = body["dataplaneInsight"]["mTLS"]["serial"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let certs = mesh.app(app).unwrap().admin.get("/certs").await.unwrap();
        assert!(
            !serial.is_empty() && certs.contains(&serial),
            "{app}: {serial} not in {certs}"
        );
        assert_eq!(
            body["dataplaneInsight"]["mTLS"]["issuedBackend"], "ca-2",
            "{body}"
        );
    }
    eprintln!(
        "CA rotation: settled in {took:?}; {ok} HTTP requests and {echoed} TCP connections, 0 failed"
    );
    no_rejections(&mesh).await;
}

/// A TLS client speaking only `versions`, presenting a certificate `ca` issued
/// for `spiffe://default/<service>`; it does not check the server (the point is
/// what the server accepts).
fn tls_client(
    ca: &weft_security::pki::workload::MeshCa,
    service: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let identity = weft_security::pki::workload::WorkloadIdentity::mesh_service(
        "default",
        service,
        &std::collections::BTreeMap::new(),
    )
    .unwrap();
    let cert = ca.issue(&identity, Duration::from_secs(600)).unwrap();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.expose().as_bytes()).unwrap();
    let chain = vec![CertificateDer::from(cert.cert_der.to_vec())];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_client_auth_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Accepts any server certificate (tests of what a server accepts only).
#[derive(Debug)]
struct AnyServer;

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An HTTP/1.1 GET over mTLS to `addr` with `connector`: the status line, or
/// why the handshake or request failed.
async fn mtls_get(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
) -> Result<String, String> {
    let io = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from("backend").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"GET / HTTP/1.1\r\nhost: backend\r\nconnection: close\r\n\r\n")
            .await?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(
            String::from_utf8_lossy(&out)
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        )
    };
    match tokio::time::timeout(Duration::from_secs(3), io).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

// MeshTLS: a Mesh-wide TLS 1.3-only policy makes the inbound refuse a TLS 1.2
// client holding a valid mesh certificate and accept a TLS 1.3 one; mesh traffic
// keeps flowing (clusters follow the same versions); `mode: Permissive` for one
// service lets plaintext into it while the mesh stays STRICT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshtls_versions_and_mode() {
    use weft_security::pki::workload::MeshCa;
    let mut mesh = MeshHarness::start().await.unwrap();
    let ca = MeshCa::generate("default", Duration::from_secs(86_400)).unwrap();
    let api = mesh.api();
    api.put_secret("default", "ca-cert", ca.cert_pem().as_bytes())
        .await
        .unwrap();
    api.put_secret("default", "ca-key", ca.key_pem().expose().as_bytes())
        .await
        .unwrap();
    put_permission(&mesh, "all", ALLOW_ALL).await;
    put_mesh(
        &mesh,
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: mine\n  backends:\n    - name: mine\n      type: provided\n      conf: {cert: {secret: ca-cert}, key: {secret: ca-key}}\n",
    )
    .await;
    mesh.start_backend_and_client(false).await.unwrap();
    let backend = mesh.app("backend-1").unwrap();
    let inbound = std::net::SocketAddr::from((backend.ip, backend.inbound_port));
    let url = mesh.app("client-1").unwrap().outbound_url("backend", "/");
    let tls12 = tls_client(&ca, "frontend", &[&rustls::version::TLS12]);
    let tls13 = tls_client(&ca, "frontend", &[&rustls::version::TLS13]);
    // Before any MeshTLS both versions are accepted.
    until(
        Duration::from_secs(10),
        "TLS 1.2 accepted by default",
        || async {
            mtls_get(&tls12, inbound)
                .await
                .is_ok_and(|l| l.contains(" 200"))
        },
    )
    .await;

    let doc = "type: MeshTLS\nmesh: default\nname: tls13\nspec:\n  targetRef: {kind: Mesh}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {tlsVersion: {min: TLS13, max: TLS13}}\n";
    let (s, body) = mesh.api().put("/meshes/default/meshtlses/tls13", doc).await;
    assert!(s.is_success(), "{s} {body}");
    assert_eq!(body["warnings"], serde_json::json!([]), "{body}");
    until(Duration::from_secs(10), "TLS 1.2 refused", || async {
        mtls_get(&tls12, inbound).await.is_err()
    })
    .await;
    let got = mtls_get(&tls13, inbound).await;
    assert!(
        got.as_ref().is_ok_and(|l| l.contains(" 200")),
        "TLS 1.3: {got:?}"
    );
    assert_eq!(status(&url).await, 200, "mesh traffic under TLS 1.3 only");

    // Permissive for backend only: plaintext gets in.
    let direct = format!("http://{inbound}/");
    assert_eq!(status(&direct).await, 0);
    let doc = "type: MeshTLS\nmesh: default\nname: backend-permissive\nspec:\n  targetRef: {kind: MeshService, name: backend}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {mode: Permissive}\n";
    let (s, body) = mesh
        .api()
        .put("/meshes/default/meshtlses/backend-permissive", doc)
        .await;
    assert!(s.is_success(), "{s} {body}");
    until(
        Duration::from_secs(10),
        "plaintext into backend",
        || async { status(&direct).await == 200 },
    )
    .await;
    assert_eq!(status(&url).await, 200);
    no_rejections(&mesh).await;
}
