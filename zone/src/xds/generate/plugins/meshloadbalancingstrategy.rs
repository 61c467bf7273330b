//! MeshLoadBalancingStrategy (order 400): outbound clusters get `lb_policy` and
//! the matching `least_request_lb_config` / `ring_hash_lb_config` /
//! `maglev_lb_config`; the routes of the destination's outbound listener get
//! `hash_policy[]` (from `loadBalancer.{ringHash,maglev}.hashPolicies`, else the
//! top-level `hashPolicies`).
//!
//! `localityAwareness` reorders the cluster's endpoints across zones (the
//! proxy's own EDS resource replaces the shared one):
//! - by default this zone's instances are priority 0 and other zones' ingresses
//!   priority 1 ([`crate::xds::generate::endpoints::local_first`]);
//! - `disabled: true` puts every endpoint at priority 0 (weighted by instance
//!   count);
//! - `crossZone.failover` lists, in order, the zones traffic fails over to after
//!   this one: each rule whose `from.zones` includes this zone (or has no
//!   `from`) adds a priority level — `Any` every zone not placed yet, `Only` the
//!   named ones, `AnyExcept` all but the named ones — and `None` ends the list;
//!   zones no rule places get no traffic;
//! - `crossZone.failoverThreshold.percentage` (T) is when a level spills to the
//!   next: Envoy's overprovisioning factor 100 × 100 / T;
//! - `localZone.affinityTags` is refused at the PUT for now (a warning: it has
//!   no effect).

use super::{Ctx, dur};
use crate::xds::generate::endpoints::{self, ServiceEndpoint};
use crate::xds::generate::envoy::{duration, u32v};
use crate::xds::generate::model::{Chain, ClusterRole, ProxyConfig};
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::RuntimeDouble;
use envoy_types::pb::envoy::config::route::v3::{route, route_action};
use envoy_types::pb::google::protobuf::UInt64Value;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::intorstring::IntOrString;
use weft_model::resource::policy::meshloadbalancingstrategy::{
    Conf, Failover, HashFunctionType, HashPolicy, HashPolicyType, LoadBalancerType,
    LocalityAwareness, ToZoneType,
};

const TY: ResourceType = ResourceType::MeshLoadBalancingStrategy;

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for (name, part) in &cfg.clusters {
        let ClusterRole::Outbound {
            service,
            subset,
            external: false,
        } = &part.role
        else {
            continue;
        };
        let Some(la) = ctx
            .to::<Conf>(TY, service)
            .and_then(|c| c.locality_awareness)
        else {
            continue;
        };
        let views = ctx.view;
        let placement = placement(&la, &views.zone);
        let mut cla = views
            .services
            .cla_of(name, service, subset, &|e| placement(e));
        if let Some(factor) = overprovisioning(&la) {
            cla.policy = Some(cla_policy(factor));
        }
        cfg.endpoints
            .insert(name.clone(), std::sync::Arc::new(endpoints::entry(&cla)));
    }
    for part in cfg.clusters.values_mut() {
        let ClusterRole::Outbound { service, .. } = &part.role else {
            continue;
        };
        let Some(conf) = ctx.to::<Conf>(TY, service) else {
            continue;
        };
        let Some(lb) = &conf.load_balancer else {
            continue;
        };
        let c = &mut part.cluster;
        use cluster::LbPolicy;
        match lb.lb_type {
            Some(LoadBalancerType::RoundRobin) | None => c.lb_policy = LbPolicy::RoundRobin as i32,
            Some(LoadBalancerType::Random) => c.lb_policy = LbPolicy::Random as i32,
            Some(LoadBalancerType::LeastRequest) => {
                c.lb_policy = LbPolicy::LeastRequest as i32;
                if let Some(lr) = &lb.least_request {
                    c.lb_config = Some(cluster::LbConfig::LeastRequestLbConfig(
                        cluster::LeastRequestLbConfig {
                            choice_count: lr.choice_count.map(u32v),
                            active_request_bias: lr
                                .active_request_bias
                                .as_ref()
                                .and_then(|b| b.to_string().parse::<f64>().ok())
                                .map(|default_value| RuntimeDouble {
                                    default_value,
                                    runtime_key: String::new(),
                                }),
                            ..cluster::LeastRequestLbConfig::default()
                        },
                    ));
                }
            }
            Some(LoadBalancerType::RingHash) => {
                c.lb_policy = LbPolicy::RingHash as i32;
                let rh = lb.ring_hash.clone().unwrap_or_default();
                c.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
                    cluster::RingHashLbConfig {
                        hash_function: match rh.hash_function {
                            Some(HashFunctionType::MurmurHash2) => {
                                cluster::ring_hash_lb_config::HashFunction::MurmurHash2 as i32
                            }
                            _ => cluster::ring_hash_lb_config::HashFunction::XxHash as i32,
                        },
                        minimum_ring_size: rh
                            .min_ring_size
                            .map(|v| UInt64Value { value: v.into() }),
                        maximum_ring_size: rh
                            .max_ring_size
                            .map(|v| UInt64Value { value: v.into() }),
                    },
                ));
            }
            Some(LoadBalancerType::Maglev) => {
                c.lb_policy = LbPolicy::Maglev as i32;
                let m = lb.maglev.clone().unwrap_or_default();
                c.lb_config = Some(cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
                    table_size: m.table_size.map(|v| UInt64Value { value: v.into() }),
                }));
            }
        }
    }
    for part in cfg.outbounds.iter_mut() {
        let Chain::Http(http) = &mut part.chain else {
            continue;
        };
        let Some(conf) = ctx.to::<Conf>(TY, &part.service) else {
            continue;
        };
        let lb = conf.load_balancer.as_ref();
        let policies = lb
            .and_then(|l| l.ring_hash.as_ref().and_then(|r| r.hash_policies.clone()))
            .or_else(|| lb.and_then(|l| l.maglev.as_ref().and_then(|m| m.hash_policies.clone())))
            .or_else(|| conf.hash_policies.clone())
            .unwrap_or_default();
        if policies.is_empty() {
            continue;
        }
        let envoy: Vec<_> = policies.iter().map(hash_policy).collect();
        for r in http.routes_mut() {
            if let Some(route::Action::Route(a)) = &mut r.action {
                a.hash_policy = envoy.clone();
            }
        }
    }
}

/// Where each endpoint goes under `la` for a proxy in zone `local`: its
/// priority, or `None` for no traffic.
fn placement(la: &LocalityAwareness, local: &str) -> impl Fn(&ServiceEndpoint) -> Option<u32> {
    let disabled = la.disabled == Some(true);
    let failover = la.cross_zone.as_ref().and_then(|c| c.failover.clone());
    let local = local.to_string();
    move |e: &ServiceEndpoint| {
        let Some(zone) = &e.remote_zone else {
            return Some(0);
        };
        if disabled {
            return Some(0);
        }
        let Some(rules) = &failover else {
            return endpoints::local_first(e);
        };
        zone_level(rules, &local, zone)
    }
}

/// The priority `crossZone.failover` gives zone `zone` for a client in `local`
/// (1 for the first level after the local zone); `None`: no traffic.
fn zone_level(rules: &[Failover], local: &str, zone: &str) -> Option<u32> {
    let mut level = 0;
    for rule in rules {
        let applies = rule
            .from
            .as_ref()
            .and_then(|f| f.zones.as_ref())
            .is_none_or(|zs| zs.iter().any(|z| z == local));
        if !applies {
            continue;
        }
        let named = rule.to.zones.as_deref().unwrap_or_default();
        let listed = named.iter().any(|z| z == zone);
        level += 1;
        match rule.to.zone_type {
            ToZoneType::None => return None,
            ToZoneType::Any => return Some(level),
            ToZoneType::Only if listed => return Some(level),
            ToZoneType::AnyExcept if !listed => return Some(level),
            ToZoneType::Only | ToZoneType::AnyExcept => {}
        }
    }
    None
}

/// Envoy's overprovisioning factor for `crossZone.failoverThreshold.percentage`.
fn overprovisioning(la: &LocalityAwareness) -> Option<u32> {
    let t = la
        .cross_zone
        .as_ref()?
        .failover_threshold
        .as_ref()?
        .percentage
        .as_ref()?;
    let percent: f64 = match t {
        IntOrString::Int(i) => *i as f64,
        IntOrString::String(s) => s.trim().parse().ok()?,
    };
    (percent > 0.0).then(|| (10_000.0 / percent).round().min(f64::from(u32::MAX)) as u32)
}

fn cla_policy(
    factor: u32,
) -> envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy {
    envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy {
        overprovisioning_factor: Some(u32v(factor)),
        ..Default::default()
    }
}

fn hash_policy(p: &HashPolicy) -> route_action::HashPolicy {
    use route_action::hash_policy::{self as hp, PolicySpecifier};
    let spec = match p.policy_type {
        HashPolicyType::Header => PolicySpecifier::Header(hp::Header {
            header_name: p
                .header
                .as_ref()
                .map(|h| h.name.clone())
                .unwrap_or_default(),
            ..hp::Header::default()
        }),
        HashPolicyType::Cookie => {
            let c = p.cookie.clone();
            PolicySpecifier::Cookie(hp::Cookie {
                name: c.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
                ttl: c.as_ref().and_then(|c| dur(&c.ttl)).map(duration),
                path: c.as_ref().and_then(|c| c.path.clone()).unwrap_or_default(),
                ..hp::Cookie::default()
            })
        }
        HashPolicyType::QueryParameter => PolicySpecifier::QueryParameter(hp::QueryParameter {
            name: p
                .query_parameter
                .as_ref()
                .map(|q| q.name.clone())
                .unwrap_or_default(),
        }),
        HashPolicyType::FilterState => PolicySpecifier::FilterState(hp::FilterState {
            key: p
                .filter_state
                .as_ref()
                .map(|f| f.key.clone())
                .unwrap_or_default(),
        }),
        HashPolicyType::Connection | HashPolicyType::SourceIp => {
            PolicySpecifier::ConnectionProperties(hp::ConnectionProperties { source_ip: true })
        }
    };
    route_action::HashPolicy {
        terminal: p.terminal.unwrap_or(false),
        policy_specifier: Some(spec),
    }
}
