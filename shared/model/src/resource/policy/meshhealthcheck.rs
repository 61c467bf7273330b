//! `MeshHealthCheck`: active health checks of outbound clusters (tcp, http or grpc
//! checker picked by the destination's protocol). Outbound only.
//! Kuma `meshhealthcheck/api/v1alpha1`.

use super::checks::{
    MUST_BE_DEFINED, at_least_one, check_file_path, check_int_percentage, check_positive,
    check_positive_duration, check_status_code, is_base64,
};
use super::common::{Kinds, To, check_outbound};
use super::header::HeaderModifier;
use super::intorstring::IntOrString;
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::Duration;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To<Conf>>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    /// Between checks (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Wait for an answer (default 15s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Failed checks before a host is unhealthy (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<i32>,
    /// Passed checks before a host is healthy again (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<i32>,
    /// Random delay before the first check only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_jitter: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_jitter: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_jitter_percent: Option<i32>,
    /// Deprecated here: use MeshCircuitBreaker's outlierDetection.healthyPanicThreshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_panic_threshold: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_traffic_on_panic: Option<bool>,
    /// File Envoy writes health-check events to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_log_health_check_failures: Option<bool>,
    /// Interval used while the cluster has never seen traffic (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_traffic_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealthCheck>,
    /// Keep the checker's connection between checks (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_connection: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Base64 payload sent to the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// Base64 blocks expected back, in order; none means connect-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Requested path (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers_to_add: Option<HeaderModifier>,
    /// Statuses counted as healthy (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_statuses: Option<Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcHealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// `:authority` of the check request (default: the cluster name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
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

impl Validate for MeshHealthCheck {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let kinds = Kinds::new(TOP, TO, &[]);
        check_outbound(path, &self.target_ref, &self.to, kinds, errs);
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (name, d) in [
            ("interval", &self.interval),
            ("timeout", &self.timeout),
            ("initialJitter", &self.initial_jitter),
            ("intervalJitter", &self.interval_jitter),
            ("noTrafficInterval", &self.no_traffic_interval),
        ] {
            check_positive_duration(&path.field(name), d, errs);
        }
        check_positive(
            &path.field("unhealthyThreshold"),
            self.unhealthy_threshold,
            errs,
        );
        check_positive(
            &path.field("healthyThreshold"),
            self.healthy_threshold,
            errs,
        );
        check_int_percentage(
            &path.field("intervalJitterPercent"),
            self.interval_jitter_percent,
            errs,
        );
        if let Some(t) = &self.healthy_panic_threshold {
            t.check_percentage(&path.field("healthyPanicThreshold"), true, errs);
        }
        if let Some(p) = &self.event_log_path {
            check_file_path(&path.field("eventLogPath"), p, errs);
        }
        if self.tcp.is_none() && self.http.is_none() && self.grpc.is_none() {
            errs.add(path, at_least_one(&["http", "tcp", "grpc"]));
        }
        self.tcp.validate(&path.field("tcp"), errs);
        self.http.validate(&path.field("http"), errs);
    }
}

impl Validate for TcpHealthCheck {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        const NOT_BASE64: &str = "must be base64 encoded";
        if self.send.as_deref().is_some_and(|s| !is_base64(s)) {
            errs.add(&path.field("send"), NOT_BASE64);
        }
        for (i, block) in self.receive.iter().flatten().enumerate() {
            if !is_base64(block) {
                errs.add(&path.field("receive").index(i), NOT_BASE64);
            }
        }
    }
}

impl Validate for HttpHealthCheck {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.path.as_deref().is_some_and(str::is_empty) {
            errs.add(&path.field("path"), MUST_BE_DEFINED);
        }
        self.request_headers_to_add
            .validate(&path.field("requestHeadersToAdd"), errs);
        for (i, status) in self.expected_statuses.iter().flatten().enumerate() {
            check_status_code(
                &path.field("expectedStatuses").index(i),
                i64::from(*status),
                errs,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshHealthCheck>(yaml)
    }

    // A typical HTTP + gRPC + TCP health check is valid.
    #[test]
    fn full_conf_is_valid() {
        let yaml = r#"
targetRef: {kind: MeshService, name: web}
to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      interval: 10s
      timeout: 2s
      unhealthyThreshold: 3
      healthyThreshold: 1
      intervalJitterPercent: 10
      healthyPanicThreshold: "62.5"
      eventLogPath: /tmp/hc.log
      http: {path: /health, expectedStatuses: [200, 204], requestHeadersToAdd: {add: [{name: x-a, value: b}]}}
      tcp: {send: cGluZw==, receive: [cG9uZw==]}
      grpc: {serviceName: backend, authority: backend.mesh}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
    }

    // Intervals and timeouts must be above zero; thresholds positive; statuses 100–599.
    #[test]
    fn numbers() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      interval: "0"
      timeout: 0s
      unhealthyThreshold: 0
      healthyThreshold: -1
      intervalJitterPercent: 101
      eventLogPath: relative/file
      http: {path: "", expectedStatuses: [200, 99, 600]}
      tcp: {send: "not base64!"}
"#;
        let p = "spec.to[0].default";
        let expected: Vec<String> = [
            "interval",
            "timeout",
            "unhealthyThreshold",
            "healthyThreshold",
            "intervalJitterPercent",
            "eventLogPath",
            "tcp.send",
            "http.path",
            "http.expectedStatuses[1]",
            "http.expectedStatuses[2]",
        ]
        .iter()
        .map(|f| format!("{p}.{f}"))
        .collect();
        assert_eq!(fields(yaml), expected);
    }

    // A conf needs a checker; `to` needs items; health checks are outbound only.
    #[test]
    fn needs_checker_and_destination() {
        assert_eq!(
            fields("to: [{targetRef: {kind: Mesh}, default: {interval: 5s}}]"),
            vec!["spec.to[0].default"]
        );
        assert_eq!(fields("targetRef: {kind: Mesh}"), vec!["spec.to"]);
        assert_eq!(
            fields(
                "targetRef: {kind: Dataplane, name: dp-1, sectionName: http}\nto: [{targetRef: {kind: Mesh}, default: {tcp: {}}}]"
            ),
            vec!["spec.targetRef.sectionName"]
        );
    }
}
