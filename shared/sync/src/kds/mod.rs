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

pub mod admin;
mod feed;
pub mod metrics;
pub mod zone_names;

pub use feed::{Select, SnapshotFeed, merge};

use crate::delta::{Any, Rejection, Resource as DeltaResource};
use kds_proto::{KdsMeta, KdsResource};
use std::collections::HashMap;
use weft_model::resource::{Resource, ResourceKey, ResourceType, Scope, ValidationErrors, tags};
use weft_store::{ResourceStore, StoreError, WriteOp};

/// Types global sends to zones: meshes, secrets, ExternalServices, MeshIdentities
/// and every policy, and — from the other zones — MeshTrusts (each zone's trust
/// domain), ingresses, egresses and MeshServices (cross-zone discovery).
pub fn global_to_zone_types() -> Vec<ResourceType> {
    ResourceType::ALL
        .iter()
        .copied()
        .filter(|t| {
            matches!(
                t,
                ResourceType::Mesh
                    | ResourceType::Secret
                    | ResourceType::ExternalService
                    | ResourceType::MeshExternalService
                    | ResourceType::MeshIdentity
                    | ResourceType::MeshTrust
                    | ResourceType::ZoneIngress
                    | ResourceType::ZoneEgress
                    | ResourceType::MeshService
            ) || t.is_policy()
        })
        .collect()
}

/// Types only zones create, which they report to global (a zone's MeshTrust
/// carries its CA certificates, never a key).
pub const ZONE_TO_GLOBAL_TYPES: &[ResourceType] = &[
    ResourceType::Dataplane,
    ResourceType::DataplaneInsight,
    ResourceType::ZoneIngress,
    ResourceType::ZoneEgress,
    ResourceType::MeshTrust,
    ResourceType::MeshService,
];

/// Everything a zone reports to global: the types only zones create, and its own
/// policies (`kuma.io/origin: zone`, Kuma 2.14), which global shows read-only
/// and does not send to other zones (Kuma sends only `producer` policies on).
pub fn zone_to_global_types() -> Vec<ResourceType> {
    ZONE_TO_GLOBAL_TYPES
        .iter()
        .copied()
        .chain(ResourceType::ALL.iter().copied().filter(|t| t.is_policy()))
        .collect()
}

/// Types that both global and zones create, which global fans out from each zone
/// to the others.
pub const FANNED_OUT_TYPES: &[ResourceType] = &[
    ResourceType::ZoneIngress,
    ResourceType::ZoneEgress,
    ResourceType::MeshTrust,
    ResourceType::MeshService,
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

/// Applies received operations in **one** transaction (one durable write), after
/// taking out, one by one, the upserts the store would refuse: a mesh-scoped
/// resource whose Mesh will not exist when it is written (an orphan). That is
/// decided as the store's planner decides it, in order, against the stored Meshes
/// plus the Meshes the batch upserts or deletes before it. Each orphan becomes a
/// NACK rejection of its own type, named by `name_of` (the delta name the sender
/// used); the rest commits atomically.
///
/// Any store error is fatal for the stream, including a `MeshNotFound` that only a
/// concurrent writer deleting a Mesh between the check and the commit can cause:
/// the stream restarts and the next sync sees the Mesh gone.
pub async fn transact_or_reject(
    store: &dyn ResourceStore,
    ops: Vec<WriteOp>,
    name_of: impl Fn(&WriteOp) -> String,
) -> Result<Vec<Rejection>, StoreError> {
    let (ops, rejections) = without_orphans(store, ops, name_of).await?;
    if !ops.is_empty() {
        store.transact(ops).await?;
    }
    Ok(rejections)
}

/// Splits `ops` into those the store accepts and rejections of the orphans.
async fn without_orphans(
    store: &dyn ResourceStore,
    ops: Vec<WriteOp>,
    name_of: impl Fn(&WriteOp) -> String,
) -> Result<(Vec<WriteOp>, Vec<Rejection>), StoreError> {
    // Mesh name → whether it exists at this point of the batch. A Mesh is looked up
    // in the store only the first time the batch mentions it.
    let mut meshes: HashMap<String, bool> = HashMap::new();
    let mut kept = Vec::with_capacity(ops.len());
    let mut rejections = Vec::new();
    for op in ops {
        match &op {
            WriteOp::Upsert(r) if r.resource_type() == ResourceType::Mesh => {
                meshes.insert(r.meta.name.clone(), true);
            }
            WriteOp::Delete(k) if k.ty == ResourceType::Mesh => {
                meshes.insert(k.name.clone(), false);
            }
            WriteOp::Upsert(r) if r.resource_type().is_mesh_scoped() => {
                let mesh = r.meta.mesh.clone().unwrap_or_default();
                let exists = match meshes.get(&mesh) {
                    Some(exists) => *exists,
                    None => {
                        let key = ResourceKey::new(ResourceType::Mesh, None, &mesh);
                        let exists = store.get(&key).await?.is_some();
                        meshes.insert(mesh.clone(), exists);
                        exists
                    }
                };
                if !exists {
                    let reason = StoreError::MeshNotFound(mesh).to_string();
                    let type_url = r.resource_type().name();
                    rejections.push(Rejection::of_type(type_url, name_of(&op), reason));
                    continue;
                }
            }
            _ => {}
        }
        kept.push(op);
    }
    Ok((kept, rejections))
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

    fn mesh(name: &str) -> Resource {
        parse_resource(format!("type: Mesh\nname: {name}\n").as_bytes(), false).unwrap()
    }

    fn timeout_in(mesh: &str, name: &str) -> Resource {
        let doc = POLICY.replace("name: t1", &format!("name: {name}"));
        parse_resource(
            doc.replace("mesh: default", &format!("mesh: {mesh}"))
                .as_bytes(),
            false,
        )
        .unwrap()
    }

    // Orphans are rejected one by one, named and typed; everything else commits in one
    // transaction. A Mesh counts as existing as the store's planner would see it at that
    // point of the batch: stored, or upserted earlier, and not deleted earlier.
    #[tokio::test]
    async fn orphans_are_filtered_before_one_atomic_commit() {
        let inner = std::sync::Arc::new(weft_store::MemoryStore::new());
        inner.create(mesh("stored")).await.unwrap();
        inner.create(mesh("doomed")).await.unwrap();
        let store = weft_store::fault::FaultyStore::new(inner);
        let ops = vec![
            WriteOp::Upsert(mesh("new")),
            WriteOp::Upsert(timeout_in("new", "a")),
            WriteOp::Upsert(timeout_in("stored", "b")),
            WriteOp::Upsert(timeout_in("ghost", "c")),
            WriteOp::Delete(ResourceKey::new(ResourceType::Mesh, None, "doomed")),
            WriteOp::Upsert(timeout_in("doomed", "d")),
            WriteOp::Upsert(timeout_in("ghost", "e")),
        ];
        let name_of = |op: &WriteOp| match op {
            WriteOp::Upsert(r) => delta_name(&r.key()),
            WriteOp::Delete(k) => delta_name(k),
        };
        let rejections = transact_or_reject(&store, ops, name_of).await.unwrap();
        let rejected: Vec<(Option<&str>, &str)> = rejections
            .iter()
            .map(|r| (r.type_url.as_deref(), r.name.as_str()))
            .collect();
        assert_eq!(
            rejected,
            [
                (Some("MeshTimeout"), "ghost/c"),
                (Some("MeshTimeout"), "doomed/d"),
                (Some("MeshTimeout"), "ghost/e"),
            ]
        );
        assert!(
            rejections[0].reason.contains("does not exist"),
            "{:?}",
            rejections[0]
        );
        assert_eq!(store.transactions(), 1);
        let stored = |mesh: &str, name: &str| {
            let key = ResourceKey::new(ResourceType::MeshTimeout, Some(mesh), name);
            let store = &store;
            async move { store.get(&key).await.unwrap().is_some() }
        };
        assert!(stored("new", "a").await && stored("stored", "b").await);
        assert!(!stored("doomed", "d").await);

        // Nothing left to write: no transaction at all.
        let only_orphans = vec![WriteOp::Upsert(timeout_in("ghost", "f"))];
        let rejections = transact_or_reject(&store, only_orphans, name_of)
            .await
            .unwrap();
        assert_eq!(rejections.len(), 1);
        assert_eq!(store.transactions(), 1);
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
