//! Byte layout of the sled backend (see the parent module for the trees).
//!
//! Keys: `<type> SEP <mesh> SEP <name>` with `SEP` = `00 00` and every `00` byte of a
//! segment written `00 FF`. This order-preserving escape keeps byte order equal to
//! (type, mesh, name) order and makes prefixes exact, even for names holding NUL.
//! Global-scoped resources have an empty mesh segment.
//!
//! Values are canonical JSON. A resource record is
//! `{"version": n, "resource": <universal format with creationTime/modificationTime>}`;
//! a change record is `{"revision": n, "kind": "Created"|"Updated"|"Deleted",
//! "key": {"type", "mesh"?, "name"}, "record": <resource record> | null}`.

use crate::plan::Stamp;
use crate::{Change, ChangeKind, StoreError};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use weft_model::resource::canonical;
use weft_model::resource::{Resource, ResourceKey, ResourceType};

const SEP: [u8; 2] = [0, 0];

fn push_segment(out: &mut Vec<u8>, segment: &str) {
    for b in segment.bytes() {
        if b == 0 {
            out.extend_from_slice(&[0, 0xFF]);
        } else {
            out.push(b);
        }
    }
}

/// Prefix of every key of one type.
pub(crate) fn type_prefix(ty: ResourceType) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    push_segment(&mut out, ty.name());
    out.extend_from_slice(&SEP);
    out
}

/// Prefix of every key of one type inside one mesh.
pub(crate) fn mesh_prefix(ty: ResourceType, mesh: &str) -> Vec<u8> {
    let mut out = type_prefix(ty);
    push_segment(&mut out, mesh);
    out.extend_from_slice(&SEP);
    out
}

pub(crate) fn encode_key(key: &ResourceKey) -> Vec<u8> {
    let mut out = mesh_prefix(key.ty, key.mesh.as_deref().unwrap_or(""));
    push_segment(&mut out, &key.name);
    out
}

pub(crate) fn decode_key(bytes: &[u8]) -> Result<ResourceKey, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("malformed resource key {bytes:?}"));
    let mut segments: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (0, Some(0)) => {
                segments.push(Vec::new());
                i += 2;
            }
            (0, Some(0xFF)) => {
                segments.last_mut().ok_or_else(corrupt)?.push(0);
                i += 2;
            }
            (0, _) => return Err(corrupt()),
            (b, _) => {
                segments.last_mut().ok_or_else(corrupt)?.push(b);
                i += 1;
            }
        }
    }
    let [ty, mesh, name] = <[Vec<u8>; 3]>::try_from(segments).map_err(|_| corrupt())?;
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| corrupt());
    let ty = ResourceType::from_name(&text(ty)?).ok_or_else(corrupt)?;
    let mesh = text(mesh)?;
    Ok(ResourceKey {
        ty,
        mesh: (!mesh.is_empty() || ty.is_mesh_scoped()).then_some(mesh),
        name: text(name)?,
    })
}

pub(crate) fn revision_key(revision: u64) -> [u8; 8] {
    revision.to_be_bytes()
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt(format!("expected 8 bytes, got {}", bytes.len())))
}

fn record_value(resource: &Resource) -> Value {
    json!({"version": resource.meta.version, "resource": resource.to_value()})
}

pub(crate) fn encode_resource(resource: &Resource) -> Vec<u8> {
    canonical::to_bytes(&record_value(resource))
}

pub(crate) fn decode_resource(bytes: &[u8]) -> Result<Resource, StoreError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("resource record is not JSON: {e}")))?;
    resource_from_record(value)
}

/// Version and creation time of a resource record, without decoding its spec.
pub(crate) fn decode_stamp(bytes: &[u8]) -> Result<Stamp, StoreError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("resource record is not JSON: {e}")))?;
    let version = record_version(&value)?;
    let creation_time = match value.get("resource") {
        Some(Value::Object(body)) => time_field(body, "creationTime")?,
        _ => {
            return Err(StoreError::Corrupt(
                "resource record has no resource".into(),
            ));
        }
    };
    Ok(Stamp {
        version,
        creation_time,
    })
}

fn record_version(record: &Value) -> Result<u64, StoreError> {
    record
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| StoreError::Corrupt("resource record has no version".into()))
}

fn resource_from_record(value: Value) -> Result<Resource, StoreError> {
    let version = record_version(&value)?;
    let Value::Object(mut record) = value else {
        return Err(StoreError::Corrupt(
            "resource record is not an object".into(),
        ));
    };
    let Some(Value::Object(body)) = record.remove("resource") else {
        return Err(StoreError::Corrupt(
            "resource record has no resource".into(),
        ));
    };
    let creation_time = time_field(&body, "creationTime")?;
    let modification_time = time_field(&body, "modificationTime")?;
    let mut resource = Resource::from_value(Value::Object(body))
        .map_err(|e| StoreError::Corrupt(format!("stored resource no longer decodes: {e}")))?;
    resource.meta.version = version;
    resource.meta.creation_time = creation_time;
    resource.meta.modification_time = modification_time;
    Ok(resource)
}

fn time_field(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("stored {field} {s:?}: {e}"))),
        Some(_) => Err(StoreError::Corrupt(format!(
            "stored {field} is not a string"
        ))),
    }
}

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "Created",
        ChangeKind::Updated => "Updated",
        ChangeKind::Deleted => "Deleted",
    }
}

pub(crate) fn encode_change(change: &Change) -> Vec<u8> {
    let mut key = Map::new();
    key.insert("type".into(), Value::String(change.key.ty.name().into()));
    if let Some(m) = &change.key.mesh {
        key.insert("mesh".into(), Value::String(m.clone()));
    }
    key.insert("name".into(), Value::String(change.key.name.clone()));
    let value = json!({
        "revision": change.revision,
        "kind": kind_name(change.kind),
        "key": key,
        "record": change.resource.as_ref().map(record_value),
    });
    canonical::to_bytes(&value)
}

pub(crate) fn decode_change(bytes: &[u8]) -> Result<Change, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("change record: {what}"));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(&e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(corrupt("not an object"));
    };
    let revision = obj
        .get("revision")
        .and_then(Value::as_u64)
        .ok_or_else(|| corrupt("no revision"))?;
    let kind = match obj.get("kind").and_then(Value::as_str) {
        Some("Created") => ChangeKind::Created,
        Some("Updated") => ChangeKind::Updated,
        Some("Deleted") => ChangeKind::Deleted,
        _ => return Err(corrupt("unknown kind")),
    };
    let key = obj.get("key").ok_or_else(|| corrupt("no key"))?;
    let text = |field: &str| key.get(field).and_then(Value::as_str);
    let ty = text("type")
        .and_then(ResourceType::from_name)
        .ok_or_else(|| corrupt("unknown key type"))?;
    let key = ResourceKey {
        ty,
        mesh: text("mesh").map(str::to_string),
        name: text("name")
            .ok_or_else(|| corrupt("no key name"))?
            .to_string(),
    };
    let resource = match obj.remove("record") {
        None | Some(Value::Null) => None,
        Some(record) => Some(resource_from_record(record)?),
    };
    Ok(Change {
        revision,
        kind,
        key,
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key bytes sort like (type, mesh, name), NUL and prefixes included.
    #[test]
    fn key_order_matches_resource_order() {
        let k = |mesh: &str, name: &str| ResourceKey::new(ResourceType::Secret, Some(mesh), name);
        let mut keys = vec![
            k("a", "x"),
            k("a-b", "a"),
            k("a\0", "a"),
            k("a", "x\0"),
            k("a", "x\u{1}"),
            k("", "z"),
            k("b", ""),
        ];
        let mut by_bytes = keys.clone();
        keys.sort();
        by_bytes.sort_by_key(encode_key);
        assert_eq!(keys, by_bytes);
    }

    // Keys decode back to themselves, global ones without a mesh.
    #[test]
    fn keys_round_trip() {
        for key in [
            ResourceKey::new(ResourceType::Secret, Some("m\0"), "n\0x"),
            ResourceKey::new(ResourceType::Mesh, None, "m"),
            ResourceKey::new(ResourceType::Secret, Some(""), "n"),
        ] {
            assert_eq!(decode_key(&encode_key(&key)), Ok(key));
        }
    }

    // A type's prefix never matches another type whose name extends it.
    #[test]
    fn type_prefixes_are_exact() {
        let key = ResourceKey::new(ResourceType::MeshTimeout, Some("m"), "t");
        assert!(!encode_key(&key).starts_with(&type_prefix(ResourceType::Mesh)));
    }

    // A stored resource, change and all, decodes to what was encoded.
    #[test]
    fn records_round_trip() {
        let mut r =
            Resource::from_value(json!({"type": "Mesh", "name": "m", "labels": {"a": "b"}}))
                .unwrap_or_else(|e| panic!("{e}"));
        r.meta.version = 7;
        r.meta.creation_time = Some(crate::plan::now());
        r.meta.modification_time = r.meta.creation_time;
        assert_eq!(decode_resource(&encode_resource(&r)), Ok(r.clone()));
        assert_eq!(decode_stamp(&encode_resource(&r)), Ok(Stamp::of(&r)));
        let change = Change {
            revision: 7,
            kind: ChangeKind::Created,
            key: r.key(),
            resource: Some(r),
        };
        assert_eq!(decode_change(&encode_change(&change)), Ok(change));
    }
}
