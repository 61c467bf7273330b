//! MeshMetric (Kuma order 1500, single item): which sidecar and application
//! metrics the selected proxies publish, and to which backends (a Prometheus
//! scrape endpoint on the proxy, or push to an OpenTelemetry collector).
//! Kuma: `pkg/plugins/policies/meshmetric/api/v1alpha1`.

use super::checks::{check_positive_duration, check_regex, required};
use super::common::check_single_item;
use super::otel::{BackendResourceRef, check_endpoint_or_ref};
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::Duration;
use crate::resource::net;
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use TargetRefKind::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshMetric {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub default: Conf,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<Sidecar>,
    /// Application endpoints kuma-dp scrapes and merges with Envoy's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<Application>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<Backend>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Profiles>,
    /// RE2 filter on sidecar metric names (older form, kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Also publish metrics that never changed (zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_unused: Option<bool>,
}

/// Predefined profiles (concatenated across policies) plus include / exclude selectors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_profiles: Option<Vec<Profile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<Selector>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<Selector>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProfileName {
    All,
    #[default]
    Basic,
    None,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: ProfileName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SelectorType {
    #[default]
    Prefix,
    Regex,
    Exact,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub r#type: SelectorType,
    pub r#match: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Defaults to `/metrics/prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default)]
    pub port: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendType {
    Prometheus,
    OpenTelemetry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub r#type: BackendType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<OpenTelemetryBackend>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusBackend {
    /// Identifies the backend to MADS-based discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Defaults to 5670.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Defaults to `/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PrometheusTls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TlsMode {
    #[default]
    Disabled,
    #[serde(rename = "ProvidedTLS")]
    ProvidedTls,
    #[serde(rename = "ActiveMTLSBackend")]
    ActiveMtlsBackend,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TlsMode>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetryBackend {
    /// Collector `host:port` (no scheme).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendResourceRef>,
    /// How often metrics are pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<Duration>,
}

/// Top-level kinds over Kuma 2.9–2.14.
pub const TOP_KINDS: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshService,
    MeshServiceSubset,
    MeshGateway,
    Dataplane,
];

impl Validate for MeshMetric {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_single_item(path, &self.target_ref, TOP_KINDS, &self.default, errs);
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(s) = &self.sidecar {
            s.validate(&path.field("sidecar"), errs);
        }
        for (i, app) in self.applications.iter().flatten().enumerate() {
            let p = path.field("applications").index(i);
            validate::check_port(&p.field("port"), app.port, errs);
        }
        for (i, b) in self.backends.iter().flatten().enumerate() {
            b.validate(&path.field("backends").index(i), errs);
        }
    }
}

impl Validate for Sidecar {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(re) = &self.regex {
            check_regex(&path.field("regex"), re, "invalid regex", errs);
        }
        let Some(profiles) = &self.profiles else {
            return;
        };
        let pp = path.field("profiles");
        for (field, list) in [
            ("exclude", &profiles.exclude),
            ("include", &profiles.include),
        ] {
            for (i, sel) in list.iter().flatten().enumerate() {
                let sp = pp.field(field).index(i).field("match");
                if sel.r#match.is_empty() {
                    errs.add(&sp, "must not be empty");
                } else if sel.r#type == SelectorType::Regex {
                    check_regex(&sp, &sel.r#match, "invalid regex", errs);
                }
            }
        }
    }
}

impl Validate for Backend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.r#type {
            BackendType::Prometheus => {
                let Some((p, prom)) = required(path, "prometheus", &self.prometheus, errs) else {
                    return;
                };
                if let Some(port) = prom.port {
                    validate::check_port(&p.field("port"), port, errs);
                }
                if let Some(mp) = &prom.path
                    && !mp.starts_with('/')
                {
                    errs.add(&p.field("path"), "must be an absolute path");
                }
            }
            BackendType::OpenTelemetry => {
                let Some((p, o)) = required(path, "openTelemetry", &self.open_telemetry, errs)
                else {
                    return;
                };
                if let Some(e) = check_endpoint_or_ref(&p, &o.endpoint, &o.backend_ref, errs) {
                    let ep = p.field("endpoint");
                    if e.starts_with("http://") || e.starts_with("https://") {
                        errs.add(&ep, "must not use schema");
                    } else if !net::is_url(e) {
                        errs.add(&ep, "must be a valid url");
                    }
                }
                check_positive_duration(&p.field("refreshInterval"), &o.refresh_interval, errs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_messages;

    fn violations(yaml: &str) -> Vec<String> {
        spec_messages::<MeshMetric>(yaml)
    }

    // Profiles, applications and both backend kinds, as documented, validate.
    #[test]
    fn valid_conf() {
        let v = violations(
            "default:\n  sidecar:\n    includeUnused: false\n    profiles:\n      appendProfiles: [{name: Basic}]\n      include: [{type: Regex, match: 'envoy_cluster_.*'}]\n      exclude: [{type: Prefix, match: envoy_listener_}]\n  applications:\n  - {name: app, path: /metrics, address: 127.0.0.1, port: 8080}\n  backends:\n  - {type: Prometheus, prometheus: {clientId: main, port: 5670, path: /metrics, tls: {mode: ActiveMTLSBackend}}}\n  - {type: OpenTelemetry, openTelemetry: {endpoint: 'otel-collector:4317', refreshInterval: 30s}}\n",
        );
        assert!(v.is_empty(), "{v:?}");
    }

    // Regexes are RE2-checked; ports are in range; OTel endpoints have no scheme.
    #[test]
    fn collects_all() {
        let v = violations(
            "default:\n  sidecar:\n    regex: '(x'\n    profiles:\n      include: [{type: Regex, match: '[a-'}, {type: Exact, match: ''}]\n  applications: [{port: 0}]\n  backends:\n  - {type: Prometheus}\n  - {type: Prometheus, prometheus: {port: 70000}}\n  - {type: OpenTelemetry, openTelemetry: {endpoint: 'http://otel:4317', refreshInterval: 0s}}\n",
        );
        let fields: Vec<&str> = v.iter().map(|s| s.split(": ").next().unwrap()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.default.sidecar.regex",
                "spec.default.sidecar.profiles.include[0].match",
                "spec.default.sidecar.profiles.include[1].match",
                "spec.default.applications[0].port",
                "spec.default.backends[0].prometheus",
                "spec.default.backends[1].prometheus.port",
                "spec.default.backends[2].openTelemetry.endpoint",
                "spec.default.backends[2].openTelemetry.refreshInterval",
            ]
        );
    }

    // Profile names and selector types are Kuma's enums; anything else fails to parse.
    #[test]
    fn enums() {
        assert!(
            serde_yaml_ng::from_str::<MeshMetric>(
                "default: {sidecar: {profiles: {appendProfiles: [{name: all}]}}}"
            )
            .is_err()
        );
        let m: MeshMetric = serde_yaml_ng::from_str(
            "default: {sidecar: {profiles: {appendProfiles: [{name: None}]}}}",
        )
        .unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"default":{"sidecar":{"profiles":{"appendProfiles":[{"name":"None"}]}}}}"#
        );
    }
}
