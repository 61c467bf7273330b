//! MeshTrace (Kuma order 700, single item): request tracing on every HTTP
//! listener of the selected proxies, to one Zipkin, Datadog or OpenTelemetry
//! collector. Kuma: `pkg/plugins/policies/meshtrace/api/v1alpha1`.

use super::checks::required;
use super::common::check_single_item;
use super::intorstring::IntOrString;
use super::otel::{BackendResourceRef, check_endpoint_or_ref};
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::net;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use TargetRefKind::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshTrace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub default: Conf,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    /// Zero or one backend (Envoy takes a single tracing provider). Required:
    /// an empty list turns tracing off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<Backend>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendType {
    Zipkin,
    Datadog,
    OpenTelemetry,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub r#type: BackendType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<ZipkinBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<OpenTelemetryBackend>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ZipkinApiVersion {
    #[default]
    HttpJson,
    HttpProto,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZipkinBackend {
    /// Collector URL, e.g. `http://jaeger-collector:9411/api/v2/spans`.
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id128bit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<ZipkinApiVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_span_context: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatadogBackend {
    /// `http://host:port`, nothing else.
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_service: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenTelemetryBackend {
    /// The collector's gRPC `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendResourceRef>,
}

/// Sampling percentages (int or decimal string, 0–100; Kuma's default is 100).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<IntOrString>,
}

/// A custom span tag from a literal or a request header, exactly one of them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderTag>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderTag {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
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

impl Validate for MeshTrace {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_single_item(path, &self.target_ref, TOP_KINDS, &self.default, errs);
        super::checks::check_no_listener_tags(path, &self.target_ref, errs);
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let bp = path.field("backends");
        match self.backends.as_deref() {
            None => errs.add(&bp, "must be defined"),
            Some([]) => {}
            Some([b]) => b.validate(&bp.index(0), errs),
            Some(_) => errs.add(&bp, "must have zero or one backend defined"),
        }
        for (i, t) in self.tags.iter().flatten().enumerate() {
            let p = path.field("tags").index(i);
            if t.name.is_empty() {
                errs.add(&p.field("name"), "must not be empty");
            }
            if t.header.is_some() == t.literal.is_some() {
                errs.add(&p, "tag must have only one type defined: header, literal");
            }
        }
        if let Some(s) = &self.sampling {
            let sp = path.field("sampling");
            for (field, v) in [
                ("client", &s.client),
                ("random", &s.random),
                ("overall", &s.overall),
            ] {
                if let Some(v) = v {
                    v.check_percentage_with(
                        &sp.field(field),
                        true,
                        "string is not a number",
                        "must be between 0 and 100",
                        errs,
                    );
                }
            }
        }
    }
}

impl Validate for Backend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.r#type {
            BackendType::Datadog => {
                if let Some((p, d)) = required(path, "datadog", &self.datadog, errs) {
                    check_datadog_url(&p.field("url"), &d.url, errs);
                }
            }
            BackendType::Zipkin => {
                if let Some((p, z)) = required(path, "zipkin", &self.zipkin, errs) {
                    if z.url.is_empty() {
                        errs.add(&p.field("url"), "must not be empty");
                    } else if !net::is_url(&z.url) {
                        errs.add(&p.field("url"), "must be a valid url");
                    }
                }
            }
            BackendType::OpenTelemetry => {
                let Some((p, o)) = required(path, "openTelemetry", &self.open_telemetry, errs)
                else {
                    return;
                };
                check_endpoint_or_ref(&p, &o.endpoint, &o.backend_ref, errs);
            }
        }
    }
}

/// Datadog agents take `http://host:port` only (dd-trace-go's rule).
fn check_datadog_url(path: &Path, url: &str, errs: &mut ValidationErrors) {
    let Some(u) = net::split_url(url).filter(|u| !u.host.is_empty()) else {
        errs.add(path, "must be a valid url");
        return;
    };
    if u.scheme != "http" {
        errs.add(path, "scheme must be http");
    }
    match u.port {
        None | Some("") => errs.add(path, "port must be defined"),
        Some(p) if net::parse_port(p).is_none() => errs.add(path, "port must be a valid (1-65535)"),
        Some(_) => {}
    }
    for (name, set) in [
        ("user", u.user.is_some()),
        ("path", !u.path.is_empty()),
        ("query", u.query.is_some_and(|q| !q.is_empty())),
        ("fragment", u.fragment.is_some_and(|f| !f.is_empty())),
    ] {
        if set {
            errs.add(path, format!("{name} must not be defined"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_messages;

    fn violations(yaml: &str) -> Vec<String> {
        spec_messages::<MeshTrace>(yaml)
    }

    // Each backend type with its documented fields is valid.
    #[test]
    fn valid_backends() {
        for b in [
            "{type: Zipkin, zipkin: {url: 'http://jaeger:9411/api/v2/spans', traceId128bit: true, apiVersion: httpProto, sharedSpanContext: false}}",
            "{type: Datadog, datadog: {url: 'http://127.0.0.1:8126', splitService: true}}",
            "{type: OpenTelemetry, openTelemetry: {endpoint: 'otel-collector:4317'}}",
            "{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend, name: otel}}}",
        ] {
            let v = violations(&format!("default:\n  backends: [{b}]\n"));
            assert!(v.is_empty(), "{b}: {v:?}");
        }
    }

    // At most one backend; backends must be present.
    #[test]
    fn backend_count() {
        assert_eq!(
            violations("default: {}\n"),
            vec!["spec.default.backends: must be defined"]
        );
        let two = "default:\n  backends:\n  - {type: Zipkin, zipkin: {url: 'http://a:1'}}\n  - {type: Zipkin, zipkin: {url: 'http://b:1'}}\n";
        assert_eq!(
            violations(two),
            vec!["spec.default.backends: must have zero or one backend defined"]
        );
    }

    // Datadog URLs are http://host:port only; every extra part is named.
    #[test]
    fn datadog_url() {
        let v = violations(
            "default:\n  backends: [{type: Datadog, datadog: {url: 'https://dd/path?x=1'}}]\n",
        );
        let reasons: Vec<&str> = v.iter().map(|s| s.rsplit(": ").next().unwrap()).collect();
        assert_eq!(
            reasons,
            vec![
                "scheme must be http",
                "port must be defined",
                "path must not be defined",
                "query must not be defined"
            ]
        );
    }

    // Sampling is 0–100 int-or-string; tags need a name and exactly one source.
    #[test]
    fn sampling_and_tags() {
        let v = violations(
            "default:\n  backends: []\n  sampling: {overall: 101, client: 'x', random: '0.5'}\n  tags:\n  - {name: team, literal: core}\n  - {name: '', header: {name: x-user}, literal: y}\n  - {name: env}\n",
        );
        assert_eq!(
            v,
            vec![
                "spec.default.tags[1].name: must not be empty",
                "spec.default.tags[1]: tag must have only one type defined: header, literal",
                "spec.default.tags[2]: tag must have only one type defined: header, literal",
                "spec.default.sampling.client: string is not a number",
                "spec.default.sampling.overall: must be between 0 and 100",
            ]
        );
    }

    // OTel endpoints are gRPC `host:port`: a URL or a path is refused (Kuma 2.14).
    #[test]
    fn otel_endpoint() {
        for e in [
            "grpc://otel:4317",
            "https://otel:4318",
            "otel:4318/v1/traces",
        ] {
            let v = violations(&format!(
                "default:\n  backends: [{{type: OpenTelemetry, openTelemetry: {{endpoint: '{e}'}}}}]\n"
            ));
            assert_eq!(
                v,
                vec![
                    "spec.default.backends[0].openTelemetry.endpoint: must be in host:port format, not a URL"
                ],
                "{e}"
            );
        }
    }
}
