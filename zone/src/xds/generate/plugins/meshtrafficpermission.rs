//! MeshTrafficPermission (order 1100), inbound: who may connect, as Envoy RBAC on
//! the inbound's mTLS chain (HTTP filter `envoy.filters.http.rbac` first in the
//! HCM for HTTP inbounds; network filter `envoy.filters.network.rbac` first in the
//! chain otherwise). Only in a mesh with mTLS: without it no client has an
//! identity, and the API warns when such a mesh has permissions.
//!
//! - Legacy `from[]`: the inbound's rules (most specific client subset first, the
//!   first that contains the client wins) become one ALLOW policy
//!   `MeshTrafficPermission`. The principal of rule *i* is "the client has rule
//!   *i*'s tags and none of an earlier rule's": tag `kuma.io/service: x` is the
//!   URI SAN `spiffe://<mesh>/x`, any other `k: v` the URI SAN `kuma://k/v`, the
//!   empty subset any client. `Allow` and `AllowWithShadowDeny` rules admit their
//!   principal; the latter's also go to `shadow_rules` (logged as denied).
//! - 2.12+ `rules[].default`: `deny` matches go into a DENY filter placed before
//!   the ALLOW one, so a deny always wins; `allow` and `allowWithShadowDeny`
//!   matches join the ALLOW policy. A match is a SPIFFE id (`Exact` or `Prefix`)
//!   and/or an SNI (`Exact`).
//! - No permission for the inbound at all: an ALLOW RBAC with no policy — every
//!   client is refused (Kuma ≥ 2.6 creates no allow-all permission).

use super::Ctx;
use crate::xds::generate::model::{ProxyConfig, Rbac};
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac as RbacRules, permission, principal, rbac,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use serde_json::Value;
use std::collections::BTreeMap;
use weft_model::resource::policy::matches::{Match, SpiffeIdMatchType};
use weft_model::resource::policy::meshtrafficpermission::{Action, Conf, RuleConf};
use weft_model::resource::{ResourceType, Tags, tags};
use weft_model::rules::SubsetRule;

/// A protobuf map that encodes the same bytes every time (one hasher, sorted
/// insertion), so the RBAC's content version only changes with its content.
fn stable_map<V>(
    entries: impl IntoIterator<Item = (String, V)>,
) -> std::collections::HashMap<String, V> {
    let sorted: std::collections::BTreeMap<String, V> = entries.into_iter().collect();
    let mut out = std::collections::HashMap::with_capacity_and_hasher(
        sorted.len(),
        crate::xds::generate::endpoints::map_hasher(),
    );
    out.extend(sorted);
    out
}

/// The name of the policy in the RBAC rules (Kuma's).
pub const POLICY: &str = "MeshTrafficPermission";

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let Some(tls) = ctx.mtls else {
        return;
    };
    let rules = ctx.rules.types.get(&ResourceType::MeshTrafficPermission);
    let ids = |service: &str| ctx.view.identity.accepted_ids(service, true);
    for part in cfg.inbounds.iter_mut() {
        let inbound_rules = rules
            .and_then(|r| r.from.get(&part.port))
            .map(Vec::as_slice)
            .unwrap_or_default();
        part.rbac = Some(rbac_for(&tls.mesh, &ids, inbound_rules));
    }
}

/// The RBAC of an inbound with `rules` (most specific first) in `mesh`; `ids`
/// names the SPIFFE ids a service's proxies present (`spiffe://<mesh>/<service>`
/// and, for proxies with a MeshIdentity, theirs).
pub fn rbac_for(mesh: &str, ids: &dyn Fn(&str) -> Vec<String>, rules: &[SubsetRule]) -> Rbac {
    let mut allow = Vec::new();
    let mut shadow = Vec::new();
    let mut deny = Vec::new();
    let mut allow_sni = Vec::new();
    let mut shadow_sni = Vec::new();
    let mut earlier: Vec<Principal> = Vec::new();
    for rule in rules {
        let conf = &rule.merged.conf;
        let subset = subset_principal(mesh, &rule.subset, ids);
        if let Some(action) = legacy_action(conf) {
            let mut ids: Vec<Principal> = vec![subset.clone()];
            ids.extend(earlier.iter().cloned().map(not));
            let who = and(ids);
            match action {
                Action::Allow => allow.push(who),
                Action::AllowWithShadowDeny => {
                    allow.push(who.clone());
                    shadow.push(who);
                }
                Action::Deny => {}
            }
        }
        if let Ok(rc) = serde_json::from_value::<RuleConf>(strip_action(conf)) {
            for m in rc.deny.iter().flatten() {
                deny.push(match_policy(m));
            }
            // A match with an SNI is a policy of its own: SNI is a permission,
            // not a principal, in Envoy RBAC.
            for m in rc.allow.iter().flatten() {
                match m.sni {
                    None => allow.push(spiffe_principal(m)),
                    Some(_) => allow_sni.push(match_policy(m)),
                }
            }
            for m in rc.allow_with_shadow_deny.iter().flatten() {
                match m.sni {
                    None => allow.push(spiffe_principal(m)),
                    Some(_) => allow_sni.push(match_policy(m)),
                }
                shadow_sni.push(match_policy(m));
            }
        }
        earlier.push(subset);
    }
    let allow_policy = |principals: Vec<Principal>| Policy {
        permissions: vec![any_permission()],
        principals,
        ..Policy::default()
    };
    let mut policies = BTreeMap::new();
    if !allow.is_empty() {
        policies.insert(POLICY.to_string(), allow_policy(allow));
    }
    for (i, p) in allow_sni.into_iter().enumerate() {
        policies.insert(format!("{POLICY}-allow-{i}"), p);
    }
    let mut shadow_policies = BTreeMap::new();
    if !shadow.is_empty() {
        shadow_policies.insert(POLICY.to_string(), allow_policy(shadow));
    }
    for (i, p) in shadow_sni.into_iter().enumerate() {
        shadow_policies.insert(format!("{POLICY}-shadow-{i}"), p);
    }
    Rbac {
        allow: RbacRules {
            action: rbac::Action::Allow as i32,
            policies: stable_map(policies),
            ..RbacRules::default()
        },
        deny: (!deny.is_empty()).then(|| RbacRules {
            action: rbac::Action::Deny as i32,
            policies: stable_map(
                deny.into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("{POLICY}-deny-{i}"), p)),
            ),
            ..RbacRules::default()
        }),
        shadow: (!shadow_policies.is_empty()).then(|| RbacRules {
            action: rbac::Action::Deny as i32,
            policies: stable_map(shadow_policies),
            ..RbacRules::default()
        }),
    }
}

fn legacy_action(conf: &Value) -> Option<Action> {
    let c: Conf = serde_json::from_value(conf.clone()).ok()?;
    c.action
}

fn strip_action(conf: &Value) -> Value {
    let mut c = conf.clone();
    if let Value::Object(o) = &mut c {
        o.remove("action");
    }
    c
}

/// A DENY policy for one match: its SPIFFE id (any when unset) and its SNI (any
/// when unset).
fn match_policy(m: &Match) -> Policy {
    let permissions = match &m.sni {
        Some(sni) => vec![Permission {
            rule: Some(permission::Rule::RequestedServerName(exact(&sni.value))),
        }],
        None => vec![any_permission()],
    };
    Policy {
        permissions,
        principals: vec![spiffe_principal(m)],
        ..Policy::default()
    }
}

fn spiffe_principal(m: &Match) -> Principal {
    match &m.spiffe_id {
        None => any_principal(),
        Some(id) => authenticated(match id.r#type {
            SpiffeIdMatchType::Exact => string_matcher::MatchPattern::Exact(id.value.clone()),
            SpiffeIdMatchType::Prefix => string_matcher::MatchPattern::Prefix(id.value.clone()),
        }),
    }
}

/// The clients with every tag of `subset`: a service by any of its SPIFFE ids,
/// another tag by its `kuma://<tag>/<value>` SAN (Mesh mTLS certificates only).
fn subset_principal(mesh: &str, subset: &Tags, ids: &dyn Fn(&str) -> Vec<String>) -> Principal {
    if subset.is_empty() {
        return any_principal();
    }
    let exact = |uri: String| authenticated(string_matcher::MatchPattern::Exact(uri));
    and(subset
        .iter()
        .map(|(k, v)| {
            if k == tags::SERVICE {
                let mut uris = ids(v);
                let own = format!("spiffe://{mesh}/{v}");
                if !uris.contains(&own) {
                    uris.push(own);
                }
                or(uris.into_iter().map(exact).collect())
            } else {
                exact(tags::kuma_uri(k, v))
            }
        })
        .collect())
}

fn or(mut ids: Vec<Principal>) -> Principal {
    if ids.len() == 1 {
        return ids.remove(0);
    }
    Principal {
        identifier: Some(principal::Identifier::OrIds(principal::Set { ids })),
    }
}

fn authenticated(pattern: string_matcher::MatchPattern) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Authenticated(
            principal::Authenticated {
                principal_name: Some(StringMatcher {
                    match_pattern: Some(pattern),
                    ..StringMatcher::default()
                }),
            },
        )),
    }
}

fn exact(value: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(value.into())),
        ..StringMatcher::default()
    }
}

fn and(mut ids: Vec<Principal>) -> Principal {
    if ids.len() == 1 {
        return ids.remove(0);
    }
    Principal {
        identifier: Some(principal::Identifier::AndIds(principal::Set { ids })),
    }
}

fn not(p: Principal) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::NotId(Box::new(p))),
    }
}

fn any_principal() -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Any(true)),
    }
}

fn any_permission() -> Permission {
    Permission {
        rule: Some(permission::Rule::Any(true)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_model::rules::Merged;

    /// Envoy's decision for a client whose certificate carries `uris` (and who
    /// asked for `sni`): the DENY filter first, then the ALLOW rules.
    fn admits(rbac: &Rbac, uris: &[&str], sni: &str) -> bool {
        let matches = |rules: &RbacRules| {
            rules.policies.values().any(|p| {
                p.permissions.iter().any(|perm| permits(perm, sni))
                    && p.principals.iter().any(|pr| is(pr, uris))
            })
        };
        if rbac.deny.as_ref().is_some_and(matches) {
            return false;
        }
        matches(&rbac.allow)
    }

    fn permits(p: &Permission, sni: &str) -> bool {
        match &p.rule {
            Some(permission::Rule::Any(true)) => true,
            Some(permission::Rule::RequestedServerName(m)) => string_match(m, sni),
            other => panic!("unexpected permission {other:?}"),
        }
    }

    fn string_match(m: &StringMatcher, s: &str) -> bool {
        match &m.match_pattern {
            Some(string_matcher::MatchPattern::Exact(e)) => s == e,
            Some(string_matcher::MatchPattern::Prefix(p)) => s.starts_with(p.as_str()),
            other => panic!("unexpected matcher {other:?}"),
        }
    }

    fn is(p: &Principal, uris: &[&str]) -> bool {
        match &p.identifier {
            Some(principal::Identifier::Any(true)) => true,
            Some(principal::Identifier::AndIds(set)) => set.ids.iter().all(|i| is(i, uris)),
            Some(principal::Identifier::OrIds(set)) => set.ids.iter().any(|i| is(i, uris)),
            Some(principal::Identifier::NotId(inner)) => !is(inner, uris),
            Some(principal::Identifier::Authenticated(a)) => {
                let m = a.principal_name.as_ref().unwrap();
                uris.iter().any(|u| string_match(m, u))
            }
            other => panic!("unexpected principal {other:?}"),
        }
    }

    fn rule(subset: &[(&str, &str)], conf: serde_json::Value) -> SubsetRule {
        SubsetRule {
            subset: subset
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            merged: Merged {
                conf,
                ..Merged::default()
            },
        }
    }

    fn no_ids(_: &str) -> Vec<String> {
        Vec::new()
    }

    const WEB: &[&str] = &["spiffe://default/web", "kuma://version/v1"];
    const WEB_V2: &[&str] = &["spiffe://default/web", "kuma://version/v2"];
    const API: &[&str] = &["spiffe://default/api", "kuma://version/v1"];

    // Several deny rules make several RBAC policies: their encoding is the same
    // every time, so an unchanged permission keeps its content version.
    #[test]
    fn rbac_with_several_policies_encodes_the_same_bytes() {
        use prost::Message;
        let conf = serde_json::json!({"deny": [
            {"spiffeID": {"type": "Exact", "value": "spiffe://default/a"}},
            {"spiffeID": {"type": "Exact", "value": "spiffe://default/b"}},
            {"spiffeID": {"type": "Exact", "value": "spiffe://default/c"}},
            {"spiffeID": {"type": "Exact", "value": "spiffe://default/d"}}
        ]});
        let bytes = || {
            let rbac = rbac_for("default", &no_ids, &[rule(&[], conf.clone())]);
            rbac.deny.map(|d| d.encode_to_vec()).unwrap_or_default()
        };
        let first = bytes();
        assert!(!first.is_empty());
        for _ in 0..20 {
            assert_eq!(bytes(), first);
        }
    }

    // With mTLS on and no permission for an inbound, nobody gets in (Kuma ≥ 2.6).
    #[test]
    fn no_permission_denies_everyone() {
        let rbac = rbac_for("default", &no_ids, &[]);
        assert!(!admits(&rbac, WEB, ""));
        assert!(rbac.allow.policies.is_empty());
    }

    // Legacy from[]: the most specific subset containing the client decides,
    // whatever the less specific ones say.
    #[test]
    fn most_specific_subset_decides() {
        use serde_json::json;
        let allow = json!({"action": "Allow"});
        let deny = json!({"action": "Deny"});
        // Only web.
        let rbac = rbac_for(
            "default",
            &no_ids,
            &[
                rule(&[("kuma.io/service", "web")], allow.clone()),
                rule(&[], deny.clone()),
            ],
        );
        assert!(admits(&rbac, WEB, ""));
        assert!(!admits(&rbac, API, ""));
        // Everyone but web v2 (a deny more specific than a mesh-wide allow).
        let rbac = rbac_for(
            "default",
            &no_ids,
            &[
                rule(
                    &[("kuma.io/service", "web"), ("version", "v2")],
                    deny.clone(),
                ),
                rule(&[("kuma.io/service", "web")], allow.clone()),
                rule(&[], allow.clone()),
            ],
        );
        assert!(admits(&rbac, WEB, ""));
        assert!(!admits(&rbac, WEB_V2, ""));
        assert!(admits(&rbac, API, ""));
        // AllowWithShadowDeny admits and is logged as a shadow deny.
        let rbac = rbac_for(
            "default",
            &no_ids,
            &[rule(&[], json!({"action": "AllowWithShadowDeny"}))],
        );
        assert!(admits(&rbac, API, ""));
        let shadow = rbac.shadow.as_ref().unwrap();
        assert_eq!(shadow.action, rbac::Action::Deny as i32);
    }

    // A service's principal is any of its SPIFFE ids: Mesh mTLS's and those its
    // MeshIdentity proxies present.
    #[test]
    fn service_principals_include_identity_ids() {
        let ids = |s: &str| {
            if s == "web" {
                vec!["spiffe://default.east.mesh.local/workload/web".to_string()]
            } else {
                Vec::new()
            }
        };
        let allow = serde_json::json!({"action": "Allow"});
        let rbac = rbac_for(
            "default",
            &ids,
            &[rule(&[("kuma.io/service", "web")], allow)],
        );
        assert!(admits(&rbac, WEB, ""));
        assert!(admits(
            &rbac,
            &["spiffe://default.east.mesh.local/workload/web"],
            ""
        ));
        assert!(!admits(
            &rbac,
            &["spiffe://default.east.mesh.local/workload/api"],
            ""
        ));
    }

    // rules[]: a deny wins over any allow, matches by SPIFFE id (exact, prefix)
    // and SNI.
    #[test]
    fn rules_deny_wins_over_allow() {
        let conf = serde_json::json!({
            "allow": [{"spiffeID": {"type": "Prefix", "value": "spiffe://default/"}}],
            "deny": [{"spiffeID": {"type": "Exact", "value": "spiffe://default/api"}}],
        });
        let rbac = rbac_for("default", &no_ids, &[rule(&[], conf)]);
        assert!(admits(&rbac, WEB, ""));
        assert!(!admits(&rbac, API, ""));
        assert!(!admits(&rbac, &["spiffe://other/web"], ""));
        let conf = serde_json::json!({
            "allow": [{"spiffeID": {"type": "Exact", "value": "spiffe://default/web"}, "sni": {"type": "Exact", "value": "backend"}}],
        });
        let rbac = rbac_for("default", &no_ids, &[rule(&[], conf)]);
        assert!(admits(&rbac, WEB, "backend"));
        assert!(!admits(&rbac, WEB, "other"));
    }
}
