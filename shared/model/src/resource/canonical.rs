//! Canonical encoding: JSON with object keys sorted by their UTF-8 bytes, no
//! insignificant white space, numbers as serde_json prints them.
//!
//! The same resource always gives the same bytes, on every run and machine, so a
//! SHA-256 of them is a stable content version (see
//! `docs/decisions/0002-canonical-encoding.md`). Sorting is done here explicitly
//! rather than relying on serde_json's map type, whose order changes when any
//! crate in the build enables its `preserve_order` feature.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Canonical bytes of a JSON value.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out);
    out
}

/// Lower-case hex SHA-256 of some bytes.
pub fn hash_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A copy of `value` whose objects iterate in canonical key order (for YAML output).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Scalars have exactly one serde_json rendering; writing to a Vec cannot fail.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Key order in the input never changes the bytes.
    #[test]
    fn key_order_does_not_matter() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        assert_eq!(to_bytes(&a), to_bytes(&b));
        assert_eq!(to_bytes(&a), br#"{"a":{"x":"s","y":[1,2]},"b":1}"#.to_vec());
    }

    // Array order is significant and kept.
    #[test]
    fn arrays_keep_order() {
        assert_ne!(to_bytes(&json!([1, 2])), to_bytes(&json!([2, 1])));
    }

    // Strings are escaped as JSON requires.
    #[test]
    fn escapes_strings() {
        assert_eq!(
            to_bytes(&json!({"k\"": "a\nb"})),
            br#"{"k\"":"a\nb"}"#.to_vec()
        );
    }
}
