//! Endpoints per service, computed once per [`super::MeshView`]: every healthy
//! inbound of every Dataplane of the mesh, by `kuma.io/service`, plus — on a mesh
//! with mTLS — the ingresses of other zones offering the service, and the
//! ClusterLoadAssignment built from them (shared by every proxy's snapshot).
//!
//! Remote endpoints follow Kuma (`fillIngressOutbounds`): one per distinct
//! advertised ingress address that offers the service, weighted by the number of
//! instances behind it, in its zone's locality at priority 1 — this zone's own
//! instances (priority 0) take the traffic while any is healthy. A
//! MeshLoadBalancingStrategy's `localityAwareness` may reorder or flatten the
//! priorities per proxy ([`Services::cla_with`]).

use super::envoy::{any, socket, u32v};
use super::model::Protocol;
use envoy_types::pb::envoy::config::core::v3::Locality;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use weft_model::resource::{Resource, Spec, Tags, tags};
use weft_sync::delta::{Entry, any_version};

/// One endpoint of a service: where other proxies connect and the inbound's tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceEndpoint {
    pub address: String,
    pub port: u32,
    pub tags: Tags,
    /// The zone behind a remote endpoint (another zone's ingress); `None` for an
    /// instance in this zone.
    pub remote_zone: Option<String>,
    /// Load-balancing weight: the instance count behind a remote ingress; for a
    /// local instance, the number of remote ingresses (Kuma's rule, so that a zone
    /// is not outweighed by its ingress count when priorities are flattened).
    pub weight: u32,
}

/// The largest weight a remote endpoint gets: Envoy refuses a locality whose
/// weights sum past 2^32, whatever a zone reports.
pub const MAX_WEIGHT: u32 = 1 << 20;

/// Where an endpoint goes in a proxy's ClusterLoadAssignment: its Envoy priority,
/// or `None` to leave it out.
pub type Placement<'a> = &'a dyn Fn(&ServiceEndpoint) -> Option<u32>;

/// Kuma's default: this zone's instances first (priority 0), other zones' as
/// failover (priority 1).
pub fn local_first(e: &ServiceEndpoint) -> Option<u32> {
    Some(u32::from(e.remote_zone.is_some()))
}

/// All services of a mesh: endpoints, protocol, and the shared EDS resource.
#[derive(Debug, Clone, Default)]
pub struct Services {
    pub endpoints: BTreeMap<String, Vec<ServiceEndpoint>>,
    pub protocols: BTreeMap<String, Protocol>,
    pub clas: BTreeMap<String, Arc<Entry>>,
    /// This zone's egress, when remote endpoints are reached through it.
    pub egress: Option<(String, u32)>,
}

impl Services {
    pub fn build<'a>(dataplanes: impl Iterator<Item = &'a Arc<Resource>>) -> Services {
        let mut endpoints: BTreeMap<String, Vec<ServiceEndpoint>> = BTreeMap::new();
        let mut protos: BTreeMap<String, Vec<Protocol>> = BTreeMap::new();
        for r in dataplanes {
            let Spec::Dataplane(dp) = &r.spec else {
                continue;
            };
            let Some(net) = &dp.networking else { continue };
            for inbound in &net.inbound {
                let Some(service) = inbound.service() else {
                    continue;
                };
                protos
                    .entry(service.to_string())
                    .or_default()
                    .push(Protocol::parse(Some(inbound.protocol())));
                if !inbound.is_healthy() {
                    continue;
                }
                let iface = net.inbound_interface(inbound);
                endpoints
                    .entry(service.to_string())
                    .or_default()
                    .push(ServiceEndpoint {
                        address: iface.dataplane_advertised_ip,
                        port: iface.dataplane_port,
                        tags: inbound.tags.clone(),
                        remote_zone: None,
                        weight: 1,
                    });
            }
        }
        for eps in endpoints.values_mut() {
            eps.sort();
            eps.dedup();
        }
        // A service's protocol is its inbounds' common protocol, else tcp (Kuma).
        let protocols = protos
            .into_iter()
            .map(|(s, ps)| {
                let first = ps.first().copied().unwrap_or(Protocol::Tcp);
                let p = if ps.iter().all(|p| *p == first) {
                    first
                } else {
                    Protocol::Tcp
                };
                (s, p)
            })
            .collect();
        let mut services = Services {
            endpoints,
            protocols,
            clas: BTreeMap::new(),
            egress: None,
        };
        services.build_clas();
        services
    }

    fn build_clas(&mut self) {
        self.clas = self
            .endpoints
            .iter()
            .map(|(s, eps)| {
                let cla = cla(s, eps.iter(), &local_first, self.egress.as_ref());
                (s.clone(), Arc::new(entry(&cla)))
            })
            .collect();
    }

    /// Adds what the other zones' ingresses (`ingresses`: every ZoneIngress the
    /// zone holds) offer in `mesh`. Only ingresses received from global that
    /// belong to another zone than `local_zone` count; their zone is the one
    /// global attributed them to (the `kuma.io/zone` label), whatever their
    /// payload claims. Replicas behind one advertised address count once, and
    /// only once they offer something (a new replica does not shadow a
    /// populated one). Call only on a mesh with mTLS: the ingress routes on the
    /// TLS SNI that only mTLS clusters send.
    pub fn add_remote<'a>(
        &mut self,
        mesh: &str,
        local_zone: &str,
        ingresses: impl Iterator<Item = &'a Arc<Resource>>,
    ) {
        let mut seen = BTreeSet::new();
        let mut added = false;
        for r in ingresses {
            let Spec::ZoneIngress(zi) = &r.spec else {
                continue;
            };
            let Some(zone) = remote_zone(r, local_zone) else {
                continue;
            };
            let Some((address, port)) = zi.public_endpoint() else {
                continue;
            };
            if address.is_empty() || port == 0 || zi.available_services.is_empty() {
                continue;
            }
            if !seen.insert((address.to_string(), port)) {
                continue;
            }
            for svc in &zi.available_services {
                if svc.mesh.as_deref() != Some(mesh) || svc.external_service == Some(true) {
                    continue;
                }
                let Some(service) = svc.tags.get(tags::SERVICE) else {
                    continue;
                };
                let mut tags = svc.tags.clone();
                tags.insert(tags::ZONE.to_string(), zone.to_string());
                if let Some(p) = tags.get(tags::PROTOCOL) {
                    self.protocols
                        .entry(service.clone())
                        .or_insert_with(|| Protocol::parse(Some(p)));
                }
                self.endpoints
                    .entry(service.clone())
                    .or_default()
                    .push(ServiceEndpoint {
                        address: address.to_string(),
                        port,
                        tags,
                        remote_zone: Some(zone.to_string()),
                        weight: svc.instances.clamp(1, MAX_WEIGHT),
                    });
                added = true;
            }
        }
        if !added {
            return;
        }
        // Kuma's fairness rule: a local instance weighs as much as all remote
        // ingresses together would for one instance.
        let ingresses = u32::try_from(seen.len()).unwrap_or(u32::MAX).max(1);
        for eps in self.endpoints.values_mut() {
            for e in eps.iter_mut().filter(|e| e.remote_zone.is_none()) {
                e.weight = ingresses;
            }
            eps.sort();
            eps.dedup();
        }
        self.build_clas();
    }

    /// Sends traffic for other zones to this zone's egress at `address:port`:
    /// in the proxies' EDS every remote endpoint keeps its zone, tags, weight
    /// and priority but points at the egress, which forwards by SNI to the
    /// remote ingress ([`Services::remote`] keeps the ingresses' addresses).
    pub fn route_remote_through(&mut self, address: &str, port: u32) {
        self.egress = Some((address.to_string(), port));
        self.build_clas();
    }

    /// The remote endpoints of `service` (what a zone egress forwards to).
    pub fn remote(&self, service: &str) -> impl Iterator<Item = &ServiceEndpoint> {
        self.endpoints
            .get(service)
            .into_iter()
            .flatten()
            .filter(|e| e.remote_zone.is_some())
    }

    /// The endpoints of this zone only (what a zone ingress forwards to).
    pub fn local(&self, service: &str) -> impl Iterator<Item = &ServiceEndpoint> {
        self.endpoints
            .get(service)
            .into_iter()
            .flatten()
            .filter(|e| e.remote_zone.is_none())
    }

    /// Whether any endpoint of the mesh is in another zone.
    pub fn has_remote(&self) -> bool {
        self.endpoints
            .values()
            .flatten()
            .any(|e| e.remote_zone.is_some())
    }

    pub fn protocol(&self, service: &str) -> Option<Protocol> {
        self.protocols.get(service).copied()
    }

    /// The shared EDS resource for `service` (an empty one when it has no endpoints).
    pub fn cla(&self, service: &str) -> Arc<Entry> {
        self.clas
            .get(service)
            .cloned()
            .unwrap_or_else(|| Arc::new(cla_entry(service, std::iter::empty(), &local_first)))
    }

    /// An EDS resource named `cluster` with the endpoints of `service` whose tags
    /// contain `subset`.
    pub fn subset_cla(&self, cluster: &str, service: &str, subset: &Tags) -> Arc<Entry> {
        self.cla_with(cluster, service, subset, &local_first)
    }

    /// An EDS resource named `cluster` with the endpoints of `service` whose tags
    /// contain `subset`, placed by `placement` (a proxy's locality awareness).
    pub fn cla_with(
        &self,
        cluster: &str,
        service: &str,
        subset: &Tags,
        placement: Placement<'_>,
    ) -> Arc<Entry> {
        Arc::new(entry(&self.cla_of(cluster, service, subset, placement)))
    }

    /// The ClusterLoadAssignment behind [`Services::cla_with`].
    pub fn cla_of(
        &self,
        cluster: &str,
        service: &str,
        subset: &Tags,
        placement: Placement<'_>,
    ) -> ClusterLoadAssignment {
        let eps = self
            .endpoints
            .get(service)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let picked = eps
            .iter()
            .filter(|e| subset.iter().all(|(k, v)| e.tags.get(k) == Some(v)));
        cla(cluster, picked, placement, self.egress.as_ref())
    }
}

/// The zone a ZoneIngress serves when it is another zone's, as global attributed
/// it; `None` for this zone's own (or one not received from global).
pub fn remote_zone<'a>(ingress: &'a Resource, local_zone: &str) -> Option<&'a str> {
    if ingress.meta.labels.get(tags::ORIGIN).map(String::as_str) != Some("global") {
        return None;
    }
    let zone = ingress
        .meta
        .labels
        .get(tags::ZONE)
        .map(String::as_str)
        .or(match &ingress.spec {
            Spec::ZoneIngress(zi) => zi.zone.as_deref(),
            _ => None,
        })?;
    (!zone.is_empty() && zone != local_zone).then_some(zone)
}

/// A ClusterLoadAssignment named `cluster`: `eps` grouped by priority (from
/// `placement`), then by zone; remote endpoints at `egress` when given.
pub fn cla<'a>(
    cluster: &str,
    eps: impl Iterator<Item = &'a ServiceEndpoint>,
    placement: Placement<'_>,
    egress: Option<&(String, u32)>,
) -> ClusterLoadAssignment {
    let mut groups: BTreeMap<(u32, String), Vec<LbEndpoint>> = BTreeMap::new();
    for e in eps {
        let Some(priority) = placement(e) else {
            continue;
        };
        let zone = e
            .remote_zone
            .clone()
            .or_else(|| e.tags.get(tags::ZONE).cloned())
            .unwrap_or_default();
        let (address, port) = match (egress, &e.remote_zone) {
            (Some((a, p)), Some(_)) => (a.as_str(), *p),
            _ => (e.address.as_str(), e.port),
        };
        groups
            .entry((priority, zone))
            .or_default()
            .push(LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket(address, port)),
                    ..Endpoint::default()
                })),
                // The tags as `envoy.lb` metadata, as Kuma sends them (what
                // MeshRetry's OmitHostsWithTags matches on).
                metadata: lb_metadata(&e.tags),
                load_balancing_weight: Some(u32v(e.weight.max(1))),
                ..LbEndpoint::default()
            });
    }
    // Envoy wants dense priorities (0, 1, ...): a service only in other zones
    // has its endpoints at priority 0.
    let dense: BTreeMap<u32, u32> = groups
        .keys()
        .map(|(p, _)| *p)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .zip(0..)
        .collect();
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: groups
            .into_iter()
            .map(|((priority, zone), lb_endpoints)| LocalityLbEndpoints {
                priority: dense.get(&priority).copied().unwrap_or(priority),
                locality: (!zone.is_empty()).then(|| Locality {
                    zone,
                    ..Locality::default()
                }),
                lb_endpoints,
                ..LocalityLbEndpoints::default()
            })
            .collect(),
        ..ClusterLoadAssignment::default()
    }
}

/// The hasher every generated protobuf map is built with. prost encodes a map
/// in its iteration order; with one hasher and the same insertion order the
/// bytes — hence the content versions — are the same on every generation, so
/// an unchanged resource is never resent.
pub fn map_hasher() -> std::collections::hash_map::RandomState {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(Default::default).clone()
}

/// `tags` as the filter metadata `namespace` (sorted, encoded the same way every
/// time; `None` without tags).
pub fn tags_metadata(
    namespace: &str,
    tags: &Tags,
) -> Option<envoy_types::pb::envoy::config::core::v3::Metadata> {
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    if tags.is_empty() {
        return None;
    }
    let mut fields = std::collections::HashMap::with_capacity_and_hasher(tags.len(), map_hasher());
    for (k, v) in tags {
        fields.insert(
            k.clone(),
            Value {
                kind: Some(Kind::StringValue(v.clone())),
            },
        );
    }
    let mut filter_metadata = std::collections::HashMap::with_capacity_and_hasher(1, map_hasher());
    filter_metadata.insert(namespace.to_string(), Struct { fields });
    Some(envoy_types::pb::envoy::config::core::v3::Metadata {
        filter_metadata,
        ..Default::default()
    })
}

/// `tags` as `envoy.lb` filter metadata (what MeshRetry's OmitHostsWithTags and
/// subset load balancing match).
pub fn lb_metadata(tags: &Tags) -> Option<envoy_types::pb::envoy::config::core::v3::Metadata> {
    tags_metadata("envoy.lb", tags)
}

pub fn cla_entry<'a>(
    cluster: &str,
    eps: impl Iterator<Item = &'a ServiceEndpoint>,
    placement: Placement<'_>,
) -> Entry {
    entry(&cla(cluster, eps, placement, None))
}

/// A ClusterLoadAssignment as a shareable EDS entry.
pub fn entry(cla: &ClusterLoadAssignment) -> Entry {
    let payload = any(cla);
    Entry {
        version: any_version(&payload),
        payload,
    }
}
