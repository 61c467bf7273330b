//! Helpers the resource unit tests share: decode a YAML document, validate a
//! value where it sits in a resource, and list the violations found (their field
//! paths, `field: reason` lines or pairs), in the order they were reported.

use super::validate::{Path, Validate, ValidationErrors};
use serde::de::DeserializeOwned;

/// Decodes `yaml` as a `T`; a document that does not decode fails the test.
pub fn parse<T: DeserializeOwned>(yaml: &str) -> T {
    serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// The field paths of the violations in `errs`.
pub fn fields_of(errs: &ValidationErrors) -> Vec<String> {
    errs.violations().iter().map(|v| v.field.clone()).collect()
}

/// The violations in `errs` as `field: reason` lines.
pub fn messages_of(errs: &ValidationErrors) -> Vec<String> {
    errs.violations()
        .iter()
        .map(|v| format!("{}: {}", v.field, v.reason))
        .collect()
}

/// The violations in `errs` as `(field, reason)` pairs.
pub fn pairs_of(errs: &ValidationErrors) -> Vec<(String, String)> {
    errs.violations()
        .iter()
        .map(|v| (v.field.clone(), v.reason.clone()))
        .collect()
}

/// What `value` reports when it sits at `path`.
pub fn validate_at<T: Validate>(value: &T, path: &Path) -> ValidationErrors {
    let mut errs = ValidationErrors::new();
    value.validate(path, &mut errs);
    errs
}

/// The field paths `value` reports when it sits at `path`.
pub fn fields_at<T: Validate>(value: &T, path: &Path) -> Vec<String> {
    fields_of(&validate_at(value, path))
}

/// The `field: reason` lines `value` reports when it sits at `path`.
pub fn messages_at<T: Validate>(value: &T, path: &Path) -> Vec<String> {
    messages_of(&validate_at(value, path))
}

/// The field paths a policy spec written as `yaml` reports at `spec`.
pub fn spec_fields<T: DeserializeOwned + Validate>(yaml: &str) -> Vec<String> {
    fields_at(&parse::<T>(yaml), &Path::root().field("spec"))
}

/// The `field: reason` lines a policy spec written as `yaml` reports at `spec`.
pub fn spec_messages<T: DeserializeOwned + Validate>(yaml: &str) -> Vec<String> {
    messages_at(&parse::<T>(yaml), &Path::root().field("spec"))
}
