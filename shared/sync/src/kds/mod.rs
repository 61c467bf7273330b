//! KDS vocabulary shared by global and zone: which types travel which way, how a
//! [`Resource`] becomes a delta `Resource` (a [`KdsResource`] in an `Any`) and
//! back, and a [`SnapshotFeed`] that keeps a delta [`Snapshot`] of the store
//! current, driven by the store's watch (no timer decides when a change travels).
//!
//! Delta resource names are `<mesh>/<name>` for mesh-scoped resources and
//! `<name>` otherwise (`/` never appears in a valid name). Versions are
//! [`Resource::content_hash`] of the resource exactly as the receiver will store
//! it, so a receiver's `initial_resource_versions` match after a reconnect and only
//! differences travel.

mod feed;
pub mod metrics;
pub mod zone_names;

pub use feed::{Select, SnapshotFeed, merge};

use crate::delta::{Any, Rejection, Resource as DeltaResource};
use kds_proto::{KdsMeta, KdsResource};
use weft_model::resource::{Resource, ResourceKey, ResourceType, Scope, ValidationErrors, tags};
use weft_store::{ResourceStore, StoreError, WriteOp};

/// Types global sends to zones: meshes, secrets and every policy, and the other
/// zones' ingresses and egresses (cross-zone discovery).
pub fn global_to_zone_types() -> Vec<ResourceType> {
    ResourceType::ALL
        .iter()
        .copied()
        .filter(|t| {
            matches!(
                t,
                ResourceType::Mesh
                    | ResourceType::Secret
                    | ResourceType::ZoneIngress
                    | ResourceType::ZoneEgress
            ) || t.is_policy()
        })
        .collect()
}

/// Types a zone reports to global.
pub const ZONE_TO_GLOBAL_TYPES: &[ResourceType] = &[
    ResourceType::Dataplane,
    ResourceType::ZoneIngress,
    ResourceType::ZoneEgress,
];

/// Value of `kuma.io/origin` on resources a control plane received from global.
pub const ORIGIN_GLOBAL: &str = "global";
/// Value of `kuma.io/origin` on resources created in a zone.
pub const ORIGIN_ZONE: &str = "zone";

/// The delta name of a resource key.
pub fn delta_name(key: &ResourceKey) -> String {
    match &key.mesh {
        Some(mesh) => format!("{mesh}/{}", key.name),
        None => key.name.clone(),
    }
}

/// The key a delta name stands for, for a type.
pub fn key_of(ty: ResourceType, name: &str) -> Option<ResourceKey> {
    match (ty.scope(), name.split_once('/')) {
        (Scope::Mesh, Some((mesh, name))) => Some(ResourceKey::new(ty, Some(mesh), name)),
        (Scope::Global, None) => Some(ResourceKey::new(ty, None, name)),
        _ => None,
    }
}

/// Whether a resource came from global (`kuma.io/origin: global`).
pub fn is_from_global(res: &Resource) -> bool {
    res.meta.labels.get(tags::ORIGIN).map(String::as_str) == Some(ORIGIN_GLOBAL)
}

/// The envelope of a resource: type, name, mesh, labels, and the spec's canonical JSON.
pub fn to_kds(res: &Resource) -> KdsResource {
    let value = res.to_value();
    let spec = match res.resource_type().layout() {
        weft_model::resource::Layout::Spec => value.get("spec").cloned().unwrap_or_default(),
        weft_model::resource::Layout::Inline => {
            let mut v = value;
            if let Some(obj) = v.as_object_mut() {
                for k in [
                    "type",
                    "name",
                    "mesh",
                    "labels",
                    "creationTime",
                    "modificationTime",
                ] {
                    obj.remove(k);
                }
            }
            v
        }
    };
    KdsResource {
        meta: Some(KdsMeta {
            r#type: res.resource_type().name().to_string(),
            name: res.meta.name.clone(),
            mesh: res.meta.mesh.clone().unwrap_or_default(),
            labels: res.meta.labels.clone(),
        }),
        spec: weft_model::resource::canonical::to_bytes(&spec),
    }
}

/// A delta resource carrying `res`, versioned by its content hash.
pub fn to_delta(res: &Resource) -> DeltaResource {
    DeltaResource {
        name: delta_name(&res.key()),
        version: res.content_hash(),
        resource: Some(kds_proto::pack(&to_kds(res))),
        ..Default::default()
    }
}

/// Why a received KDS resource was refused (becomes a NACK reason).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("no payload")]
    Empty,
    #[error(transparent)]
    Unpack(#[from] kds_proto::UnpackError),
    #[error("no meta")]
    NoMeta,
    #[error("type {found:?} arrived on the {expected} stream")]
    WrongType {
        expected: ResourceType,
        found: String,
    },
    #[error("spec is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid: {0}")]
    Invalid(#[from] ValidationErrors),
}

/// Decodes and fully validates a received resource of type `ty`.
pub fn from_delta(ty: ResourceType, any: Option<&Any>) -> Result<Resource, DecodeError> {
    let kds = kds_proto::unpack(any.ok_or(DecodeError::Empty)?)?;
    let meta = kds.meta.ok_or(DecodeError::NoMeta)?;
    if meta.r#type != ty.name() {
        return Err(DecodeError::WrongType {
            expected: ty,
            found: meta.r#type,
        });
    }
    let spec: serde_json::Value = serde_json::from_slice(&kds.spec)?;
    let mut doc = serde_json::Map::new();
    doc.insert("type".into(), meta.r#type.into());
    doc.insert("name".into(), meta.name.into());
    if !meta.mesh.is_empty() {
        doc.insert("mesh".into(), meta.mesh.into());
    }
    if !meta.labels.is_empty() {
        doc.insert("labels".into(), serde_json::to_value(&meta.labels)?);
    }
    match (ty.layout(), spec) {
        (weft_model::resource::Layout::Spec, spec) => {
            doc.insert("spec".into(), spec);
        }
        (weft_model::resource::Layout::Inline, serde_json::Value::Object(fields)) => {
            doc.extend(fields)
        }
        (weft_model::resource::Layout::Inline, _) => {}
    }
    let res = Resource::from_value(serde_json::Value::Object(doc))?;
    res.validate()?;
    Ok(res)
}

/// What global sends for a resource: the same resource, marked as global's.
pub fn stamp_global(res: &Resource) -> Resource {
    let mut out = res.clone();
    out.meta
        .labels
        .insert(tags::ORIGIN.into(), ORIGIN_GLOBAL.into());
    out.meta.version = 0;
    out.meta.creation_time = None;
    out.meta.modification_time = None;
    out
}

/// Applies received operations in one transaction. When a resource's mesh is
/// missing, falls back to one operation at a time and turns just the failing ones
/// into NACK rejections, named by `name_of` (the delta name the sender used).
/// Any other store error is fatal for the stream.
pub async fn transact_or_reject(
    store: &dyn ResourceStore,
    ops: Vec<WriteOp>,
    name_of: impl Fn(&WriteOp) -> String,
) -> Result<Vec<Rejection>, StoreError> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    match store.transact(ops.clone()).await {
        Ok(_) => Ok(Vec::new()),
        Err(StoreError::MeshNotFound(_)) => {
            let mut rejections = Vec::new();
            for op in ops {
                let name = name_of(&op);
                match store.transact(vec![op]).await {
                    Ok(_) => {}
                    Err(e @ StoreError::MeshNotFound(_)) => {
                        rejections.push(Rejection::new(name, e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(rejections)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_model::resource::parse_resource;

    const POLICY: &str = "type: MeshTimeout\nname: t1\nmesh: default\nlabels:\n  team: a\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 1h\n";

    // A resource survives to_delta → from_delta unchanged, and the version is its hash.
    #[test]
    fn round_trip() {
        for doc in [
            POLICY,
            "type: Mesh\nname: m1\nmtls:\n  enabledBackend: ca\n  backends:\n    - name: ca\n      type: builtin\n",
        ] {
            let res = stamp_global(&parse_resource(doc.as_bytes(), false).unwrap());
            let d = to_delta(&res);
            assert_eq!(d.version, res.content_hash());
            let back = from_delta(res.resource_type(), d.resource.as_ref()).unwrap();
            assert_eq!(back, res);
            assert_eq!(back.content_hash(), d.version);
            assert!(is_from_global(&back));
        }
    }

    // Delta names map back to the key they came from, and nothing else.
    #[test]
    fn names() {
        let k = ResourceKey::new(ResourceType::MeshTimeout, Some("m"), "t.1");
        assert_eq!(delta_name(&k), "m/t.1");
        assert_eq!(key_of(ResourceType::MeshTimeout, "m/t.1"), Some(k));
        assert_eq!(key_of(ResourceType::MeshTimeout, "t1"), None);
        assert_eq!(
            key_of(ResourceType::Mesh, "m1"),
            Some(ResourceKey::new(ResourceType::Mesh, None, "m1"))
        );
    }

    // A payload of the wrong type, or an invalid spec, is refused with a reason.
    #[test]
    fn refusals() {
        let res = parse_resource(POLICY.as_bytes(), false).unwrap();
        let d = to_delta(&res);
        let err = from_delta(ResourceType::MeshRetry, d.resource.as_ref()).unwrap_err();
        assert!(matches!(err, DecodeError::WrongType { .. }), "{err}");
        let mut kds = to_kds(&res);
        kds.spec = br#"{"targetRef":{"kind":"Nope"}}"#.to_vec();
        let any = kds_proto::pack(&kds);
        assert!(from_delta(ResourceType::MeshTimeout, Some(&any)).is_err());
    }

    // Global sends meshes, secrets and policies; never zone-owned types.
    #[test]
    fn directions() {
        let down = global_to_zone_types();
        assert!(down.contains(&ResourceType::Mesh) && down.contains(&ResourceType::MeshTimeout));
        assert!(!down.contains(&ResourceType::Dataplane) && !down.contains(&ResourceType::Zone));
        assert!(
            down.contains(&ResourceType::ZoneIngress),
            "other zones' ingresses fan out"
        );
    }
}
