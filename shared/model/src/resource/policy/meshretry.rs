//! `MeshRetry`: outbound retry policies per destination protocol (tcp, http,
//! grpc). Outbound only: there is no `from` or `rules`. Kuma `meshretry/api/v1alpha1`.

use super::checks::{MUST_BE_DEFINED, MUST_NOT_BE_EMPTY, check_duration, check_positive_duration};
use super::common::{Kinds, To, check_outbound, top_or_mesh};
use super::header::{HeaderMatch, check_header_name};
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::validate::{Path, Validate, ValidationErrors};
use crate::resource::{Duration, Tags};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshRetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To<Conf>>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Grpc>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tcp {
    /// Connection attempts before giving up (Envoy `tcp_proxy.max_connect_attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connect_attempt: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    /// Retries of a failed, retriable request (default 1; 0 turns retries off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    /// Timeout of each attempt (default: the route timeout); 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_back_off: Option<RateLimitedBackOff>,
    /// Conditions ([`HTTP_RETRY_ON`]), `HttpMethod*` names, or HTTP status codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retriable_response_headers: Option<Vec<HeaderMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retriable_request_headers: Option<Vec<HeaderMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selection: Option<Vec<Predicate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selection_max_attempts: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grpc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_back_off: Option<RateLimitedBackOff>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<GrpcRetryOn>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrpcRetryOn {
    Canceled,
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    Unavailable,
}

/// Exponential back-off between retries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackOff {
    /// Default 25ms; must be above zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<Duration>,
    /// Default 10 × baseInterval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<Duration>,
}

/// Back-off driven by a rate-limit reset header of the upstream's answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitedBackOff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_headers: Option<Vec<ResetHeader>>,
    /// Default 300s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetHeader {
    pub name: String,
    pub format: RateLimitFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateLimitFormat {
    Seconds,
    UnixTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PredicateType {
    OmitPreviousHosts,
    OmitHostsWithTags,
    OmitPreviousPriorities,
}

/// How hosts are picked again when a request is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Predicate {
    pub predicate: PredicateType,
    /// Hosts whose metadata matches are skipped (OmitHostsWithTags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// Priority load refresh rate (OmitPreviousPriorities; Kuma's CRD default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_frequency: Option<i32>,
}

/// Named HTTP retry conditions (Kuma spells `5xx` both ways across versions).
pub const HTTP_RETRY_ON: &[&str] = &[
    "5xx",
    "GatewayError",
    "Reset",
    "Retriable4xx",
    "ConnectFailure",
    "EnvoyRatelimited",
    "RefusedStream",
    "Http3PostConnectFailure",
    "HttpMethodConnect",
    "HttpMethodDelete",
    "HttpMethodGet",
    "HttpMethodHead",
    "HttpMethodOptions",
    "HttpMethodPatch",
    "HttpMethodPost",
    "HttpMethodPut",
    "HttpMethodTrace",
];

/// Status codes with a registered reason phrase (Go's `http.StatusText`), which
/// is what Kuma accepts as a numeric `retryOn` entry.
fn is_known_status(code: u16) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426
        | 428 | 429 | 431 | 451 | 500..=508 | 510 | 511)
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
const TO_GATEWAY: &[TargetRefKind] = &[Mesh, MeshExternalService];

impl Validate for MeshRetry {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let top = top_or_mesh(&self.target_ref);
        let to = if matches!(top.kind, MeshGateway | MeshHTTPRoute) {
            TO_GATEWAY
        } else {
            TO
        };
        check_outbound(
            path,
            &self.target_ref,
            &self.to,
            Kinds::new(TOP, to, &[]),
            errs,
        );
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.tcp.is_none() && self.http.is_none() && self.grpc.is_none() {
            errs.add(
                path,
                "at least one of the 'tcp', 'http', 'grpc' must be specified",
            );
        }
        if let Some(tcp) = &self.tcp {
            match tcp.max_connect_attempt {
                None => errs.add(&path.field("tcp"), MUST_NOT_BE_EMPTY),
                Some(0) => errs.add(
                    &path.field("tcp").field("maxConnectAttempt"),
                    "must be greater than 0",
                ),
                Some(_) => {}
            }
        }
        self.http.validate(&path.field("http"), errs);
        self.grpc.validate(&path.field("grpc"), errs);
    }
}

/// What the http and grpc sections share: something set, a valid per-try
/// timeout and back-offs.
fn check_attempts(
    path: &Path,
    empty: bool,
    per_try_timeout: &Option<Duration>,
    back_off: &Option<BackOff>,
    rate_limited_back_off: &Option<RateLimitedBackOff>,
    errs: &mut ValidationErrors,
) {
    if empty {
        errs.add(path, MUST_NOT_BE_EMPTY);
    }
    check_duration(&path.field("perTryTimeout"), per_try_timeout, errs);
    back_off.validate(&path.field("backOff"), errs);
    rate_limited_back_off.validate(&path.field("rateLimitedBackOff"), errs);
}

impl Validate for Http {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_attempts(
            path,
            *self == Http::default(),
            &self.per_try_timeout,
            &self.back_off,
            &self.rate_limited_back_off,
            errs,
        );
        for (i, cond) in self.retry_on.iter().flatten().enumerate() {
            let known = HTTP_RETRY_ON.contains(&cond.as_str())
                || cond.parse::<u16>().is_ok_and(is_known_status);
            if !known {
                errs.add(
                    &path.field("retryOn").index(i),
                    format!("unknown item '{cond}'"),
                );
            }
        }
        self.retriable_response_headers
            .validate(&path.field("retriableResponseHeaders"), errs);
        self.retriable_request_headers
            .validate(&path.field("retriableRequestHeaders"), errs);
        let mut priorities = false;
        for (i, p) in self.host_selection.iter().flatten().enumerate() {
            let at = path.field("hostSelection").index(i);
            match p.predicate {
                PredicateType::OmitHostsWithTags => {
                    if p.tags.as_ref().is_none_or(|t| t.is_empty()) {
                        errs.add(&at.field("tags"), MUST_BE_DEFINED);
                    }
                }
                PredicateType::OmitPreviousPriorities => {
                    if priorities {
                        errs.add(
                            &at.field("predicate"),
                            "OmitPreviousPriorities must only be specified once",
                        );
                    }
                    priorities = true;
                    if p.update_frequency.is_none_or(|f| f <= 0) {
                        errs.add(
                            &at.field("updateFrequency"),
                            "must be defined and greater than zero",
                        );
                    }
                }
                PredicateType::OmitPreviousHosts => {}
            }
        }
        if self.host_selection_max_attempts.is_some_and(|n| n < 0) {
            errs.add(
                &path.field("hostSelectionMaxAttempts"),
                "must not be negative",
            );
        }
    }
}

impl Validate for Grpc {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_attempts(
            path,
            *self == Grpc::default(),
            &self.per_try_timeout,
            &self.back_off,
            &self.rate_limited_back_off,
            errs,
        );
    }
}

impl Validate for BackOff {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.base_interval.is_none() && self.max_interval.is_none() {
            errs.add(path, MUST_NOT_BE_EMPTY);
        }
        check_positive_duration(&path.field("baseInterval"), &self.base_interval, errs);
        check_positive_duration(&path.field("maxInterval"), &self.max_interval, errs);
        if let (Some(base), Some(max)) = (&self.base_interval, &self.max_interval)
            && let (Ok(b), Ok(m)) = (base.parse(), max.parse())
            && m < b
        {
            errs.add(
                &path.field("maxInterval"),
                "must be greater than or equal to baseInterval",
            );
        }
    }
}

impl Validate for RateLimitedBackOff {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let p = path.field("resetHeaders");
        match &self.reset_headers {
            None => errs.add(&p, MUST_BE_DEFINED),
            Some(list) if list.is_empty() => errs.add(&p, MUST_NOT_BE_EMPTY),
            Some(list) => {
                for (i, h) in list.iter().enumerate() {
                    check_header_name(&p.index(i).field("name"), &h.name, errs);
                }
            }
        }
        check_positive_duration(&path.field("maxInterval"), &self.max_interval, errs);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshRetry>(yaml)
    }

    // Kuma's default retry policy is valid as written.
    #[test]
    fn default_policy_is_valid() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      tcp: {maxConnectAttempt: 5}
      http: {numRetries: 5, perTryTimeout: 16s, backOff: {baseInterval: 25ms, maxInterval: 250ms}}
      grpc: {numRetries: 5, perTryTimeout: 16s, backOff: {baseInterval: 25ms, maxInterval: 250ms}}
"#;
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
    }

    // MeshRetry is outbound only: `from` is not a field of it (ignored, and the
    // API warns), and `to` is required.
    #[test]
    fn outbound_only() {
        let read = crate::resource::Resource::read(serde_json::json!({
            "type": "MeshRetry", "name": "r", "mesh": "m",
            "spec": {"targetRef": {"kind": "Mesh"}, "from": [],
                     "to": [{"targetRef": {"kind": "Mesh"}, "default": {"tcp": {"maxConnectAttempt": 1}}}]}
        }))
        .unwrap();
        assert_eq!(read.unknown, ["spec.from"]);
        assert_eq!(fields("targetRef: {kind: Mesh}"), vec!["spec.to"]);
    }

    // retryOn takes Kuma's names (case matters: `5XX` is not `5xx`) and
    // registered status codes, nothing else.
    #[test]
    fn retry_on() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      http: {retryOn: [5XX, GatewayError, HttpMethodGet, "503", "429", "599", Bogus, 5xx]}
"#;
        assert_eq!(
            fields(yaml),
            vec![
                "spec.to[0].default.http.retryOn[0]",
                "spec.to[0].default.http.retryOn[5]",
                "spec.to[0].default.http.retryOn[6]",
            ]
        );
        assert!(
            serde_yaml_ng::from_str::<Grpc>("retryOn: [Unavailable, NotAThing]").is_err(),
            "grpc retryOn is a closed enum"
        );
    }

    // Back-offs need positive intervals, max not below base; reset headers are required.
    #[test]
    fn back_offs() {
        let yaml = r#"
to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      http:
        backOff: {baseInterval: 1s, maxInterval: 500ms}
        rateLimitedBackOff: {maxInterval: "0"}
      grpc:
        backOff: {}
        rateLimitedBackOff: {resetHeaders: [{name: Retry-After, format: Seconds}]}
"#;
        assert_eq!(
            fields(yaml),
            vec![
                "spec.to[0].default.http.backOff.maxInterval",
                "spec.to[0].default.http.rateLimitedBackOff.resetHeaders",
                "spec.to[0].default.http.rateLimitedBackOff.maxInterval",
                "spec.to[0].default.grpc.backOff",
                "spec.to[0].default.grpc.rateLimitedBackOff.resetHeaders[0].name",
            ]
        );
    }

    // Host selection: tags for OmitHostsWithTags, one OmitPreviousPriorities with a frequency.
    #[test]
    fn host_selection() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      tcp: {maxConnectAttempt: 0}
      http:
        hostSelection:
          - predicate: OmitHostsWithTags
          - predicate: OmitPreviousPriorities
            updateFrequency: 2
          - predicate: OmitPreviousPriorities
        hostSelectionMaxAttempts: -1
"#;
        assert_eq!(
            fields(yaml),
            vec![
                "spec.to[0].default.tcp.maxConnectAttempt",
                "spec.to[0].default.http.hostSelection[0].tags",
                "spec.to[0].default.http.hostSelection[2].predicate",
                "spec.to[0].default.http.hostSelection[2].updateFrequency",
                "spec.to[0].default.http.hostSelectionMaxAttempts",
            ]
        );
    }

    // A gateway-scoped retry only configures Mesh-wide or external destinations.
    #[test]
    fn gateway_to_kinds() {
        let yaml = r#"
targetRef: {kind: MeshGateway, name: edge}
to: [{targetRef: {kind: MeshService, name: backend}, default: {tcp: {maxConnectAttempt: 1}}}]
"#;
        assert_eq!(fields(yaml), vec!["spec.to[0].targetRef.kind"]);
    }
}
