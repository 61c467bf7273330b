//! The base configuration Kuma's core generators produce for a sidecar, before
//! any policy: per inbound a listener `inbound:<ip>:<port>` to the local app
//! cluster `localhost:<servicePort>`; per outbound a listener
//! `outbound:<ip>:<port>` to the EDS cluster `<service>`. HTTP (http, http2,
//! grpc) gets an HTTP connection manager with an inline route config
//! (`inbound:<service>` / `outbound:<service>`), everything else tcp_proxy.

use super::MeshView;
use super::envoy::{secs, socket, u32v};
use super::model::{
    Chain, ClusterPart, ClusterRole, HttpChain, ListenerPart, Protocol, ProxyConfig,
};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, HeaderValue, HeaderValueOption,
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CoreHttpOptions,
    TrafficDirection, config_source,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use std::time::Duration;
use weft_model::resource::dataplane::DataplaneSpec;
use weft_model::resource::{Tags, tags};

/// Route to `cluster` for every path.
pub fn catch_all(cluster: &str) -> Route {
    Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
            ..RouteMatch::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            ..RouteAction::default()
        })),
        ..Route::default()
    }
}

fn http_chain(stat_prefix: &str, route_config: String, service: &str, route: Route) -> HttpChain {
    HttpChain {
        hcm: HttpConnectionManager {
            stat_prefix: super::names::stat_name(stat_prefix),
            ..HttpConnectionManager::default()
        },
        filters: Vec::new(),
        route_config: RouteConfiguration {
            name: route_config,
            validate_clusters: Some(envoy_types::pb::google::protobuf::BoolValue { value: false }),
            ..RouteConfiguration::default()
        },
        vhost: VirtualHost {
            name: service.to_string(),
            domains: vec!["*".into()],
            routes: vec![route],
            ..VirtualHost::default()
        },
    }
}

pub fn tcp_chain(stat_prefix: &str, cluster: &str) -> TcpProxy {
    TcpProxy {
        stat_prefix: super::names::stat_name(stat_prefix),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(cluster.into())),
        ..TcpProxy::default()
    }
}

/// Upstream HTTP options: HTTP/1.1 or HTTP/2 explicitly.
pub fn http_options(http2: bool) -> HttpProtocolOptions {
    use http_protocol_options::explicit_http_config::ProtocolConfig;
    let config = if http2 {
        ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions::default())
    } else {
        ProtocolConfig::HttpProtocolOptions(Http1ProtocolOptions::default())
    };
    HttpProtocolOptions {
        upstream_protocol_options: Some(
            http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(config),
                },
            ),
        ),
        ..HttpProtocolOptions::default()
    }
}

pub fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..ConfigSource::default()
    }
}

/// An EDS cluster `name` for `service` (or its tag `subset`), its endpoints from
/// the view.
pub fn outbound_cluster(
    name: &str,
    service: &str,
    subset: &Tags,
    protocol: Protocol,
) -> ClusterPart {
    let cluster = Cluster {
        name: name.to_string(),
        alt_stat_name: super::names::alt_stat_name(name),
        connect_timeout: Some(secs(5)),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: String::new(),
        }),
        ..Cluster::default()
    };
    ClusterPart {
        role: ClusterRole::Outbound {
            service: service.to_string(),
            subset: subset.clone(),
            external: false,
        },
        protocol,
        cluster,
        // Mesh traffic between sidecars is HTTP/2 for every HTTP protocol (Kuma).
        http_options: protocol.is_http().then(|| http_options(true)),
    }
}

/// Adds cluster `service` (or the tag subset `subset` of it, named as Kuma's
/// [`super::names::destination_cluster`]) with its EDS resource if missing;
/// returns its name.
pub fn ensure_outbound_cluster(
    cfg: &mut ProxyConfig,
    view: &MeshView,
    service: &str,
    subset: &Tags,
) -> String {
    let mut subset = subset.clone();
    subset.remove(tags::SERVICE);
    let name = super::names::destination_cluster(service, &subset);
    if !cfg.clusters.contains_key(&name) {
        let protocol = view.services.protocol(service).unwrap_or(Protocol::Tcp);
        // An ExternalService by the name of a service with instances in the
        // mesh: the mesh's instances win (over mTLS).
        if let Some(es) = view.externals.get(service).filter(|_| {
            view.services
                .endpoints
                .get(service)
                .is_none_or(Vec::is_empty)
        }) {
            cfg.clusters.insert(
                name.clone(),
                super::external::cluster(view, &name, es, protocol),
            );
            return name;
        }
        cfg.clusters.insert(
            name.clone(),
            outbound_cluster(&name, service, &subset, protocol),
        );
        let cla = if subset.is_empty() {
            view.services.cla(service)
        } else {
            view.services.subset_cla(&name, service, &subset)
        };
        cfg.endpoints.insert(name.clone(), cla);
    }
    name
}

/// A STATIC cluster `name` with the one endpoint `host:port`.
pub fn static_cluster(name: &str, host: &str, port: u32, connect: Duration) -> Cluster {
    Cluster {
        name: name.to_string(),
        alt_stat_name: super::names::alt_stat_name(name),
        connect_timeout: Some(super::envoy::duration(connect)),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.to_string(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket(host, port)),
                        ..Endpoint::default()
                    })),
                    load_balancing_weight: Some(u32v(1)),
                    ..LbEndpoint::default()
                }],
                ..LocalityLbEndpoints::default()
            }],
            ..ClusterLoadAssignment::default()
        }),
        ..Cluster::default()
    }
}

fn local_cluster(
    name: &str,
    ip: &str,
    port: u32,
    inbound_port: u32,
    protocol: Protocol,
) -> ClusterPart {
    let cluster = static_cluster(name, ip, port, Duration::from_secs(10));
    let http_options = protocol.is_http().then(|| {
        let mut o = http_options(protocol != Protocol::Http);
        o.common_http_protocol_options = Some(CoreHttpOptions {
            idle_timeout: Some(secs(7200)),
            ..CoreHttpOptions::default()
        });
        o
    });
    ClusterPart {
        role: ClusterRole::Local { inbound_port },
        protocol,
        cluster,
        http_options,
    }
}

/// The base configuration of `dp`.
pub fn build(view: &MeshView, dp: &DataplaneSpec) -> ProxyConfig {
    let mut cfg = ProxyConfig::default();
    let Some(net) = &dp.networking else {
        return cfg;
    };
    for inbound in &net.inbound {
        if inbound.state == Some(weft_model::resource::dataplane::InboundState::Ignored) {
            continue;
        }
        let iface = net.inbound_interface(inbound);
        let service = inbound.service().unwrap_or_default().to_string();
        let protocol = Protocol::parse(Some(inbound.protocol()));
        let cluster_name = format!("localhost:{}", iface.workload_port);
        let stat = format!("localhost_{}", iface.workload_port);
        cfg.clusters.insert(
            cluster_name.clone(),
            local_cluster(
                &cluster_name,
                &iface.workload_ip,
                iface.workload_port,
                inbound.port,
                protocol,
            ),
        );
        let chain = if protocol.is_http() {
            let mut route = catch_all(&cluster_name);
            if let Some(route::Action::Route(a)) = &mut route.action {
                a.timeout = Some(secs(0));
            }
            let mut chain = http_chain(&stat, format!("inbound:{service}"), &service, route);
            chain.route_config.request_headers_to_remove = vec!["x-kuma-tags".into()];
            chain.hcm.stream_idle_timeout = Some(secs(3600));
            Chain::Http(Box::new(chain))
        } else {
            let mut tcp = tcp_chain(&stat, &cluster_name);
            tcp.idle_timeout = Some(secs(7200));
            Chain::Tcp(Box::new(tcp))
        };
        cfg.inbounds.push(ListenerPart {
            name: format!("inbound:{}:{}", iface.dataplane_ip, inbound.port),
            address: iface.dataplane_ip.clone(),
            port: inbound.port,
            direction: TrafficDirection::Inbound,
            tags: inbound.tags.clone(),
            service,
            protocol,
            network_filters: Vec::new(),
            chain,
            local_port: Some(iface.workload_port),
            tls: None,
            rbac: None,
        });
    }
    // Kuma's outbound routes carry the caller's tags when a policy matches clients
    // by them (MeshFaultInjection `from[]`): `x-kuma-tags`, stripped by inbounds.
    let tags_header = view
        .resources
        .get(weft_model::resource::ResourceType::MeshFaultInjection.name())
        .is_some_and(|m| !m.is_empty())
        .then(|| super::names::tags_header(net.inbound.iter().map(|i| &i.tags)))
        .filter(|v| !v.is_empty());
    for outbound in &net.outbound {
        let iface = weft_model::resource::dataplane::Networking::outbound_interface(outbound);
        let (service, protocol, cluster) = match outbound.tags.get(tags::SERVICE) {
            Some(service) => {
                let protocol = view.services.protocol(service).unwrap_or_else(|| {
                    Protocol::parse(outbound.tags.get(tags::PROTOCOL).map(String::as_str))
                });
                let cluster = ensure_outbound_cluster(&mut cfg, view, service, &Tags::new());
                (service.clone(), protocol, cluster)
            }
            // A MeshExternalService by reference (through the zone egress).
            None => match super::external::mes_outbound(&mut cfg, view, outbound) {
                Some(found) => found,
                None => continue,
            },
        };
        let chain = if protocol.is_http() {
            // Kuma names every outbound route by its rule's matches.
            let mut route = catch_all(&cluster);
            route.name = super::names::catch_all_route_name();
            let mut chain = http_chain(&service, format!("outbound:{service}"), &service, route);
            chain.hcm.normalize_path =
                Some(envoy_types::pb::google::protobuf::BoolValue { value: true });
            if let Some(value) = &tags_header {
                chain
                    .route_config
                    .request_headers_to_add
                    .push(HeaderValueOption {
                        header: Some(HeaderValue {
                            key: "x-kuma-tags".into(),
                            value: value.clone(),
                            ..HeaderValue::default()
                        }),
                        ..HeaderValueOption::default()
                    });
            }
            Chain::Http(Box::new(chain))
        } else {
            Chain::Tcp(Box::new(tcp_chain(&service, &cluster)))
        };
        cfg.outbounds.push(ListenerPart {
            name: format!("outbound:{}:{}", iface.dataplane_ip, iface.dataplane_port),
            address: iface.dataplane_ip,
            port: iface.dataplane_port,
            direction: TrafficDirection::Outbound,
            tags: outbound.tags.clone(),
            service,
            protocol,
            network_filters: Vec::new(),
            chain,
            local_port: None,
            tls: None,
            rbac: None,
        });
    }
    cfg
}
