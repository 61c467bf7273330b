//! `backendRefs[]` of the route policies (and MeshHTTPRoute's mirror target): a
//! targetRef naming where traffic goes, plus a port and a weight
//! (`api/common/v1alpha1` `BackendRef`, which embeds `TargetRef`).

use super::common::check_to_target_ref;
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::Tags;
use crate::resource::validate::{self, Path, ValidationErrors};
use serde::{Deserialize, Serialize};

/// Where to send traffic. Kuma inlines the targetRef fields next to `port` and `weight`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    pub kind: TargetRefKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Tags>,
    /// Selects a subset of the service's endpoints (`MeshServiceSubset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Port of a real MeshService / MeshMultiZoneService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Relative share of traffic; Kuma's default is 1, 0 sends nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl BackendRef {
    pub fn named(kind: TargetRefKind, name: &str) -> Self {
        BackendRef {
            kind,
            name: Some(name.to_string()),
            namespace: None,
            labels: None,
            tags: None,
            section_name: None,
            port: None,
            weight: None,
        }
    }

    /// The `kuma.io/service` a backend means: its `name`, or the
    /// `kuma.io/display-name` label alone ([`TargetRef::service_name`]).
    pub fn service_name(&self) -> Option<String> {
        self.target_ref().service_name().map(str::to_string)
    }

    /// The targetRef part.
    pub fn target_ref(&self) -> TargetRef {
        TargetRef {
            kind: self.kind,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            labels: self.labels.clone(),
            tags: self.tags.clone(),
            proxy_types: None,
            section_name: self.section_name.clone(),
            mesh: None,
        }
    }

    /// The effective weight (Kuma's default is 1).
    pub fn weight_or_default(&self) -> u32 {
        self.weight.unwrap_or(1)
    }

    /// Checks the ref against `allowed` kinds and Kuma's port rules.
    pub fn check(&self, path: &Path, allowed: &[TargetRefKind], errs: &mut ValidationErrors) {
        check_to_target_ref(path, &self.target_ref(), allowed, errs);
        match self.port {
            Some(p) => validate::check_port(&path.field("port"), p, errs),
            None if self.kind == TargetRefKind::MeshMultiZoneService => errs.add(
                &path.field("port"),
                "must be defined with kind MeshMultiZoneService",
            ),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::fields_of;
    use TargetRefKind::*;

    fn fields(b: &BackendRef, allowed: &[TargetRefKind]) -> Vec<String> {
        let mut errs = ValidationErrors::new();
        b.check(&Path::root().field("b"), allowed, &mut errs);
        fields_of(&errs)
    }

    // A MeshMultiZoneService backend needs a port; ports must be in range.
    #[test]
    fn ports() {
        let all = [MeshService, MeshMultiZoneService];
        assert_eq!(
            fields(&BackendRef::named(MeshMultiZoneService, "x"), &all),
            vec!["b.port"]
        );
        let bad = BackendRef {
            port: Some(70000),
            ..BackendRef::named(MeshService, "x")
        };
        assert_eq!(fields(&bad, &all), vec!["b.port"]);
        assert!(fields(&BackendRef::named(MeshService, "x"), &all).is_empty());
    }

    // The kind must be one the slot allows; the inlined targetRef rules apply.
    #[test]
    fn kinds() {
        assert_eq!(
            fields(&BackendRef::named(Mesh, "x"), &[MeshService]),
            vec!["b.kind"]
        );
        let subset = BackendRef {
            tags: Some([("version".to_string(), "v2".to_string())].into()),
            ..BackendRef::named(MeshServiceSubset, "x")
        };
        assert!(fields(&subset, &[MeshServiceSubset]).is_empty());
    }

    // Serialization keeps only what was written.
    #[test]
    fn round_trip() {
        let json = r#"{"kind":"MeshService","name":"backend","port":8080,"weight":90}"#;
        let b: BackendRef = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&b).unwrap(), json);
        assert_eq!(BackendRef::named(MeshService, "a").weight_or_default(), 1);
    }
}
