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
