//! MeshTrace (order 700, single item): the HCM `tracing` of every inbound and
//! every mesh outbound (`kuma.io/service`) HTTP listener, and one cluster for
//! the collector, as Kuma's `meshtrace` plugin (legacy naming):
//! - provider `envoy.tracers.zipkin` (cluster `meshtrace:zipkin`:
//!   `collector_endpoint` = the URL's path, `collector_hostname` = its
//!   `host[:port]`, `trace_id_128bit`, `shared_span_context` (default true),
//!   `collector_endpoint_version` `HTTP_JSON` / `HTTP_PROTO`; `https` → TLS to
//!   the collector), `envoy.tracers.datadog` (`meshtrace:datadog`,
//!   `service_name` the proxy's service, with `splitService`
//!   `<svc>_INBOUND` / `<svc>_OUTBOUND_<destination>`) or
//!   `envoy.tracers.opentelemetry` (`meshtrace:opentelemetry`, gRPC over
//!   HTTP/2, port 4317 by default);
//! - `overall` / `client` / `random` sampling percentages (unset: Envoy's 100 %);
//! - `custom_tags`: the policy's literal / request-header tags, then the
//!   literals `kuma.mesh`, `kuma.zone` and (with a `kuma.io/workload` label)
//!   `kuma.workload` unless the policy names them;
//! - `spawn_upstream_span: false` (sidecars); no span name is set (Envoy's).
//!
//! The service is the proxy's first inbound `kuma.io/service` (sorted), else
//! `unknown`. An empty `backends` list turns tracing off. A collector address that is a name is
//! resolved by DNS (STRICT_DNS), an IP is STATIC. A Zipkin URL without a port
//! uses its scheme's (Kuma leaves it 0). An OpenTelemetry `backendRef` names a
//! MeshOpenTelemetryBackend, which Weft does not have: as Kuma when the backend
//! is not found, the HCM gets sampling and tags but no provider (warned on PUT).

use super::Ctx;
use crate::xds::generate::envoy::any;
use crate::xds::generate::model::{Chain, ClusterPart, ClusterRole, Protocol, ProxyConfig};
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::{GrpcService, TrafficDirection, grpc_service};
use envoy_types::pb::envoy::config::trace::v3::{
    DatadogConfig, OpenTelemetryConfig, ZipkinConfig, tracing, zipkin_config,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::Tracing;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use envoy_types::pb::envoy::r#type::tracing::v3::{CustomTag, custom_tag};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::BoolValue;
use std::time::Duration;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::intorstring::IntOrString;
use weft_model::resource::policy::meshtrace::{Backend, Conf, Tag, ZipkinApiVersion};
use weft_model::resource::{Spec, net, tags};

const TY: ResourceType = ResourceType::MeshTrace;
/// Kuma's default OpenTelemetry collector port (OTLP/gRPC).
const OTEL_PORT: u32 = 4317;

/// The collector of a backend: cluster name, host, port, TLS, HTTP/2.
struct Collector {
    cluster: String,
    host: String,
    port: u32,
    tls: bool,
    http2: bool,
}

fn collector(b: &Backend) -> Option<Collector> {
    if let Some(z) = &b.zipkin {
        let u = net::split_url(&z.url).filter(|u| !u.host.is_empty())?;
        let tls = u.scheme == "https";
        let port = u
            .port
            .and_then(net::parse_port)
            .map_or(if tls { 443 } else { 80 }, u32::from);
        return Some(Collector {
            cluster: cluster_name("zipkin"),
            host: u.host.to_string(),
            port,
            tls,
            http2: false,
        });
    }
    if let Some(d) = &b.datadog {
        let u = net::split_url(&d.url).filter(|u| !u.host.is_empty())?;
        return Some(Collector {
            cluster: cluster_name("datadog"),
            host: u.host.to_string(),
            port: u32::from(u.port.and_then(net::parse_port)?),
            tls: false,
            http2: false,
        });
    }
    let endpoint = b.open_telemetry.as_ref()?.endpoint.as_deref()?;
    let (host, port) = otel_endpoint(endpoint);
    Some(Collector {
        cluster: cluster_name("opentelemetry"),
        host,
        port,
        tls: false,
        http2: true,
    })
}

/// Kuma's `meshtrace:<provider>` (`GetTracingClusterName`).
fn cluster_name(provider: &str) -> String {
    format!("meshtrace:{provider}")
}

/// An OTel `host:port` as Kuma's `ParseOtelEndpoint`: bare IPv6 or no port →
/// port 4317.
fn otel_endpoint(e: &str) -> (String, u32) {
    if e.matches(':').count() > 1 && !e.contains('[') {
        return (e.to_string(), OTEL_PORT);
    }
    let (host, port) = match e.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (e, None),
        },
        None => match e.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (e, None),
        },
    };
    let port = port.and_then(net::parse_port).map_or(OTEL_PORT, u32::from);
    (host.to_string(), port)
}

fn collector_cluster(c: &Collector, ipv6_proxy: bool) -> ClusterPart {
    let mut cluster = crate::xds::generate::base::static_cluster(
        &c.cluster,
        &c.host,
        c.port,
        Duration::from_secs(5),
    );
    if c.host.parse::<std::net::IpAddr>().is_err() {
        cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32,
        ));
        cluster.dns_lookup_family = if ipv6_proxy {
            cluster::DnsLookupFamily::Auto
        } else {
            cluster::DnsLookupFamily::V4Only
        } as i32;
    }
    if c.tls {
        let tls = UpstreamTlsContext {
            // SNI must be a host name, never an IP.
            sni: if c.host.parse::<std::net::IpAddr>().is_ok() {
                String::new()
            } else {
                c.host.clone()
            },
            allow_renegotiation: true,
            ..UpstreamTlsContext::default()
        };
        cluster.transport_socket = Some(crate::xds::generate::mtls::tls_socket(any(&tls)));
    }
    ClusterPart {
        role: ClusterRole::System,
        protocol: if c.http2 {
            Protocol::Http2
        } else {
            Protocol::Http
        },
        cluster,
        http_options: c
            .http2
            .then(|| crate::xds::generate::base::http_options(true)),
    }
}

/// A sampling percentage as Kuma's (`decimal.Float64()`).
fn percent(v: &Option<IntOrString>) -> Option<Percent> {
    let value = match v.as_ref()? {
        IntOrString::Int(i) => *i as f64,
        IntOrString::String(s) => s.trim().parse().ok()?,
    };
    Some(Percent { value })
}

fn literal(tag: &str, value: &str) -> CustomTag {
    CustomTag {
        tag: tag.to_string(),
        r#type: Some(custom_tag::Type::Literal(custom_tag::Literal {
            value: value.to_string(),
        })),
    }
}

fn custom_tags(policy: &[Tag], kuma: &[(&str, &str)]) -> Vec<CustomTag> {
    let mut out: Vec<CustomTag> = policy
        .iter()
        .map(|t| match &t.header {
            Some(h) => CustomTag {
                tag: t.name.clone(),
                r#type: Some(custom_tag::Type::RequestHeader(custom_tag::Header {
                    name: h.name.clone(),
                    default_value: h.default.clone().unwrap_or_default(),
                })),
            },
            None => literal(&t.name, t.literal.as_deref().unwrap_or_default()),
        })
        .collect();
    for (key, value) in kuma {
        if !value.is_empty() && !out.iter().any(|t| t.tag == *key) {
            out.push(literal(key, value));
        }
    }
    out
}

/// What the listeners of one proxy share.
struct Proxy<'a> {
    service: String,
    mesh: &'a str,
    zone: &'a str,
    workload: String,
}

/// The HCM `tracing` of one listener (`destination`: the outbound's service).
fn tracing_for(
    conf: &Conf,
    p: &Proxy<'_>,
    direction: TrafficDirection,
    destination: &str,
) -> Option<Tracing> {
    let backend = conf.backends.as_ref()?.first()?;
    let sampling = conf.sampling.clone().unwrap_or_default();
    let provider = provider(backend, p, direction, destination);
    Some(Tracing {
        spawn_upstream_span: Some(BoolValue { value: false }),
        overall_sampling: percent(&sampling.overall),
        client_sampling: percent(&sampling.client),
        random_sampling: percent(&sampling.random),
        custom_tags: custom_tags(
            conf.tags.as_deref().unwrap_or_default(),
            &[
                ("kuma.mesh", p.mesh),
                ("kuma.zone", p.zone),
                ("kuma.workload", &p.workload),
            ],
        ),
        provider,
        ..Tracing::default()
    })
}

fn provider(
    b: &Backend,
    p: &Proxy<'_>,
    direction: TrafficDirection,
    destination: &str,
) -> Option<tracing::Http> {
    let c = collector(b)?;
    let (name, config) = if let Some(z) = &b.zipkin {
        let u = net::split_url(&z.url)?;
        let hostname = match (u.port, u.host.contains(':')) {
            (Some(port), true) => format!("[{}]:{port}", u.host),
            (Some(port), false) => format!("{}:{port}", u.host),
            (None, true) => format!("[{}]", u.host),
            (None, false) => u.host.to_string(),
        };
        let version = match z.api_version.unwrap_or_default() {
            ZipkinApiVersion::HttpJson => zipkin_config::CollectorEndpointVersion::HttpJson,
            ZipkinApiVersion::HttpProto => zipkin_config::CollectorEndpointVersion::HttpProto,
        };
        #[allow(deprecated)]
        let zipkin = ZipkinConfig {
            collector_cluster: c.cluster,
            collector_endpoint: u.path.to_string(),
            trace_id_128bit: z.trace_id128bit.unwrap_or(false),
            shared_span_context: Some(BoolValue {
                value: z.shared_span_context.unwrap_or(true),
            }),
            collector_endpoint_version: version as i32,
            collector_hostname: hostname,
            ..ZipkinConfig::default()
        };
        ("envoy.tracers.zipkin", any(&zipkin))
    } else if let Some(d) = &b.datadog {
        let service_name = if d.split_service == Some(true) {
            match direction {
                TrafficDirection::Inbound => format!("{}_INBOUND", p.service),
                TrafficDirection::Outbound => {
                    format!("{}_OUTBOUND_{destination}", p.service)
                }
                _ => p.service.clone(),
            }
        } else {
            p.service.clone()
        };
        let dd = DatadogConfig {
            collector_cluster: c.cluster,
            service_name,
            ..DatadogConfig::default()
        };
        ("envoy.tracers.datadog", any(&dd))
    } else {
        let otel = OpenTelemetryConfig {
            service_name: p.service.clone(),
            grpc_service: Some(GrpcService {
                target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                    grpc_service::EnvoyGrpc {
                        cluster_name: c.cluster,
                        ..grpc_service::EnvoyGrpc::default()
                    },
                )),
                ..GrpcService::default()
            }),
            ..OpenTelemetryConfig::default()
        };
        ("envoy.tracers.opentelemetry", any(&otel))
    };
    Some(tracing::Http {
        name: name.to_string(),
        config_type: Some(tracing::http::ConfigType::TypedConfig(config)),
    })
}

/// Kuma's `IdentifyingName`: the first of the proxy's services, sorted.
fn service_name(ctx: &Ctx<'_>) -> String {
    let Spec::Dataplane(dp) = &ctx.dataplane.spec else {
        return "unknown".into();
    };
    dp.networking
        .iter()
        .flat_map(|n| n.inbound.iter())
        .filter_map(|i| i.tags.get(tags::SERVICE))
        .min()
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

fn set(part: &mut crate::xds::generate::model::ListenerPart, t: Option<Tracing>) {
    if let (Chain::Http(http), Some(t)) = (&mut part.chain, t) {
        http.hcm.tracing = Some(t);
    }
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let Some(conf) = &ctx.single::<Conf>(TY) else {
        return;
    };
    let mesh = ctx.view.mesh.meta.name.as_str();
    let zone = ctx.view.zone.as_str();
    let p = Proxy {
        service: service_name(ctx),
        mesh,
        zone,
        workload: super::meshaccesslog::workload_kri(ctx.dataplane, mesh, zone),
    };
    for part in &mut cfg.inbounds {
        set(part, tracing_for(conf, &p, TrafficDirection::Inbound, ""));
    }
    for part in &mut cfg.outbounds {
        // Mesh services only: Kuma leaves MeshExternalService outbounds alone.
        if !part.tags.contains_key(tags::SERVICE) {
            continue;
        }
        let service = part.service.clone();
        set(
            part,
            tracing_for(conf, &p, TrafficDirection::Outbound, &service),
        );
    }
    if let Some(c) = conf
        .backends
        .as_ref()
        .and_then(|b| b.first())
        .and_then(collector)
    {
        let ipv6 = match &ctx.dataplane.spec {
            Spec::Dataplane(dp) => dp
                .networking
                .as_ref()
                .is_some_and(|n| n.address.parse::<std::net::Ipv6Addr>().is_ok()),
            _ => false,
        };
        cfg.clusters
            .insert(c.cluster.clone(), collector_cluster(&c, ipv6));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xds::generate::generate_config;
    use crate::xds::generate::model::Assembled;
    use crate::xds::generate::tests::{
        cluster, envoy_validate, hcm, listener, mesh_view, res, web,
    };
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use prost::Message;

    const IN: &str = "inbound:127.0.0.1:20000";
    const OUT: &str = "outbound:127.0.0.1:20001";

    fn trace(default: &str) -> std::sync::Arc<weft_model::resource::Resource> {
        res(&format!(
            "type: MeshTrace\nmesh: default\nname: t\nspec:\n  targetRef: {{kind: Mesh}}\n  default:\n{default}"
        ))
    }

    fn tracing(a: &Assembled, listener_name: &str) -> Tracing {
        hcm(listener(a, listener_name))
            .tracing
            .unwrap_or_else(|| panic!("no tracing on {listener_name}"))
    }

    /// The provider's name and its decoded typed config.
    fn provider<T: Message + Default>(t: &Tracing) -> (String, T) {
        let p = t.provider.clone().expect("a provider");
        let Some(tracing::http::ConfigType::TypedConfig(any)) = p.config_type else {
            panic!("no typed config")
        };
        (p.name, T::decode(any.value.as_slice()).unwrap())
    }

    fn endpoint(c: &Cluster) -> (String, u32) {
        use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
        use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
        let lb = &c.load_assignment.as_ref().unwrap().endpoints[0].lb_endpoints[0];
        let Some(HostIdentifier::Endpoint(e)) = &lb.host_identifier else {
            panic!()
        };
        let Some(address::Address::SocketAddress(s)) = &e.address.as_ref().unwrap().address else {
            panic!()
        };
        let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier else {
            panic!()
        };
        (s.address.clone(), port)
    }

    fn tag_names(t: &Tracing) -> Vec<&str> {
        t.custom_tags.iter().map(|t| t.tag.as_str()).collect()
    }

    #[test]
    fn zipkin_on_inbound_and_outbound_http_listeners() {
        // Zipkin: the same tracing on inbound and HTTP outbound HCMs (not TCP), sampling,
        // policy tags then kuma.mesh / kuma.zone, and a STRICT_DNS cluster meshtrace:zipkin.
        let p = trace(
            "    backends: [{type: Zipkin, zipkin: {url: 'http://jaeger.obs:9411/api/v2/spans', traceId128bit: true, apiVersion: httpProto}}]\n    sampling: {overall: 10, client: 20, random: '50.5'}\n    tags:\n      - {name: app, literal: backend}\n      - {name: client_id, header: {name: x-client-id, default: none}}\n",
        );
        let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
        for l in [IN, OUT] {
            let t = tracing(&a, l);
            assert_eq!(t.overall_sampling.unwrap().value, 10.0);
            assert_eq!(t.client_sampling.unwrap().value, 20.0);
            assert_eq!(t.random_sampling.unwrap().value, 50.5);
            assert_eq!(t.spawn_upstream_span, Some(BoolValue { value: false }));
            assert_eq!(
                tag_names(&t),
                ["app", "client_id", "kuma.mesh", "kuma.zone"]
            );
            assert_eq!(
                t.custom_tags[1].r#type,
                Some(custom_tag::Type::RequestHeader(custom_tag::Header {
                    name: "x-client-id".into(),
                    default_value: "none".into()
                }))
            );
            assert_eq!(
                t.custom_tags[2].r#type,
                Some(custom_tag::Type::Literal(custom_tag::Literal {
                    value: "default".into()
                }))
            );
            let (name, z) = provider::<ZipkinConfig>(&t);
            assert_eq!(name, "envoy.tracers.zipkin");
            assert_eq!(z.collector_cluster, "meshtrace:zipkin");
            assert_eq!(z.collector_endpoint, "/api/v2/spans");
            assert_eq!(z.collector_hostname, "jaeger.obs:9411");
            assert!(z.trace_id_128bit);
            assert_eq!(z.shared_span_context, Some(BoolValue { value: true }));
            assert_eq!(
                z.collector_endpoint_version,
                zipkin_config::CollectorEndpointVersion::HttpProto as i32
            );
        }
        // redis is TCP: no HCM, nothing to trace.
        assert!(
            listener(&a, "outbound:127.0.0.1:20002").filter_chains[0].filters[0]
                .name
                .ends_with("tcp_proxy")
        );
        let c = cluster(&a, "meshtrace:zipkin");
        assert_eq!(c.alt_stat_name, "meshtrace_zipkin");
        assert_eq!(c.connect_timeout.unwrap().seconds, 5);
        assert_eq!(
            c.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::StrictDns as i32
            ))
        );
        assert_eq!(c.dns_lookup_family, cluster::DnsLookupFamily::V4Only as i32);
        assert_eq!(endpoint(c), ("jaeger.obs".into(), 9411));
        assert!(c.transport_socket.is_none());
        envoy_validate(&a);
    }

    #[test]
    fn zipkin_https_without_port_and_json_defaults() {
        // https → TLS to the collector on 443; apiVersion httpJson, sharedSpanContext true by default.
        let p = trace(
            "    backends: [{type: Zipkin, zipkin: {url: 'https://zipkin.example.com/api/v2/spans', sharedSpanContext: false}}]\n",
        );
        let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
        let (_, z) = provider::<ZipkinConfig>(&tracing(&a, OUT));
        assert_eq!(z.collector_hostname, "zipkin.example.com");
        assert_eq!(z.shared_span_context, Some(BoolValue { value: false }));
        assert!(!z.trace_id_128bit);
        assert_eq!(
            z.collector_endpoint_version,
            zipkin_config::CollectorEndpointVersion::HttpJson as i32
        );
        let c = cluster(&a, "meshtrace:zipkin");
        assert_eq!(endpoint(c), ("zipkin.example.com".into(), 443));
        let tls = c.transport_socket.as_ref().expect("TLS to the collector");
        let Some(
            envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
                any,
            ),
        ) = &tls.config_type
        else {
            panic!()
        };
        let ctx = UpstreamTlsContext::decode(any.value.as_slice()).unwrap();
        assert_eq!(ctx.sni, "zipkin.example.com");
        assert!(ctx.allow_renegotiation);
        envoy_validate(&a);
    }

    #[test]
    fn datadog_split_service_and_workload_tag() {
        // Datadog: service_name per direction with splitService (<svc>_INBOUND,
        // <svc>_OUTBOUND_<dest>); a kuma.io/workload label adds kuma.workload; a
        // policy tag named kuma.zone replaces Kuma's; an IP collector is STATIC.
        let p = trace(
            "    backends: [{type: Datadog, datadog: {url: 'http://127.0.0.1:8126', splitService: true}}]\n    tags: [{name: kuma.zone, literal: mine}]\n",
        );
        let dp = res(
            "type: Dataplane\nmesh: default\nname: web-1\nlabels: {kuma.io/workload: web, k8s.kuma.io/namespace: ns}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - {port: 20000, servicePort: 21000, tags: {kuma.io/service: web, kuma.io/protocol: http}}\n  outbound:\n    - {port: 20001, tags: {kuma.io/service: backend}}\n",
        );
        let a = generate_config(&mesh_view(&[p]), &dp).unwrap();
        let inbound = tracing(&a, IN);
        let (name, d) = provider::<DatadogConfig>(&inbound);
        assert_eq!(name, "envoy.tracers.datadog");
        assert_eq!(d.collector_cluster, "meshtrace:datadog");
        assert_eq!(d.service_name, "web_INBOUND");
        assert_eq!(
            tag_names(&inbound),
            ["kuma.zone", "kuma.mesh", "kuma.workload"]
        );
        assert_eq!(
            inbound.custom_tags[2].r#type,
            Some(custom_tag::Type::Literal(custom_tag::Literal {
                value: "kri_wl_default_default_ns_web_".into()
            }))
        );
        let (_, d) = provider::<DatadogConfig>(&tracing(&a, OUT));
        assert_eq!(d.service_name, "web_OUTBOUND_backend");
        let c = cluster(&a, "meshtrace:datadog");
        assert_eq!(
            c.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Static as i32
            ))
        );
        assert_eq!(endpoint(c), ("127.0.0.1".into(), 8126));
        envoy_validate(&a);
        // Without splitService every listener reports the proxy's service.
        let p = trace("    backends: [{type: Datadog, datadog: {url: 'http://dd:8126'}}]\n");
        let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
        assert_eq!(
            provider::<DatadogConfig>(&tracing(&a, OUT)).1.service_name,
            "web"
        );
    }

    #[test]
    fn opentelemetry_grpc_collector_and_backend_ref() {
        // OpenTelemetry: envoy_grpc to meshtrace:opentelemetry (HTTP/2, port 4317 by
        // default), service_name the proxy's service. A backendRef (no
        // MeshOpenTelemetryBackend in Weft) leaves sampling and tags, no provider, no cluster.
        let p = trace(
            "    backends: [{type: OpenTelemetry, openTelemetry: {endpoint: otel-collector}}]\n",
        );
        let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
        let (name, o) = provider::<OpenTelemetryConfig>(&tracing(&a, IN));
        assert_eq!(name, "envoy.tracers.opentelemetry");
        assert_eq!(o.service_name, "web");
        let Some(grpc_service::TargetSpecifier::EnvoyGrpc(g)) =
            o.grpc_service.unwrap().target_specifier
        else {
            panic!()
        };
        assert_eq!(g.cluster_name, "meshtrace:opentelemetry");
        let c = cluster(&a, "meshtrace:opentelemetry");
        assert_eq!(endpoint(c), ("otel-collector".into(), 4317));
        assert!(
            c.typed_extension_protocol_options
                .contains_key("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
            "HTTP/2 to the collector"
        );
        envoy_validate(&a);
        assert_eq!(otel_endpoint("[::1]:4318"), ("::1".into(), 4318));
        assert_eq!(otel_endpoint("2001:db8::1"), ("2001:db8::1".into(), 4317));

        let p = trace(
            "    backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend, name: otel}}}]\n    sampling: {overall: 5}\n",
        );
        let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
        let t = tracing(&a, OUT);
        assert!(t.provider.is_none());
        assert_eq!(t.overall_sampling.unwrap().value, 5.0);
        assert!(a.clusters.iter().all(|c| !c.name.starts_with("meshtrace")));
        envoy_validate(&a);
    }

    #[test]
    fn empty_backends_turn_tracing_off() {
        // A more specific policy with `backends: []` (merged last) removes tracing and the cluster.
        let on =
            trace("    backends: [{type: Zipkin, zipkin: {url: 'http://z:9411/api/v2/spans'}}]\n");
        let off = res(
            "type: MeshTrace\nmesh: default\nname: off\nspec:\n  targetRef: {kind: MeshService, name: web}\n  default: {backends: []}\n",
        );
        let a = generate_config(&mesh_view(std::slice::from_ref(&on)), &web()).unwrap();
        assert!(hcm(listener(&a, OUT)).tracing.is_some());
        let a = generate_config(&mesh_view(&[on, off]), &web()).unwrap();
        assert!(hcm(listener(&a, OUT)).tracing.is_none());
        assert!(hcm(listener(&a, IN)).tracing.is_none());
        assert!(a.clusters.iter().all(|c| !c.name.starts_with("meshtrace")));
    }
}
