//! `Secret` (mesh-scoped) and `GlobalSecret` (global): opaque bytes written as
//! base64 in `data` (`api/system/v1alpha1/secret.proto`), and the [`DataSource`]
//! other resources use to point at secret material (`datasource.proto`).
//!
//! Secret values never appear in an error message, a log line or `Debug` output:
//! validation reports *where* the data is malformed, never what it contains.

mod base64;

pub use base64::{Base64Error, decode as decode_base64, encode as encode_base64};

use super::validate::{self, Path, Validate, ValidationErrors};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The spec of both `Secret` and `GlobalSecret`.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    /// Base64 of the secret bytes (standard or URL-safe alphabet, padding optional).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opaque_string"
    )]
    pub data: Option<String>,
}

impl SecretSpec {
    /// A spec holding `bytes`, encoded with the standard padded alphabet.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SecretSpec {
            data: Some(encode_base64(bytes)),
        }
    }

    /// The secret bytes; empty when `data` is absent.
    pub fn bytes(&self) -> Result<Vec<u8>, Base64Error> {
        self.data.as_deref().map_or(Ok(Vec::new()), decode_base64)
    }
}

/// Redacted: a secret's value must not reach logs through `{:?}`.
impl fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self
            .data
            .as_ref()
            .map(|d| format!("<redacted, {} base64 characters>", d.len()));
        f.debug_struct("SecretSpec").field("data", &data).finish()
    }
}

impl Validate for SecretSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let p = path.field("data");
        match self.data.as_deref() {
            None | Some("") => errs.add(&p, "cannot be empty"),
            Some(d) => match decode_base64(d) {
                Ok(bytes) if bytes.is_empty() => errs.add(&p, "cannot be empty"),
                Ok(_) => {}
                Err(e) => errs.add(&p, format!("must be valid base64: {e}")),
            },
        }
    }
}

/// Reads a string without ever echoing a non-string value in the error (serde's
/// default messages quote numbers and booleans).
fn opaque_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Opaque;
    impl<'de> Visitor<'de> for Opaque {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom("must be a base64 string, got a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom("must be a base64 string, got a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom("must be a base64 string, got a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom("must be a base64 string, got a number"))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom("must be a base64 string, got a list"))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom("must be a base64 string, got an object"))
        }
    }
    d.deserialize_any(Opaque)
}

/// Where to read secret material from (`kuma.system.v1alpha1.DataSource`):
/// exactly one of a Secret's name, a file on the control plane, inline base64
/// bytes or an inline string.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// Name of a `Secret` in the same mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Path of a file readable by the control plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Base64 bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opaque_string"
    )]
    pub inline: Option<String>,
    /// Plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_string: Option<String>,
}

/// Redacted: inline material is secret.
impl fmt::Debug for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("DataSource")
            .field("secret", &self.secret)
            .field("file", &self.file)
            .field("inline", &redact(&self.inline))
            .field("inlineString", &redact(&self.inline_string))
            .finish()
    }
}

impl Validate for DataSource {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let set = [
            self.secret.is_some(),
            self.file.is_some(),
            self.inline.is_some(),
            self.inline_string.is_some(),
        ]
        .into_iter()
        .filter(|s| *s)
        .count();
        if set == 0 {
            errs.add(
                path,
                "data source has to be chosen. Available sources: secret, file, inline, inlineString",
            );
        } else if set > 1 {
            errs.add(
                path,
                "only one of secret, file, inline and inlineString can be set",
            );
        }
        if let Some(s) = &self.secret {
            validate::check_name(&path.field("secret"), s, errs);
        }
        if self.file.as_deref() == Some("") {
            errs.add(&path.field("file"), "cannot be empty");
        }
        if let Some(inline) = &self.inline {
            match decode_base64(inline) {
                Ok(b) if b.is_empty() => errs.add(&path.field("inline"), "cannot be empty"),
                Ok(_) => {}
                Err(e) => errs.add(&path.field("inline"), format!("must be valid base64: {e}")),
            }
        }
        if self.inline_string.as_deref() == Some("") {
            errs.add(&path.field("inlineString"), "cannot be empty");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::{pairs_of, validate_at};
    use serde_json::json;

    fn check(spec: &SecretSpec) -> Vec<(String, String)> {
        pairs_of(&validate_at(spec, &Path::root()))
    }

    // Present, well-formed base64 is accepted in both alphabets, padded or not.
    #[test]
    fn accepts_base64() {
        for d in ["aGVsbG8=", "aGVsbG8", "-_-_", "+/+/"] {
            let s = SecretSpec {
                data: Some(d.into()),
            };
            assert!(check(&s).is_empty(), "{d}");
        }
    }

    // Missing, empty or malformed data is refused at `data`.
    #[test]
    fn refuses_missing_or_bad_data() {
        for d in [None, Some(""), Some("a"), Some("ab$c"), Some("ab=c")] {
            let s = SecretSpec {
                data: d.map(str::to_string),
            };
            let v = check(&s);
            assert_eq!(v.len(), 1, "{d:?}");
            assert_eq!(v[0].0, "data");
        }
    }

    // No error message and no Debug output ever contains the secret value.
    #[test]
    fn never_echoes_the_value() {
        let secret = "c3VwZXJzZWNyZXQ$";
        let s = SecretSpec {
            data: Some(secret.into()),
        };
        for (_, reason) in check(&s) {
            assert!(!reason.contains("c3VwZXJzZWNyZXQ"), "{reason}");
        }
        assert!(!format!("{s:?}").contains("c3VwZXJzZWNyZXQ"));
        for bad in [json!({"data": 12345678}), json!({"data": true})] {
            let err = serde_json::from_value::<SecretSpec>(bad).unwrap_err();
            assert!(!err.to_string().contains("12345678"), "{err}");
            assert!(!err.to_string().contains("true"), "{err}");
        }
        let ds = DataSource {
            inline: Some("c2VjcmV0".into()),
            ..DataSource::default()
        };
        assert!(!format!("{ds:?}").contains("c2VjcmV0"));
    }

    // from_bytes and bytes are inverse.
    #[test]
    fn bytes_round_trip() {
        let s = SecretSpec::from_bytes(b"\x00\x01binary\xff");
        assert_eq!(s.bytes().unwrap(), b"\x00\x01binary\xff");
    }

    // A data source names exactly one source, and each source is non-empty.
    #[test]
    fn data_source_rules() {
        let mut e = ValidationErrors::new();
        DataSource::default().validate(&Path::root().field("cert"), &mut e);
        DataSource {
            secret: Some("ca".into()),
            file: Some("/ca.pem".into()),
            ..DataSource::default()
        }
        .validate(&Path::root().field("key"), &mut e);
        DataSource {
            inline: Some("!!".into()),
            ..DataSource::default()
        }
        .validate(&Path::root().field("x"), &mut e);
        let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["cert", "key", "x.inline"]);
    }
}
