//! `MeshCircuitBreaker`: connection limits and outlier detection (passive health
//! checking), on outbound clusters (`to[]`) and local inbound clusters (`from[]`
//! or 2.10+ `rules[]`). Kuma `meshcircuitbreaker/api/v1alpha1`.

use super::checks::{
    MUST_BE_DEFINED, at_least_one, check_int_percentage, check_positive, check_positive_duration,
};
use super::common::{
    From, Kinds, Rule, Sections, To, check_directional, check_from, check_rules, check_to,
};
use super::intorstring::IntOrString;
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::Duration;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshCircuitBreaker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<From<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule<Conf>>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limits: Option<ConnectionLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

/// Envoy `circuit_breakers.thresholds` (priority DEFAULT).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_pools: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// True switches outlier detection off for the selected traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Time between ejection sweeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Ejection time, multiplied by the number of times the host was ejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// Most hosts (in %) that can be ejected (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_external_and_local_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectors: Option<Detectors>,
    /// Panic threshold in % (Envoy default 50; 0 disables panic mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<IntOrString>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detectors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_failures: Option<ConsecutiveFailures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_failures: Option<ConsecutiveFailures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_origin_failures: Option<ConsecutiveFailures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<SuccessRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_percentage: Option<FailurePercentage>,
}

/// `totalFailures`, `gatewayFailures` and `localOriginFailures` all count
/// consecutive failures of their kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsecutiveFailures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuccessRate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_hosts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_volume: Option<u32>,
    /// Ejection threshold = mean − stdev × factor (Envoy gets factor × 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard_deviation_factor: Option<IntOrString>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailurePercentage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_hosts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_volume: Option<u32>,
    /// Failure % at or above which a host is ejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
}

const TOP: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshGateway,
    MeshService,
    MeshServiceSubset,
    Dataplane,
];
const TO: &[TargetRefKind] = &[Mesh, MeshService, MeshExternalService, MeshMultiZoneService];
const FROM: &[TargetRefKind] = &[Mesh];

impl Validate for MeshCircuitBreaker {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let sections = Sections::new(&self.to, &self.from, &self.rules);
        let kinds = Kinds::new(TOP, TO, FROM);
        let kinds = check_directional(path, &self.target_ref, &sections, kinds, false, errs);
        check_to(path, &self.to, kinds, errs);
        check_from(path, &self.from, kinds, errs);
        check_rules(path, &self.rules, errs);
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.connection_limits.is_none() && self.outlier_detection.is_none() {
            errs.add(
                path,
                "at least one of: 'connectionLimits' or 'outlierDetection' should be configured",
            );
        }
        self.connection_limits
            .validate(&path.field("connectionLimits"), errs);
        self.outlier_detection
            .validate(&path.field("outlierDetection"), errs);
    }
}

impl Validate for ConnectionLimits {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (name, v) in [
            ("maxConnections", self.max_connections),
            ("maxConnectionPools", self.max_connection_pools),
            ("maxPendingRequests", self.max_pending_requests),
            ("maxRetries", self.max_retries),
            ("maxRequests", self.max_requests),
        ] {
            check_positive(&path.field(name), v, errs);
        }
    }
}

impl Validate for OutlierDetection {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_positive_duration(&path.field("interval"), &self.interval, errs);
        check_positive_duration(
            &path.field("baseEjectionTime"),
            &self.base_ejection_time,
            errs,
        );
        check_int_percentage(
            &path.field("maxEjectionPercent"),
            self.max_ejection_percent,
            errs,
        );
        if let Some(t) = &self.healthy_panic_threshold {
            t.check_percentage(&path.field("healthyPanicThreshold"), true, errs);
        }
        // Kuma insists on detectors; a block that only switches detection off needs none.
        match &self.detectors {
            None if self.disabled != Some(true) => {
                errs.add(&path.field("detectors"), MUST_BE_DEFINED)
            }
            None => {}
            Some(d) => d.validate(&path.field("detectors"), errs),
        }
    }
}

impl Validate for Detectors {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if *self == Detectors::default() {
            errs.add(
                path,
                at_least_one(&[
                    "totalFailures",
                    "gatewayFailures",
                    "localOriginFailures",
                    "successRate",
                    "failurePercentage",
                ]),
            );
        }
        for (name, d) in [
            ("totalFailures", &self.total_failures),
            ("gatewayFailures", &self.gateway_failures),
            ("localOriginFailures", &self.local_origin_failures),
        ] {
            if let Some(d) = d {
                check_positive(&path.field(name).field("consecutive"), d.consecutive, errs);
            }
        }
        if let Some(sr) = &self.success_rate {
            let p = path.field("successRate");
            check_positive(&p.field("minimumHosts"), sr.minimum_hosts, errs);
            check_positive(&p.field("requestVolume"), sr.request_volume, errs);
            if let Some(f) = &sr.standard_deviation_factor {
                f.check_positive(&p.field("standardDeviationFactor"), errs);
            }
        }
        if let Some(fp) = &self.failure_percentage {
            let p = path.field("failurePercentage");
            check_positive(&p.field("minimumHosts"), fp.minimum_hosts, errs);
            check_positive(&p.field("requestVolume"), fp.request_volume, errs);
            check_int_percentage(&p.field("threshold"), fp.threshold, errs);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshCircuitBreaker>(yaml)
    }

    // Kuma's default circuit breaker policy is valid as written.
    #[test]
    fn default_policy_is_valid() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      connectionLimits: {maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
    }

    // Every detector's numbers are checked; an empty detectors block is refused.
    #[test]
    fn detectors() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      outlierDetection:
        interval: "0"
        maxEjectionPercent: 101
        healthyPanicThreshold: "100.5"
        detectors:
          totalFailures: {consecutive: 0}
          gatewayFailures: {consecutive: 5}
          localOriginFailures: {consecutive: 0}
          successRate: {minimumHosts: 0, requestVolume: 10, standardDeviationFactor: "0.0"}
          failurePercentage: {threshold: 150}
  - targetRef: {kind: Mesh}
    default: {outlierDetection: {detectors: {}}}
  - targetRef: {kind: Mesh}
    default: {outlierDetection: {disabled: true}}
"#;
        let p = "spec.to[0].default.outlierDetection";
        assert_eq!(
            fields(yaml),
            vec![
                format!("{p}.interval"),
                format!("{p}.maxEjectionPercent"),
                format!("{p}.healthyPanicThreshold"),
                format!("{p}.detectors.totalFailures.consecutive"),
                format!("{p}.detectors.localOriginFailures.consecutive"),
                format!("{p}.detectors.successRate.minimumHosts"),
                format!("{p}.detectors.successRate.standardDeviationFactor"),
                format!("{p}.detectors.failurePercentage.threshold"),
                "spec.to[1].default.outlierDetection.detectors".to_string(),
            ]
        );
    }

    // Limits must be positive; an external service may be a `to` of any scope
    // (Kuma 2.14).
    #[test]
    fn limits_and_kinds() {
        let yaml = r#"
targetRef: {kind: MeshService, name: web}
to:
  - targetRef: {kind: MeshExternalService, name: httpbin}
    default: {connectionLimits: {maxConnections: 0, maxRetries: 1}}
from:
  - targetRef: {kind: MeshSubset, tags: {app: a}}
    default: {}
"#;
        assert_eq!(
            fields(yaml),
            vec![
                "spec.to[0].default.connectionLimits.maxConnections",
                "spec.from[0].targetRef.kind",
                "spec.from[0].default",
            ]
        );
    }

    // rules[] replaces from[] but may sit beside to[].
    #[test]
    fn rules_beside_to() {
        let yaml = r#"
targetRef: {kind: Dataplane, labels: {app: web}, sectionName: http}
to: [{targetRef: {kind: Mesh}, default: {connectionLimits: {maxConnections: 10}}}]
rules: [{default: {connectionLimits: {maxConnections: 10}}}]
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
        let with_from = format!(
            "{yaml}from: [{{targetRef: {{kind: Mesh}}, default: {{connectionLimits: {{maxRetries: 1}}}}}}]"
        );
        assert_eq!(fields(&with_from), vec!["spec.from"]);
    }
}
