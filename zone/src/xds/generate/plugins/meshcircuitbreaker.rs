//! MeshCircuitBreaker (order 1300): every cluster of the proxy, with or without
//! a policy, gets a DEFAULT-priority threshold with `track_remaining` (Kuma's
//! `EnsureTrackRemaining`, so `remaining_*` gauges exist); on outbound clusters
//! (`to[]`) and local clusters (`from[]`/`rules[]`): `connectionLimits` → that
//! threshold's limits, each only when set; `outlierDetection` (unless
//! disabled) → `outlier_detection`, every configured detector enforcing 100 % and
//! every unconfigured one explicitly 0 %; `healthyPanicThreshold` →
//! `common_lb_config.healthy_panic_threshold`.

use super::{Ctx, dur};
use crate::xds::generate::envoy::{duration, u32v};
use crate::xds::generate::model::ProxyConfig;
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection as EnvoyOutlier, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::RoutingPriority;
use envoy_types::pb::envoy::r#type::v3::Percent;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::meshcircuitbreaker::{Conf, OutlierDetection};

const TY: ResourceType = ResourceType::MeshCircuitBreaker;

/// The cluster's DEFAULT-priority threshold (added if missing), with
/// `track_remaining`.
pub fn ensure_track_remaining(cluster: &mut Cluster) -> &mut circuit_breakers::Thresholds {
    let cb = cluster
        .circuit_breakers
        .get_or_insert_with(CircuitBreakers::default);
    let default = RoutingPriority::Default as i32;
    let i = match cb.thresholds.iter().position(|t| t.priority == default) {
        Some(i) => i,
        None => {
            cb.thresholds.push(circuit_breakers::Thresholds::default());
            cb.thresholds.len() - 1
        }
    };
    let t = &mut cb.thresholds[i];
    t.track_remaining = true;
    t
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.clusters.values_mut() {
        let threshold = ensure_track_remaining(&mut part.cluster);
        let Some(conf) = ctx.for_cluster::<Conf>(TY, &part.role) else {
            continue;
        };
        if let Some(l) = &conf.connection_limits {
            let set = |v: Option<u32>, field: &mut Option<_>| {
                if let Some(v) = v {
                    *field = Some(u32v(v));
                }
            };
            set(l.max_connections, &mut threshold.max_connections);
            set(l.max_pending_requests, &mut threshold.max_pending_requests);
            set(l.max_requests, &mut threshold.max_requests);
            set(l.max_retries, &mut threshold.max_retries);
            set(l.max_connection_pools, &mut threshold.max_connection_pools);
        }
        if let Some(od) = &conf.outlier_detection {
            if let Some(p) = od
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
            if od.disabled != Some(true) {
                part.cluster.outlier_detection = Some(outlier(od));
            }
        }
    }
}

pub fn outlier(od: &OutlierDetection) -> EnvoyOutlier {
    let on = |b: bool| Some(u32v(if b { 100 } else { 0 }));
    let d = od.detectors.clone().unwrap_or_default();
    let total = d.total_failures.as_ref();
    let gateway = d.gateway_failures.as_ref();
    let local = d.local_origin_failures.as_ref();
    let sr = d.success_rate.as_ref();
    let fp = d.failure_percentage.as_ref();
    EnvoyOutlier {
        interval: dur(&od.interval).map(duration),
        base_ejection_time: dur(&od.base_ejection_time).map(duration),
        max_ejection_percent: od.max_ejection_percent.map(u32v),
        split_external_local_origin_errors: od.split_external_and_local_errors.unwrap_or(false),
        // A consecutive detector is enforced only with its count (Kuma's rule);
        // the local-origin variants of success rate and failure percentage
        // follow theirs and take effect with splitExternalAndLocalErrors.
        consecutive_5xx: total.and_then(|t| t.consecutive).map(u32v),
        enforcing_consecutive_5xx: on(total.and_then(|t| t.consecutive).is_some()),
        consecutive_gateway_failure: gateway.and_then(|t| t.consecutive).map(u32v),
        enforcing_consecutive_gateway_failure: on(gateway.and_then(|t| t.consecutive).is_some()),
        consecutive_local_origin_failure: local.and_then(|t| t.consecutive).map(u32v),
        enforcing_consecutive_local_origin_failure: on(local.and_then(|t| t.consecutive).is_some()),
        enforcing_success_rate: on(sr.is_some()),
        enforcing_local_origin_success_rate: on(sr.is_some()),
        success_rate_minimum_hosts: sr.and_then(|s| s.minimum_hosts).map(u32v),
        success_rate_request_volume: sr.and_then(|s| s.request_volume).map(u32v),
        success_rate_stdev_factor: sr
            .and_then(|s| s.standard_deviation_factor.as_ref())
            .and_then(|f| f.to_string().parse::<f64>().ok())
            .map(|f| u32v((f * 1000.0).round() as u32)),
        enforcing_failure_percentage: on(fp.is_some()),
        enforcing_failure_percentage_local_origin: on(fp.is_some()),
        failure_percentage_threshold: fp.and_then(|f| f.threshold).map(u32v),
        failure_percentage_minimum_hosts: fp.and_then(|f| f.minimum_hosts).map(u32v),
        failure_percentage_request_volume: fp.and_then(|f| f.request_volume).map(u32v),
        ..EnvoyOutlier::default()
    }
}
