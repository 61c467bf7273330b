//! `kds-proto`: the wire types of KDS, the protocol Weft's global and zone control
//! planes sync resources over.
//!
//! - [`v1`]: code generated from `proto/weft/kds/v1/kds.proto`: the
//!   `KDSSyncService` client and server, [`KdsResource`] and [`KdsMeta`]; and the
//!   `GlobalKDSService` Envoy-admin streams with [`EnvoyAdminRequest`] and
//!   [`EnvoyAdminResponse`] (decision 0015).
//! - [`pack`] / [`unpack`]: put a [`KdsResource`] into the `Any` of an Envoy delta
//!   `Resource`, and take it out again.
//!
//! Envoy's and google.protobuf's messages are those of the `envoy-types` crate; no
//! copy of them is generated here. The generated code is checked in; see the crate
//! README for the regeneration command and the drift test.

use envoy_types::pb::google::protobuf::Any;
use prost::Message;

/// Generated from `proto/weft/kds/v1/kds.proto` by `cargo run -p kds-proto --example
/// regen`. Do not edit by hand: `tests/drift.rs` fails when it differs from what the
/// protos produce.
#[rustfmt::skip]
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]
pub mod v1 {
    include!("generated/weft.kds.v1.rs");
}

pub use v1::global_kds_service_client::GlobalKdsServiceClient;
pub use v1::global_kds_service_server::{GlobalKdsService, GlobalKdsServiceServer};
pub use v1::kds_sync_service_client::KdsSyncServiceClient;
pub use v1::kds_sync_service_server::{KdsSyncService, KdsSyncServiceServer};
pub use v1::{EnvoyAdminRequest, EnvoyAdminResponse, KdsMeta, KdsResource};

/// Type URL of the `Any` in every `Resource.resource` that KDS sends.
///
/// Not to be confused with the `type_url` of the delta request or response itself,
/// which is the bare resource type name (for example `MeshTrafficPermission`).
pub const KDS_RESOURCE_TYPE_URL: &str = "type.googleapis.com/weft.kds.v1.KdsResource";

/// Why an `Any` did not yield a [`KdsResource`].
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The `Any` holds some other message.
    #[error(
        "expected an Any of type {KDS_RESOURCE_TYPE_URL}, got {found:?}; is the peer speaking Weft's KDS?"
    )]
    WrongType {
        /// The type URL that was found.
        found: String,
    },
    /// The type URL is right but the bytes are not a valid `KdsResource`.
    #[error("malformed {KDS_RESOURCE_TYPE_URL}: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Wraps a resource envelope in an `Any` typed [`KDS_RESOURCE_TYPE_URL`].
///
/// The encoding is deterministic (fields in tag order, labels in key order), so equal
/// envelopes give equal bytes.
pub fn pack(resource: &KdsResource) -> Any {
    Any {
        type_url: KDS_RESOURCE_TYPE_URL.to_owned(),
        value: resource.encode_to_vec(),
    }
}

/// Takes the resource envelope out of an `Any` made by [`pack`].
pub fn unpack(any: &Any) -> Result<KdsResource, UnpackError> {
    if any.type_url != KDS_RESOURCE_TYPE_URL {
        return Err(UnpackError::WrongType {
            found: any.type_url.clone(),
        });
    }
    Ok(KdsResource::decode(any.value.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample() -> KdsResource {
        KdsResource {
            meta: Some(KdsMeta {
                r#type: "MeshTrafficPermission".into(),
                name: "allow-all".into(),
                mesh: "default".into(),
                labels: BTreeMap::from([
                    ("kuma.io/origin".into(), "global".into()),
                    ("kuma.io/mesh".into(), "default".into()),
                ]),
            }),
            spec: br#"{"targetRef":{"kind":"Mesh"}}"#.to_vec(),
        }
    }

    #[test]
    fn type_url_matches_the_generated_name() {
        // The constant and prost's `Name` impl agree on the envelope's type URL.
        assert_eq!(
            <KdsResource as prost::Name>::type_url(),
            KDS_RESOURCE_TYPE_URL
        );
    }

    #[test]
    fn pack_then_unpack_round_trips() {
        // Unpacking a packed envelope gives back the same envelope.
        let res = sample();
        let any = pack(&res);
        assert_eq!(any.type_url, KDS_RESOURCE_TYPE_URL);
        assert_eq!(unpack(&any).unwrap(), res);
    }

    #[test]
    fn packing_is_deterministic() {
        // Equal envelopes encode to equal bytes, whatever order labels were added in.
        let a = sample();
        let mut b = sample();
        let meta = b.meta.as_mut().unwrap();
        meta.labels = meta.labels.clone().into_iter().rev().collect();
        assert_eq!(pack(&a).value, pack(&b).value);
        assert_eq!(pack(&a).value, pack(&a).value);
    }

    #[test]
    fn unpack_rejects_other_types() {
        // An Any of another type is refused by its URL, not mis-decoded.
        let any = Any {
            type_url: "type.googleapis.com/kuma.mesh.v1alpha1.KumaResource".into(),
            value: sample().encode_to_vec(),
        };
        let err = unpack(&any).unwrap_err();
        assert!(
            matches!(err, UnpackError::WrongType { ref found } if found.ends_with("KumaResource"))
        );
        assert!(err.to_string().contains(KDS_RESOURCE_TYPE_URL));
    }

    #[test]
    fn unpack_rejects_malformed_bytes() {
        // The right URL over garbage bytes is a decode error.
        let any = Any {
            type_url: KDS_RESOURCE_TYPE_URL.into(),
            value: vec![0x0a, 0xff, 0xff],
        };
        assert!(matches!(unpack(&any), Err(UnpackError::Decode(_))));
    }

    #[test]
    fn empty_fields_survive() {
        // A global-scoped resource (empty mesh, no labels, empty spec) round-trips.
        let res = KdsResource {
            meta: Some(KdsMeta {
                r#type: "Zone".into(),
                name: "zone-1".into(),
                ..KdsMeta::default()
            }),
            spec: Vec::new(),
        };
        assert_eq!(unpack(&pack(&res)).unwrap(), res);
    }
}
