//! `MeshTimeout`: connection, idle and HTTP timeouts, outbound (`to[]`) and
//! inbound (`from[]` or 2.10+ `rules[]`). Kuma `meshtimeout/api/v1alpha1`.

use super::checks::{MUST_NOT_BE_DEFINED, check_duration, check_positive_duration, non_empty};
use super::common::{
    From, Kinds, Sections, To, check_directional, check_from, check_to, top_or_mesh,
};
use super::matches::{MatchRule, check_match_rules};
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::Duration;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTimeout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<From<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<MatchRule<Conf>>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    /// Time to establish a TCP connection (default 5s); cannot be 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_timeout: Option<Duration>,
    /// No bytes sent or received for this long closes the connection (default
    /// 1h); 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    /// Whole request (default 15s); 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// A stream with no activity (default 30m); 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    /// Longest lifetime of a stream (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
    /// Connection drained after this long (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Receiving the request headers (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers_timeout: Option<Duration>,
}

const TOP: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshGateway,
    MeshService,
    MeshServiceSubset,
    MeshHTTPRoute,
    Dataplane,
];
const TO: &[TargetRefKind] = &[
    Mesh,
    MeshService,
    MeshExternalService,
    MeshMultiZoneService,
    MeshHTTPRoute,
];
/// `to[]` when the policy selects a gateway or a route.
const TO_GATEWAY: &[TargetRefKind] = &[Mesh, MeshExternalService];
const FROM: &[TargetRefKind] = &[Mesh];

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.connection_timeout.is_none() && self.idle_timeout.is_none() && self.http.is_none() {
            errs.add(path, "at least one timeout should be configured");
        }
        check_positive_duration(
            &path.field("connectionTimeout"),
            &self.connection_timeout,
            errs,
        );
        check_duration(&path.field("idleTimeout"), &self.idle_timeout, errs);
        self.http.validate(&path.field("http"), errs);
    }
}

impl Validate for Http {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let fields = [
            ("requestTimeout", &self.request_timeout),
            ("streamIdleTimeout", &self.stream_idle_timeout),
            ("maxStreamDuration", &self.max_stream_duration),
            ("maxConnectionDuration", &self.max_connection_duration),
            ("requestHeadersTimeout", &self.request_headers_timeout),
        ];
        if fields.iter().all(|(_, d)| d.is_none()) {
            errs.add(
                path,
                "at least one timeout in this section should be configured",
            );
        }
        for (name, d) in fields {
            check_duration(&path.field(name), d, errs);
        }
    }
}

impl Conf {
    /// Timeouts that live on Envoy routes; the rest live on clusters, listeners
    /// or the connection manager and cannot be narrowed to a route or a client.
    fn check_route_level_only(&self, path: &Path, why: &str, errs: &mut ValidationErrors) {
        let mut forbid = |p: Path, set: bool| {
            if set {
                errs.add(&p, why);
            }
        };
        forbid(
            path.field("connectionTimeout"),
            self.connection_timeout.is_some(),
        );
        forbid(path.field("idleTimeout"), self.idle_timeout.is_some());
        if let Some(http) = &self.http {
            let h = path.field("http");
            forbid(
                h.field("maxStreamDuration"),
                http.max_stream_duration.is_some(),
            );
            forbid(
                h.field("maxConnectionDuration"),
                http.max_connection_duration.is_some(),
            );
            forbid(
                h.field("requestHeadersTimeout"),
                http.request_headers_timeout.is_some(),
            );
        }
    }
}

impl Validate for MeshTimeout {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let top = top_or_mesh(&self.target_ref);
        let gateway_or_route = matches!(top.kind, MeshGateway | MeshHTTPRoute);
        let to = if gateway_or_route { TO_GATEWAY } else { TO };
        let sections = Sections::new(&self.to, &self.from, &self.rules);
        let kinds = Kinds::new(TOP, to, FROM);
        let kinds = check_directional(path, &self.target_ref, &sections, kinds, true, errs);
        check_to(path, &self.to, kinds, errs);
        if gateway_or_route {
            for (field, set) in [
                ("from", non_empty(&self.from)),
                ("rules", non_empty(&self.rules)),
            ] {
                if set {
                    errs.add(
                        &path.field(field),
                        format!(
                            "{MUST_NOT_BE_DEFINED} when spec.targetRef.kind is {}",
                            top.kind
                        ),
                    );
                }
            }
        } else {
            check_from(path, &self.from, kinds, errs);
            check_match_rules(path, &self.rules, errs);
        }

        if top.kind == MeshHTTPRoute {
            let why = "can't be specified when top-level TargetRef is referencing MeshHTTPRoute";
            for (i, item) in self.to.iter().flatten().enumerate() {
                let p = path.field("to").index(i).field("default");
                item.default.check_route_level_only(&p, why, errs);
            }
        } else {
            let why = "can't be specified when to[].targetRef is referencing MeshHTTPRoute";
            for (i, item) in self.to.iter().flatten().enumerate() {
                if item.target_ref.kind == MeshHTTPRoute {
                    let p = path.field("to").index(i).field("default");
                    item.default.check_route_level_only(&p, why, errs);
                }
            }
        }
        if !gateway_or_route {
            let why = "can't be specified in a rule with 'matches': only http.requestTimeout and \
                       http.streamIdleTimeout can depend on the client";
            for (i, rule) in self.rules.iter().flatten().enumerate() {
                if rule.has_matches() {
                    let p = path.field("rules").index(i).field("default");
                    rule.default.check_route_level_only(&p, why, errs);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshTimeout>(yaml)
    }

    // Kuma's default mesh timeout policy is valid as written.
    #[test]
    fn default_policy_is_valid() {
        let yaml = r#"
targetRef: {kind: Mesh, proxyTypes: [Sidecar]}
to:
  - targetRef: {kind: Mesh}
    default: {connectionTimeout: 5s, idleTimeout: 1h, http: {requestTimeout: 15s, streamIdleTimeout: 30m}}
from:
  - targetRef: {kind: Mesh}
    default: {connectionTimeout: 10s, idleTimeout: 2h, http: {requestTimeout: "0", streamIdleTimeout: 1h, maxStreamDuration: "0"}}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
    }

    // `from` only takes kind Mesh; `rules` cannot sit beside `to` or `from`.
    #[test]
    fn from_kinds_and_rules_exclusivity() {
        let yaml = r#"
to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1h}}]
from: [{targetRef: {kind: MeshService, name: web}, default: {idleTimeout: 1h}}]
rules: [{default: {idleTimeout: 1h}}]
"#;
        assert_eq!(
            fields(yaml),
            vec!["spec.from", "spec.to", "spec.from[0].targetRef.kind"]
        );
    }

    // Connection timeout must be positive; empty confs and sections are refused.
    #[test]
    fn conf_rules() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default: {connectionTimeout: "0", idleTimeout: -1s}
  - targetRef: {kind: Mesh}
    default: {}
  - targetRef: {kind: Mesh}
    default: {http: {}}
"#;
        assert_eq!(
            fields(yaml),
            vec![
                "spec.to[0].default.connectionTimeout",
                "spec.to[0].default.idleTimeout",
                "spec.to[1].default",
                "spec.to[2].default.http",
            ]
        );
    }

    // Route-scoped confs (MeshHTTPRoute, or rules with matches) keep route-level timeouts only.
    #[test]
    fn route_level_only() {
        let yaml = r#"
targetRef: {kind: MeshHTTPRoute, name: r}
to: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1h, http: {requestTimeout: 1s, maxStreamDuration: 1s}}}]
from: [{targetRef: {kind: Mesh}, default: {idleTimeout: 1h}}]
"#;
        assert_eq!(
            fields(yaml),
            vec![
                "spec.from",
                "spec.to[0].default.idleTimeout",
                "spec.to[0].default.http.maxStreamDuration",
            ]
        );
        let yaml = r#"
targetRef: {kind: Dataplane, labels: {app: web}}
rules:
  - matches: [{spiffeID: {type: Prefix, value: "spiffe://default.zone.mesh.local/ns/legacy"}}]
    default: {connectionTimeout: 1s, http: {requestTimeout: 2s}}
  - default: {connectionTimeout: 1s}
"#;
        assert_eq!(
            fields(yaml),
            vec!["spec.rules[0].default.connectionTimeout"]
        );
    }
}
