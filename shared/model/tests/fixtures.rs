//! Fixture-driven checks of the resource model, for every resource type.
//!
//! - `fixtures/valid/*.yaml` must parse and validate, survive parse → serialize →
//!   parse unchanged, and serialize to the same bytes every time.
//! - `fixtures/invalid/*.yaml` must be refused; the sibling `.expect` file lists
//!   the field paths of every violation the validator has to report (one per line).

// A test binary: a panic on a missing fixture is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use weft_model::resource::{Resource, ResourceType, parse_document, parse_resource};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load_valid() -> Vec<(PathBuf, Resource)> {
    fixtures("valid")
        .into_iter()
        .map(|p| {
            let body = std::fs::read(&p).unwrap();
            let res =
                parse_resource(&body, false).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, res)
        })
        .collect()
}

// Every valid fixture round-trips through JSON and YAML unchanged, with stable bytes.
#[test]
fn valid_fixtures_round_trip() {
    for (path, res) in load_valid() {
        let json = res.to_canonical_json();
        let again =
            parse_resource(&json, true).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            res,
            again,
            "{}: JSON round trip changed the resource",
            path.display()
        );
        assert_eq!(
            json,
            again.to_canonical_json(),
            "{}: bytes differ",
            path.display()
        );
        let yaml = res.to_yaml();
        let from_yaml = parse_resource(yaml.as_bytes(), false)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            res,
            from_yaml,
            "{}: YAML round trip changed the resource",
            path.display()
        );
        assert_eq!(res.content_hash(), from_yaml.content_hash());
    }
}

// Every resource type has at least one valid and one invalid fixture.
#[test]
fn every_type_has_fixtures() {
    let valid: BTreeSet<ResourceType> = load_valid()
        .iter()
        .map(|(_, r)| r.resource_type())
        .collect();
    let invalid: BTreeSet<String> = fixtures("invalid")
        .iter()
        .filter_map(|p| {
            let v = parse_document(&std::fs::read(p).unwrap(), false).ok()?;
            v.get("type")?.as_str().map(str::to_string)
        })
        .collect();
    for ty in ResourceType::ALL {
        assert!(valid.contains(ty), "no valid fixture for {ty}");
        assert!(invalid.contains(ty.name()), "no invalid fixture for {ty}");
    }
}

// Every invalid fixture is refused with exactly the expected field paths.
#[test]
fn invalid_fixtures_name_every_bad_field() {
    for path in fixtures("invalid") {
        let body = std::fs::read(&path).unwrap();
        let expect_file = path.with_extension("expect");
        let expected: BTreeSet<String> = std::fs::read_to_string(&expect_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_file.display()))
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let err = match parse_resource(&body, false) {
            Ok(_) => panic!("{}: accepted, expected a refusal", path.display()),
            Err(e) => e,
        };
        let got: BTreeSet<String> = match &err {
            weft_model::resource::ResourceError::Invalid(v) => {
                v.violations().iter().map(|v| v.field.clone()).collect()
            }
            other => panic!("{}: not a validation error: {other}", path.display()),
        };
        assert_eq!(got, expected, "{}: {err}", path.display());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // With any valid name and labels, every fixture still round-trips byte for byte.
    #[test]
    fn round_trip_with_arbitrary_identity(
        name in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,2}",
        labels in proptest::collection::btree_map("[a-z]{1,8}(\\.io/[a-z]{1,8})?", "[A-Za-z0-9_.:-]{0,20}", 0..4),
    ) {
        for (_, mut res) in load_valid() {
            res.meta.name = name.clone();
            res.meta.labels = labels.clone().into_iter().collect::<BTreeMap<_, _>>();
            prop_assert!(res.validate().is_ok(), "{:?}", res.validate());
            let bytes = res.to_canonical_json();
            let back = parse_resource(&bytes, true).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &res);
            prop_assert_eq!(back.to_canonical_json(), bytes);
        }
    }
}
