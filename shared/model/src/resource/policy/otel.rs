//! What the observability policies (MeshAccessLog, MeshTrace, MeshMetric) share
//! for OpenTelemetry: a collector given inline as `endpoint` or by reference to a
//! `MeshOpenTelemetryBackend` resource (`backendRef`, Kuma 2.14), never both.

use crate::resource::Tags;
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// Kinds a `backendRef` may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum BackendResourceKind {
    #[default]
    MeshOpenTelemetryBackend,
}

/// `openTelemetry.backendRef`: a backend resource in the same mesh, by name or labels.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendResourceRef {
    pub kind: BackendResourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Tags>,
}

impl Validate for BackendResourceRef {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let has_name = self.name.as_deref().is_some_and(|n| !n.is_empty());
        let has_labels = self.labels.as_ref().is_some_and(|l| !l.is_empty());
        match (has_name, has_labels) {
            (false, false) => errs.add(
                path,
                "backendRef must have exactly one defined: name, labels",
            ),
            (true, true) => errs.add(
                path,
                "backendRef must have only one type defined: name, labels",
            ),
            _ => {}
        }
        for k in self.labels.iter().flat_map(|l| l.keys()) {
            validate::check_tag_key(&path.field("labels").key(k), k, errs);
        }
    }
}

/// Kuma's rule for `openTelemetry` blocks: exactly one of a non-empty `endpoint`
/// and `backendRef`. Validates the ref; returns the endpoint when that is the one
/// set, for the policy's own endpoint checks.
pub fn check_endpoint_or_ref<'a>(
    path: &Path,
    endpoint: &'a Option<String>,
    backend_ref: &Option<BackendResourceRef>,
    errs: &mut ValidationErrors,
) -> Option<&'a str> {
    let endpoint = endpoint.as_deref().filter(|e| !e.is_empty());
    match (endpoint, backend_ref) {
        (Some(_), Some(_)) => {
            errs.add(
                path,
                "openTelemetry must have only one type defined: endpoint, backendRef",
            );
            None
        }
        (None, None) => {
            errs.add(
                path,
                "openTelemetry must have exactly one defined: endpoint, backendRef",
            );
            None
        }
        (None, Some(r)) => {
            r.validate(&path.field("backendRef"), errs);
            None
        }
        (Some(e), None) if e.contains(['/', '?', '#']) => {
            errs.add(
                &path.field("endpoint"),
                "must be in host:port format, not a URL",
            );
            None
        }
        (Some(e), None) => Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::messages_of;

    fn run(endpoint: Option<&str>, r: Option<BackendResourceRef>) -> Vec<String> {
        let mut errs = ValidationErrors::new();
        let e = endpoint.map(str::to_string);
        check_endpoint_or_ref(&Path::root().field("otel"), &e, &r, &mut errs);
        messages_of(&errs)
    }

    // Exactly one of endpoint / backendRef; an empty endpoint counts as unset.
    #[test]
    fn exactly_one() {
        let by_name = BackendResourceRef {
            name: Some("otel".into()),
            ..Default::default()
        };
        assert!(run(Some("c:4317"), None).is_empty());
        assert!(run(None, Some(by_name.clone())).is_empty());
        assert_eq!(run(Some(""), None).len(), 1);
        assert_eq!(run(Some("c:4317"), Some(by_name)).len(), 1);
    }

    // A backendRef names its target by name or labels, not both and not neither.
    #[test]
    fn backend_ref_selector() {
        let both = BackendResourceRef {
            name: Some("a".into()),
            labels: Some([("app".to_string(), "otel".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(
            run(None, Some(both)),
            vec!["otel.backendRef: backendRef must have only one type defined: name, labels"]
        );
        assert_eq!(run(None, Some(BackendResourceRef::default())).len(), 1);
    }
}
