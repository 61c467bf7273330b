//! Validation vocabulary: field paths, collected violations and the checks every
//! resource shares (names, tags, durations).
//!
//! Validators never stop at the first problem: they walk the whole resource and
//! push every violation with the path of the offending field, so that one 400
//! answer tells the user everything that is wrong (Kuma's `ValidationError`).

use serde::Serialize;
use std::fmt;

/// A path to a field, rendered as Kuma does: `spec.to[0].default.http`,
/// `networking.inbound[1].tags["kuma.io/service"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// The empty path (the resource itself).
    pub fn root() -> Self {
        Path(String::new())
    }

    /// `self.name`
    pub fn field(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    /// `self[i]`
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }

    /// `self["key"]`
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{:?}]", self.0, key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One bad field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub reason: String,
}

/// Every violation found in one resource. Empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    violations: Vec<Violation>,
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// A single violation, for errors found before the walk (bad document, wrong type).
    pub fn single(path: &Path, reason: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(path, reason);
        e
    }

    pub fn add(&mut self, path: &Path, reason: impl Into<String>) {
        self.violations.push(Violation {
            field: path.to_string(),
            reason: reason.into(),
        });
    }

    /// A violation at a path already rendered.
    pub fn add_raw(&mut self, field: &str, reason: impl Into<String>) {
        self.violations.push(Violation {
            field: field.to_string(),
            reason: reason.into(),
        });
    }

    pub fn extend(&mut self, other: ValidationErrors) {
        self.violations.extend(other.violations);
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// `Ok(())` when nothing was found.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if v.field.is_empty() {
                write!(f, "{}", v.reason)?;
            } else {
                write!(f, "{}: {}", v.field, v.reason)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Anything that can check itself. `path` is where `self` sits in the resource.
pub trait Validate {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors);
}

impl<T: Validate> Validate for Option<T> {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(v) = self {
            v.validate(path, errs);
        }
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (i, v) in self.iter().enumerate() {
            v.validate(&path.index(i), errs);
        }
    }
}

/// Longest name Kuma (and Kubernetes) accept.
pub const MAX_NAME_LEN: usize = super::net::DNS1123_MAX;

/// RFC 1123 subdomain: lower-case alphanumerics, `-` and `.`, each dot-separated
/// label starting and ending with an alphanumeric, at most 253 characters.
pub fn check_name(path: &Path, name: &str, errs: &mut ValidationErrors) {
    if name.is_empty() {
        errs.add(path, "cannot be empty");
        return;
    }
    if name.len() > MAX_NAME_LEN {
        errs.add(
            path,
            format!(
                "must be at most {MAX_NAME_LEN} characters, got {}",
                name.len()
            ),
        );
        return;
    }
    if !super::net::is_dns1123_subdomain(name) {
        errs.add(
            path,
            "invalid name: must be a lower case RFC 1123 subdomain: lower case alphanumeric \
             characters, '-' or '.', starting and ending with an alphanumeric character",
        );
    }
}

/// Tag keys: `^[a-zA-Z0-9.\-_:/]*$`, non-empty.
pub fn check_tag_key(path: &Path, key: &str, errs: &mut ValidationErrors) {
    if key.is_empty() {
        errs.add(path, "tag name must be non-empty");
    } else if !key
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'/'))
    {
        errs.add(
            path,
            "tag name must consist of alphanumeric characters, dots, dashes, slashes, colons and underscores",
        );
    }
}

/// Tag values: `^[a-zA-Z0-9.\-_:]*$`, non-empty. `allow_wildcard` accepts `*`
/// (selectors may use it).
pub fn check_tag_value(
    path: &Path,
    value: &str,
    allow_wildcard: bool,
    errs: &mut ValidationErrors,
) {
    if allow_wildcard && value == "*" {
        return;
    }
    if value.is_empty() {
        errs.add(path, "tag value must be non-empty");
    } else if !value
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'))
    {
        errs.add(
            path,
            "tag value must consist of alphanumeric characters, dots, dashes, colons and underscores",
        );
    }
}

/// Every key and value of a tag map.
pub fn check_tags(
    path: &Path,
    tags: &std::collections::BTreeMap<String, String>,
    allow_wildcard: bool,
    errs: &mut ValidationErrors,
) {
    for (k, v) in tags {
        let p = path.key(k);
        check_tag_key(&p, k, errs);
        check_tag_value(&p, v, allow_wildcard, errs);
    }
}

/// Port numbers: 1..=65535.
pub fn check_port(path: &Path, port: u32, errs: &mut ValidationErrors) {
    if port == 0 || port > 65535 {
        errs.add(path, "port must be in the range [1, 65535]");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paths render exactly as Kuma's field paths do.
    #[test]
    fn path_rendering() {
        let p = Path::root()
            .field("spec")
            .field("to")
            .index(0)
            .field("tags")
            .key("kuma.io/service");
        assert_eq!(p.as_str(), r#"spec.to[0].tags["kuma.io/service"]"#);
    }

    // RFC 1123 names: the accepted and the refused.
    #[test]
    fn names() {
        for ok in ["a", "default", "a-b.c-d", "x1", "1x"] {
            let mut e = ValidationErrors::new();
            check_name(&Path::root().field("name"), ok, &mut e);
            assert!(e.is_empty(), "{ok}: {e}");
        }
        let long = "a".repeat(254);
        for bad in ["", "A", "-a", "a-", "a..b", "a_b", "a b", long.as_str()] {
            let mut e = ValidationErrors::new();
            check_name(&Path::root().field("name"), bad, &mut e);
            assert_eq!(e.violations().len(), 1, "{bad:?} should be refused");
            assert_eq!(e.violations()[0].field, "name");
        }
    }

    // Tag keys allow '/', values do not; '*' only where wildcards are allowed.
    #[test]
    fn tags() {
        let p = Path::root();
        let mut e = ValidationErrors::new();
        check_tag_key(&p, "kuma.io/service", &mut e);
        check_tag_value(&p, "backend_v1:8080", false, &mut e);
        check_tag_value(&p, "*", true, &mut e);
        assert!(e.is_empty(), "{e}");
        check_tag_value(&p, "a/b", false, &mut e);
        check_tag_value(&p, "*", false, &mut e);
        check_tag_key(&p, "", &mut e);
        assert_eq!(e.violations().len(), 3);
    }
}
