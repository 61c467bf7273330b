//! MeshAccessLog (order 600): `access_log[]` entries on the HCM (HTTP) or
//! `tcp_proxy` (TCP) of outbound (`to[]`) and inbound (`from[]`/`rules[]`)
//! listeners. `File` → `envoy.access_loggers.file` to `path`; `Tcp` →
//! `envoy.access_loggers.fluentd` to the bootstrap's static cluster
//! `access_log_sink` (weft-dp's unix socket) with the tag `weft.tcp.<address>`
//! and the formatted line as the record's `message`; weft-dp writes the line to
//! the collector (as Kuma's kuma-dp does). No per-collector cluster is sent, so a
//! listener never names a cluster Envoy may not have yet. Formats: Kuma's default plain formats, `plain`, or `json`
//! (written as a JSON text template so the output is stable). Kuma's
//! placeholders (`%KUMA_MESH%`, `%KUMA_SOURCE_SERVICE%`,
//! `%KUMA_DESTINATION_SERVICE%`, `%KUMA_SOURCE_ADDRESS%`,
//! `%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%`, `%KUMA_TRAFFIC_DIRECTION%`,
//! `%KUMA_ZONE%`, `%KUMA_WORKLOAD%`) are substituted per listener as Kuma does —
//! Envoy refuses a format with an unknown `%...%` command.
//! OpenTelemetry backends are not generated yet.

use super::Ctx;
use crate::bootstrap::envoy::{ACCESS_LOG_SINK, TCP_TAG_PREFIX};
use crate::xds::generate::envoy::any;
use crate::xds::generate::model::{Chain, Protocol, ProxyConfig};
use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    FileAccessLog, file_access_log,
};
use envoy_types::pb::envoy::extensions::access_loggers::fluentd::v3::FluentdAccessLogConfig;
use envoy_types::pb::google::protobuf::{Struct, Value, value};
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshaccesslog::{Backend, BackendType, Conf, Format, FormatType};

const TY: ResourceType = ResourceType::MeshAccessLog;

pub const DEFAULT_HTTP: &str = r#"[%START_TIME%] %KUMA_MESH% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%KUMA_SOURCE_SERVICE%" "%KUMA_DESTINATION_SERVICE%" "%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%" "%UPSTREAM_HOST%""#;
pub const DEFAULT_TCP: &str = "[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes";

/// What Kuma's placeholders stand for on one listener (Kuma's
/// `InterpolateKumaValues`): the source address is the proxy's own (Kuma's
/// choice, kumahq/kuma#13635), the zone the Dataplane's `kuma.io/zone` label (else
/// this zone), the workload its `kuma.io/workload` label as a KRI.
struct Vars<'a> {
    mesh: &'a str,
    source: &'a str,
    destination: &'a str,
    source_ip: &'a str,
    zone: &'a str,
    workload: &'a str,
    direction: &'a str,
}

fn substitute(s: &str, v: &Vars<'_>) -> String {
    let with_port = if v.source_ip.contains(':') {
        format!("[{}]:0", v.source_ip)
    } else {
        format!("{}:0", v.source_ip)
    };
    s.replace("%KUMA_MESH%", v.mesh)
        .replace("%KUMA_SOURCE_SERVICE%", v.source)
        .replace("%KUMA_DESTINATION_SERVICE%", v.destination)
        .replace("%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%", v.source_ip)
        .replace("%KUMA_SOURCE_ADDRESS%", &with_port)
        .replace("%KUMA_TRAFFIC_DIRECTION%", v.direction)
        .replace("%KUMA_ZONE%", v.zone)
        .replace("%KUMA_WORKLOAD%", v.workload)
}

/// Kuma's KRI of a Dataplane's workload: `kri_wl_<mesh>_<zone>_<namespace>_<name>_`,
/// empty without a `kuma.io/workload` label.
pub(super) fn workload_kri(dp: &weft_model::resource::Resource, mesh: &str, zone: &str) -> String {
    let labels = &dp.meta.labels;
    match labels.get("kuma.io/workload").filter(|w| !w.is_empty()) {
        Some(w) => format!(
            "kri_wl_{mesh}_{zone}_{}_{w}_",
            labels
                .get("k8s.kuma.io/namespace")
                .map_or("", String::as_str)
        ),
        None => String::new(),
    }
}

fn line(format: &Option<Format>, protocol: Protocol, v: &Vars<'_>) -> String {
    let default = if protocol.is_http() {
        DEFAULT_HTTP
    } else {
        DEFAULT_TCP
    };
    let text = match format {
        Some(f) if f.r#type == FormatType::Json => {
            let fields: Vec<String> = f
                .json
                .iter()
                .flatten()
                .map(|kv| {
                    let key = serde_json::to_string(&kv.key).unwrap_or_default();
                    let val = serde_json::to_string(&kv.value).unwrap_or_default();
                    format!("{key}:{val}")
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Some(f) => f.plain.clone().unwrap_or_else(|| default.to_string()),
        None => default.to_string(),
    };
    let mut text = substitute(&text, v);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn loggers(backends: &[Backend], protocol: Protocol, v: &Vars<'_>) -> Vec<AccessLog> {
    let mut out = Vec::new();
    for b in backends {
        match b.r#type {
            BackendType::File => {
                let Some(f) = &b.file else { continue };
                let log = FileAccessLog {
                    path: f.path.clone(),
                    access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
                        SubstitutionFormatString {
                            format: Some(substitution_format_string::Format::TextFormatSource(
                                DataSource {
                                    specifier: Some(data_source::Specifier::InlineString(line(
                                        &f.format, protocol, v,
                                    ))),
                                    ..DataSource::default()
                                },
                            )),
                            ..SubstitutionFormatString::default()
                        },
                    )),
                };
                out.push(AccessLog {
                    name: "envoy.access_loggers.file".into(),
                    config_type: Some(access_log::ConfigType::TypedConfig(any(&log))),
                    ..AccessLog::default()
                });
            }
            BackendType::Tcp => {
                let Some(t) = &b.tcp else { continue };
                let record = Struct {
                    fields: [(
                        "message".to_string(),
                        Value {
                            kind: Some(value::Kind::StringValue(line(&t.format, protocol, v))),
                        },
                    )]
                    .into_iter()
                    .collect(),
                };
                let log = FluentdAccessLogConfig {
                    cluster: ACCESS_LOG_SINK.into(),
                    tag: format!("{TCP_TAG_PREFIX}{}", t.address),
                    stat_prefix: "meshaccesslog".into(),
                    record: Some(record),
                    buffer_flush_interval: Some(crate::xds::generate::envoy::duration(
                        std::time::Duration::from_millis(100),
                    )),
                    ..FluentdAccessLogConfig::default()
                };
                out.push(AccessLog {
                    name: "envoy.access_loggers.fluentd".into(),
                    config_type: Some(access_log::ConfigType::TypedConfig(any(&log))),
                    ..AccessLog::default()
                });
            }
            BackendType::OpenTelemetry => {}
        }
    }
    out
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let mesh = ctx.view.mesh.meta.name.clone();
    let zone = ctx
        .dataplane
        .meta
        .labels
        .get(weft_model::resource::tags::ZONE)
        .cloned()
        .unwrap_or_else(|| ctx.view.zone.clone());
    let workload = workload_kri(ctx.dataplane, &mesh, &zone);
    let source_ip = match &ctx.dataplane.spec {
        weft_model::resource::Spec::Dataplane(dp) => dp
            .networking
            .as_ref()
            .map(|n| n.address.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    for i in 0..cfg.outbounds.len() + cfg.inbounds.len() {
        let outbound = i < cfg.outbounds.len();
        let (service, port, protocol) = {
            let p = if outbound {
                &cfg.outbounds[i]
            } else {
                &cfg.inbounds[i - cfg.outbounds.len()]
            };
            (p.service.clone(), p.port, p.protocol)
        };
        let conf: Option<Conf> = if outbound {
            ctx.to(TY, &service)
        } else {
            ctx.from(TY, port)
        };
        let Some(backends) = conf.and_then(|c| c.backends) else {
            continue;
        };
        let vars = Vars {
            mesh: &mesh,
            source: if outbound {
                ctx.source_service
            } else {
                "unknown"
            },
            destination: &service,
            source_ip: &source_ip,
            zone: &zone,
            workload: &workload,
            direction: if outbound { "OUTBOUND" } else { "INBOUND" },
        };
        let logs = loggers(&backends, protocol, &vars);
        let part = if outbound {
            &mut cfg.outbounds[i]
        } else {
            &mut cfg.inbounds[i - cfg.outbounds.len()]
        };
        match &mut part.chain {
            Chain::Http(http) => http.hcm.access_log.extend(logs),
            Chain::Tcp(tcp) => tcp.access_log.extend(logs),
        }
    }
}
