//! Endpoints per service, computed once per [`super::MeshView`]: every healthy
//! inbound of every Dataplane of the mesh, by `kuma.io/service`, and the
//! ClusterLoadAssignment built from them (shared by every proxy's snapshot).

use super::envoy::{any, socket, u32v};
use super::model::Protocol;
use envoy_types::pb::envoy::config::core::v3::Locality;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use weft_model::resource::{Resource, Spec, Tags, tags};
use weft_sync::delta::{Entry, any_version};

/// One endpoint of a service: where other proxies connect and the inbound's tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceEndpoint {
    pub address: String,
    pub port: u32,
    pub tags: Tags,
}

/// All services of a mesh: endpoints, protocol, and the shared EDS resource.
#[derive(Debug, Clone, Default)]
pub struct Services {
    pub endpoints: BTreeMap<String, Vec<ServiceEndpoint>>,
    pub protocols: BTreeMap<String, Protocol>,
    pub clas: BTreeMap<String, Arc<Entry>>,
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
        let clas = endpoints
            .iter()
            .map(|(s, eps)| (s.clone(), Arc::new(cla_entry(s, eps.iter()))))
            .collect();
        Services {
            endpoints,
            protocols,
            clas,
        }
    }

    pub fn protocol(&self, service: &str) -> Option<Protocol> {
        self.protocols.get(service).copied()
    }

    /// The shared EDS resource for `service` (an empty one when it has no endpoints).
    pub fn cla(&self, service: &str) -> Arc<Entry> {
        self.clas
            .get(service)
            .cloned()
            .unwrap_or_else(|| Arc::new(cla_entry(service, std::iter::empty())))
    }

    /// An EDS resource named `cluster` with the endpoints of `service` whose tags
    /// contain `subset`.
    pub fn subset_cla(&self, cluster: &str, service: &str, subset: &Tags) -> Arc<Entry> {
        let eps = self
            .endpoints
            .get(service)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let picked = eps
            .iter()
            .filter(|e| subset.iter().all(|(k, v)| e.tags.get(k) == Some(v)));
        Arc::new(cla_entry(cluster, picked))
    }
}

pub fn cla<'a>(
    cluster: &str,
    eps: impl Iterator<Item = &'a ServiceEndpoint>,
) -> ClusterLoadAssignment {
    let mut by_zone: BTreeMap<String, Vec<LbEndpoint>> = BTreeMap::new();
    for e in eps {
        let zone = e.tags.get(tags::ZONE).cloned().unwrap_or_default();
        by_zone.entry(zone).or_default().push(LbEndpoint {
            host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                address: Some(socket(&e.address, e.port)),
                ..Endpoint::default()
            })),
            load_balancing_weight: Some(u32v(1)),
            ..LbEndpoint::default()
        });
    }
    ClusterLoadAssignment {
        cluster_name: cluster.to_string(),
        endpoints: by_zone
            .into_iter()
            .map(|(zone, lb_endpoints)| LocalityLbEndpoints {
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

fn cla_entry<'a>(cluster: &str, eps: impl Iterator<Item = &'a ServiceEndpoint>) -> Entry {
    let payload = any(&cla(cluster, eps));
    Entry {
        version: any_version(&payload),
        payload,
    }
}
