//! Mesh mTLS in the proxy configuration, as Kuma lays it out: every inbound
//! terminates mTLS (STRICT), or also accepts plaintext (PERMISSIVE); every mesh
//! cluster originates mTLS with SNI `<service>{mesh=<mesh>}`, ALPN `kuma` and the
//! destination's SPIFFE id checked. Both ends take their certificate and the
//! mesh's trusted CAs over SDS, on the ADS stream: `identity_cert:secret:<mesh>`
//! and `mesh_ca:secret:<mesh>` ([`secrets`]; the cache adds them per proxy).

use super::envoy::any;
use super::model::{ClusterRole, ProxyConfig};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, TransportSocket, config_source,
    data_source, transport_socket,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret,
    SubjectAltNameMatcher, TlsCertificate, TlsParameters, UpstreamTlsContext, common_tls_context,
    secret, subject_alt_name_matcher,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher};
use envoy_types::pb::google::protobuf::{Any, BoolValue};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use weft_model::resource::mesh::{MtlsMode, builtin_ca_cert_secret};
use weft_model::resource::{Resource, ResourceType, Spec};
use weft_security::pki::workload::MeshCa;
use weft_security::pki::{Fingerprint, mesh_ca};

/// The ALPN protocol mesh mTLS connections carry (Kuma's).
pub const ALPN_KUMA: &str = "kuma";
/// The SDS type URL.
pub const SECRET_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// One CA backend of the mesh whose certificate is readable.
#[derive(Debug)]
pub struct BackendCa {
    pub backend: String,
    pub fingerprint: Fingerprint,
    pub cert_pem: String,
    /// Present when the key is usable too (it can issue).
    pub ca: Option<Arc<MeshCa>>,
}

/// A mesh's mTLS state, part of its [`super::MeshView`].
#[derive(Debug)]
pub struct MeshTls {
    pub mesh: String,
    pub mode: MtlsMode,
    /// The enabled backend's name.
    pub backend: String,
    /// The enabled backend's CA; `Err` says why there is none (its Secrets have
    /// not arrived, or they are invalid). Proxies then get the TLS configuration
    /// but no certificate: traffic fails closed.
    pub ca: Result<Arc<MeshCa>, String>,
    /// Every backend whose CA certificate is readable (the enabled one among
    /// them): what a CA rotation moves between.
    pub cas: Vec<BackendCa>,
    /// Lifetime of workload certificates.
    pub cert_lifetime: Duration,
    /// The Mesh's `mtls` is on (every proxy does mTLS); when off, only proxies a
    /// MeshIdentity selects do.
    pub mesh_mtls: bool,
    /// The mesh has MeshIdentities or MeshTrusts: peers are verified with Envoy's
    /// SPIFFE validator, one trust domain each.
    pub spiffe: bool,
}

impl MeshTls {
    /// The mTLS state of `mesh` from its resources (`Secret`s among them); `None`
    /// when mTLS is off.
    pub fn build(
        mesh: &Resource,
        resources: &BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
        identities: bool,
    ) -> Option<MeshTls> {
        let Spec::Mesh(spec) = &mesh.spec else {
            return None;
        };
        let name = &mesh.meta.name;
        let Some(enabled) = spec.enabled_backend() else {
            // MeshIdentities without Mesh mTLS: only the proxies they select.
            return identities.then(|| MeshTls {
                mesh: name.clone(),
                mode: MtlsMode::Strict,
                backend: String::new(),
                ca: Err("the Mesh's mtls is off".into()),
                cas: Vec::new(),
                cert_lifetime: weft_model::resource::mesh::DEFAULT_WORKLOAD_CERT_LIFETIME,
                mesh_mtls: false,
                spiffe: true,
            });
        };
        let secrets: HashMap<&str, &Arc<Resource>> = resources
            .get(ResourceType::Secret.name())
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        let read = |n: &str| match secrets.get(n).map(|r| &r.spec) {
            Some(Spec::Secret(s)) => s.bytes().ok(),
            _ => None,
        };
        let mut ca = Err(format!("backend {:?} has no CA", enabled.name));
        let mut cas = Vec::new();
        for backend in spec.mtls.iter().flat_map(|m| &m.backends) {
            let resolved = mesh_ca::backend_ca(name, backend, read).map(Arc::new);
            let cert_pem = match &resolved {
                Ok(c) => Some(c.cert_pem().to_string()),
                // The certificate alone still lets proxies verify others.
                Err(_) if backend.is_builtin() => {
                    read(&builtin_ca_cert_secret(name, &backend.name))
                        .and_then(|b| String::from_utf8(b).ok())
                }
                Err(_) => None,
            };
            if let Some(pem) = cert_pem
                && let Ok(fingerprint) = Fingerprint::of_pem(&pem)
            {
                cas.push(BackendCa {
                    backend: backend.name.clone(),
                    fingerprint,
                    cert_pem: pem,
                    ca: resolved.as_ref().ok().cloned(),
                });
            }
            if backend.name == enabled.name {
                ca = resolved.map_err(|e| e.to_string());
            }
        }
        if let Err(e) = &ca {
            tracing::warn!(mesh = %name, backend = %enabled.name, error = %e, "mesh mTLS: no usable CA; its proxies get no certificate until it is fixed");
        }
        Some(MeshTls {
            mesh: name.clone(),
            mode: enabled.mode.unwrap_or_default(),
            backend: enabled.name.clone(),
            ca,
            cas,
            cert_lifetime: enabled.workload_cert_lifetime(),
            mesh_mtls: true,
            spiffe: identities,
        })
    }

    /// The backend whose CA has `fingerprint`.
    pub fn backend_of(&self, fingerprint: &Fingerprint) -> Option<&BackendCa> {
        self.cas.iter().find(|c| &c.fingerprint == fingerprint)
    }

    pub fn identity_secret_name(&self) -> String {
        format!("identity_cert:secret:{}", self.mesh)
    }

    pub fn ca_secret_name(&self) -> String {
        ca_secret_name(&self.mesh)
    }

    /// The SPIFFE id of `service` in this mesh.
    pub fn spiffe_id(&self, service: &str) -> String {
        format!("spiffe://{}/{service}", self.mesh)
    }

    /// `identity_cert:secret:<mesh>`: a proxy's certificate and key.
    pub fn identity_secret(&self, cert_pem: &str, key_pem: &str) -> Any {
        any(&Secret {
            name: self.identity_secret_name(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(cert_pem)),
                private_key: Some(inline(key_pem)),
                ..TlsCertificate::default()
            })),
        })
    }

    fn sds(name: String) -> SdsSecretConfig {
        SdsSecretConfig {
            name,
            sds_config: Some(ConfigSource {
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                resource_api_version: ApiVersion::V3 as i32,
                ..ConfigSource::default()
            }),
        }
    }

    /// Certificate and validation (CA + SAN matchers) over SDS.
    fn common(&self, sans: Vec<string_matcher::MatchPattern>, alpn: bool) -> CommonTlsContext {
        let matchers = sans
            .into_iter()
            .map(|san| SubjectAltNameMatcher {
                san_type: subject_alt_name_matcher::SanType::Uri as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(san),
                    ..StringMatcher::default()
                }),
                ..SubjectAltNameMatcher::default()
            })
            .collect();
        CommonTlsContext {
            alpn_protocols: if alpn { vec![ALPN_KUMA.into()] } else { vec![] },
            tls_certificate_sds_secret_configs: vec![Self::sds(self.identity_secret_name())],
            validation_context_type: Some(
                common_tls_context::ValidationContextType::CombinedValidationContext(
                    common_tls_context::CombinedCertificateValidationContext {
                        default_validation_context: Some(CertificateValidationContext {
                            match_typed_subject_alt_names: matchers,
                            ..CertificateValidationContext::default()
                        }),
                        validation_context_sds_secret_config: Some(Self::sds(
                            self.ca_secret_name(),
                        )),
                        ..Default::default()
                    },
                ),
            ),
            ..CommonTlsContext::default()
        }
    }

    /// The server side of an inbound: a client certificate of this mesh required.
    pub fn downstream(&self, params: Option<&TlsParameters>) -> TransportSocket {
        // Under the SPIFFE validator a peer's domain is checked against its own
        // bundle; otherwise only this mesh's identities are accepted.
        let prefix = if self.spiffe {
            "spiffe://".to_string()
        } else {
            format!("spiffe://{}/", self.mesh)
        };
        let mut common = self.common(vec![string_matcher::MatchPattern::Prefix(prefix)], false);
        common.tls_params = params.cloned();
        let ctx = DownstreamTlsContext {
            common_tls_context: Some(common),
            require_client_certificate: Some(BoolValue { value: true }),
            ..DownstreamTlsContext::default()
        };
        tls_socket(any(&ctx))
    }

    /// The client side towards `service`: one of its exact SPIFFE ids, or any id
    /// of one of `domains` (other zones' trust domains), required.
    pub fn upstream(
        &self,
        service: &str,
        subset: &weft_model::resource::Tags,
        ids: &[String],
        domains: &[String],
        params: Option<&TlsParameters>,
    ) -> TransportSocket {
        let sans = ids
            .iter()
            .map(|id| string_matcher::MatchPattern::Exact(id.clone()))
            .chain(
                domains
                    .iter()
                    .map(|td| string_matcher::MatchPattern::Prefix(format!("spiffe://{td}/"))),
            )
            .collect();
        let mut common = self.common(sans, true);
        common.tls_params = params.cloned();
        let ctx = UpstreamTlsContext {
            common_tls_context: Some(common),
            sni: sni(service, &self.mesh, subset),
            ..UpstreamTlsContext::default()
        };
        tls_socket(any(&ctx))
    }

    /// The client side towards a zone egress for a MeshExternalService: SNI
    /// `sni`, the egress's SPIFFE id required.
    pub fn upstream_to_egress(&self, sni: String, egress_id: String) -> TransportSocket {
        let common = self.common(vec![string_matcher::MatchPattern::Exact(egress_id)], true);
        let ctx = UpstreamTlsContext {
            common_tls_context: Some(common),
            sni,
            ..UpstreamTlsContext::default()
        };
        tls_socket(any(&ctx))
    }
}

fn ca_secret_name(mesh: &str) -> String {
    format!("mesh_ca:secret:{mesh}")
}

/// `mesh_ca:secret:<mesh>`: the trusted CAs (`trusted_pem`: their
/// certificates, concatenated).
pub fn ca_secret(mesh: &str, trusted_pem: &str) -> Any {
    any(&Secret {
        name: ca_secret_name(mesh),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(trusted_pem)),
                ..CertificateValidationContext::default()
            },
        )),
    })
}

/// Kuma's SNI for a mesh service or a tag subset of it:
/// `<service>{mesh=<mesh>}`, the subset's tags appended sorted
/// (`backend{mesh=default,version=v1}`). A zone ingress routes on it.
pub fn sni(service: &str, mesh: &str, subset: &weft_model::resource::Tags) -> String {
    let mut s = format!("{service}{{mesh={mesh}");
    for (k, v) in subset {
        if k != weft_model::resource::tags::SERVICE {
            s.push_str(&format!(",{k}={v}"));
        }
    }
    s.push('}');
    s
}

pub(super) fn inline(pem: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineString(pem.to_string())),
        ..DataSource::default()
    }
}

pub(crate) fn tls_socket(ctx: Any) -> TransportSocket {
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(ctx)),
    }
}

/// Inbounds terminate mTLS in the mesh's mode (MeshTLS may change the mode and
/// TLS parameters afterwards).
pub fn apply_inbound(cfg: &mut ProxyConfig, tls: &MeshTls) {
    for inbound in &mut cfg.inbounds {
        if let super::model::Chain::Http(http) = &mut inbound.chain {
            // The app sees the caller's SPIFFE id in x-forwarded-client-cert.
            http.hcm.forward_client_cert_details =
                http_connection_manager::ForwardClientCertDetails::SanitizeSet as i32;
            http.hcm.set_current_client_cert_details =
                Some(http_connection_manager::SetCurrentClientCertDetails {
                    uri: true,
                    ..Default::default()
                });
        }
        inbound.tls = Some(super::model::InboundTls {
            mode: tls.mode,
            socket: tls.downstream(None),
        });
    }
}

/// Mesh clusters towards mTLS destinations originate mTLS (with `params` from a
/// Mesh-wide MeshTLS), accepting the destination's SPIFFE ids. Runs after the
/// plugins, which may add clusters.
pub fn apply_clusters(
    cfg: &mut ProxyConfig,
    tls: &MeshTls,
    identities: &super::workload_identity::IdentityView,
    params: Option<&TlsParameters>,
) {
    for part in cfg.clusters.values_mut() {
        if let ClusterRole::Outbound {
            service,
            subset,
            external: false,
        } = &part.role
            && identities.destination_mtls(service, tls.mesh_mtls)
        {
            let ids = identities.accepted_ids(service, tls.mesh_mtls);
            let domains = identities.accepted_domains(service);
            part.cluster.transport_socket =
                Some(tls.upstream(service, subset, &ids, &domains, params));
        }
    }
}

/// `mesh_ca:secret:<mesh>` under Envoy's SPIFFE validator: one trust domain per
/// entry of `domains` (name → PEM bundle).
pub fn spiffe_ca_secret(mesh: &str, domains: &BTreeMap<String, String>) -> Any {
    use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        SpiffeCertValidatorConfig, spiffe_cert_validator_config,
    };
    let config = SpiffeCertValidatorConfig {
        trust_domains: domains
            .iter()
            .filter(|(_, pem)| !pem.is_empty())
            .map(|(name, pem)| spiffe_cert_validator_config::TrustDomain {
                name: name.clone(),
                trust_bundle: Some(inline(pem)),
                ..Default::default()
            })
            .collect(),
        ..SpiffeCertValidatorConfig::default()
    };
    any(&Secret {
        name: ca_secret_name(mesh),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                custom_validator_config: Some(TypedExtensionConfig {
                    name: "envoy.tls.cert_validator.spiffe".into(),
                    typed_config: Some(any(&config)),
                }),
                ..CertificateValidationContext::default()
            },
        )),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::xds::generate::tests::{cluster, dataplane, listener, res, web};
    use crate::xds::generate::{MeshView, generate_config};
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use prost::Message;

    /// The test mesh with mTLS in `mode`, its CA Secrets, and web/backend proxies.
    fn view(mode: &str, with_ca: bool) -> MeshView {
        let mesh = res(&format!(
            "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n      mode: {mode}\n"
        ));
        let mut all = vec![
            web(),
            dataplane(
                "backend-1",
                "127.0.0.2",
                20010,
                "backend",
                "http",
                "",
                "    []",
            ),
        ];
        if with_ca {
            let Spec::Mesh(spec) = &mesh.spec else {
                unreachable!()
            };
            let backend = &spec.mtls.as_ref().unwrap().backends[0];
            let (_, secrets) = mesh_ca::builtin_ca_secrets("default", backend).unwrap();
            all.extend(secrets.into_iter().map(Arc::new));
        }
        MeshView::new(mesh, all)
    }

    fn downstream(l: &Listener, chain: usize) -> DownstreamTlsContext {
        let ts = l.filter_chains[chain].transport_socket.as_ref().unwrap();
        let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type else {
            panic!("no TLS config")
        };
        DownstreamTlsContext::decode(any.value.as_slice()).unwrap()
    }

    fn upstream(c: &Cluster) -> UpstreamTlsContext {
        let ts = c.transport_socket.as_ref().unwrap();
        let Some(transport_socket::ConfigType::TypedConfig(any)) = &ts.config_type else {
            panic!("no TLS config")
        };
        UpstreamTlsContext::decode(any.value.as_slice()).unwrap()
    }

    fn san(common: &CommonTlsContext) -> Option<string_matcher::MatchPattern> {
        let Some(common_tls_context::ValidationContextType::CombinedValidationContext(c)) =
            &common.validation_context_type
        else {
            panic!("no combined validation context")
        };
        c.default_validation_context
            .as_ref()
            .unwrap()
            .match_typed_subject_alt_names[0]
            .matcher
            .as_ref()
            .unwrap()
            .match_pattern
            .clone()
    }

    // STRICT: the inbound has one chain that requires a client certificate of
    // the mesh; the backend cluster originates mTLS to exactly backend's SPIFFE
    // id with Kuma's SNI and ALPN; the local app cluster stays plaintext.
    #[test]
    fn strict_inbound_and_mtls_clusters() {
        let view = view("STRICT", true);
        assert!(view.mtls.as_ref().unwrap().ca.is_ok());
        let a = generate_config(&view, &web()).unwrap();
        let inbound = listener(&a, "inbound:127.0.0.1:20000");
        assert_eq!(inbound.filter_chains.len(), 1);
        let ds = downstream(inbound, 0);
        assert!(ds.require_client_certificate.unwrap().value);
        let common = ds.common_tls_context.unwrap();
        assert_eq!(
            common.tls_certificate_sds_secret_configs[0].name,
            "identity_cert:secret:default"
        );
        assert_eq!(
            san(&common),
            Some(string_matcher::MatchPattern::Prefix(
                "spiffe://default/".into()
            ))
        );
        let us = upstream(cluster(&a, "backend"));
        assert_eq!(us.sni, "backend{mesh=default}");
        let common = us.common_tls_context.unwrap();
        assert_eq!(common.alpn_protocols, ["kuma"]);
        assert_eq!(
            san(&common),
            Some(string_matcher::MatchPattern::Exact(
                "spiffe://default/backend".into()
            ))
        );
        assert!(cluster(&a, "localhost:21000").transport_socket.is_none());
        // Outbound listeners are the app's plaintext side.
        let outbound = listener(&a, "outbound:127.0.0.1:20001");
        assert!(outbound.filter_chains[0].transport_socket.is_none());
    }

    // Kuma's SNI: the service, the mesh, then a subset's tags sorted (what a zone
    // ingress routes on); `kuma.io/service` is not repeated.
    #[test]
    fn sni_names_service_mesh_and_subset() {
        use weft_model::resource::Tags;
        assert_eq!(
            sni("backend", "default", &Tags::new()),
            "backend{mesh=default}"
        );
        let subset = Tags::from([
            ("version".to_string(), "v1".to_string()),
            ("kuma.io/service".to_string(), "backend".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]);
        assert_eq!(
            sni("backend", "default", &subset),
            "backend{mesh=default,env=prod,version=v1}"
        );
    }

    // PERMISSIVE: the TLS inspector and three chains — mesh mTLS (ALPN kuma),
    // plaintext, and the app's own TLS passed through.
    #[test]
    fn permissive_inbound_has_three_chains() {
        let a = generate_config(&view("PERMISSIVE", true), &web()).unwrap();
        let inbound = listener(&a, "inbound:127.0.0.1:20000");
        assert_eq!(
            inbound.listener_filters[0].name,
            "envoy.filters.listener.tls_inspector"
        );
        let matches: Vec<(String, Vec<String>, bool)> = inbound
            .filter_chains
            .iter()
            .map(|c| {
                let m = c.filter_chain_match.clone().unwrap();
                (
                    m.transport_protocol,
                    m.application_protocols,
                    c.transport_socket.is_some(),
                )
            })
            .collect();
        assert_eq!(
            matches,
            [
                ("tls".to_string(), vec!["kuma".to_string()], true),
                ("raw_buffer".to_string(), vec![], false),
                ("tls".to_string(), vec![], false),
            ]
        );
        // RBAC guards the mTLS chain only (nothing to authenticate in plaintext).
        let rbac_on = |chain: usize| {
            inbound.filter_chains[chain].filters.iter().any(|f| {
                let Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(any)) =
                    &f.config_type
                else {
                    return false;
                };
                f.name == "envoy.filters.network.http_connection_manager"
                    && envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager::decode(any.value.as_slice())
                        .unwrap()
                        .http_filters
                        .iter()
                        .any(|h| h.name == "inbound:127.0.0.1:20000:rbac")
            })
        };
        assert!(rbac_on(0));
        assert!(!rbac_on(1));
        // Their configs travel by ECDS, DENY then ALLOW.
        let names: Vec<&str> = a
            .extension_configs
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "inbound:127.0.0.1:20000:rbac-deny",
                "inbound:127.0.0.1:20000:rbac"
            ]
        );
    }

    // A mesh whose CA Secrets have not arrived still gets mTLS configuration
    // (fail closed), with the reason kept for the log.
    #[test]
    fn missing_ca_fails_closed() {
        let view = view("STRICT", false);
        let tls = view.mtls.as_ref().unwrap();
        let err = tls.ca.as_ref().unwrap_err();
        assert!(err.contains("default.ca-builtin-cert-ca-1"), "{err}");
        let a = generate_config(&view, &web()).unwrap();
        assert!(cluster(&a, "backend").transport_socket.is_some());
    }
}
