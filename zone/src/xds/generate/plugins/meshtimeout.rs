//! MeshTimeout (order 1000), as Kuma's configurer: wherever a MeshTimeout
//! applies, every timeout it does not set takes Kuma's default
//! (`policies/core/defaults`: connect 5 s, idle 1 h, request 15 s, stream idle
//! 30 min, request headers / max stream / max connection duration off).
//!
//! - `connectionTimeout` → cluster `connect_timeout`;
//! - HTTP and HTTP/2 clusters (not gRPC ones, as in Kuma): `idleTimeout`,
//!   `http.maxStreamDuration`, `http.maxConnectionDuration` → the cluster's
//!   upstream `common_http_protocol_options`;
//! - HTTP listeners: `http.requestTimeout` / `http.streamIdleTimeout` → every
//!   route's `timeout` / `idle_timeout` (a route's own idle timeout is kept when
//!   the policy sets none); `http.requestHeadersTimeout` → HCM
//!   `request_headers_timeout`; the HCM's own idle timeout is 0 (the cluster's
//!   applies);
//! - TCP listeners: `idleTimeout` → `tcp_proxy.idle_timeout`.
//!
//! Outbound confs come from `to[]`, inbound (local cluster, inbound routes) from
//! `from[]` / `rules[]`. A MeshTimeout whose top-level targetRef is a
//! MeshHTTPRoute sets the request and stream idle timeouts of that route's
//! Envoy routes only (its conf merged over the destination's, as Kuma).

use super::{Ctx, dur};
use crate::xds::generate::base::http_options;
use crate::xds::generate::envoy::duration;
use crate::xds::generate::model::{Chain, ListenerPart, Protocol, ProxyConfig};
use envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions as CoreHttpOptions;
use envoy_types::pb::envoy::config::route::v3::{Route, route};
use std::time::Duration;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshtimeout::Conf;

const TY: ResourceType = ResourceType::MeshTimeout;

/// Kuma's defaults for what a MeshTimeout leaves unset.
pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE: Duration = Duration::from_secs(3600);
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(1800);
pub const DEFAULT_REQUEST: Duration = Duration::from_secs(15);

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.clusters.values_mut() {
        let Some(conf) = ctx.for_cluster::<Conf>(TY, &part.role) else {
            continue;
        };
        part.cluster.connect_timeout = Some(duration(
            dur(&conf.connection_timeout).unwrap_or(DEFAULT_CONNECT),
        ));
        if !matches!(part.protocol, Protocol::Http | Protocol::Http2) {
            continue;
        }
        let http = conf.http.as_ref();
        let opts = part.http_options.get_or_insert_with(|| http_options(true));
        let common = opts
            .common_http_protocol_options
            .get_or_insert_with(CoreHttpOptions::default);
        common.idle_timeout = Some(duration(dur(&conf.idle_timeout).unwrap_or(DEFAULT_IDLE)));
        common.max_stream_duration = Some(duration(
            http.and_then(|h| dur(&h.max_stream_duration))
                .unwrap_or(Duration::ZERO),
        ));
        common.max_connection_duration = Some(duration(
            http.and_then(|h| dur(&h.max_connection_duration))
                .unwrap_or(Duration::ZERO),
        ));
    }
    for part in cfg.outbounds.iter_mut() {
        if let Some(conf) = ctx.to::<Conf>(TY, &part.service) {
            listener(part, &conf);
        }
        // Policies targeting a MeshHTTPRoute: its routes' own timeouts.
        if let Chain::Http(http) = &mut part.chain {
            for r in http.routes_mut() {
                if let Some(conf) = ctx.to_route::<Conf>(TY, &part.service, &r.name) {
                    route_timeouts(r, &conf);
                }
            }
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
            tcp.idle_timeout = Some(duration(dur(&conf.idle_timeout).unwrap_or(DEFAULT_IDLE)));
        }
        Chain::Http(http) => {
            let h = conf.http.as_ref();
            http.hcm.common_http_protocol_options = Some(CoreHttpOptions {
                idle_timeout: Some(duration(Duration::ZERO)),
                ..CoreHttpOptions::default()
            });
            http.hcm.request_headers_timeout = Some(duration(
                h.and_then(|h| dur(&h.request_headers_timeout))
                    .unwrap_or(Duration::ZERO),
            ));
            for r in http.routes_mut() {
                route_timeouts(r, conf);
            }
        }
    }
}

/// `http.requestTimeout` / `http.streamIdleTimeout` on one route (a route's own
/// idle timeout is kept when the policy sets none).
fn route_timeouts(r: &mut Route, conf: &Conf) {
    let h = conf.http.as_ref();
    let req = h
        .and_then(|h| dur(&h.request_timeout))
        .unwrap_or(DEFAULT_REQUEST);
    let idle = h.and_then(|h| dur(&h.stream_idle_timeout));
    if let Some(route::Action::Route(a)) = &mut r.action {
        a.timeout = Some(duration(req));
        match idle {
            Some(d) => a.idle_timeout = Some(duration(d)),
            None if a.idle_timeout.is_none() => {
                a.idle_timeout = Some(duration(DEFAULT_STREAM_IDLE))
            }
            None => {}
        }
    }
}
