//! `targetRef`: how a policy names what it selects (top level) and what it
//! configures (`to[]`, `from[]`, `rules[]`). Kuma 2.x semantics
//! (`api/common/v1alpha1/targetref.go`, `ValidateTargetRef`).

use crate::resource::Tags;
use crate::resource::validate::{self, Path, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TargetRefKind {
    Mesh,
    MeshSubset,
    MeshService,
    MeshServiceSubset,
    MeshGateway,
    MeshHTTPRoute,
    Dataplane,
    MeshExternalService,
    MeshMultiZoneService,
}

impl TargetRefKind {
    /// Kuma 2.x specificity of a top-level kind: a higher value is more specific
    /// and its policy wins the merge (`Mesh 1 < Dataplane 2 < MeshSubset 3 < ...`).
    pub fn specificity(self) -> u8 {
        match self {
            TargetRefKind::Mesh => 1,
            TargetRefKind::Dataplane => 2,
            TargetRefKind::MeshSubset => 3,
            TargetRefKind::MeshGateway => 4,
            TargetRefKind::MeshService => 5,
            TargetRefKind::MeshExternalService => 6,
            TargetRefKind::MeshMultiZoneService => 7,
            TargetRefKind::MeshServiceSubset => 8,
            TargetRefKind::MeshHTTPRoute => 9,
        }
    }
}

impl fmt::Display for TargetRefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyType {
    Sidecar,
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub kind: TargetRefKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_types: Option<Vec<ProxyType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Reserved by Kuma; refused everywhere today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
}

impl TargetRef {
    pub fn mesh() -> Self {
        TargetRef::of(TargetRefKind::Mesh)
    }

    pub fn of(kind: TargetRefKind) -> Self {
        TargetRef {
            kind,
            name: None,
            namespace: None,
            labels: None,
            tags: None,
            proxy_types: None,
            section_name: None,
            mesh: None,
        }
    }

    pub fn named(kind: TargetRefKind, name: &str) -> Self {
        TargetRef {
            name: Some(name.to_string()),
            ..TargetRef::of(kind)
        }
    }

    /// The `kuma.io/service` a `MeshService` or `MeshServiceSubset` targetRef
    /// means: its `name`, or, when it selects by `labels`, the
    /// `kuma.io/display-name` label alone, which is the name Kuma gives the
    /// MeshService it generates for a service (what kuma.io's 2.14 examples
    /// write). `None` for labels that select by anything else: Weft has no
    /// MeshService resources to match them against (the API warns).
    pub fn service_name(&self) -> Option<&str> {
        if let Some(name) = self.name.as_deref() {
            return Some(name);
        }
        match self.labels.as_ref()?.iter().collect::<Vec<_>>()[..] {
            [(k, v)] if k == crate::resource::tags::DISPLAY_NAME => Some(v),
            _ => None,
        }
    }
}

/// Where a targetRef sits; some fields are only meaningful in some places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `spec.targetRef`: which proxies the policy selects.
    Top,
    /// `spec.to[].targetRef`: outbound destinations.
    To,
    /// `spec.from[].targetRef`: inbound clients.
    From,
}

/// What an individual policy allows in one slot.
#[derive(Debug, Clone, Copy)]
pub struct SlotRules<'a> {
    pub slot: Slot,
    pub allowed: &'a [TargetRefKind],
    /// Whether `sectionName` is meaningful (inbound policies at top level).
    pub section_name_allowed: bool,
}

/// Checks one targetRef against Kuma's common rules and the policy's slot rules.
pub fn check_target_ref(
    path: &Path,
    tr: &TargetRef,
    rules: SlotRules<'_>,
    errs: &mut ValidationErrors,
) {
    if !rules.allowed.contains(&tr.kind) {
        let allowed: Vec<String> = rules.allowed.iter().map(|k| k.to_string()).collect();
        errs.add(
            &path.field("kind"),
            format!(
                "value '{}' is not supported; allowed here: {}",
                tr.kind,
                allowed.join(", ")
            ),
        );
        return;
    }
    let forbid = |field: &str, present: bool, errs: &mut ValidationErrors| {
        if present {
            errs.add(
                &path.field(field),
                format!("must not be set with kind {}", tr.kind),
            );
        }
    };
    if tr.mesh.is_some() {
        errs.add(&path.field("mesh"), "is reserved and must not be set");
    }
    if tr.proxy_types.is_some()
        && !(rules.slot == Slot::Top
            && matches!(tr.kind, TargetRefKind::Mesh | TargetRefKind::MeshSubset))
    {
        errs.add(
            &path.field("proxyTypes"),
            "can only be used in the top-level targetRef with kind Mesh or MeshSubset",
        );
    }
    if tr.section_name.is_some() {
        let kind_ok = matches!(
            tr.kind,
            TargetRefKind::Dataplane
                | TargetRefKind::MeshService
                | TargetRefKind::MeshMultiZoneService
        );
        if !kind_ok {
            forbid("sectionName", true, errs);
        } else if tr.kind == TargetRefKind::Dataplane && !rules.section_name_allowed {
            errs.add(
                &path.field("sectionName"),
                "can only be used with inbound policies",
            );
        }
    }
    if let Some(tags) = &tr.tags {
        validate::check_tags(&path.field("tags"), tags, true, errs);
    }
    if let Some(labels) = &tr.labels {
        for k in labels.keys() {
            validate::check_tag_key(&path.field("labels").key(k), k, errs);
        }
    }
    let has_name = tr.name.as_deref().is_some_and(|n| !n.is_empty());
    match tr.kind {
        TargetRefKind::Mesh => {
            forbid("name", tr.name.is_some(), errs);
            forbid("namespace", tr.namespace.is_some(), errs);
            forbid("labels", tr.labels.is_some(), errs);
            forbid("tags", tr.tags.is_some(), errs);
        }
        TargetRefKind::MeshSubset => {
            forbid("name", tr.name.is_some(), errs);
            forbid("namespace", tr.namespace.is_some(), errs);
            forbid("labels", tr.labels.is_some(), errs);
        }
        TargetRefKind::MeshService
        | TargetRefKind::MeshExternalService
        | TargetRefKind::MeshMultiZoneService => {
            forbid("tags", tr.tags.is_some(), errs);
            if has_name && tr.labels.is_some() {
                errs.add(
                    &path.field("labels"),
                    "either 'name' or 'labels' can be set, not both",
                );
            } else if !has_name && tr.labels.is_none() {
                errs.add(&path.field("name"), "either 'name' or 'labels' must be set");
            }
        }
        TargetRefKind::MeshServiceSubset | TargetRefKind::MeshGateway => {
            forbid("labels", tr.labels.is_some(), errs);
            if !has_name {
                errs.add(&path.field("name"), "must be set");
            }
        }
        TargetRefKind::MeshHTTPRoute => {
            forbid("tags", tr.tags.is_some(), errs);
            if has_name && tr.labels.is_some() {
                errs.add(
                    &path.field("labels"),
                    "either labels or name and namespace must be specified",
                );
            } else if !has_name && tr.labels.is_none() {
                errs.add(
                    path,
                    "name or labels must be set when kind is MeshHTTPRoute",
                );
            }
        }
        TargetRefKind::Dataplane => {
            forbid("tags", tr.tags.is_some(), errs);
            if has_name && tr.labels.is_some() {
                errs.add(
                    &path.field("labels"),
                    "either 'name' or 'labels' can be set, not both",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::messages_of;
    use TargetRefKind::*;

    fn check(tr: &TargetRef, slot: Slot, allowed: &[TargetRefKind]) -> Vec<String> {
        let mut errs = ValidationErrors::new();
        let rules = SlotRules {
            slot,
            allowed,
            section_name_allowed: false,
        };
        check_target_ref(&Path::root().field("targetRef"), tr, rules, &mut errs);
        messages_of(&errs)
    }

    // A kind outside the policy's allowed list is refused and named.
    #[test]
    fn unsupported_kind() {
        let errs = check(&TargetRef::named(MeshService, "a"), Slot::From, &[Mesh]);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("targetRef.kind: value 'MeshService' is not supported"),
            "{errs:?}"
        );
    }

    // Mesh takes no selectors; MeshService needs exactly one of name / labels.
    #[test]
    fn per_kind_fields() {
        let mut mesh_with_name = TargetRef::mesh();
        mesh_with_name.name = Some("x".into());
        assert_eq!(
            check(&mesh_with_name, Slot::Top, &[Mesh]),
            vec!["targetRef.name: must not be set with kind Mesh"]
        );
        assert_eq!(
            check(&TargetRef::of(MeshService), Slot::To, &[MeshService]),
            vec!["targetRef.name: either 'name' or 'labels' must be set"]
        );
        assert!(
            check(
                &TargetRef::named(MeshService, "backend"),
                Slot::To,
                &[MeshService]
            )
            .is_empty()
        );
    }

    // proxyTypes only at the top, sectionName on Dataplane only for inbound policies.
    #[test]
    fn slot_rules() {
        let mut tr = TargetRef::mesh();
        tr.proxy_types = Some(vec![ProxyType::Sidecar]);
        assert!(check(&tr, Slot::Top, &[Mesh]).is_empty());
        assert_eq!(check(&tr, Slot::To, &[Mesh]).len(), 1);
        let mut dp = TargetRef::named(Dataplane, "dp-1");
        dp.section_name = Some("http".into());
        assert_eq!(
            check(&dp, Slot::Top, &[Dataplane]),
            vec!["targetRef.sectionName: can only be used with inbound policies"]
        );
    }
}
