//! What an accepted policy will not do in Weft, said so that it is never silent.
//!
//! Kuma's format allows more than Weft applies today: policy types whose Envoy
//! configuration Weft does not generate yet, and targetRefs that name resources
//! Weft does not have (gateways, MeshMultiZoneServices, MeshServices selected by
//! arbitrary labels). Such a policy is still accepted, stored and synced (a Kuma
//! user's files apply unchanged), and [`warnings`] lists each part that has no
//! effect, with its path; the API returns them in the PUT answer.

use crate::resource::policy::targetref::{TargetRef, TargetRefKind};
use crate::resource::{Resource, ResourceType};
use serde_json::Value;

/// Policy types that are stored and synced but produce no Envoy configuration.
pub const NOT_GENERATED: &[ResourceType] = &[
    ResourceType::MeshTrace,
    ResourceType::MeshMetric,
    ResourceType::MeshPassthrough,
    ResourceType::MeshProxyPatch,
];

/// Policy types whose top-level `kind: MeshHTTPRoute` narrows them to that
/// route's Envoy routes.
pub const ROUTE_SCOPED: &[ResourceType] = &[];

/// One warning per part of `res` that has no effect in Weft.
pub fn warnings(res: &Resource) -> Vec<String> {
    let ty = res.resource_type();
    if !ty.is_policy() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if NOT_GENERATED.contains(&ty) {
        out.push(format!(
            "{ty} is stored and synced to zones, but Weft does not generate its Envoy \
             configuration yet: it has no effect on proxies"
        ));
        return out;
    }
    let value = res.to_value();
    let spec = &value["spec"];
    if let Some(top) = target_ref(&spec["targetRef"]) {
        if top.kind == TargetRefKind::MeshHTTPRoute && !ROUTE_SCOPED.contains(&ty) {
            out.push(format!(
                "spec.targetRef: a {ty} scoped to a MeshHTTPRoute is not applied yet; \
                 select the proxies (Mesh, MeshService, Dataplane) and name the \
                 destination in `to`"
            ));
        } else {
            check("spec.targetRef", &top, &mut out);
        }
    }
    for (i, rule) in items(&spec["rules"]) {
        if rule["matches"].as_array().is_some_and(|m| !m.is_empty()) {
            out.push(format!(
                "spec.rules[{i}].matches: rules that match clients by spiffeID or SNI are \
                 not applied yet: this rule has no effect"
            ));
        }
    }
    for section in ["to", "from"] {
        for (i, item) in items(&spec[section]) {
            let at = format!("spec.{section}[{i}]");
            if let Some(tr) = target_ref(&item["targetRef"]) {
                check(&format!("{at}.targetRef"), &tr, &mut out);
            }
            for (j, rule) in items(&item["rules"]) {
                for (k, b) in items(&rule["default"]["backendRefs"]) {
                    if let Some(tr) = target_ref(b) {
                        check(
                            &format!("{at}.rules[{j}].default.backendRefs[{k}]"),
                            &tr,
                            &mut out,
                        );
                    }
                }
            }
        }
    }
    out
}

fn items(v: &Value) -> impl Iterator<Item = (usize, &Value)> {
    v.as_array().into_iter().flatten().enumerate()
}

fn target_ref(v: &Value) -> Option<TargetRef> {
    serde_json::from_value(v.clone()).ok()
}

fn check(at: &str, tr: &TargetRef, out: &mut Vec<String>) {
    let nothing = "selects nothing in Weft";
    match tr.kind {
        TargetRefKind::MeshGateway => out.push(format!(
            "{at}: kind MeshGateway {nothing}: Weft has no built-in gateways"
        )),
        TargetRefKind::MeshMultiZoneService => out.push(format!(
            "{at}: kind MeshMultiZoneService {nothing}: Weft has no MeshMultiZoneService \
             resources; cross-zone services are reached by their kuma.io/service name"
        )),
        TargetRefKind::MeshExternalService => out.push(format!(
            "{at}: policies towards a MeshExternalService are not applied yet (its \
             traffic leaves through the zone egress with the egress's defaults)"
        )),
        TargetRefKind::MeshService | TargetRefKind::MeshServiceSubset
            if tr.service_name().is_none() =>
        {
            out.push(format!(
                "{at}.labels: {nothing}: a MeshService is matched by `name` or by the \
                 `kuma.io/display-name` label alone"
            ))
        }
        TargetRefKind::MeshHTTPRoute if tr.name.is_none() => out.push(format!(
            "{at}.labels: {nothing}: a MeshHTTPRoute is matched by `name` only"
        )),
        _ => {}
    }
    if let Some(section) = &tr.section_name
        && matches!(tr.kind, TargetRefKind::MeshService)
    {
        out.push(format!(
            "{at}.sectionName: {section:?} is not applied: the policy applies to every \
             port of the service"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::parse_resource;

    fn warned(yaml: &str) -> Vec<String> {
        warnings(&parse_resource(yaml.as_bytes(), false).unwrap_or_else(|e| panic!("{e}")))
    }

    // Types without generated Envoy config say so; others are quiet when
    // everything they name is something Weft applies.
    #[test]
    fn not_generated_types_and_quiet_policies() {
        let trace = "type: MeshTrace\nmesh: m\nname: t\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    backends: [{type: Zipkin, zipkin: {url: 'http://z:9411/api/v2/spans'}}]\n";
        assert_eq!(warned(trace).len(), 1);
        assert!(
            warned(trace)[0].contains("has no effect"),
            "{:?}",
            warned(trace)
        );
        let timeout = "type: MeshTimeout\nmesh: m\nname: t\nspec:\n  targetRef: {kind: MeshService, labels: {kuma.io/display-name: web}}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default: {idleTimeout: 1s}\n";
        assert!(warned(timeout).is_empty(), "{:?}", warned(timeout));
    }

    // Each targetRef Weft cannot resolve is named with its path.
    #[test]
    fn unresolvable_target_refs_are_named() {
        let yaml = r#"
type: MeshTimeout
mesh: m
name: t
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, labels: {team: payments}}
      default: {idleTimeout: 1s}
    - targetRef: {kind: MeshMultiZoneService, name: backend}
      default: {idleTimeout: 1s}
    - targetRef: {kind: MeshExternalService, name: httpbin}
      default: {idleTimeout: 1s}
    - targetRef: {kind: MeshService, name: backend, sectionName: http}
      default: {idleTimeout: 1s}
"#;
        let rules = "type: MeshTimeout\nmesh: m\nname: t\nspec:\n  targetRef: {kind: Mesh}\n  rules:\n    - default: {idleTimeout: 1s}\n    - matches: [{spiffeID: {type: Exact, value: 'spiffe://m/web'}}]\n      default: {http: {requestTimeout: 1s}}\n";
        assert_eq!(warned(rules).len(), 1, "{:?}", warned(rules));
        assert!(warned(rules)[0].starts_with("spec.rules[1].matches"));
        let w = warned(yaml);
        let paths: Vec<&str> = w
            .iter()
            .map(|s| s.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            paths,
            [
                "spec.to[0].targetRef.labels",
                "spec.to[1].targetRef",
                "spec.to[2].targetRef",
                "spec.to[3].targetRef.sectionName"
            ],
            "{w:?}"
        );
        let route = "type: MeshRetry\nmesh: m\nname: r\nspec:\n  targetRef: {kind: MeshHTTPRoute, name: route-1}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {numRetries: 1}}\n";
        assert!(
            warned(route)[0].starts_with("spec.targetRef: a MeshRetry scoped to a MeshHTTPRoute")
        );
    }
}
