//! Policy plugins, one file per policy type, applied in Kuma's order
//! (`+kuma:policy:order`): MeshHTTPRoute 100, MeshTCPRoute 200, MeshTLS 300,
//! MeshLoadBalancingStrategy 400, MeshAccessLog 600, MeshFaultInjection 800,
//! MeshRateLimit 900, MeshTimeout 1000, MeshTrafficPermission 1100,
//! MeshHealthCheck 1200,
//! MeshCircuitBreaker 1300, MeshRetry 1400. Each reads its merged conf from
//! [`ProxyRules`] and changes the [`ProxyConfig`] under construction.

pub mod meshaccesslog;
pub mod meshcircuitbreaker;
pub mod meshfaultinjection;
pub mod meshhealthcheck;
pub mod meshhttproute;
pub mod meshloadbalancingstrategy;
pub mod meshratelimit;
pub mod meshretry;
pub mod meshtcproute;
pub mod meshtimeout;
pub mod meshtls;
pub mod meshtrafficpermission;

use super::MeshView;
use super::model::{ClusterRole, ProxyConfig};
use serde::de::DeserializeOwned;
use std::time::Duration;
use weft_model::resource::ResourceType;
use weft_model::rules::ProxyRules;

/// What a plugin reads.
pub struct Ctx<'a> {
    pub view: &'a MeshView,
    pub rules: &'a ProxyRules,
    /// The proxy's Dataplane name (for access log placeholders).
    pub proxy: &'a str,
    /// The proxy's Dataplane (its address and labels, for access log
    /// placeholders).
    pub dataplane: &'a weft_model::resource::Resource,
    /// The proxy's first inbound service (the caller identity of outbound traffic).
    pub source_service: &'a str,
    /// The proxy's mTLS, when it does mTLS (Mesh mTLS or a MeshIdentity).
    pub mtls: Option<&'a super::mtls::MeshTls>,
}

impl Ctx<'_> {
    /// The typed merged outbound conf of `ty` for `service`.
    pub fn to<T: DeserializeOwned>(&self, ty: ResourceType, service: &str) -> Option<T> {
        let m = self.rules.to(ty, service)?;
        typed(ty, m)
    }

    /// The typed merged inbound conf of `ty` for the inbound on `port`.
    pub fn from<T: DeserializeOwned>(&self, ty: ResourceType, port: u32) -> Option<T> {
        let m = self.rules.from(ty, port)?;
        typed(ty, m)
    }

    /// The conf of `ty` for a cluster: outbound by service, local by inbound port.
    pub fn for_cluster<T: DeserializeOwned>(
        &self,
        ty: ResourceType,
        role: &ClusterRole,
    ) -> Option<T> {
        match role {
            ClusterRole::Outbound { service, .. } => self.to(ty, service),
            ClusterRole::Local { inbound_port } => self.from(ty, *inbound_port),
            ClusterRole::System => None,
        }
    }
}

fn typed<T: DeserializeOwned>(ty: ResourceType, m: &weft_model::rules::Merged) -> Option<T> {
    match m.typed() {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(policy = %ty, error = %e, "merged policy conf does not decode; ignored");
            None
        }
    }
}

/// A policy duration as std, `None` when absent or unparsable.
pub fn dur(d: &Option<weft_model::resource::Duration>) -> Option<Duration> {
    d.as_ref().and_then(|d| d.parse().ok())
}

/// Applies every policy plugin in order.
pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    meshhttproute::apply(cfg, ctx);
    meshtcproute::apply(cfg, ctx);
    meshtls::apply(cfg, ctx);
    meshloadbalancingstrategy::apply(cfg, ctx);
    meshaccesslog::apply(cfg, ctx);
    meshfaultinjection::apply(cfg, ctx);
    meshratelimit::apply(cfg, ctx);
    meshtimeout::apply(cfg, ctx);
    meshtrafficpermission::apply(cfg, ctx);
    meshhealthcheck::apply(cfg, ctx);
    meshcircuitbreaker::apply(cfg, ctx);
    meshretry::apply(cfg, ctx);
}
#[cfg(test)]
mod tests;
