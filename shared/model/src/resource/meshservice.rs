//! `MeshService` (Kuma 2.14, mesh-scoped, `spec:` layout, created in zones): a
//! service as a resource — which Dataplanes back it, on which ports, with which
//! identities. Zones generate one per `kuma.io/service` of their Dataplanes when
//! the mesh's `meshServices.mode` is not `Disabled` (labelled
//! `kuma.io/managed-by: meshservice-generator`); global shows them and fans them
//! out to the other zones. Kuma:
//! `pkg/core/resources/apis/meshservice/api/v1alpha1`.

use super::Tags;
use super::policy::intorstring::IntOrString;
use super::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// The label Kuma's generator marks its MeshServices with, and its value.
pub const MANAGED_BY: &str = "kuma.io/managed-by";
pub const GENERATOR: &str = "meshservice-generator";
/// Longest display name Kuma accepts (a DNS-1035 label).
pub const MAX_NAME_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<Identity>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Available,
    Unavailable,
}

/// Which Dataplanes back the service: by inbound tags, by name, or by labels
/// (one of them).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane_tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane_ref: Option<DataplaneRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane_labels: Option<LabelSelector>,
}

impl Selector {
    /// Whether Dataplane `dp` backs the service: an inbound carries every
    /// selected tag, or it has the selected name, or every selected label. A
    /// selector that selects by nothing picks nothing.
    pub fn picks(&self, dp: &super::Resource) -> bool {
        let super::Spec::Dataplane(d) = &dp.spec else {
            return false;
        };
        let all = |want: &Tags, have: &Tags| want.iter().all(|(k, v)| have.get(k) == Some(v));
        if let Some(tags) = &self.dataplane_tags {
            return d
                .networking
                .iter()
                .flat_map(|n| n.inbound.iter())
                .any(|i| all(tags, &i.tags));
        }
        if let Some(name) = self.dataplane_ref.as_ref().and_then(|r| r.name.as_ref()) {
            return &dp.meta.name == name;
        }
        self.dataplane_labels
            .as_ref()
            .and_then(|l| l.match_labels.as_ref())
            .is_some_and(|labels| all(labels, &dp.meta.labels))
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<Tags>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub r#type: IdentityType,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityType {
    ServiceTag,
    #[serde(rename = "SpiffeID")]
    SpiffeId,
}

impl Validate for MeshServiceSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(s) = &self.selector {
            let set = [
                s.dataplane_tags.is_some(),
                s.dataplane_ref.is_some(),
                s.dataplane_labels.is_some(),
            ];
            if set.iter().filter(|x| **x).count() > 1 {
                errs.add(
                    &path.field("selector"),
                    "must specify only one of: dataplaneTags, dataplaneRef, or dataplaneLabels",
                );
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            super::validate::check_port(&path.field("ports").index(i).field("port"), p.port, errs);
            if let Some(proto) = &p.app_protocol
                && !super::tags::PROTOCOLS.contains(&proto.as_str())
            {
                errs.add(
                    &path.field("ports").index(i).field("appProtocol"),
                    format!(
                        "unknown protocol {proto:?}; one of: {}",
                        super::tags::PROTOCOLS.join(", ")
                    ),
                );
            }
        }
    }
}

impl MeshServiceSpec {
    /// The `kuma.io/service` the service stands for, when it selects by it.
    pub fn service_tag(&self) -> Option<&str> {
        self.selector
            .as_ref()?
            .dataplane_tags
            .as_ref()?
            .get(super::tags::SERVICE)
            .map(String::as_str)
    }
}

/// Whether `name` can name a generated MeshService: a DNS-1035 label (lower-case
/// alphanumerics and `-`, starting with a letter, ending with an alphanumeric,
/// at most 63 characters), Kuma's rule.
pub fn is_dns1035_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {

    // A selector picks by inbound tags, by name or by labels, whichever it
    // sets; one that sets none picks nothing.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn selector_picks_backing_dataplanes() {
        let dp = crate::resource::Resource::read(serde_json::json!({
            "type": "Dataplane", "mesh": "default", "name": "backend-1",
            "labels": {"team": "a"},
            "networking": {"address": "127.0.0.1", "inbound": [
                {"port": 8080, "tags": {"kuma.io/service": "backend", "version": "v1"}}
            ]}
        }))
        .unwrap()
        .resource;
        let tags = |t: &[(&str, &str)]| -> Tags {
            t.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let by_tags = |t| Selector {
            dataplane_tags: Some(tags(t)),
            ..Default::default()
        };
        assert!(by_tags(&[("kuma.io/service", "backend")]).picks(&dp));
        assert!(!by_tags(&[("kuma.io/service", "backend"), ("version", "v2")]).picks(&dp));
        let by_name = |n: &str| Selector {
            dataplane_ref: Some(DataplaneRef {
                name: Some(n.into()),
            }),
            ..Default::default()
        };
        assert!(by_name("backend-1").picks(&dp));
        assert!(!by_name("backend-2").picks(&dp));
        let by_labels = |t| Selector {
            dataplane_labels: Some(LabelSelector {
                match_labels: Some(tags(t)),
            }),
            ..Default::default()
        };
        assert!(by_labels(&[("team", "a")]).picks(&dp));
        assert!(!by_labels(&[("team", "b")]).picks(&dp));
        assert!(!Selector::default().picks(&dp));
    }
    use super::*;
    use crate::resource::parse_resource;

    // Kuma's rules: one selector kind; valid ports and protocols; names a
    // generated service can take.
    #[test]
    fn validation() {
        let ok = "type: MeshService\nmesh: m\nname: backend\nspec:\n  selector: {dataplaneTags: {kuma.io/service: backend}}\n  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]\n  identities: [{type: ServiceTag, value: backend}]\n  state: Available\n";
        let r = parse_resource(ok.as_bytes(), false).unwrap_or_else(|e| panic!("{e}"));
        let crate::resource::Spec::MeshService(s) = &r.spec else {
            panic!("not a MeshService")
        };
        assert_eq!(s.service_tag(), Some("backend"));
        let bad = "type: MeshService\nmesh: m\nname: backend\nspec:\n  selector: {dataplaneTags: {a: b}, dataplaneRef: {name: x}}\n  ports: [{port: 0, appProtocol: smtp}]\n";
        let e = parse_resource(bad.as_bytes(), false)
            .unwrap_err()
            .to_string();
        for field in [
            "spec.selector",
            "spec.ports[0].port",
            "spec.ports[0].appProtocol",
        ] {
            assert!(e.contains(field), "{field}: {e}");
        }
        assert!(is_dns1035_label("backend-v2"));
        for bad in ["", "1a", "a_b", "A", "a-", &"a".repeat(64)] {
            assert!(!is_dns1035_label(bad), "{bad:?}");
        }
    }
}
