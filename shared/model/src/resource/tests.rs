//! Envelope tests: what `from_value` accepts and refuses, independent of any one spec.

use super::*;
use crate::resource::test_support::fields_of as fields;
use serde_json::json;

// Missing or unknown `type`, and a missing name, are each reported.
#[test]
fn envelope_requirements() {
    let e = Resource::from_value(json!({"name": "x"})).unwrap_err();
    assert_eq!(fields(&e), vec!["type"]);
    let e = Resource::from_value(json!({"type": "Nope", "name": "x"})).unwrap_err();
    assert_eq!(e.violations()[0].reason, "unknown type \"Nope\"");
    let e = Resource::from_value(json!({"type": "Mesh"})).unwrap_err();
    assert_eq!(fields(&e), vec!["name"]);
    let e = Resource::from_value(json!([1])).unwrap_err();
    assert!(e.violations()[0].reason.contains("must be an object"));
}

// Mesh-scoped types need `mesh`; types outside meshes refuse it.
#[test]
fn mesh_field_follows_scope() {
    let e = Resource::from_value(json!({"type": "MeshTimeout", "name": "t"})).unwrap_err();
    assert_eq!(fields(&e), vec!["mesh"]);
    let e = Resource::from_value(json!({"type": "Mesh", "name": "m", "mesh": "x"})).unwrap_err();
    assert_eq!(fields(&e), vec!["mesh"]);
}

// Unknown fields are refused with their full path, at top level and inside specs.
#[test]
fn unknown_fields_name_their_path() {
    let e =
        Resource::from_value(json!({"type": "MeshTimeout", "name": "t", "mesh": "m", "extra": 1}))
            .unwrap_err();
    assert_eq!(fields(&e), vec!["extra"]);
    let e = Resource::from_value(json!({"type": "Mesh", "name": "m", "bogus": true})).unwrap_err();
    assert_eq!(fields(&e), vec!["bogus"]);
    let e =
        Resource::from_value(json!({"type": "Mesh", "name": "m", "mtls": {"enabledBackend": 5}}))
            .unwrap_err();
    assert_eq!(fields(&e), vec!["mtls.enabledBackend"]);
}

// Labels must be a string map; server-managed times on input are ignored.
#[test]
fn labels_and_times() {
    let e =
        Resource::from_value(json!({"type": "Mesh", "name": "m", "labels": {"a": 1}})).unwrap_err();
    assert_eq!(fields(&e), vec!["labels"]);
    let r = Resource::from_value(json!({
        "type": "Mesh", "name": "m", "labels": {"team": "a"},
        "creationTime": "2020-01-01T00:00:00Z", "modificationTime": "garbage"
    }))
    .unwrap();
    assert_eq!(r.meta.labels.get("team").map(String::as_str), Some("a"));
    assert!(r.meta.creation_time.is_none());
}

// The content hash ignores store bookkeeping and key order, and sees labels.
#[test]
fn content_hash_is_identity_only() {
    let a =
        Resource::from_value(json!({"type": "Mesh", "name": "m", "labels": {"x": "1", "y": "2"}}))
            .unwrap();
    let mut b =
        Resource::from_value(json!({"labels": {"y": "2", "x": "1"}, "name": "m", "type": "Mesh"}))
            .unwrap();
    b.meta.version = 42;
    b.meta.creation_time = Some(time::OffsetDateTime::UNIX_EPOCH);
    assert_eq!(a.content_hash(), b.content_hash());
    b.meta.labels.insert("z".into(), "3".into());
    assert_ne!(a.content_hash(), b.content_hash());
}

// Documents: empty, malformed YAML and malformed JSON are told apart.
#[test]
fn documents() {
    assert_eq!(parse_document(b"  \n", false), Err(DocumentError::Empty));
    assert!(matches!(
        parse_document(b"a: [", false),
        Err(DocumentError::Yaml(_))
    ));
    assert!(matches!(
        parse_document(b"{\"a\":", true),
        Err(DocumentError::Json(_))
    ));
    assert_eq!(
        parse_document(b"{\"a\": 1}", false).unwrap(),
        json!({"a": 1})
    );
}

// Every type's plural maps back to it, and the table agrees with itself.
#[test]
fn type_table() {
    for ty in ResourceType::ALL {
        assert_eq!(ResourceType::from_plural(ty.plural()), Some(*ty));
        assert_eq!(ResourceType::from_name(ty.name()), Some(*ty));
        let not_policies = [
            ResourceType::Mesh,
            ResourceType::MeshIdentity,
            ResourceType::MeshTrust,
            ResourceType::MeshExternalService,
        ];
        assert_eq!(
            ty.is_policy(),
            ty.name().starts_with("Mesh") && !not_policies.contains(ty)
        );
    }
    assert_eq!(
        ResourceType::from_plural("zone-ingresses"),
        Some(ResourceType::ZoneIngress)
    );
}
