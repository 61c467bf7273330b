//! `MeshLoadBalancingStrategy`: the outbound load-balancing algorithm, request
//! hashing and locality-aware (zone) priorities. Outbound only.
//! Kuma `meshloadbalancingstrategy/api/v1alpha1`.

mod hash;
mod locality;

pub use hash::{Connection, Cookie, FilterState, HashPolicy, HashPolicyType, NamedKey};
pub use locality::{
    AffinityTag, CrossZone, Failover, FailoverThreshold, FromZone, LocalZone, LocalityAwareness,
    ToZone, ToZoneType,
};

use super::checks::MUST_BE_DEFINED;
use super::checks::check_mes_needs_mesh_top;
use super::common::{Kinds, To, check_to_not_empty, check_to_target_ref, check_top, top_or_mesh};
use super::intorstring::IntOrString;
use super::targetref::{TargetRef, TargetRefKind, TargetRefKind::*};
use crate::resource::validate::{Path, Validate, ValidationErrors};
use hash::check_hash_policies;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshLoadBalancingStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<To<Conf>>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_awareness: Option<LocalityAwareness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Request hashing for the routes (2.10+; the only field for `to: MeshHTTPRoute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadBalancerType {
    RoundRobin,
    LeastRequest,
    RingHash,
    Random,
    Maglev,
}

/// The algorithm (`type`) and its settings (the section named after it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub lb_type: Option<LoadBalancerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin: Option<NoSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub least_request: Option<LeastRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<NoSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<Maglev>,
}

/// `roundRobin: {}` / `random: {}`: algorithms without settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NoSettings {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeastRequest {
    /// Hosts sampled per pick (default 2, at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_request_bias: Option<IntOrString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashFunctionType {
    XXHash,
    MurmurHash2,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingHash {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_function: Option<HashFunctionType>,
    /// 1..=8M (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ring_size: Option<u32>,
    /// 1..=8M (default 8M).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ring_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Maglev {
    /// A prime up to 5000011 (default 65537).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

const TOP: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshGateway,
    MeshService,
    MeshServiceSubset,
    Dataplane,
];
const TO: &[TargetRefKind] = &[Mesh, MeshService, MeshMultiZoneService, MeshHTTPRoute];
const TO_GATEWAY: &[TargetRefKind] = &[Mesh, MeshService, MeshMultiZoneService];
/// A gateway's load balancer is one per listener: only a Mesh-wide `to` can set it.
const TO_GATEWAY_WITH_LB: &[TargetRefKind] = &[Mesh];

const MAX_RING_SIZE: u32 = 8_000_000;
const MAX_MAGLEV_TABLE: u32 = 5_000_011;

impl Validate for MeshLoadBalancingStrategy {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let top = top_or_mesh(&self.target_ref);
        check_top(path, &self.target_ref, Kinds::new(TOP, TO, &[]), errs);
        check_to_not_empty(path, &self.to, errs);
        for (i, item) in self.to.iter().flatten().enumerate() {
            let p = path.field("to").index(i);
            let allowed = match (top.kind, &item.default.load_balancer) {
                (MeshGateway, Some(_)) => TO_GATEWAY_WITH_LB,
                (MeshGateway, None) => TO_GATEWAY,
                _ => TO,
            };
            check_to_target_ref(&p.field("targetRef"), &item.target_ref, allowed, errs);
            check_mes_needs_mesh_top(&p, &top, &item.target_ref, errs);
            item.default
                .check(&p.field("default"), &item.target_ref, errs);
        }
    }
}

impl Conf {
    /// What the conf may hold depends on the destination it configures.
    fn check(&self, path: &Path, to: &TargetRef, errs: &mut ValidationErrors) {
        check_hash_policies(&path.field("hashPolicies"), &self.hash_policies, errs);
        if to.kind == MeshHTTPRoute {
            let why = "field is not allowed when targetRef.kind is MeshHTTPRoute, only hashPolicies is supported";
            if self.load_balancer.is_some() {
                errs.add(&path.field("loadBalancer"), why);
            }
            if self.locality_awareness.is_some() {
                errs.add(&path.field("localityAwareness"), why);
            }
            return;
        }
        if let Some(lb) = &self.load_balancer {
            let p = path.field("loadBalancer");
            lb.validate(&p, errs);
            if self.hash_policies.is_some() {
                let why = "hashPolicies already specified in the root level";
                if lb
                    .ring_hash
                    .as_ref()
                    .is_some_and(|r| r.hash_policies.is_some())
                {
                    errs.add(&p.field("ringHash").field("hashPolicies"), why);
                }
                if lb
                    .maglev
                    .as_ref()
                    .is_some_and(|m| m.hash_policies.is_some())
                {
                    errs.add(&p.field("maglev").field("hashPolicies"), why);
                }
            }
        }
        if let Some(la) = &self.locality_awareness {
            la.check(&path.field("localityAwareness"), to, errs);
        }
    }
}

impl Validate for LoadBalancer {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.lb_type.is_none() {
            errs.add(&path.field("type"), MUST_BE_DEFINED);
        }
        if let Some(lr) = &self.least_request {
            let p = path.field("leastRequest");
            if lr.choice_count.is_some_and(|c| c < 2) {
                errs.add(
                    &p.field("choiceCount"),
                    "must be greater than or equal to 2",
                );
            }
            if let Some(bias) = &lr.active_request_bias {
                bias.check_at_least(&p.field("activeRequestBias"), 0, errs);
            }
        }
        if let Some(rh) = &self.ring_hash {
            let p = path.field("ringHash");
            for (name, size) in [
                ("minRingSize", rh.min_ring_size),
                ("maxRingSize", rh.max_ring_size),
            ] {
                if size.is_some_and(|s| !(1..=MAX_RING_SIZE).contains(&s)) {
                    errs.add(
                        &p.field(name),
                        format!("must be in inclusive range [1, {MAX_RING_SIZE}]"),
                    );
                }
            }
            if let (Some(min), Some(max)) = (rh.min_ring_size, rh.max_ring_size)
                && min > max
            {
                errs.add(
                    &p.field("minRingSize"),
                    "must not be greater than maxRingSize",
                );
            }
            check_hash_policies(&p.field("hashPolicies"), &rh.hash_policies, errs);
        }
        if let Some(mg) = &self.maglev {
            let p = path.field("maglev");
            if let Some(size) = mg.table_size {
                if !(1..=MAX_MAGLEV_TABLE).contains(&size) {
                    errs.add(
                        &p.field("tableSize"),
                        format!("must be in inclusive range [1, {MAX_MAGLEV_TABLE}]"),
                    );
                } else if !is_prime(size) {
                    errs.add(&p.field("tableSize"), "must be a prime number");
                }
            }
            check_hash_policies(&p.field("hashPolicies"), &mg.hash_policies, errs);
        }
    }
}

fn is_prime(n: u32) -> bool {
    n >= 2
        && (2..)
            .take_while(|d: &u32| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_fields;

    fn fields(yaml: &str) -> Vec<String> {
        spec_fields::<MeshLoadBalancingStrategy>(yaml)
    }

    // Per-type settings: ring sizes, Maglev prime table, least-request choices.
    #[test]
    fn load_balancer_settings() {
        let yaml = r#"
to:
  - targetRef: {kind: Mesh}
    default:
      loadBalancer:
        type: RingHash
        ringHash: {minRingSize: 2048, maxRingSize: 1024, hashPolicies: [{type: Header}]}
        maglev: {tableSize: 65536}
        leastRequest: {choiceCount: 1, activeRequestBias: "-0.5"}
  - targetRef: {kind: Mesh}
    default: {loadBalancer: {maglev: {tableSize: 65537}}}
"#;
        let p = "spec.to[0].default.loadBalancer";
        assert_eq!(
            fields(yaml),
            vec![
                format!("{p}.leastRequest.choiceCount"),
                format!("{p}.leastRequest.activeRequestBias"),
                format!("{p}.ringHash.minRingSize"),
                format!("{p}.ringHash.hashPolicies[0].header"),
                format!("{p}.maglev.tableSize"),
                "spec.to[1].default.loadBalancer.type".to_string(),
            ]
        );
    }

    // Hash policies: the section of the type, absolute cookie paths, one hashPolicies place.
    #[test]
    fn hash_policies() {
        let yaml = r#"
to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      hashPolicies:
        - {type: Cookie, cookie: {name: session, ttl: 1h, path: relative}}
        - {type: SourceIP, connection: {sourceIP: true}, terminal: true}
        - {type: QueryParameter, queryParameter: {name: ""}}
      loadBalancer: {type: Maglev, maglev: {hashPolicies: [{type: FilterState, filterState: {key: k}}]}}
"#;
        let p = "spec.to[0].default";
        assert_eq!(
            fields(yaml),
            vec![
                format!("{p}.hashPolicies[0].cookie.path"),
                format!("{p}.hashPolicies[2].queryParameter.name"),
                format!("{p}.loadBalancer.maglev.hashPolicies"),
            ]
        );
    }

    // Locality: weights all-or-none, failover zone lists by type, threshold above zero.
    #[test]
    fn locality_awareness() {
        let yaml = r#"
to:
  - targetRef: {kind: MeshService, labels: {app: backend}}
    default:
      localityAwareness:
        localZone: {affinityTags: [{key: k8s.io/node, weight: 90}, {key: ""}]}
        crossZone:
          failover:
            - {from: {zones: []}, to: {type: Only}}
            - {to: {type: Any, zones: [east]}}
            - {from: {zones: [west]}, to: {type: AnyExcept, zones: [east]}}
          failoverThreshold: {percentage: 0}
"#;
        let p = "spec.to[0].default.localityAwareness";
        let expected: Vec<String> = [
            "localZone.affinityTags[1].key",
            "localZone.affinityTags",
            "crossZone",
            "crossZone.failover[0].from.zones",
            "crossZone.failover[0].to.zones",
            "crossZone.failover[1].to.zones",
            "crossZone.failoverThreshold.percentage",
        ]
        .iter()
        .map(|f| format!("{p}.{f}"))
        .collect();
        assert_eq!(fields(yaml), expected);
    }

    // A route takes hash policies only; a gateway's load balancer is Mesh-wide only.
    #[test]
    fn destination_restrictions() {
        let yaml = r#"
to:
  - targetRef: {kind: MeshHTTPRoute, name: r}
    default: {hashPolicies: [{type: Header, header: {name: x-user}}], loadBalancer: {type: Random}}
"#;
        assert_eq!(fields(yaml), vec!["spec.to[0].default.loadBalancer"]);
        let yaml = r#"
targetRef: {kind: MeshGateway, name: edge}
to:
  - targetRef: {kind: MeshService, name: backend}
    default: {loadBalancer: {type: RoundRobin, roundRobin: {}}}
  - targetRef: {kind: MeshService, name: backend}
    default: {localityAwareness: {disabled: true}}
"#;
        assert_eq!(fields(yaml), vec!["spec.to[0].targetRef.kind"]);
    }

    // The prime check behind Maglev's table size.
    #[test]
    fn primes() {
        assert!([2, 3, 65537, 5_000_011].iter().all(|n| is_prime(*n)));
        assert!([0, 1, 4, 65536, 5_000_000].iter().all(|n| !is_prime(*n)));
    }
}
