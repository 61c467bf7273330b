//! Who is on the other end of an ADS stream: the node of its first request.
//!
//! Envoy's `node.id` is `<mesh>.<name>` (Kuma's form; `.<name>` for a zone ingress
//! or egress, which belong to no mesh) and its metadata `dataplane.resource` holds
//! the proxy's resource — a Dataplane, ZoneIngress or ZoneEgress — as JSON in
//! universal format (weft-dp's bootstrap puts it there, see
//! docs/decisions/0006-xds-transport.md).

use envoy_types::pb::google::protobuf::value::Kind;
use weft_model::resource::{Resource, ResourceKey, ResourceType, parse_resource};
use weft_sync::delta::Node;

/// Node metadata key holding the Dataplane (JSON, universal format).
pub const DATAPLANE_METADATA: &str = "dataplane.resource";

/// Why a node does not identify a proxy; each names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    #[error(
        "the first request has no node: the proxy must identify itself (node.id, node.metadata)"
    )]
    MissingNode,
    #[error(
        "node.metadata[\"dataplane.resource\"] is missing or not a string: the proxy must \
         present its Dataplane as JSON (weft-dp's bootstrap does)"
    )]
    MissingDataplane,
    #[error("node.metadata[\"dataplane.resource\"] is not a valid Dataplane: {0}")]
    InvalidDataplane(String),
    #[error(
        "node.metadata[\"dataplane.resource\"] is a {0}, not a Dataplane, ZoneIngress or ZoneEgress"
    )]
    NotADataplane(&'static str),
    #[error(
        "node.id {id:?} does not match the Dataplane it presents: expected {expected:?} (<mesh>.<name>)"
    )]
    IdMismatch { id: String, expected: String },
}

/// A proxy as identified by its node.
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    /// The Dataplane's mesh; for a zone proxy, [`ZONE_INGRESS`] or [`ZONE_EGRESS`].
    pub mesh: String,
    pub name: String,
    /// The resource it presented, validated: a Dataplane, ZoneIngress or ZoneEgress.
    pub dataplane: Resource,
}

impl Proxy {
    /// `mesh/name`, for logs and insights.
    pub fn key(&self) -> ProxyKey {
        ProxyKey {
            mesh: self.mesh.clone(),
            name: self.name.clone(),
        }
    }
}

/// The `mesh` of a zone ingress's [`ProxyKey`]. Zone proxies serve every mesh and
/// belong to none; no mesh can have this name (mesh names are DNS labels).
pub const ZONE_INGRESS: &str = "~zone-ingress";
/// The `mesh` of a zone egress's [`ProxyKey`].
pub const ZONE_EGRESS: &str = "~zone-egress";

/// A proxy's identity: mesh and Dataplane name (a zone proxy: [`ZONE_INGRESS`] or
/// [`ZONE_EGRESS`] and its resource's name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyKey {
    pub mesh: String,
    pub name: String,
}

impl ProxyKey {
    /// A zone ingress or egress rather than a sidecar.
    pub fn is_zone_proxy(&self) -> bool {
        self.mesh == ZONE_INGRESS || self.mesh == ZONE_EGRESS
    }

    /// The store key of the proxy's resource.
    pub fn resource_key(&self) -> ResourceKey {
        match self.mesh.as_str() {
            ZONE_INGRESS => ResourceKey::new(ResourceType::ZoneIngress, None, &self.name),
            ZONE_EGRESS => ResourceKey::new(ResourceType::ZoneEgress, None, &self.name),
            mesh => ResourceKey::new(ResourceType::Dataplane, Some(mesh), &self.name),
        }
    }
}

impl std::fmt::Display for ProxyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.mesh, self.name)
    }
}

/// What a zone ingress or egress may say about itself: it is this zone's own,
/// so provenance labels and `spec.zone` are dropped (a token of this zone must
/// not pass for another zone's proxy), and an ingress's available services are
/// the zone's to compute.
pub fn sanitize_zone_proxy(res: &mut Resource) {
    use weft_model::resource::{Spec, tags};
    match &mut res.spec {
        Spec::ZoneIngress(zi) => {
            zi.zone = None;
            zi.available_services.clear();
        }
        Spec::ZoneEgress(ze) => ze.zone = None,
        _ => return,
    }
    res.meta.labels.remove(tags::ORIGIN);
    res.meta.labels.remove(tags::ZONE);
}

/// Reads and validates the proxy's identity from its node.
pub fn identify(node: Option<&Node>) -> Result<Proxy, NodeError> {
    let node = node.ok_or(NodeError::MissingNode)?;
    let json = node
        .metadata
        .as_ref()
        .and_then(|m| m.fields.get(DATAPLANE_METADATA))
        .and_then(|v| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .ok_or(NodeError::MissingDataplane)?;
    let mut dataplane = parse_resource(json.as_bytes(), true)
        .map_err(|e| NodeError::InvalidDataplane(e.to_string()))?;
    sanitize_zone_proxy(&mut dataplane);
    let mesh = match dataplane.resource_type() {
        ResourceType::Dataplane => dataplane.meta.mesh.clone().unwrap_or_default(),
        ResourceType::ZoneIngress => ZONE_INGRESS.to_string(),
        ResourceType::ZoneEgress => ZONE_EGRESS.to_string(),
        other => return Err(NodeError::NotADataplane(other.name())),
    };
    let name = dataplane.meta.name.clone();
    let expected = format!(
        "{}.{name}",
        dataplane.meta.mesh.as_deref().unwrap_or_default()
    );
    if node.id != expected {
        return Err(NodeError::IdMismatch {
            id: node.id.clone(),
            expected,
        });
    }
    Ok(Proxy {
        mesh,
        name,
        dataplane,
    })
}

/// A node as weft-dp's bootstrap describes it (tests and benchmarks use it too).
pub fn node_for(dataplane_json: &str, mesh: &str, name: &str) -> Node {
    use envoy_types::pb::google::protobuf::{Struct, Value};
    let mut fields = std::collections::HashMap::new();
    fields.insert(
        DATAPLANE_METADATA.to_string(),
        Value {
            kind: Some(Kind::StringValue(dataplane_json.to_string())),
        },
    );
    Node {
        id: format!("{mesh}.{name}"),
        cluster: name.to_string(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DP: &str = r#"{"type":"Dataplane","mesh":"default","name":"web-1","networking":{"address":"127.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}"#;

    // A well-formed node identifies its proxy; each defect names the field at fault.
    #[test]
    fn identify_checks_each_field() {
        let p = identify(Some(&node_for(DP, "default", "web-1"))).unwrap();
        assert_eq!(p.key().to_string(), "default/web-1");
        assert_eq!(identify(None), Err(NodeError::MissingNode));
        let mut n = node_for(DP, "default", "web-1");
        n.metadata = None;
        assert_eq!(identify(Some(&n)), Err(NodeError::MissingDataplane));
        let err = identify(Some(&node_for(DP, "default", "web-2"))).unwrap_err();
        assert!(err.to_string().contains("default.web-1"), "{err}");
        let bad = DP.replace("8080", "0");
        let err = identify(Some(&node_for(&bad, "default", "web-1"))).unwrap_err();
        assert!(
            err.to_string().contains("networking.inbound[0].port"),
            "{err}"
        );
        let ingress = r#"{"type":"ZoneIngress","name":"zi-1","networking":{"address":"127.0.0.1","port":10001}}"#;
        let p = identify(Some(&node_for(ingress, "", "zi-1"))).unwrap();
        assert!(p.key().is_zone_proxy());
        assert_eq!(
            p.key().resource_key(),
            ResourceKey::new(ResourceType::ZoneIngress, None, "zi-1")
        );
        let mesh = r#"{"type":"Mesh","name":"m"}"#;
        assert_eq!(
            identify(Some(&node_for(mesh, "", "m"))),
            Err(NodeError::NotADataplane("Mesh"))
        );
    }
}
