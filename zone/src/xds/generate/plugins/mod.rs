//! Policy plugins, one file per policy type, applied in Kuma's order
//! (`+kuma:policy:order`): MeshHTTPRoute 100, MeshTCPRoute 200, MeshTLS 300,
//! MeshLoadBalancingStrategy 400, MeshAccessLog 600, MeshTrace 700,
//! MeshFaultInjection 800,
//! MeshRateLimit 900, MeshTimeout 1000, MeshTrafficPermission 1100,
//! MeshHealthCheck 1200,
//! MeshCircuitBreaker 1300, MeshRetry 1400, MeshMetric 1500. Each reads its merged conf from
//! [`ProxyRules`] and changes the [`ProxyConfig`] under construction.
//! MeshProxyPatch (9999) runs last, on the assembled resources
//! ([`meshproxypatch::apply`], called by `generate_config` after mTLS).

pub mod meshaccesslog;
pub mod meshcircuitbreaker;
pub mod meshfaultinjection;
pub mod meshhealthcheck;
pub mod meshhttproute;
pub mod meshloadbalancingstrategy;
pub mod meshmetric;
pub mod meshproxypatch;
pub mod meshratelimit;
pub mod meshretry;
pub mod meshtcproute;
pub mod meshtimeout;
pub mod meshtls;
pub mod meshtrace;
pub mod meshtrafficpermission;

use super::MeshView;
use super::model::{ClusterRole, ProxyConfig};
use serde::de::DeserializeOwned;
use std::time::Duration;
use weft_model::resource::ResourceType;
use weft_model::rules::ProxyRules;

/// A policy whose top-level targetRef is a MeshHTTPRoute that selects the
/// proxy, with the route's rules per destination service (`None`: every one).
pub struct RouteTargeted<'a> {
    pub policy: &'a weft_model::rules::Policy,
    pub key: weft_model::rules::select::SortKey,
    /// (destination service or `None` for `Mesh`, route names of its rules).
    pub rules: Vec<(Option<String>, Vec<String>)>,
}

/// The policies of the mesh targeting a MeshHTTPRoute that selects `dataplane`
/// (Kuma resolves the route and matches the proxy by the route's own
/// targetRef), weakest first.
pub fn route_targeted<'a>(
    view: &'a MeshView,
    dataplane: &weft_model::resource::Resource,
) -> Vec<RouteTargeted<'a>> {
    use weft_model::resource::policy::meshhttproute::Match;
    use weft_model::resource::policy::targetref::TargetRefKind;
    use weft_model::rules::select;
    let weft_model::resource::Spec::Dataplane(dp) = &dataplane.spec else {
        return Vec::new();
    };
    let targeting: Vec<_> = view
        .policies
        .iter()
        .filter(|p| {
            p.top
                .as_ref()
                .is_some_and(|t| t.kind == TargetRefKind::MeshHTTPRoute)
        })
        .collect();
    if targeting.is_empty() {
        return Vec::new();
    }
    let proxy = select::ProxyView::new(dataplane, dp);
    let mut out = Vec::new();
    for policy in targeting {
        let Some(top) = &policy.top else { continue };
        let Some(name) = &top.name else { continue };
        let Some(route) = view.policies.iter().find(|r| {
            r.resource.resource_type() == ResourceType::MeshHTTPRoute
                && (&r.resource.meta.name == name || select::display_name(&r.resource) == name)
        }) else {
            tracing::warn!(policy = %policy.resource.meta.name, route = %name, "targeted MeshHTTPRoute not found");
            continue;
        };
        if select::select(&proxy, route).is_none() {
            continue;
        }
        let mut rules = Vec::new();
        for to in route
            .spec
            .get("to")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let service = match to.get("targetRef").and_then(|t| {
                serde_json::from_value::<weft_model::resource::policy::targetref::TargetRef>(
                    t.clone(),
                )
                .ok()
            }) {
                Some(t) if t.kind == TargetRefKind::Mesh => None,
                Some(t) if t.kind == TargetRefKind::MeshService => t.name,
                _ => continue,
            };
            let names = to
                .get("rules")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| {
                    let matches: Vec<Match> = r
                        .get("matches")
                        .and_then(|m| serde_json::from_value(m.clone()).ok())
                        .unwrap_or_default();
                    super::names::route_name(&matches)
                })
                .collect();
            rules.push((service, names));
        }
        out.push(RouteTargeted {
            policy,
            key: select::sort_key(&policy.resource, top),
            rules,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

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
    /// Policies targeting a MeshHTTPRoute that selects the proxy ([`route_targeted`]).
    pub route_targeted: Vec<RouteTargeted<'a>>,
}

impl Ctx<'_> {
    /// The typed merged outbound conf of `ty` for `service`.
    pub fn to<T: DeserializeOwned>(&self, ty: ResourceType, service: &str) -> Option<T> {
        let m = self.rules.to(ty, service)?;
        typed(ty, m)
    }

    /// The typed `to` conf of `ty` for the routes named `route` of outbound
    /// `service`, when a policy targeting a MeshHTTPRoute covers them: the
    /// service's conf with those policies' `to[]` confs merged on top, as Kuma's
    /// `__rule-matches-hash__` rules (a MeshHTTPRoute top-level targetRef is the
    /// most specific). `None` when no such policy covers the route.
    pub fn to_route<T: DeserializeOwned>(
        &self,
        ty: ResourceType,
        service: &str,
        route: &str,
    ) -> Option<T> {
        let covering: Vec<&RouteTargeted<'_>> = self
            .route_targeted
            .iter()
            .filter(|r| r.policy.resource.resource_type() == ty)
            .filter(|r| {
                r.rules.iter().any(|(s, names)| {
                    s.as_deref().is_none_or(|s| s == service) && names.iter().any(|n| n == route)
                })
            })
            .collect();
        if covering.is_empty() {
            return None;
        }
        let mut merged = self.rules.to(ty, service).cloned().unwrap_or_else(|| {
            weft_model::rules::merge::merge_all(
                std::iter::empty(),
                weft_model::rules::MergeMode::Patch,
            )
        });
        for r in covering {
            for (i, item) in r
                .policy
                .spec
                .get("to")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(conf) = item.get("default") else {
                    continue;
                };
                let origin = weft_model::rules::Origin {
                    ty: ty.name().to_string(),
                    name: r.policy.resource.meta.name.clone(),
                    entry: format!("to[{i}]"),
                };
                weft_model::rules::merge::merge_into(
                    &mut merged,
                    conf,
                    &origin,
                    weft_model::rules::MergeMode::Patch,
                );
            }
        }
        typed(ty, &merged)
    }

    /// The typed merged `default` of the single-item policy type `ty`.
    pub fn single<T: DeserializeOwned>(&self, ty: ResourceType) -> Option<T> {
        let m = self.rules.single(ty)?;
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
    meshtrace::apply(cfg, ctx);
    meshfaultinjection::apply(cfg, ctx);
    meshratelimit::apply(cfg, ctx);
    meshtimeout::apply(cfg, ctx);
    meshtrafficpermission::apply(cfg, ctx);
    meshhealthcheck::apply(cfg, ctx);
    meshcircuitbreaker::apply(cfg, ctx);
    meshretry::apply(cfg, ctx);
    meshmetric::apply(cfg, ctx);
}
#[cfg(test)]
mod tests;
