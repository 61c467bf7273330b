//! Envelope tests: what `from_value` accepts and refuses, independent of any one spec.

use super::*;
use crate::resource::test_support::{fields_of as fields, pairs_of};
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

// Unknown fields are accepted as Kuma does, and each is listed with its full
// path, at top level and inside specs, so that the API can warn about it.
#[test]
fn unknown_fields_name_their_path() {
    let r = Resource::read(json!({"type": "MeshTimeout", "name": "t", "mesh": "m", "extra": 1,
        "spec": {"targetRef": {"kind": "Mesh", "nmae": "x"},
                 "to": [{"targetRef": {"kind": "Mesh"}, "defualt": {}, "default": {"idleTimeout": "1s"}}]}}))
    .unwrap();
    assert_eq!(
        r.unknown,
        ["extra", "spec.targetRef.nmae", "spec.to[0].defualt"]
    );
    assert_eq!(r.warnings()[0], "extra: unknown field, ignored");
    let r = Resource::read(json!({"type": "Mesh", "name": "m", "bogus": true})).unwrap();
    assert_eq!(r.unknown, ["bogus"]);
    let e =
        Resource::from_value(json!({"type": "Mesh", "name": "m", "mtls": {"enabledBackend": []}}))
            .unwrap_err();
    assert_eq!(fields(&e), vec!["mtls.enabledBackend"]);
    // A number where text is expected is that text, as Kuma reads YAML.
    let r =
        Resource::from_value(json!({"type": "Mesh", "name": "m", "mtls": {"enabledBackend": 5}}))
            .unwrap();
    assert_eq!(r.to_value()["mtls"]["enabledBackend"], "5");
}

// One pass names every bad field: type and enum errors do not stop the walk, a
// missing required field is named at its own path, and the semantic rules run
// beside them.
#[test]
fn one_pass_names_every_bad_field() {
    let e = Resource::read(
        json!({"type": "MeshTLS", "name": "t", "mesh": "m", "spec": {
        "targetRef": {"kind": "Mesh"},
        "from": [{"targetRef": {"kind": "Mesh"}, "default": {
            "mode": "Sometimes", "tlsVersion": {"min": "TLS9", "max": "TLS8"}}}]}}),
    )
    .unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "spec.from[0].default.mode",
            "spec.from[0].default.tlsVersion.max",
            "spec.from[0].default.tlsVersion.min"
        ]
    );
    // `default` is missing: named at `spec.to[0].default` (not `spec.to[0]`),
    // and the negative timeout beside it is still found.
    let e = Resource::read(
        json!({"type": "MeshTimeout", "name": "t", "mesh": "m", "spec": {
        "targetRef": {"kind": "Mesh"},
        "to": [{"targetRef": {"kind": "Mesh"}},
               {"targetRef": {"kind": "Mesh"}, "default": {"idleTimeout": "-1s"}}]}}),
    )
    .unwrap_err();
    assert_eq!(
        fields(&e),
        ["spec.to[0].default", "spec.to[1].default.idleTimeout"]
    );
    // A wrong type inside a list keeps the later elements' indices.
    let e = Resource::read(
        json!({"type": "MeshRetry", "name": "r", "mesh": "m", "spec": {
        "targetRef": {"kind": "Mesh"},
        "to": [{"targetRef": {"kind": "Mesh"}, "default": {"http": {
            "retryOn": [true, "5xx", "Nope"]}}}]}}),
    )
    .unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "spec.to[0].default.http.retryOn[0]",
            "spec.to[0].default.http.retryOn[2]"
        ]
    );
    // A missing required scalar is "must be defined", nothing about its stand-in.
    let e = Resource::read(
        json!({"type": "MeshTimeout", "name": "t", "mesh": "m", "spec": {
        "targetRef": {"kind": "Mesh"},
        "rules": [{"matches": [{"spiffeID": {"value": "spiffe://td/x"}}],
                   "default": {"http": {"requestTimeout": "1s"}}}]}}),
    )
    .unwrap_err();
    assert_eq!(
        pairs_of(&e),
        [(
            "spec.rules[0].matches[0].spiffeID.type".to_string(),
            "must be defined".to_string()
        )]
    );
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
            ResourceType::MeshService,
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
