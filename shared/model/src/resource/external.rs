//! Kuma's `ExternalService` (`external_service.proto`): a service outside the
//! mesh, reached at `networking.address` (`host:port`), optionally over TLS that
//! the caller's sidecar (or the zone egress) originates. Its `tags` name it
//! (`kuma.io/service`, `kuma.io/protocol`) like a Dataplane inbound's.

use super::Tags;
use super::secret::DataSource;
use super::tags;
use super::validate::{self, Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalServiceSpec {
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<ExternalNetworking>,
    /// Required, with `kuma.io/service`.
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalNetworking {
    /// `host:port`: a DNS name or IP and a port.
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ExternalTls>,
    /// Kuma's DNS toggle; Weft has no DNS server for it yet, so it changes nothing.
    #[serde(
        rename = "disableHostDNSEntry",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_host_dns_entry: Option<bool>,
}

/// TLS the client side originates towards the external service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The CA that verifies the service's certificate; without it the
    /// certificate is not verified (Kuma's behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<DataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<DataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<DataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_renegotiation: Option<bool>,
    /// SNI and the name the certificate must carry; default: the address's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl ExternalServiceSpec {
    /// The `kuma.io/service` tag.
    pub fn service(&self) -> Option<&str> {
        self.tags.get(tags::SERVICE).map(String::as_str)
    }

    /// Host and port of `networking.address` (`None` when malformed).
    pub fn host_port(&self) -> Option<(&str, u32)> {
        split_host_port(&self.networking.as_ref()?.address)
    }

    /// TLS origination, when enabled.
    pub fn tls(&self) -> Option<&ExternalTls> {
        self.networking
            .as_ref()?
            .tls
            .as_ref()
            .filter(|t| t.enabled == Some(true))
    }
}

/// `host:port` or `[v6]:port`.
pub fn split_host_port(address: &str) -> Option<(&str, u32)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u32 = port.parse().ok()?;
    // An IPv6 host needs its brackets: `::1:80` is ambiguous.
    let bracketed = address.starts_with('[');
    (!host.is_empty() && (bracketed || !host.contains(':'))).then_some((host, port))
}

impl Validate for ExternalServiceSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let np = path.field("networking");
        match &self.networking {
            None => errs.add(&np, "must be defined"),
            Some(n) => {
                let ap = np.field("address");
                if n.address.is_empty() {
                    errs.add(&ap, "cannot be empty");
                } else {
                    match split_host_port(&n.address) {
                        None => errs.add(&ap, "address has to be in host:port format"),
                        Some((_, port)) => validate::check_port(&ap, port, errs),
                    }
                }
                if let Some(tls) = &n.tls {
                    let tp = np.field("tls");
                    for (name, ds) in [
                        ("caCert", &tls.ca_cert),
                        ("clientCert", &tls.client_cert),
                        ("clientKey", &tls.client_key),
                    ] {
                        if let Some(ds) = ds {
                            ds.validate(&tp.field(name), errs);
                        }
                    }
                    match (&tls.client_cert, &tls.client_key) {
                        (Some(_), None) => errs.add(
                            &tp.field("clientKey"),
                            "has to be defined when clientCert is defined",
                        ),
                        (None, Some(_)) => errs.add(
                            &tp.field("clientCert"),
                            "has to be defined when clientKey is defined",
                        ),
                        _ => {}
                    }
                    if tls.server_name.as_deref() == Some("") {
                        errs.add(&tp.field("serverName"), "cannot be empty");
                    }
                }
            }
        }
        let tp = path.field("tags");
        if !self.tags.contains_key(tags::SERVICE) {
            errs.add(&tp.key(tags::SERVICE), "tag has to exist");
        }
        validate::check_tags(&tp, &self.tags, false, errs);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::{fields_at, parse};

    fn fields(yaml: &str) -> Vec<String> {
        fields_at(&parse::<ExternalServiceSpec>(yaml), &Path::root())
    }

    // A complete ExternalService is valid; its host, port and TLS read back.
    #[test]
    fn valid_external_service() {
        let yaml = "networking:\n  address: httpbin.org:443\n  tls: {enabled: true, serverName: httpbin.org}\ntags: {kuma.io/service: httpbin, kuma.io/protocol: http}\n";
        assert!(fields(yaml).is_empty(), "{:?}", fields(yaml));
        let es: ExternalServiceSpec = parse(yaml);
        assert_eq!(es.host_port(), Some(("httpbin.org", 443)));
        assert_eq!(es.service(), Some("httpbin"));
        assert!(es.tls().is_some());
        assert_eq!(split_host_port("[::1]:8443"), Some(("::1", 8443)));
    }

    // Each defect is named at its own field.
    #[test]
    fn defects_name_their_field() {
        assert_eq!(
            fields("tags: {}\n"),
            ["networking", "tags[\"kuma.io/service\"]"]
        );
        assert_eq!(
            fields("networking: {address: no-port}\ntags: {kuma.io/service: a}\n"),
            ["networking.address"]
        );
        assert_eq!(
            fields("networking: {address: a.b:0}\ntags: {kuma.io/service: a}\n"),
            ["networking.address"]
        );
        assert_eq!(
            fields(
                "networking:\n  address: a.b:443\n  tls: {enabled: true, clientCert: {inlineString: x}}\ntags: {kuma.io/service: a}\n"
            ),
            ["networking.tls.clientKey"]
        );
    }
}
