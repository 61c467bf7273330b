//! MeshHealthCheck (order 1200): one active `health_checks[]` entry on each
//! outbound cluster of a destination, with Kuma's defaults (interval 1m, timeout
//! 15s, unhealthy 5, healthy 1, HTTP path `/`). The checker follows the
//! destination's protocol: http/http2 → HTTP (codec HTTP/2 for http2), grpc →
//! gRPC, tcp → TCP (hex payloads); a disabled HTTP/gRPC checker falls back to TCP.

use super::{Ctx, dur};
use crate::xds::generate::envoy::{duration, header, secs, u32v};
use crate::xds::generate::model::{ClusterRole, Protocol, ProxyConfig};
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::{HealthCheck, health_check};
use envoy_types::pb::envoy::r#type::v3::{CodecClientType, Int64Range, Percent};
use envoy_types::pb::google::protobuf::BoolValue;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshhealthcheck::Conf;

const TY: ResourceType = ResourceType::MeshHealthCheck;

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.clusters.values_mut() {
        let ClusterRole::Outbound { service, .. } = &part.role else {
            continue;
        };
        let Some(conf) = ctx.to::<Conf>(TY, service) else {
            continue;
        };
        let Some(checker) = checker(&conf, part.protocol) else {
            continue;
        };
        part.cluster.health_checks.push(HealthCheck {
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
            always_log_health_check_failures: conf
                .always_log_health_check_failures
                .unwrap_or(false),
            reuse_connection: conf.reuse_connection.map(|value| BoolValue { value }),
            health_checker: Some(checker),
            ..HealthCheck::default()
        });
        if let Some(p) = conf
            .healthy_panic_threshold
            .as_ref()
            .and_then(|t| t.per_million())
        {
            let lb = part
                .cluster
                .common_lb_config
                .get_or_insert_with(cluster::CommonLbConfig::default);
            lb.healthy_panic_threshold = Some(Percent {
                value: f64::from(p) / 10_000.0,
            });
        }
    }
}

fn tcp(conf: &Conf) -> Option<health_check::HealthChecker> {
    let t = conf.tcp.clone().unwrap_or_default();
    if t.disabled == Some(true) {
        return None;
    }
    let payload = |s: &str| health_check::Payload {
        payload: Some(health_check::payload::Payload::Text(hex(s))),
    };
    Some(health_check::HealthChecker::TcpHealthCheck(
        health_check::TcpHealthCheck {
            send: t.send.as_deref().map(payload),
            receive: t.receive.iter().flatten().map(|r| payload(r)).collect(),
            ..health_check::TcpHealthCheck::default()
        },
    ))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn checker(conf: &Conf, protocol: Protocol) -> Option<health_check::HealthChecker> {
    match protocol {
        Protocol::Http | Protocol::Http2 => {
            let h = conf.http.clone().unwrap_or_default();
            if h.disabled == Some(true) {
                return tcp(conf);
            }
            let mut headers = Vec::new();
            if let Some(m) = &h.request_headers_to_add {
                for kv in m.set.iter().flatten() {
                    headers.push(header(&kv.name, &kv.value, true));
                }
                for kv in m.add.iter().flatten() {
                    headers.push(header(&kv.name, &kv.value, false));
                }
            }
            Some(health_check::HealthChecker::HttpHealthCheck(
                health_check::HttpHealthCheck {
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
                },
            ))
        }
        Protocol::Grpc => {
            let g = conf.grpc.clone().unwrap_or_default();
            if g.disabled == Some(true) {
                return tcp(conf);
            }
            Some(health_check::HealthChecker::GrpcHealthCheck(
                health_check::GrpcHealthCheck {
                    service_name: g.service_name.clone().unwrap_or_default(),
                    authority: g.authority.clone().unwrap_or_default(),
                    ..health_check::GrpcHealthCheck::default()
                },
            ))
        }
        Protocol::Tcp | Protocol::Kafka => tcp(conf),
    }
}
