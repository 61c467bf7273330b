//! MeshFaultInjection (order 800), inbound HTTP: one `envoy.filters.http.fault`
//! per `http[]` entry of the inbound's catch-all conf (`from: Mesh` / match-less
//! `rules`), before the router: `abort` → `abort.http_status` + percentage,
//! `delay` → `fixed_delay` + percentage, `responseBandwidth` →
//! `response_rate_limit.fixed_limit` (kbps). Client-conditioned entries need the
//! caller's identity (mTLS) and are not applied yet.

use super::{Ctx, dur};
use crate::xds::generate::envoy::{any, duration, fraction};
use crate::xds::generate::model::{Chain, ProxyConfig};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, FaultRateLimit, fault_delay, fault_rate_limit,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use weft_model::resource::ResourceType;
use weft_model::resource::policy::intorstring::IntOrString;
use weft_model::resource::policy::meshfaultinjection::Conf;

fn percent(p: &Option<IntOrString>) -> f64 {
    p.as_ref()
        .and_then(|p| p.per_million())
        .map_or(100.0, |pm| f64::from(pm) / 10_000.0)
}

/// `1kbps`, `5mbps`, `1gbps` (any case) in kbit/s.
pub fn kbps(limit: &str) -> Option<u64> {
    let l = limit.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = l.strip_suffix("gbps") {
        (n, 1_000_000)
    } else if let Some(n) = l.strip_suffix("mbps") {
        (n, 1_000)
    } else if let Some(n) = l.strip_suffix("kbps") {
        (n, 1)
    } else {
        return None;
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.inbounds.iter_mut() {
        let Chain::Http(http) = &mut part.chain else {
            continue;
        };
        let Some(conf) = ctx.from::<Conf>(ResourceType::MeshFaultInjection, part.port) else {
            continue;
        };
        for f in conf.http.iter().flatten() {
            let mut fault = HttpFault::default();
            if let Some(a) = &f.abort {
                fault.abort = Some(FaultAbort {
                    percentage: Some(fraction(percent(&a.percentage))),
                    error_type: Some(fault_abort::ErrorType::HttpStatus(
                        a.http_status
                            .and_then(|s| u32::try_from(s).ok())
                            .unwrap_or(500),
                    )),
                    ..FaultAbort::default()
                });
            }
            if let Some(d) = &f.delay {
                fault.delay = Some(FaultDelay {
                    percentage: Some(fraction(percent(&d.percentage))),
                    fault_delay_secifier: dur(&d.value)
                        .map(|v| fault_delay::FaultDelaySecifier::FixedDelay(duration(v))),
                });
            }
            if let Some(b) = &f.response_bandwidth
                && let Some(k) = b.limit.as_deref().and_then(kbps)
            {
                fault.response_rate_limit = Some(FaultRateLimit {
                    percentage: Some(fraction(percent(&b.percentage))),
                    limit_type: Some(fault_rate_limit::LimitType::FixedLimit(
                        fault_rate_limit::FixedLimit { limit_kbps: k },
                    )),
                });
            }
            http.filters.push(HttpFilter {
                name: "envoy.filters.http.fault".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(any(&fault))),
                ..HttpFilter::default()
            });
        }
    }
}
