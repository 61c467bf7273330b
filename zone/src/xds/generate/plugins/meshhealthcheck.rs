//! MeshHealthCheck (order 1200): at most one active `health_checks[]` entry on
//! each outbound cluster of a destination, as Kuma's configurer. The checker is
//! the section for the destination's protocol, and only a section the policy
//! sets:
//!
//! - http/http2 → `http` (codec HTTP/2 for http2), unless disabled;
//! - grpc → `grpc`, unless disabled;
//! - tcp (also untagged and kafka destinations, decision 0012) → `tcp`, unless
//!   disabled;
//! - a *disabled* `http` / `grpc` section falls back to `tcp` when that is set and
//!   enabled; otherwise no checker.
//!
//! Kuma's defaults (interval 1m, timeout 15s, unhealthy 5, healthy 1, HTTP path
//! `/`). The HTTP check sends `x-kuma-tags` with the proxy's tags first, then the
//! `add` headers, then the `set` ones, a comma-separated value becoming one header
//! each. `eventLogPath` → a file event sink; `failTrafficOnPanic` →
//! `common_lb_config.zone_aware_lb_config`; `healthyPanicThreshold` →
//! `common_lb_config.healthy_panic_threshold`. TCP payloads are base64 in the
//! policy and sent decoded (decision 0012).

use super::{Ctx, dur};
use crate::xds::generate::envoy::{any, duration, header, secs, u32v};
use crate::xds::generate::model::{ClusterRole, Protocol, ProxyConfig};
use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, HealthCheck, TypedExtensionConfig, health_check,
};
use envoy_types::pb::envoy::extensions::health_check::event_sinks::file::v3::HealthCheckEventFileSink;
use envoy_types::pb::envoy::r#type::v3::{CodecClientType, Int64Range, Percent};
use envoy_types::pb::google::protobuf::BoolValue;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshhealthcheck::{Conf, HttpHealthCheck, TcpHealthCheck};

const TY: ResourceType = ResourceType::MeshHealthCheck;

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let tags = proxy_tags(ctx);
    for part in cfg.clusters.values_mut() {
        let ClusterRole::Outbound { service, .. } = &part.role else {
            continue;
        };
        let Some(conf) = ctx.to::<Conf>(TY, service) else {
            continue;
        };
        panic_settings(&mut part.cluster, &conf);
        if let Some(checker) = checker(&conf, part.protocol, &tags) {
            part.cluster
                .health_checks
                .push(health_check(&conf, checker));
        }
    }
}

/// The `x-kuma-tags` value of the proxy (its inbounds' tags).
fn proxy_tags(ctx: &Ctx<'_>) -> String {
    let weft_model::resource::Spec::Dataplane(dp) = &ctx.dataplane.spec else {
        return String::new();
    };
    crate::xds::generate::names::tags_header(
        dp.networking
            .iter()
            .flat_map(|n| n.inbound.iter())
            .map(|i| &i.tags),
    )
}

fn health_check(conf: &Conf, checker: health_check::HealthChecker) -> HealthCheck {
    HealthCheck {
        interval: Some(dur(&conf.interval).map(duration).unwrap_or(secs(60))),
        timeout: Some(dur(&conf.timeout).map(duration).unwrap_or(secs(15))),
        unhealthy_threshold: Some(u32v(
            conf.unhealthy_threshold
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(5),
        )),
        healthy_threshold: Some(u32v(
            conf.healthy_threshold
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(1),
        )),
        initial_jitter: dur(&conf.initial_jitter).map(duration),
        interval_jitter: dur(&conf.interval_jitter).map(duration),
        interval_jitter_percent: conf
            .interval_jitter_percent
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        no_traffic_interval: dur(&conf.no_traffic_interval).map(duration),
        always_log_health_check_failures: conf.always_log_health_check_failures.unwrap_or(false),
        reuse_connection: conf.reuse_connection.map(|value| BoolValue { value }),
        event_logger: conf
            .event_log_path
            .iter()
            .map(|path| TypedExtensionConfig {
                name: "envoy.health_check.event_sinks.file".into(),
                typed_config: Some(any(&HealthCheckEventFileSink {
                    event_log_path: path.clone(),
                })),
            })
            .collect(),
        health_checker: Some(checker),
        ..HealthCheck::default()
    }
}

/// `healthyPanicThreshold` and `failTrafficOnPanic` (set with or without a
/// checker, as Kuma).
fn panic_settings(cluster: &mut Cluster, conf: &Conf) {
    if let Some(p) = conf
        .healthy_panic_threshold
        .as_ref()
        .and_then(|t| t.per_million())
    {
        let lb = cluster
            .common_lb_config
            .get_or_insert_with(cluster::CommonLbConfig::default);
        lb.healthy_panic_threshold = Some(Percent {
            value: f64::from(p) / 10_000.0,
        });
    }
    if let Some(fail) = conf.fail_traffic_on_panic {
        let lb = cluster
            .common_lb_config
            .get_or_insert_with(cluster::CommonLbConfig::default);
        use cluster::common_lb_config::LocalityConfigSpecifier as L;
        match lb
            .locality_config_specifier
            .get_or_insert_with(|| L::ZoneAwareLbConfig(Default::default()))
        {
            L::ZoneAwareLbConfig(z) => z.fail_traffic_on_panic = fail,
            // Envoy's locality-weighted balancing has no such setting (Kuma
            // logs and ignores it too).
            L::LocalityWeightedLbConfig(_) => {}
        }
    }
}

/// Which section checks a destination of `protocol` (Kuma's
/// `selectHealthCheckType`).
fn checker(conf: &Conf, protocol: Protocol, tags: &str) -> Option<health_check::HealthChecker> {
    let enabled = |d: Option<bool>| d != Some(true);
    let tcp = conf.tcp.as_ref().filter(|t| enabled(t.disabled));
    match protocol {
        Protocol::Http | Protocol::Http2 => match &conf.http {
            Some(h) if enabled(h.disabled) => Some(http(h, protocol, tags)),
            Some(_) => tcp.map(tcp_checker),
            None => None,
        },
        Protocol::Grpc => match &conf.grpc {
            Some(g) if enabled(g.disabled) => Some(health_check::HealthChecker::GrpcHealthCheck(
                health_check::GrpcHealthCheck {
                    service_name: g.service_name.clone().unwrap_or_default(),
                    authority: g.authority.clone().unwrap_or_default(),
                    ..health_check::GrpcHealthCheck::default()
                },
            )),
            Some(_) => tcp.map(tcp_checker),
            None => None,
        },
        Protocol::Tcp | Protocol::Kafka => tcp.map(tcp_checker),
    }
}

fn http(h: &HttpHealthCheck, protocol: Protocol, tags: &str) -> health_check::HealthChecker {
    let mut headers = Vec::new();
    if !tags.is_empty() {
        headers.push(HeaderValueOption {
            header: Some(HeaderValue {
                key: "x-kuma-tags".into(),
                value: tags.to_string(),
                ..HeaderValue::default()
            }),
            ..HeaderValueOption::default()
        });
    }
    if let Some(m) = &h.request_headers_to_add {
        for (list, overwrite) in [(&m.add, false), (&m.set, true)] {
            for kv in list.iter().flatten() {
                for value in kv.value.split(',') {
                    headers.push(header(&kv.name, value, overwrite));
                }
            }
        }
    }
    health_check::HealthChecker::HttpHealthCheck(health_check::HttpHealthCheck {
        path: h.path.clone().unwrap_or_else(|| "/".into()),
        request_headers_to_add: headers,
        expected_statuses: h
            .expected_statuses
            .iter()
            .flatten()
            .map(|s| Int64Range {
                start: i64::from(*s),
                end: i64::from(*s) + 1,
            })
            .collect(),
        codec_client_type: if protocol == Protocol::Http2 {
            CodecClientType::Http2 as i32
        } else {
            CodecClientType::Http1 as i32
        },
        ..health_check::HttpHealthCheck::default()
    })
}

fn tcp_checker(t: &TcpHealthCheck) -> health_check::HealthChecker {
    // The policy's payloads are base64 (its API and validation say so); Envoy
    // gets the bytes they encode, as hex.
    let payload = |s: &str| health_check::Payload {
        payload: Some(health_check::payload::Payload::Text(hex::encode(
            weft_model::resource::secret::decode_base64(s)
                .unwrap_or_else(|_| s.as_bytes().to_vec()),
        ))),
    };
    health_check::HealthChecker::TcpHealthCheck(health_check::TcpHealthCheck {
        send: t.send.as_deref().map(payload),
        receive: t.receive.iter().flatten().map(|r| payload(r)).collect(),
        ..health_check::TcpHealthCheck::default()
    })
}
