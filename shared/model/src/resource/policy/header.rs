//! HTTP header pieces shared by policy confs (`api/common/v1alpha1/header.go`):
//! header names, name / value pairs, `{set, add}` modifiers (MeshRateLimit,
//! MeshHealthCheck) and header matchers (MeshHTTPRoute, MeshRetry).

use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest header name Kuma accepts.
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// Most entries in one `set`, `add` (or `remove`) list (Kuma's `MaxItems=16`).
pub const MAX_MODIFIER_ITEMS: usize = 16;

/// Reason for a bad header name where a policy gives one reason for all (MeshHTTPRoute).
pub const HEADER_NAME_REASON: &str = "must be a valid HTTP header name: 1 to 256 lower case \
     letters, digits or one of !#$%&'*+-.^_`|~";

/// What is wrong with a header name, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameProblem {
    Empty,
    TooLong,
    BadCharacter,
}

/// Kuma's `HeaderName` schema: a lower-case RFC 7230 token of 1..=256 characters.
fn name_problem(name: &str) -> Option<NameProblem> {
    let token =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.len() > MAX_HEADER_NAME_LEN {
        Some(NameProblem::TooLong)
    } else if !name.bytes().all(token) {
        Some(NameProblem::BadCharacter)
    } else {
        None
    }
}

/// Whether `name` is a header name Kuma's schema allows.
pub fn is_header_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Kuma's `HeaderName`, each problem with its own reason.
pub fn check_header_name(path: &Path, name: &str, errs: &mut ValidationErrors) {
    match name_problem(name) {
        None => {}
        Some(NameProblem::Empty) => errs.add(path, "must be defined"),
        Some(NameProblem::TooLong) => errs.add(
            path,
            format!("must not be longer than {MAX_HEADER_NAME_LEN} characters"),
        ),
        Some(NameProblem::BadCharacter) => errs.add(
            path,
            "must be a lower case HTTP header name: letters a-z, digits and !#$%&'*+-.^_`|~",
        ),
    }
}

/// Kuma's `MaxItems=16` on a modifier list.
pub fn check_modifier_len(path: &Path, len: usize, errs: &mut ValidationErrors) {
    if len > MAX_MODIFIER_ITEMS {
        errs.add(
            path,
            format!("must have at most {MAX_MODIFIER_ITEMS} items"),
        );
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderKeyValue {
    pub name: String,
    pub value: String,
}

/// Headers to overwrite (`set`) or append (`add`). Several values for one header
/// are written RFC 7230 style, comma-separated.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderModifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Vec<HeaderKeyValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<HeaderKeyValue>>,
}

impl Validate for HeaderModifier {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (field, list) in [("set", &self.set), ("add", &self.add)] {
            let Some(list) = list else { continue };
            let p = path.field(field);
            check_modifier_len(&p, list.len(), errs);
            let mut seen = BTreeSet::new();
            for (i, kv) in list.iter().enumerate() {
                let name_path = p.index(i).field("name");
                check_header_name(&name_path, &kv.name, errs);
                if !seen.insert(kv.name.as_str()) {
                    errs.add(&name_path, format!("duplicate header {:?}", kv.name));
                }
            }
        }
    }
}

/// The spellings `EXACT`, `PREFIX` and `REGULAR_EXPRESSION` of older Kuma
/// examples are read as the same types (Kuma 2.14 accepts them in MeshRetry
/// and then writes an empty matcher; decision 0012 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HeaderMatchType {
    #[default]
    #[serde(alias = "EXACT")]
    Exact,
    Present,
    #[serde(alias = "REGULAR_EXPRESSION")]
    RegularExpression,
    Absent,
    #[serde(alias = "PREFIX")]
    Prefix,
}

/// Selects requests or responses by one header (`type` defaults to `Exact`).
/// MeshHTTPRoute checks its matches its own way (see its `validation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<HeaderMatchType>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Validate for HeaderMatch {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_header_name(&path.field("name"), &self.name, errs);
        let kind = self.r#type.unwrap_or_default();
        let needs_value = matches!(
            kind,
            HeaderMatchType::Exact | HeaderMatchType::Prefix | HeaderMatchType::RegularExpression
        );
        if needs_value && self.value.as_deref().is_none_or(str::is_empty) {
            errs.add(
                &path.field("value"),
                format!("must be set with type {kind:?}"),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::fields_at;

    fn fields<T: Validate>(v: &T) -> Vec<String> {
        fields_at(v, &Path::root().field("h"))
    }

    // Header names are lower-case tokens; upper case and spaces are refused.
    #[test]
    fn header_names() {
        assert!(is_header_name("x-request-id") && !is_header_name("X-Upper"));
        let mut errs = ValidationErrors::new();
        for ok in ["x-ratelimit-reset", "retry-after", "x_a.b~"] {
            check_header_name(&Path::root(), ok, &mut errs);
        }
        assert!(errs.is_empty(), "{errs}");
        for bad in ["X-Upper", "a b", "", &"a".repeat(257)] {
            let mut errs = ValidationErrors::new();
            check_header_name(&Path::root(), bad, &mut errs);
            assert_eq!(errs.violations().len(), 1, "{bad:?}");
        }
    }

    // A modifier list keys on the header name: duplicates and bad names are named.
    #[test]
    fn modifier_lists() {
        let m = HeaderModifier {
            set: Some(vec![
                HeaderKeyValue {
                    name: "x-a".into(),
                    value: "1".into(),
                },
                HeaderKeyValue {
                    name: "x-a".into(),
                    value: "2".into(),
                },
            ]),
            add: Some(vec![HeaderKeyValue {
                name: "Bad".into(),
                value: "v".into(),
            }]),
        };
        assert_eq!(fields(&m), vec!["h.set[1].name", "h.add[0].name"]);
    }

    // Value-comparing matchers need a value; Present / Absent do not.
    #[test]
    fn match_values() {
        let exact = HeaderMatch {
            name: "x-a".into(),
            ..HeaderMatch::default()
        };
        assert_eq!(fields(&exact), vec!["h.value"]);
        let present = HeaderMatch {
            r#type: Some(HeaderMatchType::Present),
            ..exact
        };
        assert!(fields(&present).is_empty());
    }
}
