//! Envoy resources as Envoy's own proto3 JSON (what `config_dump` shows), through
//! the descriptor set `zone/proto/envoy.pb` (regenerate with
//! `scripts/gen-envoy-descriptor.sh`) and prost-reflect; `Any`s are expanded.

use envoy_types::pb::google::protobuf::Any;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;
use std::sync::OnceLock;

static DESCRIPTORS: &[u8] = include_bytes!("../../../proto/envoy.pb");

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("the Envoy descriptor set does not load: {0}")]
    Descriptors(String),
    #[error("type {0} is not in the Envoy descriptor set (run scripts/gen-envoy-descriptor.sh)")]
    UnknownType(String),
    #[error("cannot decode {ty}: {err}")]
    Decode { ty: String, err: String },
}

fn pool() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| JsonError::Descriptors(e.clone()))
}

/// One packed Envoy resource as proto3 JSON (with `@type`).
pub fn any_to_json(any: &Any) -> Result<Value, JsonError> {
    let pool = pool()?;
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let desc = pool
        .get_message_by_name(name)
        .ok_or_else(|| JsonError::UnknownType(name.to_string()))?;
    let msg =
        DynamicMessage::decode(desc, any.value.as_slice()).map_err(|e| JsonError::Decode {
            ty: name.to_string(),
            err: e.to_string(),
        })?;
    let opts = SerializeOptions::new().skip_default_fields(true);
    let mut v = msg
        .serialize_with_options(serde_json::value::Serializer, &opts)
        .map_err(|e| JsonError::Decode {
            ty: name.to_string(),
            err: e.to_string(),
        })?;
    if let Value::Object(o) = &mut v {
        o.insert("@type".into(), Value::String(any.type_url.clone()));
    }
    Ok(v)
}

fn descriptor(name: &str) -> Result<prost_reflect::MessageDescriptor, JsonError> {
    pool()?
        .get_message_by_name(name)
        .ok_or_else(|| JsonError::UnknownType(name.to_string()))
}

fn to_dynamic<T: prost::Message + prost::Name>(m: &T) -> Result<DynamicMessage, JsonError> {
    let name = T::full_name();
    DynamicMessage::decode(descriptor(&name)?, m.encode_to_vec().as_slice()).map_err(|e| {
        JsonError::Decode {
            ty: name,
            err: e.to_string(),
        }
    })
}

fn from_dynamic<T: prost::Message + prost::Name + Default>(
    d: &DynamicMessage,
) -> Result<T, JsonError> {
    T::decode(prost::Message::encode_to_vec(d).as_slice()).map_err(|e| JsonError::Decode {
        ty: T::full_name(),
        err: e.to_string(),
    })
}

/// A message as proto3 JSON (camelCase names, defaults skipped, `Any`s
/// expanded): what Kuma's `jsonPatches` paths address.
pub fn message_to_json<T: prost::Message + prost::Name>(m: &T) -> Result<Value, JsonError> {
    let d = to_dynamic(m)?;
    let opts = SerializeOptions::new().skip_default_fields(true);
    d.serialize_with_options(serde_json::value::Serializer, &opts)
        .map_err(|e| JsonError::Decode {
            ty: T::full_name(),
            err: e.to_string(),
        })
}

/// A message from proto3 JSON. Unknown fields and enum names are errors (Kuma's
/// `util_proto.FromJSON` drops them, which can leave e.g. a cluster without its
/// `type`: Weft refuses rather than sends what Envoy may reject), as are wrong
/// types and `Any` types outside the descriptor set.
pub fn message_from_json<T: prost::Message + prost::Name + Default>(
    v: Value,
) -> Result<T, JsonError> {
    let opts = prost_reflect::DeserializeOptions::new().deny_unknown_fields(true);
    let d = DynamicMessage::deserialize_with_options(descriptor(&T::full_name())?, v, &opts)
        .map_err(|e| JsonError::Decode {
            ty: T::full_name(),
            err: e.to_string(),
        })?;
    from_dynamic(&d)
}

/// Merges `src` into `dst` as Kuma's `util_proto.Merge`: protobuf merge
/// (set scalars replace, messages merge, lists append, maps insert), except that a
/// `google.protobuf.Duration` is replaced whole.
pub fn merge_message<T: prost::Message + prost::Name + Default>(
    dst: &mut T,
    src: &T,
) -> Result<(), JsonError> {
    let mut d = to_dynamic(dst)?;
    merge_dynamic(&mut d, &to_dynamic(src)?);
    *dst = from_dynamic(&d)?;
    Ok(())
}

fn merge_dynamic(dst: &mut DynamicMessage, src: &DynamicMessage) {
    use prost_reflect::Kind;
    for (fd, v) in src.fields() {
        if fd.is_list() {
            if let (Some(d), Some(s)) = (dst.get_field_mut(&fd).as_list_mut(), v.as_list()) {
                d.extend(s.iter().cloned());
            }
        } else if fd.is_map() {
            if let (Some(d), Some(s)) = (dst.get_field_mut(&fd).as_map_mut(), v.as_map()) {
                d.extend(s.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        } else if let Kind::Message(md) = fd.kind()
            && md.full_name() != "google.protobuf.Duration"
        {
            if let (Some(d), Some(s)) = (dst.get_field_mut(&fd).as_message_mut(), v.as_message()) {
                merge_dynamic(d, s);
            }
        } else {
            dst.set_field(&fd, v.clone());
        }
    }
}
