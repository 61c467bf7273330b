//! The Mesh's legacy observability backends: `tracing`, `logging` and `metrics`
//! (the last one also the type of a Dataplane's `metrics` override).

use super::checks::{DefaultBackend, check_backend_list};
use crate::resource::Tags;
use crate::resource::net;
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<TracingBackend>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracingBackend {
    #[serde(default)]
    pub name: String,
    /// Percentage of traces sent, 0.0–100.0 (Kuma default 100). A double in Kuma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<f64>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub backend_type: Option<TracingBackendType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<TracingBackendConf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TracingBackendType {
    Zipkin,
    Datadog,
}

/// Zipkin fields (`url`, `traceId128bit`, `apiVersion`, `sharedSpanContext`) or
/// Datadog fields (`address`, `port`, `splitService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracingBackendConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(
        default,
        rename = "traceId128bit",
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_id_128bit: Option<bool>,
    /// `httpJson` (default), `httpJsonV1` or `httpProto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_span_context: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_service: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<LoggingBackend>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingBackend {
    #[serde(default)]
    pub name: String,
    /// Envoy access-log format string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub backend_type: Option<LoggingBackendType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<LoggingBackendConf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoggingBackendType {
    File,
    Tcp,
}

/// `path` for a file backend, `address` (`host:port`) for a tcp backend.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingBackendConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<MetricsBackend>,
}

/// A metrics backend; on a Dataplane, an override of the mesh's enabled one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsBackend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub backend_type: Option<MetricsBackendType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<PrometheusConf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsBackendType {
    Prometheus,
}

/// `PrometheusMetricsBackendConfig`. Kuma's defaults: port 5670, path `/metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    #[serde(default, rename = "skipMTLS", skip_serializing_if = "Option::is_none")]
    pub skip_mtls: Option<bool>,
    /// Application endpoints kuma-dp scrapes and merges into its own output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregate: Vec<PrometheusAggregate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy: Option<PrometheusEnvoy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<PrometheusTls>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusAggregate {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusEnvoy {
    /// Regex Envoy filters its stats with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_only: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PrometheusTlsMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PrometheusTlsMode {
    /// The control plane's mesh certificates secure the listener (default).
    #[default]
    #[serde(rename = "activeMTLSBackend")]
    ActiveMtlsBackend,
    /// The user provides certificate files to kuma-dp.
    #[serde(rename = "providedTLS")]
    ProvidedTls,
    #[serde(rename = "disabled")]
    Disabled,
}

impl Validate for Tracing {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
        let default = DefaultBackend {
            field: "defaultBackend",
            name: self.default_backend.as_deref(),
            unknown: "has to be set to one of the tracing backend in mesh",
        };
        check_backend_list(path, &self.backends, &names, default, errs);
    }
}

impl Validate for TracingBackend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.sampling.is_some_and(|s| !(0.0..=100.0).contains(&s)) {
            errs.add(&path.field("sampling"), "has to be in [0.0 - 100.0] range");
        }
        let conf = self.conf.clone().unwrap_or_default();
        let p = path.field("conf");
        match self.backend_type {
            None => errs.add(&path.field("type"), "must be defined"),
            Some(TracingBackendType::Zipkin) => {
                check_zipkin_url(&p.field("url"), conf.url.as_deref(), errs);
                if let Some(v) = conf.api_version.as_deref()
                    && !["httpJsonV1", "httpJson", "httpProto"].contains(&v)
                {
                    errs.add(
                        &p.field("apiVersion"),
                        "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto",
                    );
                }
                let foreign = [
                    ("address", conf.address.is_some()),
                    ("port", conf.port.is_some()),
                    ("splitService", conf.split_service.is_some()),
                ];
                refuse_foreign(&p, &foreign, "zipkin", errs);
            }
            Some(TracingBackendType::Datadog) => {
                match conf.address.as_deref() {
                    None | Some("") => errs.add(&p.field("address"), "cannot be empty"),
                    Some(_) => {}
                }
                validate::check_port(&p.field("port"), conf.port.unwrap_or(0), errs);
                let foreign = [
                    ("url", conf.url.is_some()),
                    ("traceId128bit", conf.trace_id_128bit.is_some()),
                    ("apiVersion", conf.api_version.is_some()),
                    ("sharedSpanContext", conf.shared_span_context.is_some()),
                ];
                refuse_foreign(&p, &foreign, "datadog", errs);
            }
        }
    }
}

/// Kuma: the URL must parse as a request URI and name its port explicitly.
fn check_zipkin_url(path: &Path, url: Option<&str>, errs: &mut ValidationErrors) {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        errs.add(path, "cannot be empty");
        return;
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        errs.add(path, "invalid URL");
        return;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    if !scheme_ok || host_port.is_empty() || url.contains(char::is_whitespace) {
        errs.add(path, "invalid URL");
        return;
    }
    match net::split_host_port(host_port) {
        Some((host, port)) if !host.is_empty() => {
            if net::parse_port(port).is_none() {
                errs.add(path, "port has to be in the range [1, 65535]");
            }
        }
        _ => errs.add(path, "port has to be explicitly specified"),
    }
}

/// Refuses `conf` fields that belong to another backend type.
fn refuse_foreign(path: &Path, fields: &[(&str, bool)], ty: &str, errs: &mut ValidationErrors) {
    for (name, set) in fields {
        if *set {
            errs.add(
                &path.field(name),
                format!("is not allowed for a {ty} backend"),
            );
        }
    }
}

impl Validate for Logging {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
        let default = DefaultBackend {
            field: "defaultBackend",
            name: self.default_backend.as_deref(),
            unknown: "has to be set to one of the logging backend in mesh",
        };
        check_backend_list(path, &self.backends, &names, default, errs);
    }
}

impl Validate for LoggingBackend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.format.as_deref().is_some_and(|f| f.trim().is_empty()) {
            errs.add(&path.field("format"), "cannot be empty");
        }
        let conf = self.conf.clone().unwrap_or_default();
        let p = path.field("conf");
        match self.backend_type {
            None => errs.add(&path.field("type"), "must be defined"),
            Some(LoggingBackendType::File) => {
                if conf.path.as_deref().is_none_or(str::is_empty) {
                    errs.add(&p.field("path"), "cannot be empty");
                }
                refuse_foreign(&p, &[("address", conf.address.is_some())], "file", errs);
            }
            Some(LoggingBackendType::Tcp) => {
                match conf.address.as_deref() {
                    None | Some("") => errs.add(&p.field("address"), "cannot be empty"),
                    Some(a) => match net::split_host_port(a) {
                        Some((host, port)) if !host.is_empty() && !port.is_empty() => {}
                        _ => errs.add(&p.field("address"), "has to be in format of HOST:PORT"),
                    },
                }
                refuse_foreign(&p, &[("path", conf.path.is_some())], "tcp", errs);
            }
        }
    }
}

impl Validate for Metrics {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let names: Vec<&str> = self
            .backends
            .iter()
            .map(|b| b.name.as_deref().unwrap_or_default())
            .collect();
        let default = DefaultBackend {
            field: "enabledBackend",
            name: self.enabled_backend.as_deref(),
            unknown: "has to be set to one of the backends in the mesh",
        };
        check_backend_list(path, &self.backends, &names, default, errs);
    }
}

impl Validate for MetricsBackend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.backend_type.is_none() {
            errs.add(
                &path.field("type"),
                "unknown backend type. Available backends: \"prometheus\"",
            );
        }
        self.conf.validate(&path.field("conf"), errs);
    }
}

impl Validate for PrometheusConf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(port) = self.port {
            validate::check_port(&path.field("port"), port, errs);
        }
        check_http_path(&path.field("path"), self.path.as_deref(), errs);
        validate::check_tags(&path.field("tags"), &self.tags, false, errs);
        // `skipMTLS` is the old spelling of `tls.mode`; both only when they agree.
        if let (Some(skip), Some(tls)) = (self.skip_mtls, &self.tls) {
            let agree = match tls.mode.unwrap_or_default() {
                PrometheusTlsMode::ActiveMtlsBackend => !skip,
                PrometheusTlsMode::Disabled => skip,
                PrometheusTlsMode::ProvidedTls => false,
            };
            if !agree {
                errs.add(
                    path,
                    "skipMTLS and tls configuration cannot be defined together",
                );
            }
        }
        let mut seen = BTreeSet::new();
        for (i, a) in self.aggregate.iter().enumerate() {
            let p = path.field("aggregate").index(i);
            if a.name.is_empty() {
                errs.add(&p.field("name"), "cannot be empty");
            } else if !seen.insert(a.name.as_str()) {
                errs.add(
                    &p.field("name"),
                    format!("{:?} name is already used for another aggregate", a.name),
                );
            }
            validate::check_port(&p.field("port"), a.port, errs);
            check_http_path(&p.field("path"), a.path.as_deref(), errs);
            if let Some(address) = a.address.as_deref()
                && !net::is_ip(address)
                && !net::is_dns_name(address)
            {
                errs.add(
                    &p.field("address"),
                    "address has to be valid IP address or domain name",
                );
            }
        }
    }
}

/// An HTTP path, when set, is absolute.
fn check_http_path(path: &Path, value: Option<&str>, errs: &mut ValidationErrors) {
    if let Some(v) = value
        && (!v.starts_with('/') || v.contains(char::is_whitespace))
    {
        errs.add(path, "must be a valid URL path starting with /");
    }
}
