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
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
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
pub fn route_subsets(view: &MeshView) -> BTreeSet<(String, Tags)> {
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

/// Why a zone proxy (ingress, egress) gets no configuration.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("resource {0} is not a zone proxy of the expected type")]
    WrongType(String),
    #[error("zone proxy {0} has no networking")]
    NoNetworking(String),
}

/// The ingress's listener, clusters and endpoints from every mesh's view.
pub fn generate(views: &[Arc<MeshView>], ingress: &Resource) -> Result<Snapshot, IngressError> {
    let Spec::ZoneIngress(spec) = &ingress.spec else {
        return Err(IngressError::WrongType(ingress.meta.name.clone()));
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
        chains.push(sni_chain(d.sni(), &name));
    }
    Ok(zone_proxy_snapshot(
        &net.address,
        net.port,
        TrafficDirection::Inbound,
        chains,
        clusters,
        eds,
    ))
}

/// A filter chain for TLS connections with SNI `sni`, passed as they are
/// (`tcp_proxy`) to `cluster`.
pub fn sni_chain(sni: String, cluster: &str) -> FilterChain {
    FilterChain {
        filter_chain_match: Some(FilterChainMatch {
            server_names: vec![sni],
            transport_protocol: "tls".into(),
            ..FilterChainMatch::default()
        }),
        filters: vec![network_filter(
            "envoy.filters.network.tcp_proxy",
            &TcpProxy {
                stat_prefix: super::envoy::sanitize(cluster),
                cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.into())),
                ..TcpProxy::default()
            },
        )],
        ..FilterChain::default()
    }
}

/// A zone proxy's snapshot: its listener on `address:port` (TLS inspector,
/// `chains`), `clusters` and `eds`. Envoy refuses a listener without filter
/// chains, so with nothing to serve the port stays closed.
pub fn zone_proxy_snapshot(
    address: &str,
    port: u32,
    direction: TrafficDirection,
    chains: Vec<FilterChain>,
    clusters: TypeResources,
    eds: TypeResources,
) -> Snapshot {
    let mut listeners = TypeResources::new();
    if !chains.is_empty() {
        let name = format!("inbound:{address}:{port}");
        let listener = Listener {
            name: name.clone(),
            address: Some(socket(address, port)),
            traffic_direction: direction as i32,
            listener_filters: vec![super::model::tls_inspector()],
            filter_chains: chains,
            ..Listener::default()
        };
        listeners.insert_hashed(name, any(&listener));
    }
    let mut snap = Snapshot::new();
    snap.set_type(Cluster::type_url(), clusters);
    snap.set_type(ClusterLoadAssignment::type_url(), eds);
    snap.set_type(Listener::type_url(), listeners);
    snap
}

/// An EDS cluster, plain TCP: the bytes it carries are the sidecars' mTLS.
pub fn eds_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.to_string(),
        alt_stat_name: super::names::alt_stat_name(name),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::xds::generate::tests::{dataplane, res, web};
    use crate::xds::generate::{MeshView, generate_config};
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use prost::Message;

    const MTLS_MESH: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n";

    /// A ZoneIngress `name` as zone east holds it: from zone `zone` through
    /// global, or (zone `None`) its own.
    fn ingress(name: &str, zone: Option<&str>, address: &str, offers: &str) -> Arc<Resource> {
        let labels = zone.map_or(String::new(), |z| {
            format!("labels: {{kuma.io/origin: global, kuma.io/zone: {z}}}\n")
        });
        let offers = if offers.is_empty() {
            String::new()
        } else {
            format!("availableServices:\n{offers}")
        };
        res(&format!(
            "type: ZoneIngress\nname: {name}\n{labels}networking: {{address: 10.9.9.9, port: 10001, advertisedAddress: {address}, advertisedPort: 10001}}\n{offers}"
        ))
    }

    const WEST_OFFERS: &str = "  - {mesh: default, instances: 2, tags: {kuma.io/service: backend, kuma.io/protocol: http, version: v2}}\n  - {mesh: other, instances: 1, tags: {kuma.io/service: backend}}\n";

    /// Zone east's view: web (calling backend) and backend-1 here, west's two
    /// ingress replicas behind one address, east's own ingress, and `extra`.
    fn east(mesh: &str, extra: &[Arc<Resource>]) -> MeshView {
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
            ingress("west-a", Some("west"), "203.0.113.1", WEST_OFFERS),
            ingress("west-b", Some("west"), "203.0.113.1", WEST_OFFERS),
            ingress(
                "east-own",
                None,
                "198.51.100.1",
                "  - {mesh: default, instances: 1, tags: {kuma.io/service: backend}}\n",
            ),
        ];
        all.extend(extra.iter().cloned());
        MeshView::new_in_zone(res(mesh), all, "east")
    }

    /// The endpoints of `cluster` in `cfg`: (address, priority, weight).
    fn endpoints(
        cfg: &crate::xds::generate::model::Assembled,
        cluster: &str,
    ) -> (Vec<(String, u32, u32)>, Option<u32>) {
        let entry = cfg.endpoints.get(cluster).expect("an EDS resource");
        let cla = ClusterLoadAssignment::decode(entry.payload.value.as_slice()).unwrap();
        let mut out = Vec::new();
        for group in &cla.endpoints {
            for e in &group.lb_endpoints {
                let Some(envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier::Endpoint(ep)) =
                    &e.host_identifier
                else {
                    continue;
                };
                let Some(
                    envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(sa),
                ) = ep.address.as_ref().and_then(|a| a.address.as_ref())
                else {
                    continue;
                };
                out.push((
                    sa.address.clone(),
                    group.priority,
                    e.load_balancing_weight.map_or(1, |w| w.value),
                ));
            }
        }
        let factor = cla
            .policy
            .and_then(|p| p.overprovisioning_factor)
            .map(|f| f.value);
        (out, factor)
    }

    // On a mesh with mTLS, another zone's ingress is an endpoint of the services
    // it offers in this mesh: priority 1, weight = instances, replicas behind one
    // address counted once; this zone's own ingress is not; local instances stay
    // at priority 0 weighted by the number of remote ingresses.
    #[test]
    fn other_zones_ingresses_are_failover_endpoints() {
        let view = east(MTLS_MESH, &[]);
        let cfg = generate_config(&view, &web()).unwrap();
        let (eps, factor) = endpoints(&cfg, "backend");
        assert_eq!(
            eps,
            [
                ("127.0.0.2".to_string(), 0, 1),
                ("203.0.113.1".to_string(), 1, 2)
            ]
        );
        assert_eq!(factor, None);
        // Without mTLS the mesh stays in its zone.
        let plain = east("type: Mesh\nname: default\n", &[]);
        let cfg = generate_config(&plain, &web()).unwrap();
        assert_eq!(
            endpoints(&cfg, "backend").0,
            [("127.0.0.2".to_string(), 0, 1)]
        );
    }

    // MeshLoadBalancingStrategy's localityAwareness: `disabled` flattens the
    // priorities; crossZone.failover orders (or drops) zones; the threshold sets
    // Envoy's overprovisioning factor.
    #[test]
    fn locality_awareness_reorders_zones() {
        let mlbs = |la: &str| {
            res(&format!(
                "type: MeshLoadBalancingStrategy\nmesh: default\nname: lb\nspec:\n  targetRef: {{kind: Mesh}}\n  to:\n    - targetRef: {{kind: MeshService, name: backend}}\n      default:\n        localityAwareness:\n{la}"
            ))
        };
        let run = |la: &str| {
            let view = east(MTLS_MESH, &[mlbs(la)]);
            let cfg = generate_config(&view, &web()).unwrap();
            endpoints(&cfg, "backend")
        };
        let (eps, _) = run("          disabled: true\n");
        assert!(eps.iter().all(|(_, p, _)| *p == 0), "{eps:?}");
        let (eps, factor) = run(
            "          crossZone:\n            failover:\n              - to: {type: Only, zones: [north]}\n              - to: {type: Any}\n            failoverThreshold: {percentage: 50}\n",
        );
        // west is on the second level; north offers nothing, so the levels
        // close up and west is Envoy's priority 1.
        assert_eq!(eps[1], ("203.0.113.1".to_string(), 1, 2), "{eps:?}");
        assert_eq!(factor, Some(200));
        let (eps, _) = run(
            "          crossZone:\n            failover:\n              - from: {zones: [south]}\n                to: {type: Any}\n              - to: {type: None}\n",
        );
        assert_eq!(
            eps,
            [("127.0.0.2".to_string(), 0, 1)],
            "no rule for east lets west in"
        );
        let (eps, _) = run(
            "          crossZone:\n            failover:\n              - to: {type: AnyExcept, zones: [west]}\n",
        );
        assert_eq!(eps.len(), 1, "{eps:?}");
    }

    // The ingress answers the SNI of each local service of a mesh with mTLS and of
    // each subset the mesh's routes name, passing the connection to this zone's
    // instances only, without a transport socket anywhere.
    #[test]
    fn ingress_routes_by_sni_without_tls() {
        let route = res(
            "type: MeshHTTPRoute\nmesh: default\nname: canary\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      rules:\n        - matches: [{path: {type: PathPrefix, value: /}}]\n          default:\n            backendRefs:\n              - {kind: MeshServiceSubset, name: backend, tags: {version: v1}}\n",
        );
        let view = Arc::new(east(MTLS_MESH, &[route]));
        let plain = Arc::new(MeshView::new_in_zone(
            res("type: Mesh\nname: other\n"),
            vec![],
            "east",
        ));
        let own = ingress("east-own", None, "198.51.100.1", "");
        let snap = generate(&[view, plain], &own).unwrap();
        let listeners = snap.get(&Listener::type_url()).unwrap();
        let (_, entry) = listeners.iter().next().unwrap();
        let l = Listener::decode(entry.payload.value.as_slice()).unwrap();
        assert_eq!(l.name, "inbound:10.9.9.9:10001");
        let names: Vec<Vec<String>> = l
            .filter_chains
            .iter()
            .map(|c| c.filter_chain_match.clone().unwrap().server_names)
            .collect();
        // backend (local) and its v1 subset, web; never the remote-only v2.
        assert_eq!(
            names,
            [
                vec!["backend{mesh=default}".to_string()],
                vec!["backend{mesh=default,version=v1}".to_string()],
                vec!["web{mesh=default}".to_string()],
            ]
        );
        assert!(l.filter_chains.iter().all(|c| c.transport_socket.is_none()));
        let clusters = snap.get(&Cluster::type_url()).unwrap();
        for (name, entry) in clusters.iter() {
            let c = Cluster::decode(entry.payload.value.as_slice()).unwrap();
            assert!(c.transport_socket.is_none(), "{name}");
        }
        let eds = snap.get(&ClusterLoadAssignment::type_url()).unwrap();
        let (_, backend) = eds.iter().find(|(n, _)| *n == "default:backend").unwrap();
        let cla = ClusterLoadAssignment::decode(backend.payload.value.as_slice()).unwrap();
        let hosts: usize = cla.endpoints.iter().map(|g| g.lb_endpoints.len()).sum();
        assert_eq!(hosts, 1, "only this zone's instance: {cla:?}");
    }
}
