//! Who is on the other end of an ADS stream: the node of its first request.
//!
//! Envoy's `node.id` is `<mesh>.<name>` (Kuma's form) and its metadata
//! `dataplane.resource` holds the Dataplane as JSON in universal format (weft-dp's
//! bootstrap puts it there, see docs/decisions/0006-xds-transport.md).

use envoy_types::pb::google::protobuf::value::Kind;
use weft_model::resource::{Resource, ResourceType, parse_resource};
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
    #[error("node.metadata[\"dataplane.resource\"] is a {0}, not a Dataplane")]
    NotADataplane(&'static str),
    #[error(
        "node.id {id:?} does not match the Dataplane it presents: expected {expected:?} (<mesh>.<name>)"
    )]
    IdMismatch { id: String, expected: String },
}

/// A proxy as identified by its node.
#[derive(Debug, Clone, PartialEq)]
pub struct Proxy {
    pub mesh: String,
    pub name: String,
    /// The Dataplane it presented, validated.
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

/// A proxy's identity: mesh and Dataplane name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyKey {
    pub mesh: String,
    pub name: String,
}

impl std::fmt::Display for ProxyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.mesh, self.name)
    }
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
    let dataplane = parse_resource(json.as_bytes(), true)
        .map_err(|e| NodeError::InvalidDataplane(e.to_string()))?;
    if dataplane.resource_type() != ResourceType::Dataplane {
        return Err(NodeError::NotADataplane(dataplane.resource_type().name()));
    }
    let mesh = dataplane.meta.mesh.clone().unwrap_or_default();
    let name = dataplane.meta.name.clone();
    let expected = format!("{mesh}.{name}");
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
        let mesh = r#"{"type":"Mesh","name":"m"}"#;
        assert_eq!(
            identify(Some(&node_for(mesh, "", "m"))),
            Err(NodeError::NotADataplane("Mesh"))
        );
    }
}
