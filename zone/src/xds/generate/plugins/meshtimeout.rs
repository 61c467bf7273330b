//! MeshTimeout (order 1000): `connectionTimeout` → cluster `connect_timeout`;
//! `idleTimeout` → HTTP: cluster upstream `common_http_protocol_options.idle_timeout`
//! (HCM idle forced to 0), TCP: `tcp_proxy.idle_timeout`; `http.requestTimeout` /
//! `http.streamIdleTimeout` → every route's `timeout` / `idle_timeout`;
//! `http.requestHeadersTimeout` → HCM `request_headers_timeout`;
//! `http.maxStreamDuration` / `maxConnectionDuration` → cluster HTTP options.
//! Outbound confs come from `to[]`, inbound (local cluster, inbound routes) from
//! `from[]` / `rules[]`.

use super::{Ctx, dur};
use crate::xds::generate::base::http_options;
use crate::xds::generate::envoy::duration;
use crate::xds::generate::model::{Chain, ListenerPart, ProxyConfig};
use envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions as CoreHttpOptions;
use envoy_types::pb::envoy::config::route::v3::route;
use std::time::Duration;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshtimeout::Conf;

const TY: ResourceType = ResourceType::MeshTimeout;

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.clusters.values_mut() {
        let Some(conf) = ctx.for_cluster::<Conf>(TY, &part.role) else {
            continue;
        };
        if let Some(d) = dur(&conf.connection_timeout) {
            part.cluster.connect_timeout = Some(duration(d));
        }
        if !part.protocol.is_http() {
            continue;
        }
        let http = conf.http.as_ref();
        let opts = part.http_options.get_or_insert_with(|| http_options(true));
        let common = opts
            .common_http_protocol_options
            .get_or_insert_with(CoreHttpOptions::default);
        if let Some(d) = dur(&conf.idle_timeout) {
            common.idle_timeout = Some(duration(d));
        }
        if let Some(d) = http.and_then(|h| dur(&h.max_stream_duration)) {
            common.max_stream_duration = Some(duration(d));
        }
        if let Some(d) = http.and_then(|h| dur(&h.max_connection_duration)) {
            common.max_connection_duration = Some(duration(d));
        }
    }
    for part in cfg.outbounds.iter_mut() {
        if let Some(conf) = ctx.to::<Conf>(TY, &part.service) {
            listener(part, &conf);
        }
    }
    for part in cfg.inbounds.iter_mut() {
        if let Some(conf) = ctx.from::<Conf>(TY, part.port) {
            listener(part, &conf);
        }
    }
}

fn listener(part: &mut ListenerPart, conf: &Conf) {
    match &mut part.chain {
        Chain::Tcp(tcp) => {
            if let Some(d) = dur(&conf.idle_timeout) {
                tcp.idle_timeout = Some(duration(d));
            }
        }
        Chain::Http(http) => {
            let h = conf.http.as_ref();
            if dur(&conf.idle_timeout).is_some() {
                http.hcm.common_http_protocol_options = Some(CoreHttpOptions {
                    idle_timeout: Some(duration(Duration::ZERO)),
                    ..CoreHttpOptions::default()
                });
            }
            if let Some(d) = h.and_then(|h| dur(&h.request_headers_timeout)) {
                http.hcm.request_headers_timeout = Some(duration(d));
            }
            let req = h.and_then(|h| dur(&h.request_timeout));
            let idle = h.and_then(|h| dur(&h.stream_idle_timeout));
            for r in http.routes_mut() {
                if let Some(route::Action::Route(a)) = &mut r.action {
                    if let Some(d) = req {
                        a.timeout = Some(duration(d));
                    }
                    if let Some(d) = idle {
                        a.idle_timeout = Some(duration(d));
                    }
                }
            }
        }
    }
}
