//! MeshAccessLog (Kuma order 600): access logs of inbound (`from[]` / `rules[]`)
//! and outbound (`to[]`) traffic, written to a file, a TCP collector (through
//! kuma-dp) or an OpenTelemetry collector.
//! Kuma: `pkg/plugins/policies/meshaccesslog/api/v1alpha1`.

use super::checks::{is_unix_file_path, required};
use super::common::{From, Kinds, Sections, To, check_directional, check_from, check_to};
use super::matches::{SpiffeIdError, check_spiffe_id};
use super::otel::{BackendResourceRef, check_endpoint_or_ref};
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::net;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use TargetRefKind::*;
use serde::{Deserialize, Serialize};

pub use super::matches::{Match, SniMatch, SniMatchType, SpiffeIdMatch, SpiffeIdMatchType};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshAccessLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To<Conf>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<From<Conf>>>,
    /// Inbound logs (2.10+), optionally only for clients that `matches` select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
}

/// `spec.rules[]` with the optional client matchers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<Match>>,
    #[serde(default)]
    pub default: Conf,
}

/// `default`: where logs go. `backends` must be given (it may be empty, turning logs off).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backends: Option<Vec<Backend>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendType {
    File,
    Tcp,
    OpenTelemetry,
}

/// One log sink; `type` says which of the blocks configures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub r#type: BackendType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_telemetry: Option<OtelBackend>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileBackend {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpBackend {
    /// Collector address, e.g. `127.0.0.1:5000` or `http://logstash:5000`.
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtelBackend {
    /// Collector `host:port` (port defaults to 4317).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendResourceRef>,
    /// A raw string or an OTLP AnyValue; may contain Envoy placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<JsonValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FormatType {
    #[default]
    Plain,
    Json,
}

/// Log line format: a `plain` template or `json` key/value pairs, per `type`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Format {
    pub r#type: FormatType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Vec<JsonValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_empty_values: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
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
pub const TO_KINDS: &[TargetRefKind] = &[
    Mesh,
    MeshService,
    MeshExternalService,
    MeshMultiZoneService,
    MeshHTTPRoute,
];
pub const FROM_KINDS: &[TargetRefKind] = &[Mesh];

impl Validate for MeshAccessLog {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let sections = Sections::new(&self.to, &self.from, &self.rules);
        // A gateway logs all it sends alike: only a Mesh-wide `to`.
        let to_kinds = match &self.target_ref {
            Some(tr) if tr.kind == MeshGateway => &[Mesh][..],
            _ => TO_KINDS,
        };
        let kinds = Kinds::new(TOP_KINDS, to_kinds, FROM_KINDS);
        let kinds = check_directional(path, &self.target_ref, &sections, kinds, true, errs);
        check_to(path, &self.to, kinds, errs);
        check_from(path, &self.from, kinds, errs);
        for (i, rule) in self.rules.iter().flatten().enumerate() {
            let p = path.field("rules").index(i);
            for (j, m) in rule.matches.iter().flatten().enumerate() {
                check_match(&p.field("matches").index(j), m, errs);
            }
            rule.default.validate(&p.field("default"), errs);
        }
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let Some(backends) = &self.backends else {
            errs.add(&path.field("backends"), "must be defined");
            return;
        };
        for (i, b) in backends.iter().enumerate() {
            b.validate(&path.field("backends").index(i), errs);
        }
    }
}

impl Validate for Backend {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.r#type {
            BackendType::File => {
                let Some((p, f)) = required(path, "file", &self.file, errs) else {
                    return;
                };
                if let Some(fmt) = &f.format {
                    fmt.validate(&p.field("format"), errs);
                }
                if !is_unix_file_path(&f.path) {
                    errs.add(&p.field("path"), "file backend requires a valid path");
                }
            }
            BackendType::Tcp => {
                let Some((p, t)) = required(path, "tcp", &self.tcp, errs) else {
                    return;
                };
                if let Some(fmt) = &t.format {
                    fmt.validate(&p.field("format"), errs);
                }
                if !net::is_url(&t.address) {
                    errs.add(&p.field("address"), "tcp backend requires valid address");
                }
            }
            BackendType::OpenTelemetry => {
                let Some((p, o)) = required(path, "openTelemetry", &self.open_telemetry, errs)
                else {
                    return;
                };
                check_endpoint_or_ref(&p, &o.endpoint, &o.backend_ref, errs);
                for (i, a) in o.attributes.iter().flatten().enumerate() {
                    if a.key.is_empty() {
                        errs.add(
                            &p.field("attributes").index(i).field("key"),
                            "key cannot be empty",
                        );
                    }
                }
            }
        }
    }
}

impl Validate for Format {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.r#type {
            FormatType::Plain => match self.plain.as_deref() {
                None => errs.add(&path.field("plain"), "must be defined"),
                Some("") => errs.add(&path.field("plain"), "must not be empty"),
                Some(_) => {}
            },
            FormatType::Json => {
                let Some((p, items)) = required(path, "json", &self.json, errs) else {
                    return;
                };
                if items.is_empty() {
                    errs.add(&p, "must not be empty");
                }
                for (i, kv) in items.iter().enumerate() {
                    let ip = p.index(i);
                    if kv.key.is_empty() {
                        errs.add(&ip.field("key"), "key cannot be empty");
                    }
                    if kv.value.is_empty() {
                        errs.add(&ip.field("value"), "value cannot be empty");
                    }
                    // Kuma splices key and value into a JSON object verbatim.
                    let doc = format!("{{\"{}\": \"{}\"}}", kv.key, kv.value);
                    if serde_json::from_str::<serde_json::Value>(&doc).is_err() {
                        errs.add(&ip, "is not a valid JSON object");
                    }
                }
            }
        }
    }
}

/// MeshAccessLog's own reading of a client matcher: an empty one is fine, a bad
/// SPIFFE ID is reported at `spiffeID` (with empty segments and a trailing slash
/// worded as one problem), a bad SNI in Kubernetes' words.
fn check_match(path: &Path, m: &Match, errs: &mut ValidationErrors) {
    if let Some(s) = &m.spiffe_id
        && let Err(e) = check_spiffe_id(&s.value)
    {
        let reason = match e {
            SpiffeIdError::EmptySegment | SpiffeIdError::TrailingSlash => {
                "path cannot contain empty segments or a trailing slash"
            }
            other => other.reason(),
        };
        errs.add(
            &path.field("spiffeID"),
            format!("must be a valid Spiffe ID: {reason}"),
        );
    }
    if let Some(s) = &m.sni {
        let p = path.field("sni").field("value");
        if s.value.is_empty() {
            errs.add(&p, "must be set");
        } else if let Some(reason) = net::dns1123_subdomain_violation(&s.value) {
            errs.add(&p, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshAccessLog>(yaml)
    }

    // Kuma's documented example (tcp json to the mesh, file plain for a service) is valid.
    #[test]
    fn valid_example() {
        let f = fields(
            "targetRef: {kind: Mesh}\nfrom:\n- targetRef: {kind: Mesh}\n  default:\n    backends:\n    - type: Tcp\n      tcp:\n        address: 127.0.0.1:5000\n        format: {type: Json, json: [{key: start_time, value: '%START_TIME%'}]}\nto:\n- targetRef: {kind: MeshService, name: web}\n  default:\n    backends:\n    - type: File\n      file: {path: /tmp/logs.txt, format: {type: Plain, plain: '[%START_TIME%]'}}\n    - type: OpenTelemetry\n      openTelemetry: {endpoint: otel:4317, body: {kvlistValue: {values: []}}, attributes: [{key: mesh, value: '%KUMA_MESH%'}]}\n",
        );
        assert!(f.is_empty(), "{f:?}");
    }

    // Backend blocks must match their type; paths, addresses and formats are checked.
    #[test]
    fn backend_rules() {
        let f = fields(
            "from:\n- targetRef: {kind: Mesh}\n  default:\n    backends:\n    - type: File\n    - type: File\n      file: {path: '#bad', format: {type: Json, json: [{key: '\"', value: x}, {key: '', value: ''}]}}\n    - type: Tcp\n      tcp: {address: not_valid_url, format: {type: Plain}}\n    - type: OpenTelemetry\n      openTelemetry: {}\n",
        );
        let b = "spec.from[0].default.backends";
        assert_eq!(
            f,
            vec![
                format!("{b}[0].file"),
                format!("{b}[1].file.format.json[0]"),
                format!("{b}[1].file.format.json[1].key"),
                format!("{b}[1].file.format.json[1].value"),
                format!("{b}[1].file.path"),
                format!("{b}[2].tcp.format.plain"),
                format!("{b}[2].tcp.address"),
                format!("{b}[3].openTelemetry"),
            ]
        );
    }

    // rules[] excludes to[] and from[]; a conf without backends is refused; matches are checked.
    #[test]
    fn rules_section() {
        let f = fields(
            "targetRef: {kind: Dataplane, sectionName: http}\nto:\n- targetRef: {kind: Mesh}\n  default: {backends: []}\nrules:\n- matches:\n  - spiffeID: {type: Exact, value: 'http://x'}\n  - sni: {type: Exact, value: Bad_Host}\n  default: {}\n",
        );
        assert_eq!(
            f,
            vec![
                "spec.to",
                "spec.rules[0].matches[0].spiffeID",
                "spec.rules[0].matches[1].sni.value",
                "spec.rules[0].default.backends",
            ]
        );
    }

    // SPIFFE IDs follow go-spiffe's syntax.
    #[test]
    fn spiffe_ids() {
        assert!(check_spiffe_id("spiffe://default/ns/web/sa/default").is_ok());
        assert!(check_spiffe_id("spiffe://mesh.local").is_ok());
        for bad in [
            "spiffe://",
            "spiffe://Upper/x",
            "spiffe://td/x/",
            "spiffe://td//x",
            "spiffe://td/./x",
            "x://td",
        ] {
            assert!(check_spiffe_id(bad).is_err(), "{bad}");
        }
    }
}
