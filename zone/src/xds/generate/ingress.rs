//! A zone ingress's Envoy configuration (Kuma's `ingress_generator`): one
//! listener on the ZoneIngress's `networking.address:port` with a TLS inspector
//! and, per mesh with mTLS, one filter chain per SNI a sidecar of another zone
//! may send — `<service>{mesh=<mesh>}` for each service with instances in this
//! zone, plus `<service>{mesh=<mesh>,k=v...}` for each tag subset the mesh's
//! MeshHTTPRoutes and MeshTCPRoutes send traffic to. Each chain passes the
//! connection, still encrypted, through `tcp_proxy` to the EDS cluster
//! `<mesh>:<service>` (or `<mesh>:<service>-<hash>` for a subset) of this zone's
//! own instances. The ingress terminates no TLS: its listener has no transport
//! socket, its clusters none either; mTLS runs between the two sidecars.

use super::MeshView;
use super::endpoints::{cla_entry, local_first};
use super::envoy::{any, secs, socket};
use super::model::network_filter;
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{
    FilterChain, FilterChainMatch, Listener, ListenerFilter, listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use prost::Name;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use weft_model::resource::{Resource, ResourceType, Spec, Tags, tags};
use weft_sync::delta::{Snapshot, TypeResources};

/// One SNI the ingress answers, and where it sends the connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    pub mesh: String,
    pub service: String,
    /// Tags beyond `kuma.io/service` the SNI names (empty: the whole service).
    pub subset: Tags,
}

impl Destination {
    pub fn sni(&self) -> String {
        super::mtls::sni(&self.service, &self.mesh, &self.subset)
    }

    /// Kuma's `<mesh>:<service>`, with a hash of the subset for a subset.
    pub fn cluster(&self) -> String {
        if self.subset.is_empty() {
            return format!("{}:{}", self.mesh, self.service);
        }
        let mut h = weft_model::resource::canonical::hash_hex(
            format!("{}{:?}", self.service, self.subset).as_bytes(),
        );
        h.truncate(16);
        format!("{}:{}-{h}", self.mesh, self.service)
    }
}

/// What the ingress serves: for each mesh with mTLS, each service with instances
/// in this zone, and each subset of it the mesh's routes name.
pub fn destinations(views: &[Arc<MeshView>]) -> Vec<Destination> {
    let mut out = BTreeSet::new();
    for view in views.iter().filter(|v| v.mtls.is_some()) {
        let mesh = &view.mesh.meta.name;
        for service in view.services.endpoints.keys() {
            if view.services.local(service).next().is_none() {
                continue;
            }
            out.insert(Destination {
                mesh: mesh.clone(),
                service: service.clone(),
                subset: Tags::new(),
            });
        }
        for (service, subset) in route_subsets(view) {
            if view.services.local(&service).next().is_some() {
                out.insert(Destination {
                    mesh: mesh.clone(),
                    service,
                    subset,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Every `MeshServiceSubset` backendRef (service, tags without
/// `kuma.io/service`) of the mesh's MeshHTTPRoutes and MeshTCPRoutes: the
/// subset clusters a sidecar of another zone may open towards this one.
fn route_subsets(view: &MeshView) -> BTreeSet<(String, Tags)> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<(String, Tags)>) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("kind").and_then(|k| k.as_str()) == Some("MeshServiceSubset")
                    && let (Some(name), Some(tags)) = (
                        m.get("name").and_then(|n| n.as_str()),
                        m.get("tags").and_then(|t| t.as_object()),
                    )
                {
                    let subset: Tags = tags
                        .iter()
                        .filter(|(k, _)| k.as_str() != tags::SERVICE)
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect();
                    if !subset.is_empty() {
                        out.insert((name.to_string(), subset));
                    }
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for ty in [ResourceType::MeshHTTPRoute, ResourceType::MeshTCPRoute] {
        for r in view
            .resources
            .get(ty.name())
            .into_iter()
            .flat_map(|m| m.values())
        {
            walk(&r.to_value(), &mut out);
        }
    }
    out
}

/// Why an ingress gets no configuration.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("resource {0} is not a ZoneIngress")]
    NotAnIngress(String),
    #[error("ZoneIngress {0} has no networking")]
    NoNetworking(String),
}

/// The ingress's listener, clusters and endpoints from every mesh's view.
pub fn generate(views: &[Arc<MeshView>], ingress: &Resource) -> Result<Snapshot, IngressError> {
    let Spec::ZoneIngress(spec) = &ingress.spec else {
        return Err(IngressError::NotAnIngress(ingress.meta.name.clone()));
    };
    let net = spec
        .networking
        .as_ref()
        .ok_or_else(|| IngressError::NoNetworking(ingress.meta.name.clone()))?;
    let by_mesh: BTreeMap<&str, &MeshView> = views
        .iter()
        .map(|v| (v.mesh.meta.name.as_str(), v.as_ref()))
        .collect();
    let mut chains = Vec::new();
    let mut clusters = TypeResources::new();
    let mut eds = TypeResources::new();
    for d in destinations(views) {
        let Some(view) = by_mesh.get(d.mesh.as_str()) else {
            continue;
        };
        let name = d.cluster();
        let picked = view
            .services
            .local(&d.service)
            .filter(|e| d.subset.iter().all(|(k, v)| e.tags.get(k) == Some(v)));
        let entry = cla_entry(&name, picked, &local_first);
        clusters.insert_hashed(name.clone(), any(&eds_cluster(&name)));
        eds.insert_shared(name.clone(), Arc::new(entry));
        chains.push(FilterChain {
            filter_chain_match: Some(FilterChainMatch {
                server_names: vec![d.sni()],
                transport_protocol: "tls".into(),
                ..FilterChainMatch::default()
            }),
            filters: vec![network_filter(
                "envoy.filters.network.tcp_proxy",
                &TcpProxy {
                    stat_prefix: super::envoy::sanitize(&name),
                    cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(name)),
                    ..TcpProxy::default()
                },
            )],
            ..FilterChain::default()
        });
    }
    let mut listeners = TypeResources::new();
    // Envoy refuses a listener without filter chains: with nothing to offer the
    // port stays closed until a service appears.
    if !chains.is_empty() {
        let name = format!("inbound:{}:{}", net.address, net.port);
        let listener = Listener {
            name: name.clone(),
            address: Some(socket(&net.address, net.port)),
            traffic_direction: TrafficDirection::Inbound as i32,
            listener_filters: vec![ListenerFilter {
                name: "envoy.filters.listener.tls_inspector".into(),
                config_type: Some(listener_filter::ConfigType::TypedConfig(any(
                    &TlsInspector::default(),
                ))),
                ..ListenerFilter::default()
            }],
            filter_chains: chains,
            ..Listener::default()
        };
        listeners.insert_hashed(name, any(&listener));
    }
    let mut snap = Snapshot::new();
    snap.set_type(Cluster::type_url(), clusters);
    snap.set_type(ClusterLoadAssignment::type_url(), eds);
    snap.set_type(Listener::type_url(), listeners);
    Ok(snap)
}

/// An EDS cluster, plain TCP: the bytes it carries are the sidecars' mTLS.
fn eds_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.to_string(),
        alt_stat_name: super::envoy::sanitize(name),
        connect_timeout: Some(secs(5)),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(super::base::ads()),
            service_name: String::new(),
        }),
        ..Cluster::default()
    }
}
