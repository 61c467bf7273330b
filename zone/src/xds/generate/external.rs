//! Kuma's ExternalService in proxy configuration, and the zone egress a mesh
//! may route through.
//!
//! A sidecar's outbound towards an ExternalService's `kuma.io/service` gets a
//! cluster to the service itself: `networking.address`'s host by DNS
//! (`STRICT_DNS`; `STATIC` for an IP), with TLS originated when
//! `networking.tls.enabled` (SNI `serverName` or the host; the certificate
//! verified against `caCert` when given, with that name as its SAN; a client
//! certificate when given). Policies apply to it as to any outbound; mesh mTLS
//! does not (the service is outside the mesh).
//!
//! With the Mesh's `routing.zoneEgress` on (mTLS required) and an egress in the
//! zone, the sidecar's cluster goes to the egress instead, over mesh mTLS with
//! SNI `<service>{mesh=<mesh>}.external`, accepting the egress's identity
//! `spiffe://<mesh>/zone-egress`; the egress terminates it and originates to the
//! service as above. Traffic to other zones goes to the egress too
//! ([`super::endpoints::Services::route_remote_through`]), which passes it on,
//! still encrypted, to the other zone's ingress.

use super::MeshView;
use super::base::http_options;
use super::envoy::{any, socket, u32v};
use super::model::{ClusterPart, ClusterRole, Protocol};
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::{DataSource, TransportSocket, data_source};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, TlsCertificate,
    TlsParameters, UpstreamTlsContext, certificate_validation_context, common_tls_context,
    subject_alt_name_matcher, tls_parameters::TlsProtocol,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use weft_model::resource::external::ExternalServiceSpec;
use weft_model::resource::secret;
use weft_model::resource::{Resource, ResourceType, Spec, Tags, tags};

/// The SPIFFE service name of a zone egress's certificates.
pub const EGRESS_IDENTITY: &str = "zone-egress";

/// The mesh's ExternalServices by `kuma.io/service` (the first by name wins a
/// shared service name).
pub fn by_service(
    resources: &BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
) -> BTreeMap<String, Arc<Resource>> {
    let mut out = BTreeMap::new();
    for r in resources
        .get(ResourceType::ExternalService.name())
        .into_iter()
        .flat_map(|m| m.values())
    {
        if let Spec::ExternalService(es) = &r.spec
            && let Some(service) = es.service()
        {
            out.entry(service.to_string()).or_insert_with(|| r.clone());
        }
    }
    out
}

/// Where this zone's egress listens, when `mesh` routes through one
/// (`routing.zoneEgress`) and the zone has one (the first by name of its own
/// ZoneEgresses).
pub fn local_egress(
    mesh: &Resource,
    zone: &str,
    resources: &BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
) -> Option<(String, u32)> {
    let Spec::Mesh(spec) = &mesh.spec else {
        return None;
    };
    if spec.routing.as_ref().and_then(|r| r.zone_egress) != Some(true) {
        return None;
    }
    resources
        .get(ResourceType::ZoneEgress.name())?
        .values()
        .find_map(|r| {
            let Spec::ZoneEgress(ze) = &r.spec else {
                return None;
            };
            let from_global = r.meta.labels.get(tags::ORIGIN).map(String::as_str) == Some("global");
            let ours = ze.zone.as_deref().is_none_or(|z| z.is_empty() || z == zone);
            let net = ze.networking.as_ref()?;
            (!from_global && ours).then(|| (net.address.clone(), net.port))
        })
}

/// The SNI a sidecar sends its zone egress for ExternalService `service`:
/// apart from a mesh service's, so the two never share an egress chain.
pub fn external_sni(service: &str, mesh: &str) -> String {
    format!("{service}{{mesh={mesh}}}.external")
}

/// The cluster `name` of a sidecar towards ExternalService `es`: through the
/// zone's egress when the mesh routes through one, else straight to it.
pub fn cluster(view: &MeshView, name: &str, es: &Resource, protocol: Protocol) -> ClusterPart {
    let Spec::ExternalService(spec) = &es.spec else {
        return direct(view, name, &ExternalServiceSpec::default(), protocol);
    };
    match (&view.egress, &view.mtls) {
        (Some((address, port)), Some(tls)) => {
            let service = spec.service().unwrap_or(name);
            let mut part = static_cluster(name, service, address, *port, protocol);
            part.cluster.transport_socket = Some(tls.upstream_to_egress(
                external_sni(service, &view.mesh.meta.name),
                tls.spiffe_id(EGRESS_IDENTITY),
            ));
            part
        }
        _ => direct(view, name, spec, protocol),
    }
}

/// A cluster `name` straight to the external service `spec` (what a sidecar
/// uses without an egress, and what the egress uses).
pub fn direct(
    view: &MeshView,
    name: &str,
    spec: &ExternalServiceSpec,
    protocol: Protocol,
) -> ClusterPart {
    let service = spec.service().unwrap_or(name);
    let Some((host, port)) = spec.host_port() else {
        return static_cluster(name, service, "127.0.0.1", 0, protocol);
    };
    let mut part = static_cluster(name, service, host, port, protocol);
    if host.parse::<std::net::IpAddr>().is_err() {
        part.cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ));
        part.cluster.dns_lookup_family = cluster::DnsLookupFamily::V4Preferred as i32;
    }
    if spec.tls().is_some() {
        part.cluster.transport_socket = Some(origination(view, spec, host));
    }
    part
}

fn static_cluster(
    name: &str,
    service: &str,
    host: &str,
    port: u32,
    protocol: Protocol,
) -> ClusterPart {
    let cluster = super::base::static_cluster(name, host, port, Duration::from_secs(5));
    ClusterPart {
        role: ClusterRole::Outbound {
            service: service.to_string(),
            subset: Tags::new(),
            external: true,
        },
        protocol,
        cluster,
        // The service speaks what its kuma.io/protocol says: HTTP/2 for http2
        // and grpc, HTTP/1.1 for http.
        http_options: protocol
            .is_http()
            .then(|| http_options(protocol != Protocol::Http)),
    }
}

/// TLS towards the external service.
fn origination(view: &MeshView, spec: &ExternalServiceSpec, host: &str) -> TransportSocket {
    let tls = spec.tls().cloned().unwrap_or_default();
    let server_name = tls.server_name.clone().unwrap_or_else(|| host.to_string());
    let validation = tls.ca_cert.as_ref().map(|ca| CertificateValidationContext {
        trusted_ca: Some(data_source(view, ca)),
        match_typed_subject_alt_names: vec![san_for(string_matcher::MatchPattern::Exact(
            server_name.clone(),
        ))],
        ..CertificateValidationContext::default()
    });
    let certificates = match (&tls.client_cert, &tls.client_key) {
        (Some(cert), Some(key)) => vec![TlsCertificate {
            certificate_chain: Some(data_source(view, cert)),
            private_key: Some(data_source(view, key)),
            ..TlsCertificate::default()
        }],
        _ => Vec::new(),
    };
    let ctx = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: certificates,
            validation_context_type: validation
                .map(common_tls_context::ValidationContextType::ValidationContext),
            ..CommonTlsContext::default()
        }),
        // SNI must be a host name, never an IP.
        sni: if server_name.parse::<std::net::IpAddr>().is_ok() {
            String::new()
        } else {
            server_name
        },
        allow_renegotiation: tls.allow_renegotiation == Some(true),
        ..UpstreamTlsContext::default()
    };
    super::mtls::tls_socket(any(&ctx))
}

/// A Kuma DataSource as Envoy's: inline bytes or text as they are, a file by
/// its path (read by Envoy), a Secret of the mesh by its data.
fn data_source(view: &MeshView, ds: &secret::DataSource) -> DataSource {
    let specifier = if let Some(text) = &ds.inline_string {
        data_source::Specifier::InlineString(text.clone())
    } else if let Some(b64) = &ds.inline {
        data_source::Specifier::InlineBytes(secret::decode_base64(b64).unwrap_or_default())
    } else if let Some(path) = &ds.file {
        data_source::Specifier::Filename(path.clone())
    } else {
        let bytes = ds
            .secret
            .as_ref()
            .and_then(|name| view.resources.get(ResourceType::Secret.name())?.get(name))
            .and_then(|r| match &r.spec {
                Spec::Secret(s) => s.bytes().ok(),
                _ => None,
            })
            .unwrap_or_default();
        data_source::Specifier::InlineBytes(bytes)
    };
    DataSource {
        specifier: Some(specifier),
        ..DataSource::default()
    }
}

/// The SNI a sidecar sends its zone egress for MeshExternalService `name` of
/// `mesh` on `port` (Weft's; Kuma's carries a hash as well).
pub fn mes_sni(mesh: &str, name: &str, port: u32) -> String {
    format!("{name}.{port}.{mesh}.mes")
}

/// The cluster of MeshExternalService `name` (on a sidecar, and on the egress).
pub fn mes_cluster_name(name: &str) -> String {
    format!("meshexternalservice:{name}")
}

/// An outbound with `backendRef: {kind: MeshExternalService, name}`: its cluster
/// (added to `cfg`), protocol and name; `None` for another kind or an unknown
/// MeshExternalService. Kuma reaches a MeshExternalService only through the
/// zone egress, over mesh mTLS: without them the cluster has no endpoint (the
/// PUT answer warns).
pub fn mes_outbound(
    cfg: &mut super::model::ProxyConfig,
    view: &MeshView,
    outbound: &weft_model::resource::dataplane::Outbound,
) -> Option<(String, Protocol, String)> {
    use weft_model::resource::dataplane::BackendKind;
    let r = outbound.backend_ref.as_ref()?;
    if r.kind != Some(BackendKind::MeshExternalService) {
        return None;
    }
    let name = r.name.as_deref()?;
    let Spec::MeshExternalService(spec) = &view.mes.get(name)?.spec else {
        return None;
    };
    let protocol = Protocol::parse(Some(spec.protocol()));
    let cluster = mes_cluster_name(name);
    if !cfg.clusters.contains_key(&cluster) {
        let part = match (&view.egress, view.mtls.as_deref()) {
            (Some((address, port)), Some(tls)) => {
                let mut part = static_cluster(&cluster, name, address, *port, protocol);
                part.cluster.transport_socket = Some(tls.upstream_to_egress(
                    mes_sni(&view.mesh.meta.name, name, spec.port()),
                    tls.spiffe_id(EGRESS_IDENTITY),
                ));
                part
            }
            _ => {
                let mut part = static_cluster(&cluster, name, "127.0.0.1", 0, protocol);
                part.cluster.load_assignment = Some(ClusterLoadAssignment {
                    cluster_name: cluster.clone(),
                    ..ClusterLoadAssignment::default()
                });
                part
            }
        };
        cfg.clusters.insert(cluster.clone(), part);
    }
    Some((name.to_string(), protocol, cluster))
}

/// The egress's cluster `name` to MeshExternalService `spec`: its endpoints (by
/// DNS when any is a name) at their priorities, with the TLS `tls` asks for.
pub fn mes_direct(
    view: &MeshView,
    name: &str,
    mes_name: &str,
    spec: &weft_model::resource::mes::MeshExternalServiceSpec,
) -> ClusterPart {
    let protocol = Protocol::parse(Some(spec.protocol()));
    let mut part = static_cluster(name, mes_name, "127.0.0.1", 0, protocol);
    let endpoints = spec.endpoints.clone().unwrap_or_default();
    let mut by_priority: BTreeMap<u32, Vec<LbEndpoint>> = BTreeMap::new();
    for e in &endpoints {
        by_priority
            .entry(e.priority.unwrap_or(0))
            .or_default()
            .push(LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket(&e.address, e.port)),
                    ..Endpoint::default()
                })),
                load_balancing_weight: Some(u32v(1)),
                ..LbEndpoint::default()
            });
    }
    part.cluster.load_assignment = Some(ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: by_priority
            .into_values()
            .enumerate()
            .map(|(i, lb_endpoints)| LocalityLbEndpoints {
                lb_endpoints,
                priority: u32::try_from(i).unwrap_or(0),
                ..LocalityLbEndpoints::default()
            })
            .collect(),
        ..ClusterLoadAssignment::default()
    });
    if endpoints
        .iter()
        .any(|e| e.address.parse::<std::net::IpAddr>().is_err())
    {
        part.cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ));
        part.cluster.dns_lookup_family = cluster::DnsLookupFamily::V4Preferred as i32;
    }
    if let Some(tls) = spec.tls() {
        let host = endpoints.first().map_or("", |e| e.address.as_str());
        part.cluster.transport_socket = Some(mes_origination(view, tls, host));
    }
    part
}

/// Where an uninstructed `Secured` verification finds the CAs to trust: the
/// system bundle (Debian's path), as Kuma's dataplane does.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn mes_origination(
    view: &MeshView,
    tls: &weft_model::resource::mes::Tls,
    host: &str,
) -> TransportSocket {
    use weft_model::resource::mes::Source;
    let ver = tls.verification.clone().unwrap_or_default();
    let mode = ver.mode.as_deref().unwrap_or("Secured");
    let server_name = ver.server_name.clone().unwrap_or_else(|| host.to_string());
    let source = |src: &Option<weft_model::resource::mes::TlsSource>| {
        let spec = match src.as_ref()?.source()? {
            Source::Secret(name) => data_source::Specifier::InlineBytes(
                view.resources
                    .get(ResourceType::Secret.name())
                    .and_then(|m| m.get(name))
                    .and_then(|r| match &r.spec {
                        Spec::Secret(s) => s.bytes().ok(),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Source::Base64(b) => {
                data_source::Specifier::InlineBytes(secret::decode_base64(b).unwrap_or_default())
            }
            Source::Text(t) => data_source::Specifier::InlineString(t.to_string()),
            Source::File(p) => data_source::Specifier::Filename(p.to_string()),
        };
        Some(DataSource {
            specifier: Some(spec),
            ..DataSource::default()
        })
    };
    // SkipCA still checks the names (the chain is accepted untrusted);
    // SkipAll checks nothing.
    let verify_san = matches!(mode, "Secured" | "SkipCA");
    let validation = (mode != "SkipAll").then(|| {
        let sans: Vec<SubjectAltNameMatcher> = match &ver.subject_alt_names {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(|s| {
                    san_for(if s.match_type.as_deref() == Some("Prefix") {
                        string_matcher::MatchPattern::Prefix(s.value.clone())
                    } else {
                        string_matcher::MatchPattern::Exact(s.value.clone())
                    })
                })
                .collect(),
            _ => vec![san_for(string_matcher::MatchPattern::Exact(
                server_name.clone(),
            ))],
        };
        CertificateValidationContext {
            trusted_ca: source(&ver.ca_cert).or_else(|| {
                Some(DataSource {
                    specifier: Some(data_source::Specifier::Filename(
                        SYSTEM_CA_BUNDLE.to_string(),
                    )),
                    ..DataSource::default()
                })
            }),
            match_typed_subject_alt_names: if verify_san { sans } else { Vec::new() },
            trust_chain_verification: if mode == "SkipCA" {
                certificate_validation_context::TrustChainVerification::AcceptUntrusted as i32
            } else {
                certificate_validation_context::TrustChainVerification::VerifyTrustChain as i32
            },
            ..CertificateValidationContext::default()
        }
    });
    let certificates = match (source(&ver.client_cert), source(&ver.client_key)) {
        (Some(certificate_chain), Some(private_key)) => vec![TlsCertificate {
            certificate_chain: Some(certificate_chain),
            private_key: Some(private_key),
            ..TlsCertificate::default()
        }],
        _ => Vec::new(),
    };
    let version = |v: Option<&str>| match v {
        Some("TLS10") => TlsProtocol::TlSv10 as i32,
        Some("TLS11") => TlsProtocol::TlSv11 as i32,
        Some("TLS12") => TlsProtocol::TlSv12 as i32,
        Some("TLS13") => TlsProtocol::TlSv13 as i32,
        _ => TlsProtocol::TlsAuto as i32,
    };
    let tls_params = tls.version.as_ref().map(|v| TlsParameters {
        tls_minimum_protocol_version: version(v.min.as_deref()),
        tls_maximum_protocol_version: version(v.max.as_deref()),
        ..TlsParameters::default()
    });
    let ctx = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificates: certificates,
            tls_params,
            validation_context_type: validation
                .map(common_tls_context::ValidationContextType::ValidationContext),
            ..CommonTlsContext::default()
        }),
        sni: if server_name.parse::<std::net::IpAddr>().is_ok() {
            String::new()
        } else {
            server_name
        },
        allow_renegotiation: tls.allow_renegotiation == Some(true),
        ..UpstreamTlsContext::default()
    };
    super::mtls::tls_socket(any(&ctx))
}

/// A SAN matcher: an IP address SAN for an exact IP, else a DNS SAN.
fn san_for(pattern: string_matcher::MatchPattern) -> SubjectAltNameMatcher {
    let ip = matches!(&pattern, string_matcher::MatchPattern::Exact(v) if v.parse::<std::net::IpAddr>().is_ok());
    SubjectAltNameMatcher {
        san_type: if ip {
            subject_alt_name_matcher::SanType::IpAddress as i32
        } else {
            subject_alt_name_matcher::SanType::Dns as i32
        },
        matcher: Some(StringMatcher {
            match_pattern: Some(pattern),
            ..StringMatcher::default()
        }),
        ..SubjectAltNameMatcher::default()
    }
}
