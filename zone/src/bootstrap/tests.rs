//! The bootstrap's shape, and that a real Envoy accepts it (`envoy --mode validate`).

use super::envoy::*;
use super::*;
use serde_json::json;
use weft_model::resource::parse_resource;

fn dataplane(admin_port: Option<u16>) -> Resource {
    let admin = admin_port
        .map(|p| format!("  admin:\n    port: {p}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 127.0.0.1\n{admin}  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: web\n        kuma.io/protocol: http\n  outbound:\n    - port: 10001\n      tags:\n        kuma.io/service: backend\n"
    );
    parse_resource(yaml.as_bytes(), false).unwrap()
}

fn target(host: &str, ca: bool) -> XdsTarget {
    XdsTarget {
        host: host.into(),
        port: 5678,
        ca_pem: ca.then(|| {
            weft_security::pki::Ca::generate()
                .unwrap()
                .cert_pem()
                .to_string()
        }),
    }
}

fn build(dp: &Resource, xds: &XdsTarget, api: XdsApi, token: Option<&str>) -> Value {
    envoy::bootstrap(&BootstrapInput {
        dataplane: dp,
        xds,
        api,
        token,
        version: Some(&json!({"weftDp": "0.1.0"})),
        access_log_socket: None,
    })
}

// The access-log sink is a static pipe cluster: weft-dp's socket, else a short
// per-dataplane default.
#[test]
fn access_log_sink_cluster() {
    let dp = dataplane(None);
    let b = build(&dp, &target("127.0.0.1", false), XdsApi::Delta, None);
    let sink = &b["static_resources"]["clusters"][1];
    assert_eq!(sink["name"], envoy::ACCESS_LOG_SINK);
    let path = sink["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["pipe"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(path, envoy::default_access_log_socket(&dp));
    assert!(path.len() < 40, "{path}");
    let xds = target("127.0.0.1", false);
    let b = envoy::bootstrap(&BootstrapInput {
        dataplane: &dp,
        xds: &xds,
        api: XdsApi::Delta,
        token: None,
        version: None,
        access_log_socket: Some("/tmp/x/al.sock"),
    });
    assert_eq!(
        b["static_resources"]["clusters"][1]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            ["endpoint"]["address"]["pipe"]["path"],
        "/tmp/x/al.sock"
    );
}

// Node identity follows Kuma: id mesh.name, cluster = first inbound service, the
// Dataplane as a JSON string in the metadata.
#[test]
fn node_identity_and_metadata() {
    let dp = dataplane(None);
    let b = build(&dp, &target("127.0.0.1", false), XdsApi::Delta, None);
    assert_eq!(b["node"]["id"], "default.web-1");
    assert_eq!(b["node"]["cluster"], "web");
    let text = b["node"]["metadata"]["dataplane.resource"]
        .as_str()
        .unwrap();
    let back: Value = serde_json::from_str(text).unwrap();
    assert_eq!(back["type"], "Dataplane");
    assert_eq!(back["mesh"], "default");
    assert_eq!(back["networking"]["inbound"][0]["port"], 18080);
    assert_eq!(b["node"]["metadata"]["version"]["weftDp"], "0.1.0");
    assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], 9901);
    assert_eq!(
        admin_port(&dataplane(Some(19000))),
        19000,
        "networking.admin.port wins"
    );
}

// The ADS flavour, the token in the gRPC metadata and HTTP/2 on the xDS cluster.
#[test]
fn ads_settings() {
    let dp = dataplane(None);
    let b = build(&dp, &target("127.0.0.1", true), XdsApi::Sotw, Some("jwt"));
    let ads = &b["dynamic_resources"]["ads_config"];
    assert_eq!(ads["api_type"], "GRPC");
    assert_eq!(
        ads["grpc_services"][0]["initial_metadata"][0],
        json!({"key": "authorization", "value": "Bearer jwt"})
    );
    let cluster = &b["static_resources"]["clusters"][0];
    assert_eq!(cluster["type"], "STATIC");
    assert!(
        cluster["typed_extension_protocol_options"]
            .to_string()
            .contains("http2_protocol_options")
    );
    let tls = &cluster["transport_socket"]["typed_config"];
    assert_eq!(
        tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["san_type"],
        "IP_ADDRESS"
    );
    assert!(tls.get("sni").is_none(), "no SNI for an IP");
    let delta = build(&dp, &target("zone.example", true), XdsApi::Delta, None);
    assert_eq!(
        delta["dynamic_resources"]["ads_config"]["api_type"],
        "DELTA_GRPC"
    );
    assert!(
        delta["dynamic_resources"]["ads_config"]["grpc_services"][0]
            .get("initial_metadata")
            .is_none()
    );
    let cluster = &delta["static_resources"]["clusters"][0];
    assert_eq!(cluster["type"], "STRICT_DNS");
    assert_eq!(
        cluster["transport_socket"]["typed_config"]["sni"],
        "zone.example"
    );
}

// A wildcard bind leaves the host to the request; a specific one names it.
#[test]
fn params_from_bound_address() {
    let any = BootstrapParams::from_bound("0.0.0.0:5678".parse().unwrap(), None);
    assert_eq!(any.xds_host, None);
    assert_eq!(any.xds_port, 5678);
    let lo = BootstrapParams::from_bound("127.0.0.2:1".parse().unwrap(), None);
    assert_eq!(lo.xds_host.as_deref(), Some("127.0.0.2"));
    let mut h = HeaderMap::new();
    h.insert(header::HOST, HeaderValue::from_static("[::1]:5691"));
    assert_eq!(request_host(&h).as_deref(), Some("::1"));
    h.insert(header::HOST, HeaderValue::from_static("zone.local:5691"));
    assert_eq!(request_host(&h).as_deref(), Some("zone.local"));
}

// Request parsing names the field of each problem.
#[test]
fn request_errors_name_fields() {
    let field = |e: ApiError| e.invalid_parameters.first().map(|v| v.field.clone());
    assert_eq!(
        field(parse_request(b"{}").unwrap_err()).as_deref(),
        Some("dataplane")
    );
    assert_eq!(
        field(parse_request(br#"{"dataplane": {}, "xdsApi": "rest"}"#).unwrap_err()).as_deref(),
        Some("xdsApi")
    );
    let e = parse_dataplane(
        json!("type: Dataplane\nmesh: default\nname: x\nnetworking: {}\n"),
        ResourceType::Dataplane,
    )
    .unwrap_err();
    assert!(
        e.invalid_parameters
            .iter()
            .all(|v| v.field.starts_with("dataplane")),
        "{e:?}"
    );
    assert!(!e.invalid_parameters.is_empty());
    let e = parse_dataplane(
        json!({"type": "Mesh", "name": "m"}),
        ResourceType::Dataplane,
    )
    .unwrap_err();
    assert_eq!(field(e).as_deref(), Some("dataplane.type"));
    assert_eq!(
        field(check_socket_path("al.sock").unwrap_err()).as_deref(),
        Some("accessLogSocketPath")
    );
    assert!(check_socket_path(&format!("/{}", "a".repeat(200))).is_err());
    check_socket_path("/tmp/weft-dp-x/al.sock").unwrap();
    parse_dataplane(json!("type: Dataplane\nmesh: default\nname: x\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 1\n      tags:\n        kuma.io/service: a\n"), ResourceType::Dataplane).unwrap();
}

/// The Envoy binary: `$WEFT_ENVOY_BIN`, else the workspace's `.venv/bin/envoy`.
fn envoy_bin() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("WEFT_ENVOY_BIN") {
        return p.into();
    }
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/envoy");
    assert!(
        p.exists(),
        "Envoy not found at {}: run scripts/setup.sh or set WEFT_ENVOY_BIN",
        p.display()
    );
    p
}

// Envoy 1.40 accepts the bootstrap in both ADS flavours, with TLS to an IP and a name.
#[test]
fn envoy_validates_the_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let dp = dataplane(Some(19901));
    for (i, (xds, api)) in [
        (target("127.0.0.1", true), XdsApi::Delta),
        (target("localhost", true), XdsApi::Sotw),
        (target("127.0.0.1", false), XdsApi::Sotw),
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("bootstrap-{i}.json"));
        let b = build(&dp, xds, *api, Some("header.claims.sig"));
        std::fs::write(&path, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
        let out = std::process::Command::new(envoy_bin())
            .args(["--mode", "validate", "-c"])
            .arg(&path)
            .args(["-l", "error", "--use-dynamic-base-id"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "envoy --mode validate refused {}:\n{}\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
