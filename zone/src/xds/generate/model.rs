//! The per-proxy configuration while it is being built: inbounds and outbounds
//! as editable parts (clusters, HCM pieces, routes, tcp_proxy) that the base
//! generator creates and the policy plugins change, then [`ProxyConfig::assemble`]
//! packs them into Envoy Listeners and Clusters.

use super::envoy::{any, socket};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, ExtensionConfigSource, TrafficDirection,
    TransportSocket, TypedExtensionConfig, config_source,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::config::rbac::v3::Rbac as RbacRules;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as HttpRbac;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use std::collections::BTreeMap;
use std::sync::Arc;
use weft_model::resource::Tags;
use weft_model::resource::mesh::MtlsMode;
use weft_sync::delta::Entry;

/// A service's protocol (`kuma.io/protocol`), `tcp` when absent or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Http,
    Http2,
    Grpc,
    Kafka,
}

impl Protocol {
    pub fn parse(s: Option<&str>) -> Protocol {
        match s {
            Some("http") => Protocol::Http,
            Some("http2") => Protocol::Http2,
            Some("grpc") => Protocol::Grpc,
            Some("kafka") => Protocol::Kafka,
            _ => Protocol::Tcp,
        }
    }

    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2 | Protocol::Grpc)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::Kafka => "kafka",
        }
    }
}

/// An HTTP filter chain: HCM settings, filters before the router, one virtual
/// host's routes.
#[derive(Debug, Clone, Default)]
pub struct HttpChain {
    /// HCM without `route_specifier` and `http_filters` (filled at assembly).
    pub hcm: HttpConnectionManager,
    /// Filters before the router, in order.
    pub filters: Vec<HttpFilter>,
    pub route_config: RouteConfiguration,
    pub vhost: VirtualHost,
}

impl HttpChain {
    pub fn routes_mut(&mut self) -> &mut Vec<Route> {
        &mut self.vhost.routes
    }
}

/// Either an HTTP chain or a tcp_proxy.
#[derive(Debug, Clone)]
pub enum Chain {
    Http(Box<HttpChain>),
    Tcp(Box<TcpProxy>),
}

/// One listener (inbound or outbound) under construction.
#[derive(Debug, Clone)]
pub struct ListenerPart {
    pub name: String,
    pub address: String,
    pub port: u32,
    pub direction: TrafficDirection,
    /// Inbound tags / outbound tags.
    pub tags: Tags,
    /// The service this listener serves (inbound) or targets (outbound).
    pub service: String,
    pub protocol: Protocol,
    /// Network filters before the terminal one (e.g. TCP rate limit).
    pub network_filters: Vec<Filter>,
    pub chain: Chain,
    /// Inbound: the port of the local app cluster `localhost:<port>`.
    pub local_port: Option<u32>,
    /// Inbound under mesh mTLS: the mode and the server-side TLS socket.
    pub tls: Option<InboundTls>,
    /// Inbound: who may connect (MeshTrafficPermission); only on mTLS chains.
    pub rbac: Option<Rbac>,
}

/// How an inbound terminates mesh mTLS.
#[derive(Debug, Clone)]
pub struct InboundTls {
    pub mode: MtlsMode,
    pub socket: TransportSocket,
}

/// RBAC for an inbound: a DENY filter (checked first, so a deny always wins),
/// the ALLOW rules, and shadow rules that are only logged.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    pub deny: Option<RbacRules>,
    pub allow: RbacRules,
    pub shadow: Option<RbacRules>,
}

/// Who a cluster serves, for policies that pick clusters by destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRole {
    /// The local app behind an inbound (`localhost:<port>`), by inbound port.
    Local { inbound_port: u32 },
    /// A mesh destination: the whole service, or the tag `subset` of it (empty
    /// for the whole service; `kuma.io/service` not repeated). `external`: an
    /// ExternalService (no mesh mTLS towards it; reached by DNS or through the
    /// zone egress).
    Outbound {
        service: String,
        subset: Tags,
        external: bool,
    },
    /// Infrastructure (e.g. an access log collector): no policy applies.
    System,
}

#[derive(Debug, Clone)]
pub struct ClusterPart {
    pub role: ClusterRole,
    pub protocol: Protocol,
    pub cluster: Cluster,
    /// Upstream HTTP options, packed into `typed_extension_protocol_options` at assembly.
    pub http_options: Option<HttpProtocolOptions>,
}

impl ClusterPart {
    pub fn assemble(&self) -> Cluster {
        let mut c = self.cluster.clone();
        if let Some(o) = &self.http_options {
            c.typed_extension_protocol_options.insert(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
                any(o),
            );
        }
        c
    }
}

/// Everything one proxy gets, under construction.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    pub inbounds: Vec<ListenerPart>,
    pub outbounds: Vec<ListenerPart>,
    pub clusters: BTreeMap<String, ClusterPart>,
    /// EDS resources by cluster name (shared per service when possible).
    pub endpoints: BTreeMap<String, Arc<Entry>>,
    /// Finished listeners that serve the proxy itself rather than traffic (the
    /// MeshMetric Prometheus endpoint): no policy applies to them.
    pub system_listeners: Vec<Listener>,
}

/// The finished Envoy resources of a proxy.
#[derive(Debug, Clone, Default)]
pub struct Assembled {
    pub listeners: Vec<Listener>,
    /// Filter configs delivered by ECDS (the inbounds' RBAC).
    pub extension_configs: Vec<TypedExtensionConfig>,
    pub clusters: Vec<Cluster>,
    pub endpoints: BTreeMap<String, Arc<Entry>>,
}

pub fn router_filter() -> HttpFilter {
    HttpFilter {
        name: "envoy.filters.http.router".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(
            any(&Router::default()),
        )),
        ..HttpFilter::default()
    }
}

/// The listener filter that reads a connection's TLS SNI and ALPN.
pub fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.tls_inspector".into(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(
            &TlsInspector::default(),
        ))),
        ..ListenerFilter::default()
    }
}

pub fn network_filter<T: prost::Message + prost::Name>(name: &str, msg: &T) -> Filter {
    Filter {
        name: name.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(any(msg))),
    }
}

/// A filter whose config comes over ADS (ECDS) as a `TypedExtensionConfig`.
fn ecds(type_url: String) -> ExtensionConfigSource {
    ExtensionConfigSource {
        config_source: Some(ConfigSource {
            config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                AggregatedConfigSource {},
            )),
            resource_api_version: ApiVersion::V3 as i32,
            ..ConfigSource::default()
        }),
        type_urls: vec![type_url],
        ..ExtensionConfigSource::default()
    }
}

impl ListenerPart {
    /// The ECDS names of this listener's RBAC filters: the DENY one, then the
    /// ALLOW one. RBAC travels as extension configs so that a permission change
    /// leaves the listener untouched: no drain, and requests on open connections
    /// see the new permission at once.
    fn rbac_names(&self) -> [String; 2] {
        [
            format!("{}:rbac-deny", self.name),
            format!("{}:rbac", self.name),
        ]
    }

    /// The RBAC filter configs ([`Self::rbac_names`]) of this listener.
    pub fn rbac_configs(&self) -> Vec<TypedExtensionConfig> {
        let Some(rbac) = &self.rbac else {
            return Vec::new();
        };
        let deny = rbac.deny.clone().unwrap_or_else(|| RbacRules {
            action: envoy_types::pb::envoy::config::rbac::v3::rbac::Action::Deny as i32,
            ..RbacRules::default()
        });
        let [deny_name, allow_name] = self.rbac_names();
        let tcp = matches!(self.chain, Chain::Tcp(_));
        let stat_prefix = format!("{}.", super::envoy::sanitize(&self.name));
        let config = |rules: RbacRules, shadow: Option<RbacRules>| {
            if tcp {
                any(&NetworkRbac {
                    rules: Some(rules),
                    shadow_rules: shadow,
                    stat_prefix: stat_prefix.clone(),
                    ..NetworkRbac::default()
                })
            } else {
                any(&HttpRbac {
                    rules: Some(rules),
                    shadow_rules: shadow,
                    ..HttpRbac::default()
                })
            }
        };
        vec![
            TypedExtensionConfig {
                name: deny_name,
                typed_config: Some(config(deny, None)),
            },
            TypedExtensionConfig {
                name: allow_name,
                typed_config: Some(config(rbac.allow.clone(), rbac.shadow.clone())),
            },
        ]
    }

    /// The network filters of one chain, RBAC first when `with_rbac`.
    fn filters(&self, with_rbac: bool) -> Vec<Filter> {
        let rbac = self.rbac.as_ref().filter(|_| with_rbac);
        let mut filters = Vec::new();
        if let (Some(_), Chain::Tcp(_)) = (rbac, &self.chain) {
            for name in self.rbac_names() {
                filters.push(Filter {
                    name,
                    config_type: Some(filter::ConfigType::ConfigDiscovery(ecds(
                        <NetworkRbac as prost::Name>::type_url(),
                    ))),
                });
            }
        }
        filters.extend(self.network_filters.iter().cloned());
        match &self.chain {
            Chain::Http(http) => {
                let mut hcm = http.hcm.clone();
                let mut rc = http.route_config.clone();
                rc.virtual_hosts = vec![http.vhost.clone()];
                hcm.route_specifier =
                    Some(http_connection_manager::RouteSpecifier::RouteConfig(rc));
                hcm.http_filters = Vec::with_capacity(http.filters.len() + 2);
                if rbac.is_some() {
                    for name in self.rbac_names() {
                        hcm.http_filters.push(HttpFilter {
                            name,
                            config_type: Some(http_filter::ConfigType::ConfigDiscovery(ecds(
                                <HttpRbac as prost::Name>::type_url(),
                            ))),
                            ..HttpFilter::default()
                        });
                    }
                }
                hcm.http_filters.extend(http.filters.iter().cloned());
                hcm.http_filters.push(router_filter());
                filters.push(network_filter(
                    "envoy.filters.network.http_connection_manager",
                    &hcm,
                ));
            }
            Chain::Tcp(tcp) => {
                filters.push(network_filter(
                    "envoy.filters.network.tcp_proxy",
                    tcp.as_ref(),
                ));
            }
        }
        filters
    }

    pub fn assemble(&self) -> Listener {
        let mut listener_filters = Vec::new();
        let filter_chains = match &self.tls {
            None => vec![FilterChain {
                filters: self.filters(false),
                ..FilterChain::default()
            }],
            Some(tls) => {
                let mtls = FilterChain {
                    filters: self.filters(true),
                    transport_socket: Some(tls.socket.clone()),
                    ..FilterChain::default()
                };
                match tls.mode {
                    MtlsMode::Strict => vec![mtls],
                    // Kuma's three chains: mesh mTLS (ALPN `kuma`, with RBAC),
                    // plaintext, and the app's own TLS passed through untouched.
                    MtlsMode::Permissive => {
                        listener_filters.push(tls_inspector());
                        let matching = |transport: &str, alpn: &[&str]| FilterChainMatch {
                            transport_protocol: transport.into(),
                            application_protocols: alpn.iter().map(|a| a.to_string()).collect(),
                            ..FilterChainMatch::default()
                        };
                        let mut chains = vec![
                            FilterChain {
                                filter_chain_match: Some(matching(
                                    "tls",
                                    &[super::mtls::ALPN_KUMA],
                                )),
                                ..mtls
                            },
                            FilterChain {
                                filter_chain_match: Some(matching("raw_buffer", &[])),
                                filters: self.filters(false),
                                ..FilterChain::default()
                            },
                        ];
                        if let Some(port) = self.local_port {
                            let cluster = format!("localhost:{port}");
                            chains.push(FilterChain {
                                filter_chain_match: Some(matching("tls", &[])),
                                filters: vec![network_filter(
                                    "envoy.filters.network.tcp_proxy",
                                    &TcpProxy {
                                        stat_prefix: format!("localhost_{port}_tls"),
                                        cluster_specifier: Some(
                                            tcp_proxy::ClusterSpecifier::Cluster(cluster),
                                        ),
                                        ..TcpProxy::default()
                                    },
                                )],
                                ..FilterChain::default()
                            });
                        }
                        chains
                    }
                }
            }
        };
        Listener {
            name: self.name.clone(),
            address: Some(socket(&self.address, self.port)),
            traffic_direction: self.direction as i32,
            listener_filters,
            filter_chains,
            // Kuma's `io.kuma.tags`: the inbound's or outbound's tags, which
            // dashboards and MeshProxyPatch match listeners by.
            metadata: tags_metadata(&self.tags),
            ..Listener::default()
        }
    }
}

/// `tags` as the `io.kuma.tags` filter metadata (`None` without tags).
fn tags_metadata(tags: &Tags) -> Option<envoy_types::pb::envoy::config::core::v3::Metadata> {
    super::endpoints::tags_metadata("io.kuma.tags", tags)
}

impl ProxyConfig {
    pub fn assemble(&self) -> Assembled {
        Assembled {
            listeners: self
                .inbounds
                .iter()
                .chain(self.outbounds.iter())
                .map(ListenerPart::assemble)
                .chain(self.system_listeners.iter().cloned())
                .collect(),
            extension_configs: self
                .inbounds
                .iter()
                .flat_map(ListenerPart::rbac_configs)
                .collect(),
            clusters: self.clusters.values().map(ClusterPart::assemble).collect(),
            endpoints: self.endpoints.clone(),
        }
    }
}
