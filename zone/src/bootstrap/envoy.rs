//! The Envoy bootstrap a proxy starts with, as Envoy's proto3 JSON (snake_case field
//! names, which Envoy accepts in a `.json` bootstrap): node identity and metadata, the
//! admin listener, and ADS (SotW or delta) over HTTP/2 + TLS to the zone's xDS port.

use serde_json::{Value, json};
use std::net::IpAddr;
pub use weft_model::proxy::{DEFAULT_ADMIN_PORT, TCP_TAG_PREFIX, XdsApi};
use weft_model::resource::{Resource, Spec};

/// The static cluster that carries ADS to the zone.
pub const ADS_CLUSTER: &str = "ads_cluster";
/// Where Envoy finds the zone's xDS server and how it verifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsTarget {
    /// An IP or a DNS name.
    pub host: String,
    pub port: u16,
    /// The CA that signed the xDS server certificate; `None` means plaintext (only
    /// for wiring tests before the server serves TLS).
    pub ca_pem: Option<String>,
}

/// Everything the bootstrap is built from.
#[derive(Debug, Clone)]
pub struct BootstrapInput<'a> {
    /// A validated Dataplane resource.
    pub dataplane: &'a Resource,
    pub xds: &'a XdsTarget,
    pub api: XdsApi,
    /// The token Envoy presents on the ADS stream (`authorization: Bearer ...`).
    pub token: Option<&'a str>,
    /// What the proxy reported about itself (`weft-dp` / Envoy versions).
    pub version: Option<&'a Value>,
    /// The unix socket `weft-dp` receives access logs on (`accessLogSocketPath`);
    /// `None` → [`default_access_log_socket`].
    pub access_log_socket: Option<&'a str>,
}

/// The static cluster MeshAccessLog's TCP backends log through (`weft-dp`'s sink).
pub const ACCESS_LOG_SINK: &str = "access_log_sink";

/// The sink socket when `weft-dp` did not name one: short and per dataplane.
pub fn default_access_log_socket(dataplane: &Resource) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(node_id(dataplane).as_bytes());
    format!("/tmp/weft-al-{}.sock", hex::encode(&digest[..8]))
}

/// `node.id`: `<mesh>.<name>` (Kuma's form).
pub fn node_id(dataplane: &Resource) -> String {
    format!(
        "{}.{}",
        dataplane.meta.mesh.as_deref().unwrap_or_default(),
        dataplane.meta.name
    )
}

/// The admin port from `networking.admin.port`, else [`DEFAULT_ADMIN_PORT`].
pub fn admin_port(dataplane: &Resource) -> u16 {
    let admin = match &dataplane.spec {
        Spec::Dataplane(s) => s.networking.as_ref().and_then(|n| n.admin.as_ref()),
        Spec::ZoneIngress(s) => s.networking.as_ref().and_then(|n| n.admin.as_ref()),
        Spec::ZoneEgress(s) => s.networking.as_ref().and_then(|n| n.admin.as_ref()),
        _ => None,
    };
    admin
        .and_then(|a| u16::try_from(a.port).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_ADMIN_PORT)
}

/// The bootstrap as JSON.
pub fn bootstrap(input: &BootstrapInput<'_>) -> Value {
    let dp = input.dataplane;
    let cluster = match &dp.spec {
        Spec::Dataplane(spec) => spec
            .identifying_service()
            .map_or_else(|| dp.meta.name.clone(), str::to_string),
        _ => dp.meta.name.clone(),
    };
    let resource = serde_json::to_string(&dp.to_value()).unwrap_or_default();
    let mut metadata = json!({
        "dataplane.resource": resource,
        "version.weft": env!("CARGO_PKG_VERSION"),
    });
    if let (Some(v), Some(m)) = (input.version, metadata.as_object_mut()) {
        m.insert("version".into(), v.clone());
    }
    let mut grpc_service = json!({ "envoy_grpc": { "cluster_name": ADS_CLUSTER } });
    if let (Some(token), Some(g)) = (input.token, grpc_service.as_object_mut()) {
        g.insert(
            "initial_metadata".into(),
            json!([{ "key": "authorization", "value": format!("Bearer {token}") }]),
        );
    }
    let sink = input
        .access_log_socket
        .map_or_else(|| default_access_log_socket(dp), str::to_string);
    json!({
        "node": {
            "id": node_id(dp),
            "cluster": cluster,
            "metadata": metadata,
        },
        "admin": {
            "address": socket_address("127.0.0.1", admin_port(dp)),
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": input.api.api_type(),
                "transport_api_version": "V3",
                "set_node_on_first_message_only": true,
                "grpc_services": [grpc_service],
            },
            "cds_config": { "ads": {}, "resource_api_version": "V3" },
            "lds_config": { "ads": {}, "resource_api_version": "V3" },
        },
        "static_resources": {
            "clusters": [ads_cluster(input.xds), access_log_sink(&sink)],
        },
    })
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// `weft-dp`'s access-log receiver: a unix socket (Envoy `pipe` address).
fn access_log_sink(path: &str) -> Value {
    json!({
        "name": ACCESS_LOG_SINK,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ACCESS_LOG_SINK,
            "endpoints": [{
                "lb_endpoints": [{ "endpoint": { "address": { "pipe": { "path": path } } } }],
            }],
        },
    })
}

/// HTTP/2 is required: without it Envoy silently speaks HTTP/1.1 to the xDS server
/// and never connects (see the Envoy notes).
fn ads_cluster(xds: &XdsTarget) -> Value {
    let ip = xds.host.parse::<IpAddr>().ok();
    let mut cluster = json!({
        "name": ADS_CLUSTER,
        "type": if ip.is_some() { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": { "interval": "15s", "timeout": "10s" },
                    },
                },
            },
        },
        "load_assignment": {
            "cluster_name": ADS_CLUSTER,
            "endpoints": [{
                "lb_endpoints": [{ "endpoint": { "address": socket_address(&xds.host, xds.port) } }],
            }],
        },
    });
    if let (Some(ca), Some(c)) = (&xds.ca_pem, cluster.as_object_mut()) {
        let (sni, san) = match ip {
            Some(ip) => (
                None,
                json!({ "san_type": "IP_ADDRESS", "matcher": { "exact": ip.to_string() } }),
            ),
            None => (
                Some(xds.host.clone()),
                json!({ "san_type": "DNS", "matcher": { "exact": xds.host } }),
            ),
        };
        let mut tls = json!({
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "validation_context": {
                    "trusted_ca": { "inline_string": ca },
                    "match_typed_subject_alt_names": [san],
                },
            },
        });
        if let (Some(sni), Some(t)) = (sni, tls.as_object_mut()) {
            t.insert("sni".into(), Value::String(sni));
        }
        c.insert(
            "transport_socket".into(),
            json!({ "name": "envoy.transport_sockets.tls", "typed_config": tls }),
        );
    }
    cluster
}
