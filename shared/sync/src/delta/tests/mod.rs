//! Scripted-peer tests of the delta engine: each plays one side by hand
//! ("expect subscribe, send v1, expect ACK") against the real other side.

mod driver;
mod e2e;
mod peer;
mod receiver;
mod sender;
mod sender_nack;
mod sender_order;
mod sender_size;

use super::*;
use envoy_types::pb::google::rpc::Status;
use std::collections::BTreeMap;

pub(super) const MESH: &str = "Mesh";
pub(super) const TIMEOUT: &str = "MeshTimeout";

/// A payload whose bytes are `content`.
pub(super) fn any(content: &str) -> Any {
    Any {
        type_url: "type.googleapis.com/kuma.mesh.v1alpha1.KumaResource".into(),
        value: content.as_bytes().to_vec(),
    }
}

/// A type's resources; each version is its content (enough for tests).
pub(super) fn res(items: &[(&str, &str)]) -> TypeResources {
    let mut t = TypeResources::new();
    for (n, c) in items {
        t.insert(*n, *c, any(c));
    }
    t
}

pub(super) fn snap(types: &[(&str, &[(&str, &str)])]) -> Snapshot {
    let mut s = Snapshot::new();
    for (t, items) in types {
        s.set_type(*t, res(items));
    }
    s
}

/// A first request subscribing `names` ("*" for the wildcard, none for legacy).
pub(super) fn subscribe(type_url: &str, names: &[&str]) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.into(),
        resource_names_subscribe: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

pub(super) fn ack(resp: &DeltaDiscoveryResponse) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: resp.type_url.clone(),
        response_nonce: resp.nonce.clone(),
        ..Default::default()
    }
}

/// A NACK of `resp`: naming `names` (Weft style), or nothing (Envoy style).
pub(super) fn nack(resp: &DeltaDiscoveryResponse, names: &[&str]) -> DeltaDiscoveryRequest {
    let error_detail = if names.is_empty() {
        Status {
            code: NACK_CODE,
            message: "Invalid duration: Expected positive duration".into(),
            details: vec![],
        }
    } else {
        let rs: Vec<Rejection> = names
            .iter()
            .map(|n| Rejection::new(*n, "invalid"))
            .collect();
        nack::nack_status(&resp.type_url, &rs, usize::MAX)
    };
    DeltaDiscoveryRequest {
        error_detail: Some(error_detail),
        ..ack(resp)
    }
}

/// (name, version) of every resource in a response.
pub(super) fn sent(resp: &DeltaDiscoveryResponse) -> Vec<(String, String)> {
    resp.resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect()
}

pub(super) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

pub(super) fn versions(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs(items).into_iter().collect()
}
