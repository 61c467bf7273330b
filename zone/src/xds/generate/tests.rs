//! Generation tests: Kuma's layout, and a real `envoy --mode validate` over a
//! static bootstrap built from a generated snapshot with a rich set of policies.

use super::model::Assembled;
use super::*;
use envoy_types::pb::envoy::config::bootstrap::v3::{Bootstrap, bootstrap};
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::filter;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use prost::Message;

pub fn res(yaml: &str) -> Arc<Resource> {
    let v = weft_model::resource::parse_document(yaml.as_bytes(), false).unwrap();
    let r = Resource::from_value(v).unwrap();
    r.validate().unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
    Arc::new(r)
}

pub fn dataplane(
    name: &str,
    ip: &str,
    port: u32,
    service: &str,
    protocol: &str,
    extra: &str,
    outbound: &str,
) -> Arc<Resource> {
    res(&format!(
        r#"
type: Dataplane
mesh: default
name: {name}
networking:
  address: {ip}
  inbound:
    - port: {port}
      servicePort: {sp}
      tags: {{kuma.io/service: {service}, kuma.io/protocol: {protocol}{extra}}}
  outbound:
{outbound}
"#,
        sp = port + 1000
    ))
}

pub fn web() -> Arc<Resource> {
    dataplane(
        "web-1",
        "127.0.0.1",
        20000,
        "web",
        "http",
        "",
        "    - {port: 20001, tags: {kuma.io/service: backend}}\n    - {port: 20002, tags: {kuma.io/service: redis}}\n",
    )
}

pub fn mesh_view(policies: &[Arc<Resource>]) -> MeshView {
    let mesh = res("type: Mesh\nname: default\n");
    let mut all = vec![
        web(),
        dataplane(
            "backend-1",
            "127.0.0.2",
            20010,
            "backend",
            "http",
            ", version: v1",
            "    []",
        ),
        dataplane(
            "backend-2",
            "127.0.0.3",
            20010,
            "backend",
            "http",
            ", version: v2",
            "    []",
        ),
        dataplane("redis-1", "127.0.0.4", 20020, "redis", "tcp", "", "    []"),
    ];
    all.extend(policies.iter().cloned());
    MeshView::new(mesh, all)
}

pub fn listener<'a>(a: &'a Assembled, name: &str) -> &'a Listener {
    a.listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name}"))
}

pub fn cluster<'a>(a: &'a Assembled, name: &str) -> &'a Cluster {
    a.clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

pub fn hcm(l: &Listener) -> HttpConnectionManager {
    for f in &l.filter_chains[0].filters {
        if let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type
            && f.name == "envoy.filters.network.http_connection_manager"
        {
            return HttpConnectionManager::decode(any.value.as_slice()).unwrap();
        }
    }
    panic!("no HCM on {}", l.name)
}

pub fn route_config(l: &Listener) -> RouteConfiguration {
    match hcm(l).route_specifier {
        Some(http_connection_manager::RouteSpecifier::RouteConfig(rc)) => rc,
        other => panic!("no inline route config: {other:?}"),
    }
}

pub fn tcp_proxy(l: &Listener) -> TcpProxy {
    for f in &l.filter_chains[0].filters {
        if let Some(filter::ConfigType::TypedConfig(any)) = &f.config_type
            && f.name == "envoy.filters.network.tcp_proxy"
        {
            return TcpProxy::decode(any.value.as_slice()).unwrap();
        }
    }
    panic!("no tcp_proxy on {}", l.name)
}

/// A static bootstrap carrying everything the proxy would get over xDS (EDS
/// clusters become STATIC with their ClusterLoadAssignment inline), plus the real
/// bootstrap's `access_log_sink` cluster (MeshAccessLog TCP backends name it).
pub fn static_bootstrap(a: &Assembled) -> Bootstrap {
    let mut clusters: Vec<_> = a
        .clusters
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.eds_cluster_config.take().is_some() {
                c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                    cluster::DiscoveryType::Static as i32,
                ));
                let cla = a.endpoints.get(&c.name).expect("CLA for every EDS cluster");
                c.load_assignment =
                    Some(ClusterLoadAssignment::decode(cla.payload.value.as_slice()).unwrap());
            }
            c
        })
        .collect();
    clusters.push(access_log_sink());
    Bootstrap {
        node: Some(Node {
            id: "default.web-1".into(),
            cluster: "web".into(),
            ..Node::default()
        }),
        static_resources: Some(bootstrap::StaticResources {
            listeners: a.listeners.clone(),
            clusters,
            ..bootstrap::StaticResources::default()
        }),
        ..Bootstrap::default()
    }
}

/// The sink cluster the real bootstrap carries (zone/src/bootstrap/envoy.rs).
fn access_log_sink() -> envoy_types::pb::envoy::config::cluster::v3::Cluster {
    let json = crate::bootstrap::envoy::bootstrap(&crate::bootstrap::envoy::BootstrapInput {
        dataplane: &web(),
        xds: &crate::bootstrap::XdsTarget {
            host: "127.0.0.1".into(),
            port: 1,
            ca_pem: None,
        },
        api: crate::bootstrap::XdsApi::Delta,
        token: None,
        version: None,
        access_log_socket: None,
    });
    let sink = &json["static_resources"]["clusters"][1];
    assert_eq!(sink["name"], crate::bootstrap::envoy::ACCESS_LOG_SINK);
    let path = sink["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["pipe"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::core::v3::{Address, Pipe, address};
    use envoy_types::pb::envoy::config::endpoint::v3::{
        ClusterLoadAssignment as Cla, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
    };
    Cluster {
        name: crate::bootstrap::envoy::ACCESS_LOG_SINK.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(Cla {
            cluster_name: crate::bootstrap::envoy::ACCESS_LOG_SINK.into(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(Address {
                            address: Some(address::Address::Pipe(Pipe {
                                path,
                                ..Pipe::default()
                            })),
                        }),
                        ..Endpoint::default()
                    })),
                    ..LbEndpoint::default()
                }],
                ..LocalityLbEndpoints::default()
            }],
            ..Cla::default()
        }),
        ..Cluster::default()
    }
}

fn envoy_bin() -> std::path::PathBuf {
    if let Ok(b) = std::env::var("WEFT_ENVOY_BIN") {
        return b.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/envoy")
}

/// Runs `envoy --mode validate` on the bootstrap; panics with Envoy's output when rejected.
pub fn envoy_validate(a: &Assembled) {
    let dir = tempfile_dir();
    let path = dir.join("bootstrap.pb");
    std::fs::write(&path, static_bootstrap(a).encode_to_vec()).unwrap();
    let out = std::process::Command::new(envoy_bin())
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(&path)
        .output()
        .expect("run envoy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "envoy rejected the config:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "weft-gen-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn base_layout_is_kumas() {
    // Without policies: inbound listener -> localhost:<servicePort>, outbound listeners -> EDS clusters per service.
    let view = mesh_view(&[]);
    let a = generate_config(&view, &web()).unwrap();
    let inbound = listener(&a, "inbound:127.0.0.1:20000");
    let rc = route_config(inbound);
    assert_eq!(rc.name, "inbound:web");
    assert_eq!(hcm(inbound).stat_prefix, "localhost_21000");
    assert_eq!(cluster(&a, "localhost:21000").name, "localhost:21000");
    let out = listener(&a, "outbound:127.0.0.1:20001");
    assert_eq!(route_config(out).name, "outbound:backend");
    assert_eq!(hcm(out).stat_prefix, "backend");
    let tcp = tcp_proxy(listener(&a, "outbound:127.0.0.1:20002"));
    assert_eq!(tcp.stat_prefix, "redis");
    // Listeners carry their tags as Kuma's `io.kuma.tags` metadata.
    let tag = |l: &Listener, k: &str| {
        l.metadata.as_ref().and_then(|m| {
            match &m.filter_metadata["io.kuma.tags"].fields.get(k)?.kind {
                Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(v)) => {
                    Some(v.clone())
                }
                _ => None,
            }
        })
    };
    assert_eq!(tag(inbound, "kuma.io/service").as_deref(), Some("web"));
    assert_eq!(tag(out, "kuma.io/service").as_deref(), Some("backend"));
    assert!(cluster(&a, "backend").eds_cluster_config.is_some());
    let cla =
        ClusterLoadAssignment::decode(a.endpoints["backend"].payload.value.as_slice()).unwrap();
    let n: usize = cla.endpoints.iter().map(|l| l.lb_endpoints.len()).sum();
    assert_eq!(n, 2);
    // The per-service EDS resource is the view's shared one.
    assert!(Arc::ptr_eq(
        &a.endpoints["backend"],
        &view.services.cla("backend")
    ));
    envoy_validate(&a);
}

#[test]
fn snapshot_has_types_and_content_versions() {
    // generate() offers CDS, EDS and LDS, each versioned by content hash.
    let view = mesh_view(&[]);
    let snap = generate(&view, &web()).unwrap();
    let snap2 = generate(&view, &web()).unwrap();
    assert_eq!(snap, snap2);
    // A view built again (as every rebuild does) encodes the same bytes:
    // endpoints and listeners carry tag maps, which must not reorder.
    for _ in 0..20 {
        assert_eq!(generate(&mesh_view(&[]), &web()).unwrap(), snap);
    }
}
