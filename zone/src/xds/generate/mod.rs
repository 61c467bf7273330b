//! Envoy configuration for one proxy, from its Dataplane and its mesh's resources,
//! in Kuma's layout (docs/policies.md, /work/xds-plan.md):
//!
//! 1. [`MeshView::new`] (once per change of a mesh) indexes the mesh's resources and
//!    precomputes per service its endpoints, protocol and EDS resource — one
//!    shared `Arc` per service for every proxy.
//! 2. [`generate`] per proxy: [`weft_model::rules::ProxyRules`] matches and merges
//!    the policies, [`base`] builds the listeners and clusters, [`plugins`] apply
//!    each policy type in Kuma's order, [`model::ProxyConfig::assemble`] packs the
//!    result. Versions are content hashes ([`weft_sync::delta::any_version`]).

pub mod base;
pub mod egress;
pub mod endpoints;
pub mod envoy;
pub mod external;
#[cfg(test)]
mod golden;
pub mod ingress;
pub mod json;
pub mod jsonpatch;
pub mod model;
pub mod mtls;
pub mod names;
pub mod plugins;
#[cfg(test)]
pub(crate) mod tests;
pub mod workload_identity;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use prost::Name;
use std::collections::BTreeMap;
use std::sync::Arc;
use weft_model::resource::{Resource, ResourceType, Spec, tags};
use weft_model::rules::ProxyRules;
use weft_sync::delta::{Snapshot, TypeResources};

/// Everything of one mesh that proxy configuration reads, built once per change of
/// the mesh's resources and shared (read-only) by every proxy of the mesh.
#[derive(Debug, Clone)]
pub struct MeshView {
    /// The Mesh resource.
    pub mesh: Arc<Resource>,
    /// Every resource of the mesh (Dataplanes, policies...) and the zone's
    /// ZoneIngresses and ZoneEgresses, by type name then resource name.
    pub resources: BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
    /// Every policy of the mesh, prepared once for matching (spec JSON, targetRef).
    pub policies: Vec<weft_model::rules::Policy>,
    /// Endpoints, protocols and shared EDS resources per service.
    pub services: endpoints::Services,
    /// The mesh's mTLS (CA, mode, trusted roots); `None` when neither the Mesh's
    /// `mtls` nor a MeshIdentity is on.
    pub mtls: Option<Arc<mtls::MeshTls>>,
    /// MeshIdentities and MeshTrusts: who takes which SPIFFE id, which domains
    /// are trusted.
    pub identity: workload_identity::IdentityView,
    /// The zone this view is for (remote endpoints are the other zones').
    pub zone: String,
    /// The mesh's ExternalServices by `kuma.io/service`.
    pub externals: BTreeMap<String, Arc<Resource>>,
    /// The mesh's MeshExternalServices by name.
    pub mes: BTreeMap<String, Arc<Resource>>,
    /// Where this zone's egress listens, when the mesh routes through it
    /// (`routing.zoneEgress`, mTLS on) and the zone has one.
    pub egress: Option<(String, u32)>,
}

impl MeshView {
    /// Builds the view for a zone named `default` (tests, inspection of a
    /// standalone zone); see [`MeshView::new_in_zone`].
    pub fn new(mesh: Arc<Resource>, resources: Vec<Arc<Resource>>) -> MeshView {
        Self::new_in_zone(mesh, resources, crate::DEFAULT_ZONE_NAME)
    }

    /// Builds the view in zone `zone` (MeshIdentity templates read it);
    /// precomputes what many proxies share (endpoints per service).
    pub fn new_in_zone(mesh: Arc<Resource>, resources: Vec<Arc<Resource>>, zone: &str) -> MeshView {
        let mut by_type: BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>> = BTreeMap::new();
        let mut policies = Vec::new();
        for r in resources {
            if r.resource_type().is_policy() {
                policies.push(weft_model::rules::Policy::new(r.clone()));
            }
            by_type
                .entry(r.resource_type().name())
                .or_default()
                .insert(r.meta.name.clone(), r);
        }
        let mut services = endpoints::Services::build(
            by_type
                .get(ResourceType::Dataplane.name())
                .into_iter()
                .flat_map(|m| m.values()),
        );
        let externals = external::by_service(&by_type);
        let mes = by_type
            .get(ResourceType::MeshExternalService.name())
            .cloned()
            .unwrap_or_default();
        for (service, es) in &externals {
            if let Spec::ExternalService(spec) = &es.spec {
                services
                    .protocols
                    .entry(service.clone())
                    .or_insert_with(|| {
                        model::Protocol::parse(spec.tags.get(tags::PROTOCOL).map(String::as_str))
                    });
            }
        }
        let mut identity = workload_identity::IdentityView::build(&mesh.meta.name, zone, &by_type);
        let mtls = mtls::MeshTls::build(&mesh, &by_type, identity.is_active()).map(Arc::new);
        // Other zones are reached through their ingresses, which route on the SNI
        // of mTLS: without mTLS the mesh stays within the zone (Kuma's rule).
        if mtls.is_some() {
            services.add_remote(
                &mesh.meta.name,
                zone,
                by_type
                    .get(ResourceType::ZoneIngress.name())
                    .into_iter()
                    .flat_map(|m| m.values()),
            );
            identity.add_remote(&services);
        }
        // The egress takes a Mesh-mTLS identity: it needs the Mesh's CA.
        let egress = mtls
            .as_ref()
            .filter(|t| t.mesh_mtls)
            .and_then(|_| external::local_egress(&mesh, zone, &by_type));
        if let Some((address, port)) = &egress {
            // Traffic leaving the zone goes through its egress (Kuma's rule).
            services.route_remote_through(address, *port);
        }
        MeshView {
            mesh,
            resources: by_type,
            policies,
            services,
            mtls,
            identity,
            zone: zone.to_string(),
            externals,
            mes,
            egress,
        }
    }

    /// The policies' rules for `dataplane`.
    pub fn rules(&self, dataplane: &Resource) -> ProxyRules {
        ProxyRules::compute_prepared(dataplane, &self.policies)
    }
}

/// What went wrong generating a proxy's configuration.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("resource {0} is not a Dataplane")]
    NotADataplane(String),
}

/// The finished Envoy resources of a proxy (before packing into a snapshot).
pub fn generate_config(
    view: &MeshView,
    dataplane: &Resource,
) -> Result<model::Assembled, GenerateError> {
    let Spec::Dataplane(dp) = &dataplane.spec else {
        return Err(GenerateError::NotADataplane(dataplane.meta.name.clone()));
    };
    let rules = view.rules(dataplane);
    let mut cfg = base::build(view, dp);
    // mTLS for this proxy: Mesh mTLS, or a MeshIdentity selecting it.
    let tls = view
        .mtls
        .as_deref()
        .filter(|t| t.mesh_mtls || view.identity.select(dataplane).is_some());
    let source_service = dp
        .networking
        .as_ref()
        .and_then(|n| n.inbound.iter().find_map(|i| i.service()))
        .unwrap_or(&dataplane.meta.name);
    let ctx = plugins::Ctx {
        view,
        rules: &rules,
        proxy: &dataplane.meta.name,
        dataplane,
        source_service,
        mtls: tls,
        route_targeted: plugins::route_targeted(view, dataplane),
    };
    if let Some(tls) = tls {
        mtls::apply_inbound(&mut cfg, tls);
    }
    plugins::apply(&mut cfg, &ctx);
    if let Some(tls) = tls {
        let params = plugins::meshtls::outbound_params(&ctx);
        mtls::apply_clusters(&mut cfg, tls, &view.identity, params.as_ref());
    }
    let origins = plugins::meshproxypatch::Origins::of(&cfg);
    let mut out = cfg.assemble();
    plugins::meshproxypatch::apply(&mut out, &origins, &ctx);
    Ok(out)
}

/// The xDS resources for `dataplane` (a Dataplane of `view`'s mesh), by type URL;
/// versions are content hashes ([`weft_sync::delta::any_version`]).
pub fn generate(view: &MeshView, dataplane: &Resource) -> Result<Snapshot, GenerateError> {
    let cfg = generate_config(view, dataplane)?;
    let mut listeners = TypeResources::new();
    for l in &cfg.listeners {
        listeners.insert_hashed(l.name.clone(), envoy::any(l));
    }
    let mut clusters = TypeResources::new();
    for c in &cfg.clusters {
        clusters.insert_hashed(c.name.clone(), envoy::any(c));
    }
    let mut eds = TypeResources::new();
    for (name, entry) in &cfg.endpoints {
        eds.insert_shared(name.clone(), entry.clone());
    }
    let mut snap = Snapshot::new();
    if !cfg.extension_configs.is_empty() {
        let mut ecds = TypeResources::new();
        for e in &cfg.extension_configs {
            ecds.insert_hashed(e.name.clone(), envoy::any(e));
        }
        snap.set_type(
            envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig::type_url(),
            ecds,
        );
    }
    snap.set_type(Cluster::type_url(), clusters);
    snap.set_type(ClusterLoadAssignment::type_url(), eds);
    snap.set_type(Listener::type_url(), listeners);
    Ok(snap)
}
