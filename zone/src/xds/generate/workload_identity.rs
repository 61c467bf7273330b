//! MeshIdentity and MeshTrust in proxy configuration (decision 0010): which
//! proxies take a MeshIdentity SPIFFE id, which ids each service's proxies
//! present, and the trust domains every proxy verifies peers against.
//!
//! - A Dataplane is selected by the MeshIdentity whose `selector.dataplane`
//!   matches the most of its labels (then the smaller name), as Kuma's
//!   `BestMatched`. Its SPIFFE id is `spiffe://<trust domain>/<path>` rendered
//!   from the identity's templates (trust domain with the mesh, this zone and the
//!   identity's labels; path with the Dataplane's labels). A selected proxy does
//!   mTLS even when the Mesh's `mtls` is off; its certificate comes from this
//!   zone's CA for the identity (a MeshIdentity wins over Mesh `mtls`).
//! - When a mesh has MeshIdentities or MeshTrusts, every mTLS proxy of it verifies
//!   peers with Envoy's SPIFFE validator: one trust domain per MeshTrust (and this
//!   zone's own CAs), plus the mesh's Mesh-mTLS CAs as the domain `<mesh>`, so
//!   both kinds of identity talk to each other during a migration. A peer must
//!   chain to its own domain's bundle: no domain can vouch for another.

use super::endpoints::Services;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use weft_model::resource::identity::{MeshIdentitySpec, Template, TemplateData};
use weft_model::resource::{Resource, ResourceType, Spec, tags};

/// A proxy's MeshIdentity.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedIdentity {
    /// The MeshIdentity's name.
    pub name: String,
    /// `spiffe://<trust domain><path>`, or why it cannot be rendered.
    pub spiffe_id: Result<String, String>,
    pub lifetime: std::time::Duration,
}

/// The MeshIdentities and MeshTrusts of one mesh.
#[derive(Debug, Clone, Default)]
pub struct IdentityView {
    mesh: String,
    zone: String,
    /// By name.
    identities: Vec<Arc<Resource>>,
    /// Trust domain → PEM bundle, from the mesh's MeshTrusts.
    pub trusts: BTreeMap<String, String>,
    /// Zone → the trust domains its MeshTrusts publish (by their `kuma.io/zone`).
    pub zone_domains: BTreeMap<String, BTreeSet<String>>,
    /// Service → the trust domains of the other zones that offer it (set by
    /// [`IdentityView::add_remote`]).
    pub remote_domains: HashMap<String, BTreeSet<String>>,
    /// Service → the SPIFFE ids its identity-selected proxies present.
    pub service_ids: HashMap<String, BTreeSet<String>>,
    /// Services with at least one proxy no MeshIdentity selects.
    pub unselected_services: BTreeSet<String>,
}

impl IdentityView {
    pub fn build(
        mesh: &str,
        zone: &str,
        resources: &BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
    ) -> IdentityView {
        let of = |ty: ResourceType| {
            resources
                .get(ty.name())
                .into_iter()
                .flat_map(|m| m.values())
        };
        let mut view = IdentityView {
            mesh: mesh.to_string(),
            zone: zone.to_string(),
            identities: of(ResourceType::MeshIdentity).cloned().collect(),
            ..IdentityView::default()
        };
        for t in of(ResourceType::MeshTrust) {
            if let Spec::MeshTrust(spec) = &t.spec {
                view.trusts
                    .entry(spec.trust_domain.clone())
                    .or_default()
                    .push_str(&spec.pem());
                if let Some(zone) = t.meta.labels.get(tags::ZONE) {
                    view.zone_domains
                        .entry(zone.clone())
                        .or_default()
                        .insert(spec.trust_domain.clone());
                }
            }
        }
        for dp in of(ResourceType::Dataplane) {
            let services = Services::services_of(dp);
            match view.select(dp).map(|s| s.spiffe_id) {
                Some(Ok(id)) => {
                    for s in services {
                        view.service_ids.entry(s).or_default().insert(id.clone());
                    }
                }
                Some(Err(_)) => {}
                None => view.unselected_services.extend(services),
            }
        }
        view
    }

    /// Whether the mesh has MeshIdentities or MeshTrusts (SPIFFE validation on).
    pub fn is_active(&self) -> bool {
        !self.identities.is_empty() || !self.trusts.is_empty()
    }

    /// The MeshIdentity selecting `dp`, with its SPIFFE id.
    pub fn select(&self, dp: &Resource) -> Option<SelectedIdentity> {
        let mut best: Option<(usize, &Arc<Resource>, &MeshIdentitySpec)> = None;
        for r in &self.identities {
            let Spec::MeshIdentity(spec) = &r.spec else {
                continue;
            };
            if spec.bundled().is_none() {
                continue;
            }
            if let Some(n) = spec.selects(&dp.meta.labels)
                && best.is_none_or(|(b, br, _)| n > b || (n == b && r.meta.name < br.meta.name))
            {
                best = Some((n, r, spec));
            }
        }
        let (_, r, spec) = best?;
        Some(SelectedIdentity {
            name: r.meta.name.clone(),
            spiffe_id: self.spiffe_id(r, spec, dp),
            lifetime: spec.certificate_lifetime(),
        })
    }

    fn spiffe_id(
        &self,
        identity: &Resource,
        spec: &MeshIdentitySpec,
        dp: &Resource,
    ) -> Result<String, String> {
        let td = Template::parse(spec.trust_domain_template())?
            .render(&TemplateData {
                mesh: &self.mesh,
                zone: &self.zone,
                labels: Some(&identity.meta.labels),
            })
            .map_err(|e| format!("spiffeID.trustDomain: {e}"))?;
        let path = Template::parse(spec.path_template())?
            .render(&TemplateData {
                mesh: &self.mesh,
                zone: &self.zone,
                labels: Some(&dp.meta.labels),
            })
            .map_err(|e| format!("spiffeID.path: {e}"))?;
        if !path.starts_with('/') {
            return Err(format!("spiffeID.path {path:?} must start with '/'"));
        }
        Ok(format!("spiffe://{td}{path}"))
    }

    /// The SPIFFE ids a client accepts from `service`'s proxies: the MeshIdentity
    /// ids of its selected proxies, and Mesh mTLS's `spiffe://<mesh>/<service>` for
    /// the others when `mesh_mtls`.
    pub fn accepted_ids(&self, service: &str, mesh_mtls: bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .service_ids
            .get(service)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if mesh_mtls && (self.unselected_services.contains(service) || ids.is_empty()) {
            ids.push(format!("spiffe://{}/{service}", self.mesh));
        }
        ids
    }

    /// Records which services other zones offer (from the mesh's endpoints): a
    /// client accepts, from such a service, any SPIFFE id of those zones' trust
    /// domains. Which workload of the zone answers is the remote zone's business:
    /// its ingress routes by the SNI naming the service (decision 0011).
    pub fn add_remote(&mut self, services: &Services) {
        // A domain this zone also uses (a trust domain without the zone in it)
        // would let any local workload pass for the service: never by prefix.
        let own = self
            .zone_domains
            .get(&self.zone)
            .cloned()
            .unwrap_or_default();
        for (service, eps) in &services.endpoints {
            for zone in eps.iter().filter_map(|e| e.remote_zone.as_deref()) {
                if let Some(domains) = self.zone_domains.get(zone) {
                    self.remote_domains
                        .entry(service.clone())
                        .or_default()
                        .extend(domains.iter().filter(|d| !own.contains(*d)).cloned());
                }
            }
        }
        self.remote_domains.retain(|_, d| !d.is_empty());
    }

    /// The trust domains of other zones whose SPIFFE ids a client accepts from
    /// `service` (any id of the domain).
    pub fn accepted_domains(&self, service: &str) -> Vec<String> {
        self.remote_domains
            .get(service)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Whether traffic to `service` is mTLS: Mesh mTLS is on, or every proxy of it
    /// has a MeshIdentity (here, or in the other zones that offer it).
    pub fn destination_mtls(&self, service: &str, mesh_mtls: bool) -> bool {
        mesh_mtls
            || ((self.service_ids.contains_key(service)
                || self.remote_domains.contains_key(service))
                && !self.unselected_services.contains(service))
    }
}

/// Kuma's `kuma.io/service` values of a Dataplane's inbounds.
impl Services {
    pub fn services_of(dp: &Resource) -> Vec<String> {
        let Spec::Dataplane(spec) = &dp.spec else {
            return Vec::new();
        };
        spec.networking
            .iter()
            .flat_map(|n| &n.inbound)
            .filter_map(|i| i.tags.get(tags::SERVICE).cloned())
            .collect()
    }
}
