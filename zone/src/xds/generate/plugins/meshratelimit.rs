//! MeshRateLimit (order 900), inbound: HTTP inbounds get the
//! `envoy.filters.http.local_ratelimit` filter (stat_prefix `rate_limit`) before
//! the router with the token bucket (`max_tokens = tokens_per_fill = num`,
//! `fill_interval = interval`), enabled and enforced 100 %, optional `status` and
//! response headers. (Kuma puts the bucket in each inbound route's
//! `typed_per_filter_config`; an inbound has one route, so the filter-level bucket
//! limits the same traffic.) TCP inbounds get the
//! network filter `envoy.filters.network.local_ratelimit` (stat_prefix
//! `tcp_rate_limit`) first in the chain.

use super::{Ctx, dur};
use crate::xds::generate::envoy::{any, duration, fraction, header, u32v};
use crate::xds::generate::model::{Chain, ProxyConfig};
use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::listener::v3::{Filter, filter};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit as HttpLocal;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::local_ratelimit::v3::LocalRateLimit as TcpLocal;
use envoy_types::pb::envoy::r#type::v3::{HttpStatus, TokenBucket};
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshratelimit::{Conf, Rate};

pub const HTTP_FILTER: &str = "envoy.filters.http.local_ratelimit";

fn bucket(r: &Rate) -> Option<TokenBucket> {
    let num = r.num?;
    let interval = dur(&r.interval)?;
    Some(TokenBucket {
        max_tokens: num,
        tokens_per_fill: Some(u32v(num)),
        fill_interval: Some(duration(interval)),
    })
}

fn always(key: &str) -> RuntimeFractionalPercent {
    RuntimeFractionalPercent {
        default_value: Some(fraction(100.0)),
        runtime_key: key.to_string(),
    }
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.inbounds.iter_mut() {
        let Some(conf) = ctx.from::<Conf>(ResourceType::MeshRateLimit, part.port) else {
            continue;
        };
        let Some(local) = &conf.local else { continue };
        match &mut part.chain {
            Chain::Http(http) => {
                let Some(h) = &local.http else { continue };
                if h.disabled == Some(true) {
                    continue;
                }
                let Some(tb) = h.request_rate.as_ref().and_then(bucket) else {
                    continue;
                };
                let mut per_route = HttpLocal {
                    stat_prefix: "rate_limit".into(),
                    token_bucket: Some(tb),
                    filter_enabled: Some(always("local_rate_limit_enabled")),
                    filter_enforced: Some(always("local_rate_limit_enforced")),
                    ..HttpLocal::default()
                };
                if let Some(on) = &h.on_rate_limit {
                    if let Some(code) = on.status.and_then(|s| i32::try_from(s).ok()) {
                        per_route.status = Some(HttpStatus { code });
                    }
                    if let Some(m) = &on.headers {
                        for kv in m.set.iter().flatten() {
                            per_route
                                .response_headers_to_add
                                .push(header(&kv.name, &kv.value, true));
                        }
                        for kv in m.add.iter().flatten() {
                            per_route
                                .response_headers_to_add
                                .push(header(&kv.name, &kv.value, false));
                        }
                    }
                }
                // The inbound has one route; the bucket sits on the filter itself
                // (one bucket per listener, shared by all workers). Envoy 1.40
                // did not enforce a per-route-only bucket (typed_per_filter_config)
                // at the configured rate in our tests.
                http.filters.push(HttpFilter {
                    name: HTTP_FILTER.into(),
                    config_type: Some(http_filter::ConfigType::TypedConfig(any(&per_route))),
                    ..HttpFilter::default()
                });
            }
            Chain::Tcp(_) => {
                let Some(t) = &local.tcp else { continue };
                if t.disabled == Some(true) {
                    continue;
                }
                let Some(tb) = t.connection_rate.as_ref().and_then(bucket) else {
                    continue;
                };
                let f = TcpLocal {
                    stat_prefix: "tcp_rate_limit".into(),
                    token_bucket: Some(tb),
                    ..TcpLocal::default()
                };
                part.network_filters.insert(
                    0,
                    Filter {
                        name: "envoy.filters.network.local_ratelimit".into(),
                        config_type: Some(filter::ConfigType::TypedConfig(any(&f))),
                    },
                );
            }
        }
    }
}
