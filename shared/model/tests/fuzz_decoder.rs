//! Fuzzing of the resource decoder (`parse_document`, `parse_resource`,
//! `Resource::from_value` + `validate`) with proptest, so CI needs no nightly:
//! arbitrary bytes, byte-level mutations of the valid fixtures (YAML and their
//! canonical JSON), and structural mutations (a value replaced, removed or added
//! anywhere in a fixture's document). The decoder must never panic, must refuse with
//! an error that names something, and anything it accepts must survive its own
//! canonical JSON.
//!
//! Each property runs a bounded number of cases (well under a second each in a
//! debug build); `PROPTEST_CASES=100000 cargo test -p weft-model --test
//! fuzz_decoder` runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;
use weft_model::resource::{Resource, ResourceError, parse_document, parse_resource};

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        // Failures are reported with their input; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The valid fixtures' bytes (every resource type), and the invalid ones' (which
/// reach the validators' error paths).
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        for kind in ["valid", "invalid"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(kind);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            files.sort();
            out.extend(files.iter().map(|p| std::fs::read(p).unwrap()));
        }
        assert!(out.len() > 30, "fixtures missing");
        out
    })
}

/// Checks one decoding: no panic (the caller got here), a refusal names something,
/// an acceptance survives its canonical JSON.
fn check(result: Result<Resource, ResourceError>) -> Result<(), TestCaseError> {
    match result {
        Ok(res) => {
            let json = res.to_canonical_json();
            let again = parse_resource(&json, true).map_err(|e| {
                TestCaseError::fail(format!(
                    "accepted, but its canonical JSON is refused: {e}\n{}",
                    String::from_utf8_lossy(&json)
                ))
            })?;
            prop_assert_eq!(&again, &res, "canonical JSON changed the resource");
        }
        Err(ResourceError::Invalid(errs)) => {
            prop_assert!(
                !errs.violations().is_empty(),
                "a refusal without violations"
            );
            for v in errs.violations() {
                prop_assert!(
                    !v.reason.trim().is_empty(),
                    "a violation of {:?} without a reason",
                    v.field
                );
            }
        }
        Err(e @ ResourceError::Document(_)) => {
            prop_assert!(
                e.to_string().len() > "malformed YAML: ".len(),
                "an empty error: {e:?}"
            );
        }
    }
    Ok(())
}

/// One byte-level edit; positions are taken modulo the input's length.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b": ".to_vec()),
        Just(b"- ".to_vec()),
        Just(b"{".to_vec()),
        Just(b"[".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"&a ".to_vec()),
        Just(b"*a".to_vec()),
        Just(b"!!binary ".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just("\u{e9}\u{1f600}".as_bytes().to_vec()),
        Just(vec![0xff, 0xfe]),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..64, any::<usize>())
            .prop_map(|(i, n, at)| Edit::Duplicate(i, n, at)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Flip(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x ^= b | 1;
                }
            }
            Edit::Delete(i, n) => {
                let start = (i % len).min(bytes.len());
                let end = (start + n).min(bytes.len());
                bytes.drain(start..end);
            }
            Edit::Insert(i, b) => {
                let at = (i % (len + 1)).min(bytes.len());
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Truncate(i) => bytes.truncate(i % len),
            Edit::Duplicate(i, n, at) => {
                let start = (i % len).min(bytes.len());
                let end = (start + n).min(bytes.len());
                let part = bytes[start..end].to_vec();
                let at = (at % (len + 1)).min(bytes.len());
                bytes.splice(at..at, part);
            }
        }
    }
    bytes
}

/// A JSON value, with the scalars that decoders get wrong: empty and huge strings
/// and numbers, negative numbers, durations, wildcards, multi-byte text.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(""),
            Just("0"),
            Just("-1"),
            Just("1s"),
            Just("-5s"),
            Just("0.5ms"),
            Just("99999999999999999999h"),
            Just("1e400"),
            Just("100%"),
            Just("*"),
            Just("/"),
            Just("kuma.io/service"),
            Just("Mesh"),
            Just("MeshService"),
            Just("Dataplane"),
            Just("127.0.0.1:0"),
            Just("[::1]:99999"),
            Just("^(a"),
            Just("\u{e9}\u{1f600}"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
        "\\PC{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z.]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One structural edit at the `at`-th node (in document order, modulo the count).
#[derive(Debug, Clone)]
enum Tree {
    Replace(usize, Value),
    Remove(usize),
    AddKey(usize, String, Value),
}

fn tree_edit() -> impl Strategy<Value = Tree> {
    prop_oneof![
        (any::<usize>(), json_value()).prop_map(|(i, v)| Tree::Replace(i, v)),
        any::<usize>().prop_map(Tree::Remove),
        (any::<usize>(), "[a-zA-Z]{1,12}", json_value())
            .prop_map(|(i, k, v)| Tree::AddKey(i, k, v)),
    ]
}

/// JSON pointers of every node of `v`, in document order.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, x) in map {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

fn apply_tree(doc: &mut Value, edit: &Tree) {
    let mut all = Vec::new();
    pointers(doc, String::new(), &mut all);
    let pick = |i: &usize| all[i % all.len()].clone();
    match edit {
        Tree::Replace(i, v) => {
            if let Some(slot) = doc.pointer_mut(&pick(i)) {
                *slot = v.clone();
            }
        }
        Tree::Remove(i) => {
            let p = pick(i);
            let Some((parent, last)) = p.rsplit_once('/') else {
                return;
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match doc.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>()
                        && i < a.len()
                    {
                        a.remove(i);
                    }
                }
                _ => {}
            }
        }
        Tree::AddKey(i, k, v) => {
            if let Some(Value::Object(m)) = doc.pointer_mut(&pick(i)) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    // Arbitrary bytes, read as YAML and as JSON: never a panic, an error that names something.
    #[test]
    fn arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(parse_resource(&body, false))?;
        check(parse_resource(&body, true))?;
    }

    // Arbitrary text in YAML's syntax (anchors, flow, block, tags): same.
    #[test]
    fn arbitrary_yaml_text(body in "([a-zA-Z0-9:{}\\[\\],&*!|>'\"#.\\-]|\\s| ){0,200}") {
        check(parse_resource(body.as_bytes(), false))?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    // A valid (or invalid) fixture with a few byte-level edits, as YAML and as canonical JSON.
    #[test]
    fn mutated_fixtures(
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let body = seed.get(seeds()).clone();
        check(parse_resource(&apply(body.clone(), &edits), false))?;
        if let Ok(v) = parse_document(&body, false) {
            let json = serde_json::to_vec_pretty(&v).unwrap();
            check(parse_resource(&apply(json, &edits), true))?;
        }
    }

    // A fixture's document with values replaced, removed or added anywhere: the
    // typed decoders and every validator see wrong types, ranges and shapes.
    #[test]
    fn structurally_mutated_fixtures(
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(tree_edit(), 1..4),
    ) {
        let body: &Vec<u8> = seed.get(seeds());
        let mut doc = parse_document(body, false).unwrap();
        for e in &edits {
            apply_tree(&mut doc, e);
        }
        let result = Resource::from_value(doc.clone())
            .map_err(ResourceError::from)
            .and_then(|r| r.validate().map(|()| r).map_err(ResourceError::from));
        check(result)?;
        // The same document through the byte-level entry point.
        check(parse_resource(&serde_json::to_vec(&doc).unwrap(), true))?;
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    // Nesting past any resource's depth (within the YAML flow budget) is an error, not a stack overflow.
    for body in [
        "{a: ".repeat(1_500),
        "[".repeat(5_000),
        format!("a:\n{}", "- ".repeat(50_000)),
    ] {
        check(parse_resource(body.as_bytes(), false)).unwrap();
        check(parse_resource(body.as_bytes(), true)).unwrap();
    }
    let json = "{\"a\":".repeat(100_000);
    check(parse_resource(json.as_bytes(), true)).unwrap();
}

#[test]
fn yaml_flow_nesting_is_refused_before_parsing() {
    // Deeply nested YAML flow collections (quadratic in libyaml: minutes for 1 MiB) are
    // refused by their count before the parser runs, naming the fix.
    for unit in ["{a: ", "{\"a\":", "["] {
        let body = unit.repeat(100_000);
        let err = parse_document(body.as_bytes(), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("flow collections") && err.contains("JSON"),
            "{err}"
        );
    }
    // The same document as JSON is read by the JSON parser, which has no such cost.
    let json = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    assert!(parse_document(json.as_bytes(), true).is_ok());
}

#[test]
fn floats_survive_json() {
    // A float in a free-form field keeps its exact value when read back from JSON (found by structurally_mutated_fixtures).
    let x = -1.623_611_577_498_439_3e185_f64;
    let doc = serde_json::json!({
        "type": "MeshAccessLog", "name": "al", "mesh": "default",
        "spec": {"targetRef": {"kind": "Mesh"}, "to": [{"targetRef": {"kind": "Mesh"}, "default": {"backends": [
            {"type": "OpenTelemetry", "openTelemetry": {"endpoint": "otel:4317", "body": [{"x": x}]}}
        ]}}]}
    });
    let res = Resource::from_value(doc.clone()).unwrap();
    let read = parse_resource(&serde_json::to_vec(&doc).unwrap(), true).unwrap();
    assert_eq!(read, res);
    let again = parse_resource(&read.to_canonical_json(), true).unwrap();
    assert_eq!(again.content_hash(), res.content_hash());
}
