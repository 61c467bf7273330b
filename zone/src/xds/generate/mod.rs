//! Envoy configuration for one proxy, from its Dataplane and its mesh's resources.
//!
//! INTERFACE STUB (session 2 plan, see /work/xds-plan.md): owned by the
//! generation work; the xDS server codes against exactly these signatures.

use std::collections::BTreeMap;
use std::sync::Arc;
use weft_shared::delta::Snapshot;
use weft_shared::resource::Resource;

/// Everything of one mesh that proxy configuration reads, built once per change of
/// the mesh's resources and shared (read-only) by every proxy of the mesh.
#[derive(Debug, Clone)]
pub struct MeshView {
    /// The Mesh resource.
    pub mesh: Arc<Resource>,
    /// Every resource of the mesh: Dataplanes, policies, ZoneIngresses..., by type
    /// name then resource name.
    pub resources: BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
}

impl MeshView {
    /// Builds the view; precomputes what many proxies share (endpoints per service).
    pub fn new(mesh: Arc<Resource>, resources: Vec<Arc<Resource>>) -> MeshView {
        let mut by_type: BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>> = BTreeMap::new();
        for r in resources {
            by_type
                .entry(r.resource_type().name())
                .or_default()
                .insert(r.meta.name.clone(), r);
        }
        MeshView {
            mesh,
            resources: by_type,
        }
    }
}

/// What went wrong generating a proxy's configuration.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("resource {0} is not a Dataplane")]
    NotADataplane(String),
}

/// The xDS resources for `dataplane` (a Dataplane of `view`'s mesh), by type URL;
/// versions are content hashes ([`weft_shared::delta::any_version`]).
pub fn generate(view: &MeshView, dataplane: &Resource) -> Result<Snapshot, GenerateError> {
    let _ = view;
    if dataplane.resource_type().name() != "Dataplane" {
        return Err(GenerateError::NotADataplane(dataplane.meta.name.clone()));
    }
    Ok(Snapshot::new())
}
