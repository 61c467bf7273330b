//! `MeshRateLimit`: local (per-proxy) rate limits, HTTP requests and TCP
//! connections. Sidecars apply it on inbounds (`from[]` or 2.10+ `rules[]`),
//! gateways on outbounds (`to[]`). Kuma `meshratelimit/api/v1alpha1`.

use super::checks::{MUST_BE_DEFINED, at_least_one, check_status_code};
use super::common::{From, InboundOrGateway, Kinds, Sections, To, check_inbound_or_gateway};
use super::header::HeaderModifier;
use super::matches::MatchRule;
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::Duration;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshRateLimit {
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Local>,
}

/// Limits enforced by each proxy on its own (Envoy local rate limit filters).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Local {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<LocalHttp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<LocalTcp>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalHttp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Requests allowed per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_rate_limit: Option<OnRateLimit>,
}

/// The answer to a limited request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnRateLimit {
    /// Status code (Envoy's default is 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// Response headers: `set` overwrites, `add` appends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeaderModifier>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalTcp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Connections allowed per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_rate: Option<Rate>,
}

/// A token bucket: `num` tokens refilled every `interval`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// Envoy's shortest token-bucket fill interval.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

const TOP: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshGateway,
    MeshService,
    MeshServiceSubset,
    MeshHTTPRoute,
    Dataplane,
];
const TO: &[TargetRefKind] = &[Mesh];
const FROM: &[TargetRefKind] = &[Mesh];

impl Validate for MeshRateLimit {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let sections = Sections::new(&self.to, &self.from, &self.rules);
        let kinds = Kinds::new(TOP, TO, FROM);
        check_inbound_or_gateway(
            path,
            &self.target_ref,
            &sections,
            kinds,
            InboundOrGateway::RateLimit,
            errs,
        );
        // A TCP limit counts connections before any client identity is known.
        for (i, rule) in self.rules.iter().flatten().enumerate() {
            let by_identity = rule.matches.iter().flatten().any(|m| m.spiffe_id.is_some());
            if by_identity && rule.default.local.as_ref().is_some_and(|l| l.tcp.is_some()) {
                errs.add(
                    &path
                        .field("rules")
                        .index(i)
                        .field("default")
                        .field("local")
                        .field("tcp"),
                    "can't be specified when matches contain spiffeID because this field \
                     cannot be conditioned on source identity",
                );
            }
        }
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let path = path.field("local");
        let Some(local) = &self.local else {
            errs.add(&path, MUST_BE_DEFINED);
            return;
        };
        if local.http.is_none() && local.tcp.is_none() {
            errs.add(&path, at_least_one(&["tcp", "http"]));
        }
        if let Some(http) = &local.http {
            let p = path.field("http");
            if http.disabled.is_none()
                && http.request_rate.is_none()
                && http.on_rate_limit.is_none()
            {
                errs.add(
                    &p,
                    at_least_one(&["disabled", "requestRate", "onRateLimit"]),
                );
            }
            http.request_rate.validate(&p.field("requestRate"), errs);
            if let Some(on) = &http.on_rate_limit {
                let op = p.field("onRateLimit");
                if let Some(status) = on.status {
                    check_status_code(&op.field("status"), i64::from(status), errs);
                }
                on.headers.validate(&op.field("headers"), errs);
            }
        }
        if let Some(tcp) = &local.tcp {
            let p = path.field("tcp");
            if tcp.disabled.is_none() && tcp.connection_rate.is_none() {
                errs.add(&p, at_least_one(&["disabled", "connectionRate"]));
            }
            tcp.connection_rate
                .validate(&p.field("connectionRate"), errs);
        }
    }
}

impl Validate for Rate {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.num {
            None => errs.add(&path.field("num"), MUST_BE_DEFINED),
            Some(0) => errs.add(&path.field("num"), "must be greater than 0"),
            Some(_) => {}
        }
        let p = path.field("interval");
        match self.interval.as_ref().map(Duration::parse) {
            None => errs.add(&p, MUST_BE_DEFINED),
            Some(Err(e)) => errs.add(&p, e.to_string()),
            Some(Ok(d)) if d < MIN_INTERVAL => {
                errs.add(&p, "must be greater than or equal to 50ms")
            }
            Some(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshRateLimit>(yaml)
    }

    // A sidecar inbound limit with an onRateLimit answer is valid.
    #[test]
    fn inbound_limit_is_valid() {
        let yaml = r#"
targetRef: {kind: Dataplane, labels: {app: backend}}
rules:
  - matches: [{spiffeID: {type: Exact, value: "spiffe://default.zone.mesh.local/ns/demo/sa/web"}}]
    default:
      local:
        http:
          requestRate: {num: 100, interval: 1s}
          onRateLimit: {status: 429, headers: {set: [{name: x-kuma-rate-limited, value: "true"}]}}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
        // A TCP connection limit is counted before the client is known.
        let tcp = format!("{yaml}        tcp: {{connectionRate: {{num: 10, interval: 50ms}}}}\n");
        assert_eq!(fields(&tcp), ["spec.rules[0].default.local.tcp"]);
    }

    // Buckets need a positive count and an interval of at least 50ms.
    #[test]
    fn rates() {
        let yaml = r#"
targetRef: {kind: MeshService, name: backend}
from:
  - targetRef: {kind: Mesh}
    default:
      local:
        http: {requestRate: {num: 0, interval: 49ms}, onRateLimit: {status: 42}}
        tcp: {connectionRate: {}}
  - targetRef: {kind: Mesh}
    default: {local: {http: {}}}
  - targetRef: {kind: Mesh}
    default: {}
"#;
        let p = "spec.from[0].default.local";
        assert_eq!(
            fields(yaml),
            vec![
                format!("{p}.http.requestRate.num"),
                format!("{p}.http.requestRate.interval"),
                format!("{p}.http.onRateLimit.status"),
                format!("{p}.tcp.connectionRate.num"),
                format!("{p}.tcp.connectionRate.interval"),
                "spec.from[1].default.local.http".to_string(),
                "spec.from[2].default.local".to_string(),
            ]
        );
    }

    // Inbound sections need a scope without gateways; `to` needs one with them.
    #[test]
    fn gateway_split() {
        let rule = "[{default: {local: {tcp: {disabled: true}}}}]";
        // No targetRef means Mesh, which includes gateways.
        assert_eq!(fields(&format!("rules: {rule}")), vec!["spec.rules"]);
        let sidecars = format!("targetRef: {{kind: Mesh, proxyTypes: [Sidecar]}}\nrules: {rule}");
        assert!(fields(&sidecars).is_empty());
        let to = "[{targetRef: {kind: Mesh}, default: {local: {tcp: {disabled: true}}}}]";
        assert_eq!(
            fields(&format!(
                "targetRef: {{kind: MeshService, name: web}}\nto: {to}"
            )),
            vec!["spec.to"]
        );
        assert!(
            fields(&format!(
                "targetRef: {{kind: MeshGateway, name: edge}}\nto: {to}"
            ))
            .is_empty()
        );
        assert_eq!(
            fields(&format!(
                "targetRef: {{kind: MeshService, name: web}}\nto: {to}\nrules: {rule}"
            )),
            vec!["spec.to", "spec.to"]
        );
    }
}
