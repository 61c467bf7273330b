//! Fuzzing of KDS decoding (`weft_sync::kds::from_delta`, what global and zones run
//! on every received resource) with proptest: arbitrary `Any`s, byte-level mutations
//! of valid packed resources, and mutated envelopes (meta and spec) — for every
//! resource type, seeded with weft-model's valid fixtures. Decoding must never panic;
//! a refusal must say why; an accepted resource must be of the stream's type, valid,
//! survive `to_delta` → `from_delta`, and take global's per-zone naming.
//!
//! Bounded case counts keep this to about a second in a debug build;
//! `PROPTEST_CASES=100000 cargo test -p weft-sync --test fuzz_kds` runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kds_proto::{KDS_RESOURCE_TYPE_URL, KdsMeta, KdsResource};
use proptest::prelude::*;
use prost::Message;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use weft_model::resource::{Resource, ResourceType, parse_resource};
use weft_sync::delta::Any;
use weft_sync::kds::{DecodeError, from_delta, to_delta, to_kds, zone_names};

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One valid resource of every type (weft-model's valid fixtures).
fn seeds() -> &'static [Resource] {
    static SEEDS: OnceLock<Vec<Resource>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/valid");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let seeds: Vec<Resource> = files
            .iter()
            .map(|p| parse_resource(&std::fs::read(p).unwrap(), false).unwrap())
            .collect();
        for ty in ResourceType::ALL {
            assert!(
                seeds.iter().any(|r| r.resource_type() == *ty),
                "no seed of {ty}"
            );
        }
        seeds
    })
}

fn any_type() -> impl Strategy<Value = ResourceType> {
    prop::sample::select(ResourceType::ALL.to_vec())
}

/// Checks one decoding on the `ty` stream.
fn check(ty: ResourceType, result: Result<Resource, DecodeError>) -> Result<(), TestCaseError> {
    match result {
        Ok(res) => {
            prop_assert_eq!(
                res.resource_type(),
                ty,
                "accepted a resource of another type"
            );
            prop_assert!(res.validate().is_ok(), "accepted an invalid resource");
            let again = from_delta(ty, to_delta(&res).resource.as_ref()).map_err(|e| {
                TestCaseError::fail(format!("accepted, but not its own re-encoding: {e}"))
            })?;
            prop_assert_eq!(&again, &res);
            // What global does with a zone's resource: per-zone name, inverse intact.
            let stored = zone_names::to_global(&res, "zone-1");
            prop_assert_eq!(zone_names::zone_of(&stored), Some("zone-1"));
            let back = zone_names::from_global(&stored);
            prop_assert_eq!(back.map(|b| b.meta.name), Some(res.meta.name.clone()));
        }
        Err(e) => prop_assert!(!e.to_string().trim().is_empty(), "an empty refusal: {e:?}"),
    }
    Ok(())
}

/// Byte-level edits; positions are taken modulo the length.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, Vec<u8>)]) -> Vec<u8> {
    for (kind, at, data) in edits {
        let len = bytes.len();
        let i = if len == 0 { 0 } else { at % len };
        match kind % 4 {
            0 => {
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= data.first().copied().unwrap_or(1) | 1;
                }
            }
            1 => {
                let end = (i + data.len().max(1)).min(len);
                bytes.drain(i.min(len)..end);
            }
            2 => {
                bytes.splice(i..i, data.iter().copied());
            }
            _ => bytes.truncate(i),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, Vec<u8>)>> {
    proptest::collection::vec(
        (
            any::<u8>(),
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..8),
        ),
        1..5,
    )
}

/// Replaces the value at the `at`-th node of `doc` (document order, modulo).
fn replace_node(doc: &mut Value, at: usize, with: Value) {
    fn walk<'a>(v: &'a mut Value, out: &mut Vec<&'a mut Value>) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(|x| walk(x, out)),
            Value::Object(map) => map.values_mut().for_each(|x| walk(x, out)),
            _ => out.push(v),
        }
    }
    let mut leaves = Vec::new();
    walk(doc, &mut leaves);
    let n = leaves.len();
    if let Some(slot) = leaves.into_iter().nth(at % n.max(1)) {
        *slot = with;
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(""),
            Just("-1s"),
            Just("*"),
            Just("Mesh"),
            Just("a/b"),
            Just("\u{1f600}")
        ]
        .prop_map(|s| Value::String(s.into())),
        "\\PC{0,16}".prop_map(Value::String),
        Just(serde_json::json!({"kind": "Mesh"})),
        Just(serde_json::json!([])),
    ]
}

/// One change to an envelope.
#[derive(Debug, Clone)]
enum Envelope {
    NoMeta,
    Type(String),
    Name(String),
    Mesh(String),
    Labels(BTreeMap<String, String>),
    SpecBytes(Vec<(u8, usize, Vec<u8>)>),
    SpecNode(usize, Value),
}

fn envelope_edit() -> impl Strategy<Value = Envelope> {
    let type_name = prop_oneof![any_type().prop_map(|t| t.name().to_string()), "\\PC{0,12}",];
    prop_oneof![
        Just(Envelope::NoMeta),
        type_name.prop_map(Envelope::Type),
        prop_oneof!["[a-z0-9.-]{0,20}", "\\PC{0,300}"].prop_map(Envelope::Name),
        prop_oneof![Just(String::new()), "[a-z0-9.-]{1,20}", "\\PC{0,20}"].prop_map(Envelope::Mesh),
        proptest::collection::btree_map("\\PC{0,20}", "\\PC{0,20}", 0..4)
            .prop_map(Envelope::Labels),
        edits().prop_map(Envelope::SpecBytes),
        (any::<usize>(), scalar()).prop_map(|(i, v)| Envelope::SpecNode(i, v)),
    ]
}

fn apply_envelope(mut kds: KdsResource, edit: &Envelope) -> KdsResource {
    let meta = kds.meta.get_or_insert_with(KdsMeta::default);
    match edit {
        Envelope::NoMeta => kds.meta = None,
        Envelope::Type(t) => meta.r#type = t.clone(),
        Envelope::Name(n) => meta.name = n.clone(),
        Envelope::Mesh(m) => meta.mesh = m.clone(),
        Envelope::Labels(l) => meta.labels = l.clone(),
        Envelope::SpecBytes(e) => kds.spec = mutate(std::mem::take(&mut kds.spec), e),
        Envelope::SpecNode(at, v) => {
            if let Ok(mut doc) = serde_json::from_slice::<Value>(&kds.spec) {
                replace_node(&mut doc, *at, v.clone());
                kds.spec = serde_json::to_vec(&doc).unwrap();
            }
        }
    }
    kds
}

proptest! {
    #![proptest_config(config(256))]

    // Any Any at all, on every type's stream: never a panic, a refusal says why.
    #[test]
    fn arbitrary_any(
        type_url in prop_oneof![Just(KDS_RESOURCE_TYPE_URL.to_string()), "\\PC{0,40}"],
        value in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let any = Any { type_url, value };
        for ty in ResourceType::ALL {
            check(*ty, from_delta(*ty, Some(&any)))?;
        }
        prop_assert!(matches!(from_delta(ResourceType::Mesh, None), Err(DecodeError::Empty)));
    }

    // A valid packed resource with its protobuf bytes edited, on its own and another type's stream.
    #[test]
    fn mutated_packed_bytes(
        seed in any::<prop::sample::Index>(),
        other in any_type(),
        edits in edits(),
    ) {
        let res = seed.get(seeds());
        let mut any = to_delta(res).resource.unwrap();
        any.value = mutate(any.value, &edits);
        check(res.resource_type(), from_delta(res.resource_type(), Some(&any)))?;
        check(other, from_delta(other, Some(&any)))?;
    }

    // A valid envelope with its meta or spec changed (type, name, mesh, labels, spec
    // bytes or one spec value), re-encoded, on its own and another type's stream.
    #[test]
    fn mutated_envelopes(
        seed in any::<prop::sample::Index>(),
        other in any_type(),
        changes in proptest::collection::vec(envelope_edit(), 1..4),
    ) {
        let res = seed.get(seeds());
        let mut kds = to_kds(res);
        for c in &changes {
            kds = apply_envelope(kds, c);
        }
        let any = Any {
            type_url: KDS_RESOURCE_TYPE_URL.into(),
            value: kds.encode_to_vec(),
        };
        check(res.resource_type(), from_delta(res.resource_type(), Some(&any)))?;
        check(other, from_delta(other, Some(&any)))?;
    }
}

#[test]
fn every_seed_round_trips() {
    // The seeds themselves decode on their own type's stream (the fuzzers start from valid input).
    for res in seeds() {
        let d = to_delta(res);
        let back = from_delta(res.resource_type(), d.resource.as_ref()).unwrap();
        assert_eq!(back.content_hash(), res.content_hash(), "{}", res.meta.name);
    }
}
