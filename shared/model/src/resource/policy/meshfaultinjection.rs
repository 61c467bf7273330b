//! `MeshFaultInjection`: HTTP aborts, delays and bandwidth limits injected on
//! sidecar inbounds (`from[]` or 2.10+ `rules[]`), or on gateway outbounds
//! (`to[]`). Kuma `meshfaultinjection/api/v1alpha1`.

use super::checks::{MUST_BE_DEFINED, at_least_one, check_bandwidth, check_status_code};
use super::common::{From, InboundOrGateway, Kinds, Sections, To, check_inbound_or_gateway};
use super::intorstring::IntOrString;
use super::matches::MatchRule;
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::Duration;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshFaultInjection {
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
    /// One Envoy fault filter per entry, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<FaultInjectionConf>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultInjectionConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bandwidth: Option<ResponseBandwidthConf>,
}

/// Answer some requests with a status instead of forwarding them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<IntOrString>,
}

/// Delay some responses.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<IntOrString>,
}

/// Slow some responses down to `limit` (`10kbps`, `1Mbps`, `5Gbps`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseBandwidthConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<IntOrString>,
}

const TOP: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshGateway,
    MeshService,
    MeshServiceSubset,
    Dataplane,
];
const TO: &[TargetRefKind] = &[Mesh];
const FROM: &[TargetRefKind] = &[Mesh, MeshSubset, MeshService, MeshServiceSubset];

impl Validate for MeshFaultInjection {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let sections = Sections::new(&self.to, &self.from, &self.rules);
        let kinds = Kinds::new(TOP, TO, FROM);
        check_inbound_or_gateway(
            path,
            &self.target_ref,
            &sections,
            kinds,
            InboundOrGateway::FaultInjection,
            errs,
        );
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        self.http.validate(&path.field("http"), errs);
    }
}

fn check_percentage(path: &Path, pct: &Option<IntOrString>, errs: &mut ValidationErrors) {
    match pct {
        None => errs.add(&path.field("percentage"), MUST_BE_DEFINED),
        Some(p) => p.check_percentage(&path.field("percentage"), true, errs),
    }
}

impl Validate for FaultInjectionConf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if *self == FaultInjectionConf::default() {
            errs.add(path, at_least_one(&["abort", "delay", "responseBandwidth"]));
        }
        if let Some(abort) = &self.abort {
            let p = path.field("abort");
            match abort.http_status {
                None => errs.add(&p.field("httpStatus"), MUST_BE_DEFINED),
                Some(s) => check_status_code(&p.field("httpStatus"), i64::from(s), errs),
            }
            check_percentage(&p, &abort.percentage, errs);
        }
        if let Some(delay) = &self.delay {
            let p = path.field("delay");
            match &delay.value {
                None => errs.add(&p.field("value"), MUST_BE_DEFINED),
                Some(d) => d.check(&p.field("value"), errs),
            }
            check_percentage(&p, &delay.percentage, errs);
        }
        if let Some(bw) = &self.response_bandwidth {
            let p = path.field("responseBandwidth");
            check_bandwidth(&p.field("limit"), bw.limit.as_deref().unwrap_or(""), errs);
            check_percentage(&p, &bw.percentage, errs);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshFaultInjection>(yaml)
    }

    // All three faults, with int and decimal-string percentages, are valid.
    #[test]
    fn faults_are_valid() {
        let yaml = r#"
targetRef: {kind: MeshService, name: backend}
from:
  - targetRef: {kind: MeshSubset, tags: {version: v2}}
    default:
      http:
        - abort: {httpStatus: 503, percentage: 10}
        - delay: {value: 2s, percentage: "12.5"}
        - responseBandwidth: {limit: 100kbps, percentage: 100}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
    }

    // Every field of every fault is checked, and all violations are reported.
    #[test]
    fn fault_fields() {
        let yaml = r#"
targetRef: {kind: MeshService, name: backend}
rules:
  - matches: [{spiffeID: {type: Exact, value: "not-a-spiffe-id"}}]
    default:
      http:
        - abort: {httpStatus: 600, percentage: "101"}
          delay: {percentage: 5}
          responseBandwidth: {limit: 10 kb, percentage: abc}
        - {}
"#;
        let p = "spec.rules[0].default.http";
        assert_eq!(
            fields(yaml),
            vec![
                "spec.rules[0].matches[0].spiffeID.value".to_string(),
                format!("{p}[0].abort.httpStatus"),
                format!("{p}[0].abort.percentage"),
                format!("{p}[0].delay.value"),
                format!("{p}[0].responseBandwidth.limit"),
                format!("{p}[0].responseBandwidth.percentage"),
                format!("{p}[1]"),
            ]
        );
    }

    // Gateways take faults on `to` (kind Mesh only); sidecars on from / rules.
    #[test]
    fn gateway_split() {
        let yaml = r#"
targetRef: {kind: MeshGateway, name: edge}
to: [{targetRef: {kind: MeshService, name: backend}, default: {http: [{delay: {value: 1s, percentage: 1}}]}}]
from: [{targetRef: {kind: Mesh}, default: {http: []}}]
"#;
        assert_eq!(fields(yaml), vec!["spec.from", "spec.to[0].targetRef.kind"]);
    }
}
