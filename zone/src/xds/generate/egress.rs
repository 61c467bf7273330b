//! A zone egress's Envoy configuration: one listener on the ZoneEgress's
//! `networking.address:port` with a TLS inspector and, for each mesh that
//! routes through it (`routing.zoneEgress`, Mesh mTLS on), one filter chain per
//! SNI its sidecars send:
//!
//! - towards another zone (`<service>{mesh=<mesh>...}`, as for an ingress): the
//!   connection passes on, still encrypted, through `tcp_proxy` to the EDS
//!   cluster `<mesh>:<service>` of the other zones' ingresses — the egress holds
//!   no decrypted byte of it;
//! - towards a MeshExternalService (`<name>.<port>.<mesh>.mes`), the same, to
//!   its endpoints ([`super::external::mes_direct`]);
//! - towards an ExternalService (`<service>{mesh=<mesh>}.external`): the egress
//!   terminates the sidecar's mTLS (a client certificate of the mesh required;
//!   its own certificate is `spiffe://<mesh>/zone-egress`) and `tcp_proxy`
//!   carries the stream to the service, with the TLS the ExternalService asks
//!   for ([`super::external::direct`]).
//!
//! The secrets (`identity_cert:secret:<mesh>`, `mesh_ca:secret:<mesh>` for each
//! such mesh) are added by the cache, which issues the egress's certificates.

use super::MeshView;
use super::endpoints::{cla_entry, local_first};
use super::envoy::any;
use super::ingress::{Destination, IngressError};
use super::model::Protocol;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use std::collections::BTreeSet;
use std::sync::Arc;
use weft_model::resource::{Resource, Spec, Tags};
use weft_sync::delta::{Snapshot, TypeResources};

/// The meshes an egress serves: Mesh mTLS on and routed through this zone's
/// egress.
pub fn served(views: &[Arc<MeshView>]) -> impl Iterator<Item = &Arc<MeshView>> {
    views
        .iter()
        .filter(|v| v.egress.is_some() && v.mtls.as_ref().is_some_and(|t| t.mesh_mtls))
}

/// Other zones' destinations of `view`: each service with remote endpoints,
/// and each subset of it the mesh's routes name that a remote endpoint offers.
fn remote_destinations(view: &MeshView) -> Vec<Destination> {
    let mesh = &view.mesh.meta.name;
    let mut out = BTreeSet::new();
    let offered = |service: &str, subset: &Tags| {
        view.services
            .remote(service)
            .any(|e| subset.iter().all(|(k, v)| e.tags.get(k) == Some(v)))
    };
    for service in view.services.endpoints.keys() {
        if offered(service, &Tags::new()) {
            out.insert(Destination {
                mesh: mesh.clone(),
                service: service.clone(),
                subset: Tags::new(),
            });
        }
    }
    for (service, subset) in super::ingress::route_subsets(view) {
        if offered(&service, &subset) {
            out.insert(Destination {
                mesh: mesh.clone(),
                service,
                subset,
            });
        }
    }
    out.into_iter().collect()
}

/// A cluster of the egress: DEFAULT-priority circuit breaker threshold with
/// `track_remaining`, as Kuma's MeshCircuitBreaker plugin gives every cluster.
fn egress_cluster(mut c: Cluster) -> Cluster {
    super::plugins::meshcircuitbreaker::ensure_track_remaining(&mut c);
    c
}

/// The egress's listener, clusters and endpoints from every mesh's view.
pub fn generate(views: &[Arc<MeshView>], egress: &Resource) -> Result<Snapshot, IngressError> {
    let Spec::ZoneEgress(spec) = &egress.spec else {
        return Err(IngressError::WrongType(egress.meta.name.clone()));
    };
    let net = spec
        .networking
        .as_ref()
        .ok_or_else(|| IngressError::NoNetworking(egress.meta.name.clone()))?;
    let mut chains = Vec::new();
    let mut clusters = TypeResources::new();
    let mut eds = TypeResources::new();
    for view in served(views) {
        for d in remote_destinations(view) {
            let name = d.cluster();
            let picked = view
                .services
                .remote(&d.service)
                .filter(|e| d.subset.iter().all(|(k, v)| e.tags.get(k) == Some(v)));
            eds.insert_shared(
                name.clone(),
                Arc::new(cla_entry(&name, picked, &local_first)),
            );
            clusters.insert_hashed(
                name.clone(),
                any(&egress_cluster(super::ingress::eds_cluster(&name))),
            );
            chains.push(super::ingress::sni_chain(d.sni(), &name));
        }
        let Some(tls) = &view.mtls else { continue };
        for (service, es) in &view.externals {
            let Spec::ExternalService(es) = &es.spec else {
                continue;
            };
            let name = format!("{}:{service}", view.mesh.meta.name);
            let protocol = view.services.protocol(service).unwrap_or(Protocol::Tcp);
            let part = super::external::direct(view, &name, es, protocol);
            clusters.insert_hashed(name.clone(), any(&egress_cluster(part.assemble())));
            let mut chain = super::ingress::sni_chain(
                super::external::external_sni(service, &view.mesh.meta.name),
                &name,
            );
            chain.transport_socket = Some(tls.downstream(None));
            chains.push(chain);
        }
        for (mes_name, mes) in &view.mes {
            let Spec::MeshExternalService(spec) = &mes.spec else {
                continue;
            };
            let mesh = &view.mesh.meta.name;
            let name = format!("{mesh}:{}", super::external::mes_cluster_name(mes_name));
            let part = super::external::mes_direct(view, &name, mes_name, spec);
            clusters.insert_hashed(name.clone(), any(&egress_cluster(part.assemble())));
            let mut chain = super::ingress::sni_chain(
                super::external::mes_sni(mesh, mes_name, spec.port()),
                &name,
            );
            chain.transport_socket = Some(tls.downstream(None));
            chains.push(chain);
        }
    }
    Ok(super::ingress::zone_proxy_snapshot(
        &net.address,
        net.port,
        TrafficDirection::Outbound,
        chains,
        clusters,
        eds,
    ))
}
