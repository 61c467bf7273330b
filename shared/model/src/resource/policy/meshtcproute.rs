//! MeshTCPRoute (Kuma order 200): where TCP traffic to a destination goes.
//! `to[]` items carry `rules[]` (at most one, no matches) instead of `default`.
//! Kuma: `pkg/plugins/policies/meshtcproute/api/v1alpha1`.

use super::backend_ref::BackendRef;
use super::common::check_to_target_ref;
use super::meshhttproute::check_route_top;
use super::targetref::TargetRef;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// Routes attach and send traffic the same way whatever the protocol: the kind
/// lists are MeshHTTPRoute's.
pub use super::meshhttproute::{BACKEND_KINDS, TO_KINDS, TO_KINDS_GATEWAY, TOP_KINDS};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTCPRoute {
    /// Which proxies the route applies to; omitted means the whole mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To>>,
}

/// `spec.to[]`: the destination and its routing rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct To {
    pub target_ref: TargetRef,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub default: RuleConf,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_refs: Option<Vec<BackendRef>>,
}

impl Validate for MeshTCPRoute {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let (_, to_kinds) = check_route_top(path, &self.target_ref, errs);
        for (i, to) in self.to.iter().flatten().enumerate() {
            let p = path.field("to").index(i);
            check_to_target_ref(&p.field("targetRef"), &to.target_ref, to_kinds, errs);
            if to.rules.len() > 1 {
                errs.add(&p.field("rules"), "must have at most 1 item");
            }
            for (j, rule) in to.rules.iter().enumerate() {
                let rp = p
                    .field("rules")
                    .index(j)
                    .field("default")
                    .field("backendRefs");
                match rule.default.backend_refs.as_deref() {
                    None | Some([]) => errs.add(&rp, "must be defined"),
                    Some(refs) => {
                        for (k, b) in refs.iter().enumerate() {
                            b.check(&rp.index(k), BACKEND_KINDS, errs);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshTCPRoute>(yaml)
    }

    // A weighted split across real services is valid.
    #[test]
    fn valid_split() {
        let f = fields(
            "to:\n- targetRef: {kind: MeshService, name: redis}\n  rules:\n  - default:\n      backendRefs:\n      - {kind: MeshService, name: redis, port: 6379, weight: 90}\n      - {kind: MeshMultiZoneService, name: redis-mz, port: 6379, weight: 10}\n",
        );
        assert!(f.is_empty(), "{f:?}");
    }

    // Every rule needs a backend, at most one rule per destination, kinds per slot.
    #[test]
    fn collects_all() {
        let f = fields(
            "targetRef: {kind: MeshHTTPRoute, name: r}\nto:\n- targetRef: {kind: Mesh}\n  rules:\n  - default: {}\n  - default:\n      backendRefs:\n      - {kind: MeshMultiZoneService, name: x}\n",
        );
        assert_eq!(
            f,
            vec![
                "spec.targetRef.kind",
                "spec.to[0].targetRef.kind",
                "spec.to[0].rules",
                "spec.to[0].rules[0].default.backendRefs",
                "spec.to[0].rules[1].default.backendRefs[0].port",
            ]
        );
    }

    // Routes on a MeshGateway address the whole mesh in to[].
    #[test]
    fn gateway_to_is_mesh() {
        let f = fields(
            "targetRef: {kind: MeshGateway, name: edge}\nto:\n- targetRef: {kind: Mesh}\n  rules:\n  - default:\n      backendRefs: [{kind: MeshService, name: tcp-echo}]\n",
        );
        assert!(f.is_empty(), "{f:?}");
    }
}
