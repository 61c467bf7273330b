//! `MeshTrafficPermission`: which clients may reach the selected inbounds (RBAC).
//! Legacy `from[]` items carry an action for a tag-selected group of clients;
//! 2.12+ `rules[]` list SPIFFE-ID / SNI matchers to allow, deny or shadow-deny.
//! Kuma `meshtrafficpermission/api/v1alpha1`.

use super::checks::{MUST_BE_DEFINED, non_empty};
use super::common::{From, Kinds, Rule, check_from, check_rules_exclude_from, check_top};
use super::matches::Match;
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTrafficPermission {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<From<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule<RuleConf>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Allow,
    Deny,
    /// Allow, but log as if denied (Envoy RBAC shadow rules).
    AllowWithShadowDeny,
}

/// `from[].default`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// `rules[].default`: denies win over allows whatever their order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<Match>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_with_shadow_deny: Option<Vec<Match>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<Match>>,
}

const TOP: &[TargetRefKind] = &[Mesh, MeshSubset, MeshService, MeshServiceSubset, Dataplane];
const FROM: &[TargetRefKind] = &[Mesh, MeshSubset, MeshService, MeshServiceSubset];

impl Validate for MeshTrafficPermission {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let (from, rules) = (non_empty(&self.from), non_empty(&self.rules));
        let kinds = Kinds {
            inbound: from || rules,
            ..Kinds::new(TOP, &[], FROM)
        };
        check_top(path, &self.target_ref, kinds, errs);
        if !from && !rules {
            errs.add(path, "at least one of 'from' or 'rules' has to be defined");
        }
        check_rules_exclude_from(path, from, rules, errs);
        check_from(path, &self.from, kinds, errs);
        for (i, rule) in self.rules.iter().flatten().enumerate() {
            rule.default
                .validate(&path.field("rules").index(i).field("default"), errs);
        }
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.action.is_none() {
            errs.add(&path.field("action"), MUST_BE_DEFINED);
        }
    }
}

impl Validate for RuleConf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let lists = [
            ("deny", &self.deny),
            ("allowWithShadowDeny", &self.allow_with_shadow_deny),
            ("allow", &self.allow),
        ];
        if lists.iter().all(|(_, l)| !non_empty(l)) {
            errs.add(
                path,
                "at least one of 'allow', 'allowWithShadowDeny', 'deny' has to be defined",
            );
        }
        for (name, list) in lists {
            list.validate(&path.field(name), errs);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshTrafficPermission>(yaml)
    }

    // The reference example (deny all, allow web) is valid.
    #[test]
    fn legacy_from_is_valid() {
        let yaml = r#"
targetRef: {kind: MeshService, name: backend}
from:
  - targetRef: {kind: Mesh}
    default: {action: Deny}
  - targetRef: {kind: MeshService, name: web}
    default: {action: Allow}
  - targetRef: {kind: MeshServiceSubset, name: web, tags: {version: v2}}
    default: {action: AllowWithShadowDeny}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
    }

    // Actions are Kuma's 2.x spellings, and required.
    #[test]
    fn actions() {
        assert!(serde_yaml_ng::from_str::<Conf>("action: ALLOW").is_err());
        let yaml = "from: [{targetRef: {kind: Mesh}, default: {}}]";
        assert_eq!(fields(yaml), vec!["spec.from[0].default.action"]);
    }

    // Matcher rules: some list is needed, each matcher is checked; no mixing with from.
    #[test]
    fn matcher_rules() {
        let yaml = r#"
targetRef: {kind: Dataplane, labels: {app: backend}, sectionName: http}
rules:
  - default:
      deny: [{spiffeID: {type: Prefix, value: "spiffe://default.zone-1.mesh.local/ns/legacy"}}]
      allow: [{spiffeID: {type: Prefix, value: "spiffe://default.zone-1.mesh.local"}}, {}]
  - default: {allow: []}
"#;
        assert_eq!(
            fields(yaml),
            vec!["spec.rules[0].default.allow[1]", "spec.rules[1].default"]
        );
        assert_eq!(
            fields(
                "from: [{targetRef: {kind: Mesh}, default: {action: Allow}}]\nrules: [{default: {deny: [{sni: {type: Exact, value: a.b}}]}}]"
            ),
            vec!["spec.from"]
        );
        assert_eq!(fields("targetRef: {kind: Mesh}"), vec!["spec"]);
    }

    // A Dataplane with a sectionName is fine here (inbound policy); other slots keep their kinds.
    #[test]
    fn kinds() {
        let yaml = r#"
targetRef: {kind: MeshGateway, name: edge}
from: [{targetRef: {kind: Dataplane, name: dp}, default: {action: Allow}}]
"#;
        assert_eq!(
            fields(yaml),
            vec!["spec.targetRef.kind", "spec.from[0].targetRef.kind"]
        );
    }
}
