//! `docs/policies.md` lists every field of every policy with its Envoy effect
//! (or the warning that says it has none). This test keeps that table and the
//! model in step:
//! - every row names a policy type and a field the model has (a document with
//!   that field set reports no unknown field);
//! - every field a valid fixture of a policy sets is covered by a row (the row's
//!   path, or a row for a section containing it);
//! - every policy type has rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use weft_model::resource::{Resource, ResourceType, parse_resource};

const START: &str = "<!-- fields:start -->";
const END: &str = "<!-- fields:end -->";

/// `(policy, field path)` of each table row, the path as written (`to[].default.x`).
fn rows() -> Vec<(ResourceType, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policies.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc
        .find(START)
        .expect("docs/policies.md has the fields table");
    let end = doc.find(END).expect("the fields table ends");
    doc[start + START.len()..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Policy") && !l.starts_with("|--"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let ty = ResourceType::from_name(cells[1])
                .unwrap_or_else(|| panic!("not a resource type: {l}"));
            let field = cells[2].trim_matches('`').to_string();
            assert!(!cells[3].is_empty(), "a row without its Envoy effect: {l}");
            (ty, field)
        })
        .collect()
}

/// A value with `path` set (`[]` makes a one-element list).
fn set(path: &str) -> Value {
    let mut root = Value::Object(Map::new());
    let mut at = &mut root;
    let segs: Vec<&str> = path.split('.').collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let (name, list) = match seg.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (*seg, false),
        };
        let leaf = || {
            if last {
                json!("1")
            } else {
                Value::Object(Map::new())
            }
        };
        let obj = at.as_object_mut().unwrap();
        let slot = if list {
            obj.insert(name.to_string(), json!([leaf()]));
            &mut obj.get_mut(name).unwrap()[0]
        } else {
            obj.insert(name.to_string(), leaf());
            obj.get_mut(name).unwrap()
        };
        at = slot;
    }
    root
}

fn is_prefix(row: &str, path: &str) -> bool {
    path == row
        || path
            .strip_prefix(row)
            .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
}

// Every row names a field the model has.
#[test]
fn every_row_is_a_model_field() {
    let rows = rows();
    assert!(
        rows.len() > 100,
        "the table is missing ({} rows)",
        rows.len()
    );
    for (ty, field) in &rows {
        let doc = json!({"type": ty.name(), "name": "t", "mesh": "m", "spec": set(field)});
        let wanted = format!("spec.{}", field.replace("[]", "[0]"));
        let unknown = Resource::unknown_fields(doc);
        let missing: Vec<&String> = unknown.iter().filter(|u| is_prefix(u, &wanted)).collect();
        assert!(
            missing.is_empty(),
            "{ty} has no field {field} (unknown: {missing:?})"
        );
    }
}

/// Leaf paths of a JSON value, list indices written `[]`.
fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                leaves(x, p, out);
            }
        }
        Value::Array(l) if !l.is_empty() => {
            for x in l {
                leaves(x, format!("{at}[]"), out);
            }
        }
        _ => out.push(at),
    }
}

// Every field the valid fixtures set has a row, and every policy type has rows.
#[test]
fn every_fixture_field_has_a_row() {
    let rows = rows();
    let mut by_type: BTreeMap<ResourceType, Vec<&str>> = BTreeMap::new();
    for (ty, f) in &rows {
        by_type.entry(*ty).or_default().push(f);
    }
    for ty in ResourceType::ALL.iter().filter(|t| t.is_policy()) {
        assert!(by_type.contains_key(ty), "no rows for {ty}");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let mut uncovered = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let res = parse_resource(&std::fs::read(&path).unwrap(), false).unwrap();
        let ty = res.resource_type();
        if !ty.is_policy() {
            continue;
        }
        let mut paths = Vec::new();
        leaves(&res.to_value()["spec"], String::new(), &mut paths);
        for p in paths {
            let known = by_type
                .get(&ty)
                .into_iter()
                .flatten()
                .any(|r| is_prefix(r, &p));
            if !known {
                uncovered.push(format!("{ty} {p} ({})", path.display()));
            }
        }
    }
    uncovered.sort();
    uncovered.dedup();
    assert!(
        uncovered.is_empty(),
        "fields without a row:\n{}",
        uncovered.join("\n")
    );
}
