//! Kuma's `MeshExternalService` (2.14): a destination outside the mesh with its
//! endpoints, matched by port and protocol, reached through the zone egress over
//! mesh mTLS; the egress originates the TLS `tls` asks for. The TLS data sources
//! take both shapes Kuma 2.14.6 accepts: the flat one (`secret`, `inline`,
//! `inlineString`) and `SecureDataSource` (`type` + `secretRef` /
//! `insecureInline` / `file` / `envVar`).

use super::validate::{self, Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshExternalServiceSpec {
    /// Required.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_: Option<Match>,
    /// A plugin's configuration (Kong Mesh); Weft runs no extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<Endpoint>>,
    /// Boxed: it is most of the resource's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<Tls>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// Only `HostnameGenerator` (the default).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    #[serde(default)]
    pub port: u32,
    /// `tcp` (default), `grpc`, `http`, `http2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// A DNS name or an IP.
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u32,
    /// Envoy priority (0 first, up to 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_renegotiation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsVersion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// `Secured` (default), `SkipSAN`, `SkipCA`, `SkipAll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_alt_names: Option<Vec<SanMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<TlsSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<TlsSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<TlsSource>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SanMatch {
    /// `Exact` (default) or `Prefix`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
    #[serde(default)]
    pub value: String,
}

/// A TLS data source in either of Kuma 2.14.6's shapes.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsSource {
    // The flat shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_string: Option<String>,
    // The SecureDataSource shape.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<NamedRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_inline: Option<InlineValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<NamedRef>,
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSource")
            .field("secret", &self.secret)
            .field("type", &self.source_type)
            .field("secretRef", &self.secret_ref)
            .field("inline", &self.inline.as_ref().map(|_| "<redacted>"))
            .field(
                "inlineString",
                &self.inline_string.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineValue {
    #[serde(default)]
    pub value: String,
}

impl std::fmt::Debug for InlineValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineValue(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathRef {
    #[serde(default)]
    pub path: String,
}

/// Where a TLS source's bytes come from, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source<'a> {
    /// A Secret of the mesh, by name.
    Secret(&'a str),
    /// Base64 text.
    Base64(&'a str),
    Text(&'a str),
    /// A file Envoy reads.
    File(&'a str),
}

impl TlsSource {
    /// The one source it names (validation guarantees exactly one).
    pub fn source(&self) -> Option<Source<'_>> {
        if let Some(s) = &self.secret {
            return Some(Source::Secret(s));
        }
        if let Some(b) = &self.inline {
            return Some(Source::Base64(b));
        }
        if let Some(t) = &self.inline_string {
            return Some(Source::Text(t));
        }
        match self.source_type.as_deref() {
            Some("Secret") => self.secret_ref.as_ref().map(|r| Source::Secret(&r.name)),
            Some("InsecureInline") => self
                .insecure_inline
                .as_ref()
                .map(|i| Source::Text(&i.value)),
            Some("File") => self.file.as_ref().map(|f| Source::File(&f.path)),
            _ => None,
        }
    }

    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let flat = [
            self.secret.is_some(),
            self.inline.is_some(),
            self.inline_string.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        let secure = self.source_type.is_some()
            || self.secret_ref.is_some()
            || self.insecure_inline.is_some()
            || self.file.is_some()
            || self.env_var.is_some();
        if flat > 0 && secure {
            errs.add(
                path,
                "use either secret / inline / inlineString or type with its field, not both",
            );
            return;
        }
        if flat > 1 {
            errs.add(
                path,
                "only one of secret, inline and inlineString can be set",
            );
            return;
        }
        if flat == 1 {
            if let Some(s) = &self.secret {
                validate::check_name(&path.field("secret"), s, errs);
            }
            if let Some(b) = &self.inline
                && super::secret::decode_base64(b).is_err()
            {
                errs.add(&path.field("inline"), "must be valid base64");
            }
            if self.inline_string.as_deref() == Some("") {
                errs.add(&path.field("inlineString"), "cannot be empty");
            }
            return;
        }
        let tp = path.field("type");
        let Some(ty) = self.source_type.as_deref() else {
            errs.add(
                &tp,
                "must be defined (or use secret, inline or inlineString)",
            );
            return;
        };
        let need = |field: &str, present: bool, errs: &mut ValidationErrors| {
            if !present {
                errs.add(&path.field(field), format!("must be defined for type {ty}"));
            }
        };
        match ty {
            "Secret" => {
                need("secretRef", self.secret_ref.is_some(), errs);
                if let Some(r) = &self.secret_ref {
                    validate::check_name(&path.field("secretRef").field("name"), &r.name, errs);
                }
            }
            "InsecureInline" => need("insecureInline", self.insecure_inline.is_some(), errs),
            "File" | "EnvVar" => errs.add(
                &tp,
                format!("{ty} is not supported: the egress reads no files or variables of the control plane; use Secret"),
            ),
            other => errs.add(
                &tp,
                format!("{other:?} must be one of Secret, InsecureInline, File, EnvVar"),
            ),
        }
    }
}

const PROTOCOLS: [&str; 4] = ["tcp", "grpc", "http", "http2"];
const VERSIONS: [&str; 5] = ["TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13"];
const MODES: [&str; 4] = ["Secured", "SkipSAN", "SkipCA", "SkipAll"];

impl MeshExternalServiceSpec {
    /// `match.protocol`, `tcp` by default.
    pub fn protocol(&self) -> &str {
        self.match_
            .as_ref()
            .and_then(|m| m.protocol.as_deref())
            .unwrap_or("tcp")
    }

    /// `match.port`.
    pub fn port(&self) -> u32 {
        self.match_.as_ref().map_or(0, |m| m.port)
    }

    /// TLS origination, when enabled.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_deref().filter(|t| t.enabled == Some(true))
    }
}

impl Validate for MeshExternalServiceSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let mp = path.field("match");
        match &self.match_ {
            None => errs.add(&mp, "must be defined"),
            Some(m) => {
                if let Some(t) = &m.match_type
                    && t != "HostnameGenerator"
                {
                    errs.add(&mp.field("type"), "must be HostnameGenerator");
                }
                validate::check_port(&mp.field("port"), m.port, errs);
                if let Some(p) = &m.protocol
                    && !PROTOCOLS.contains(&p.as_str())
                {
                    errs.add(
                        &mp.field("protocol"),
                        format!("must be one of {}", PROTOCOLS.join(", ")),
                    );
                }
            }
        }
        if self.extension.is_some() {
            errs.add(
                &path.field("extension"),
                "extensions are not supported: Weft runs no MeshExternalService plugins",
            );
        }
        let ep = path.field("endpoints");
        match &self.endpoints {
            None => errs.add(&ep, "must be defined"),
            Some(list) if list.is_empty() => errs.add(&ep, "must not be empty"),
            Some(list) => {
                for (i, e) in list.iter().enumerate() {
                    let p = ep.index(i);
                    if e.address.is_empty() {
                        errs.add(&p.field("address"), "cannot be empty");
                    } else if e.address.starts_with("unix://") {
                        errs.add(&p.field("address"), "unix sockets are not supported");
                    } else if e.address.parse::<std::net::IpAddr>().is_err()
                        && !e.address.split('.').all(|l| {
                            !l.is_empty()
                                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        })
                    {
                        errs.add(&p.field("address"), "must be an IP address or a DNS name");
                    }
                    validate::check_port(&p.field("port"), e.port, errs);
                    if e.priority.is_some_and(|p| p > 128) {
                        errs.add(&p.field("priority"), "must be in the range [0, 128]");
                    }
                }
            }
        }
        let Some(tls) = &self.tls else { return };
        let tp = path.field("tls");
        if let Some(v) = &tls.version {
            let vp = tp.field("version");
            for (name, value) in [("min", &v.min), ("max", &v.max)] {
                if let Some(value) = value
                    && !VERSIONS.contains(&value.as_str())
                {
                    errs.add(
                        &vp.field(name),
                        format!("must be one of {}", VERSIONS.join(", ")),
                    );
                }
            }
            let rank = |v: &Option<String>| {
                v.as_deref()
                    .filter(|v| *v != "TLSAuto")
                    .and_then(|v| VERSIONS.iter().position(|x| *x == v))
            };
            if let (Some(min), Some(max)) = (rank(&v.min), rank(&v.max))
                && min > max
            {
                errs.add(&vp.field("min"), "must not be greater than max");
            }
        }
        let Some(ver) = &tls.verification else { return };
        let vp = tp.field("verification");
        if let Some(m) = &ver.mode
            && !MODES.contains(&m.as_str())
        {
            errs.add(
                &vp.field("mode"),
                format!("must be one of {}", MODES.join(", ")),
            );
        }
        if ver.server_name.as_deref() == Some("") {
            errs.add(&vp.field("serverName"), "cannot be empty");
        }
        for (i, san) in ver.subject_alt_names.iter().flatten().enumerate() {
            let p = vp.field("subjectAltNames").index(i);
            if let Some(t) = &san.match_type
                && t != "Exact"
                && t != "Prefix"
            {
                errs.add(&p.field("type"), "must be one of Exact, Prefix");
            }
            if san.value.is_empty() {
                errs.add(&p.field("value"), "cannot be empty");
            }
        }
        for (name, src) in [
            ("caCert", &ver.ca_cert),
            ("clientCert", &ver.client_cert),
            ("clientKey", &ver.client_key),
        ] {
            if let Some(src) = src {
                src.validate(&vp.field(name), errs);
            }
        }
        match (&ver.client_cert, &ver.client_key) {
            (Some(_), None) => errs.add(
                &vp.field("clientKey"),
                "has to be defined when clientCert is defined",
            ),
            (None, Some(_)) => errs.add(
                &vp.field("clientCert"),
                "has to be defined when clientKey is defined",
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::{fields_at, parse};

    fn fields(yaml: &str) -> Vec<String> {
        fields_at(&parse::<MeshExternalServiceSpec>(yaml), &Path::root())
    }

    // Both data-source shapes of Kuma 2.14.6 are accepted and read the same.
    #[test]
    fn valid_in_both_shapes() {
        let flat = "match: {port: 443, protocol: http}\nendpoints: [{address: api.example, port: 443}]\ntls:\n  enabled: true\n  verification: {serverName: api.example, caCert: {secret: api-ca}}\n";
        assert!(fields(flat).is_empty(), "{:?}", fields(flat));
        let secure = "match: {port: 443, protocol: http}\nendpoints: [{address: 10.0.0.1, port: 443}]\ntls:\n  enabled: true\n  verification:\n    caCert: {type: Secret, secretRef: {kind: Secret, name: api-ca}}\n";
        assert!(fields(secure).is_empty(), "{:?}", fields(secure));
        let a: MeshExternalServiceSpec = parse(flat);
        let b: MeshExternalServiceSpec = parse(secure);
        let src = |s: &MeshExternalServiceSpec| {
            s.tls()
                .unwrap()
                .verification
                .as_ref()
                .unwrap()
                .ca_cert
                .as_ref()
                .unwrap()
                .source()
                .map(|s| format!("{s:?}"))
        };
        assert_eq!(src(&a), src(&b));
        assert_eq!(a.protocol(), "http");
    }

    // Every defect is named at its own field, in one pass.
    #[test]
    fn defects_name_their_field() {
        assert_eq!(fields("{}\n"), ["match", "endpoints"]);
        assert_eq!(
            fields(
                "match: {type: Other, port: 0, protocol: udp}\nendpoints: [{address: 'bad host', port: 70000, priority: 200}]\ntls:\n  version: {min: TLS13, max: TLS12}\n  verification:\n    mode: Maybe\n    subjectAltNames: [{type: Regex, value: ''}]\n    clientCert: {secret: a, inlineString: b}\n"
            ),
            [
                "match.type",
                "match.port",
                "match.protocol",
                "endpoints[0].address",
                "endpoints[0].port",
                "endpoints[0].priority",
                "tls.version.min",
                "tls.verification.mode",
                "tls.verification.subjectAltNames[0].type",
                "tls.verification.subjectAltNames[0].value",
                "tls.verification.clientCert",
                "tls.verification.clientKey",
            ]
        );
    }
}
