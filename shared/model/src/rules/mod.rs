//! Which targetRef policies apply to a proxy and what they add up to — Kuma 2.x's
//! matching, ordering and merging (`pkg/plugins/policies/core/{matchers,rules}`),
//! pure and independent of Envoy.
//!
//! ```text
//! ProxyRules::compute(&dataplane, policies)      // once per proxy and mesh change
//!   .to(ResourceType::MeshTimeout, "backend")     // -> Option<&Merged>: outbound conf
//!   .from(ResourceType::MeshTimeout, port)        // -> Option<&Merged>: inbound conf
//! merged.typed::<meshtimeout::Conf>()             // the typed policy Conf
//! merged.origins["/http/requestTimeout"]          // which policy entry set it
//! ```
//!
//! 1. **Selection** ([`select`]): a policy applies when its top-level targetRef
//!    (default `Mesh`) selects the proxy: `Mesh` (with `proxyTypes` empty or
//!    containing `Sidecar`) every proxy; `MeshSubset` inbounds whose tags contain
//!    all its tags (`*` = any value); `MeshService` inbounds with that
//!    `kuma.io/service`; `MeshServiceSubset` both; `Dataplane` by name or labels,
//!    optionally one inbound by `sectionName` (inbound name or port). Policies
//!    labelled `kuma.io/effect: shadow` are skipped; a zone-origin policy
//!    (`kuma.io/origin: zone` + `kuma.io/zone`) only applies in its zone.
//! 2. **Order** ([`select::sort_key`]): ascending priority, later wins —
//!    top-level kind specificity (`Mesh 1 < Dataplane 2 < MeshSubset 3 < ... <
//!    MeshServiceSubset 8`), a name-selected Dataplane over a labels-selected one
//!    and with `sectionName` over without, origin (`global < unset < zone`),
//!    policy role (`system < producer < consumer < workload-owner`), then display
//!    name inverted (the lexicographically smaller name wins).
//! 3. **Merge** ([`merge`]): the `to[]` items of the sorted policies are
//!    concatenated; each targetRef becomes a tag subset (`Mesh` = `{}`,
//!    `MeshService x` = `{kuma.io/service: x}`, `MeshServiceSubset` adds its tags);
//!    for each distinct subset the confs of every item covering it are merged in
//!    order with JSON merge-patch (arrays replace; MeshHTTPRoute `rules[]` merge by
//!    `matches`). A destination `{kuma.io/service: s}` takes the most specific
//!    subset contained in it. Inbound (`from[]` and match-less `rules[]`, which
//!    Kuma treats alike) works the same per inbound with the client's tags as the
//!    element; only the catch-all (`{}`) rule is used for Envoy config since client
//!    identity needs mTLS. Single-item policies merge their `default`.
//!
//! A MeshService targetRef means the `kuma.io/service` it names, by `name` or by
//! the `kuma.io/display-name` label alone ([`TargetRef::service_name`]). A
//! top-level `MeshHTTPRoute` (MeshTimeout, MeshRetry) is resolved by the zone's
//! generator, which knows the routes. Not modelled, and warned when written
//! ([`effects`]): the negation/clique rules of MeshTrafficPermission, `rules[]`
//! entries with spiffeID/SNI matches, MeshServices selected by other labels,
//! MeshExternalService / MeshMultiZoneService targets and `MeshGateway`.

pub mod defaults;
pub mod effects;
pub mod merge;
pub mod select;
#[cfg(test)]
mod tests;

pub use merge::{MergeMode, Merged};
pub use select::Policy;

use crate::resource::policy::targetref::{TargetRef, TargetRefKind};
use crate::resource::{Resource, ResourceType, Spec, Tags, tags};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a merged value came from: the policy and which entry of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// Policy type, e.g. `MeshTimeout`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The stored name of the policy.
    pub name: String,
    /// `to[0]`, `from[1]`, `rules[0]` or `default`.
    pub entry: String,
}

/// One computed rule: a tag subset and the merged conf of every entry covering it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubsetRule {
    pub subset: Tags,
    #[serde(flatten)]
    pub merged: Merged,
}

/// Rules for one policy type on one proxy.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeRules {
    /// Names of the policies that select the proxy, weakest first.
    pub matched: Vec<String>,
    /// Outbound rules, most specific subset first.
    pub to: Vec<SubsetRule>,
    /// Inbound rules per inbound port, most specific subset first.
    pub from: BTreeMap<u32, Vec<SubsetRule>>,
    /// Single-item policies: the merged `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single: Option<Merged>,
}

/// Every policy type's rules for one proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyRules {
    pub types: BTreeMap<ResourceType, TypeRules>,
}

impl ProxyRules {
    /// Rules for `dataplane` from `policies` (any mix of types; non-policies and
    /// policies of other meshes are ignored).
    pub fn compute<'a>(
        dataplane: &Resource,
        policies: impl IntoIterator<Item = &'a Arc<Resource>>,
    ) -> ProxyRules {
        let prepared: Vec<Policy> = policies
            .into_iter()
            .filter(|p| p.resource_type().is_policy())
            .map(|p| Policy::new(p.clone()))
            .collect();
        ProxyRules::compute_prepared(dataplane, &prepared)
    }

    /// Like [`ProxyRules::compute`] with policies prepared once ([`Policy::new`])
    /// for all the proxies of a mesh.
    pub fn compute_prepared(dataplane: &Resource, policies: &[Policy]) -> ProxyRules {
        let Spec::Dataplane(dp) = &dataplane.spec else {
            return ProxyRules::default();
        };
        let proxy = select::ProxyView::new(dataplane, dp);
        let mut by_type: BTreeMap<ResourceType, Vec<select::Selected>> = BTreeMap::new();
        for p in policies {
            let ty = p.resource.resource_type();
            if !ty.is_policy() || p.resource.meta.mesh != dataplane.meta.mesh {
                continue;
            }
            if let Some(sel) = select::select(&proxy, p) {
                by_type.entry(ty).or_default().push(sel);
            }
        }
        let mut types = BTreeMap::new();
        for (ty, mut sels) in by_type {
            sels.sort_by(|a, b| a.key.cmp(&b.key));
            types.insert(ty, build_type(ty, &sels));
        }
        ProxyRules { types }
    }

    /// Merged outbound conf of `ty` for destination service `service`.
    pub fn to(&self, ty: ResourceType, service: &str) -> Option<&Merged> {
        let element = Tags::from([(tags::SERVICE.to_string(), service.to_string())]);
        self.types.get(&ty).and_then(|r| compute(&r.to, &element))
    }

    /// Merged inbound conf of `ty` for the inbound on `port`, for any client.
    pub fn from(&self, ty: ResourceType, port: u32) -> Option<&Merged> {
        self.types
            .get(&ty)
            .and_then(|r| r.from.get(&port))
            .and_then(|rules| compute(rules, &Tags::new()))
    }

    /// Merged `default` of a single-item policy type.
    pub fn single(&self, ty: ResourceType) -> Option<&Merged> {
        self.types.get(&ty).and_then(|r| r.single.as_ref())
    }

    /// `[{type, matched, to, from, single}]` — the `_rules` inspect shape.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.types
                .iter()
                .map(|(ty, r)| {
                    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                    if let Value::Object(o) = &mut v {
                        o.insert("type".into(), Value::String(ty.name().into()));
                    }
                    v
                })
                .collect(),
        )
    }

    /// Whether any policy of `ty` selects the proxy.
    pub fn has(&self, ty: ResourceType) -> bool {
        self.types.get(&ty).is_some_and(|r| !r.matched.is_empty())
    }
}

/// The first (most specific) rule whose subset is contained in `element`.
pub fn compute<'a>(rules: &'a [SubsetRule], element: &Tags) -> Option<&'a Merged> {
    rules
        .iter()
        .find(|r| {
            r.subset
                .iter()
                .all(|(k, v)| element.get(k).is_some_and(|e| e == v))
        })
        .map(|r| &r.merged)
}

fn merge_mode(ty: ResourceType) -> MergeMode {
    if ty == ResourceType::MeshHTTPRoute {
        MergeMode::RoutesByMatches
    } else {
        MergeMode::Patch
    }
}

/// A targetRef in `to[]`/`from[]` as a tag subset; `None` when it is not a
/// tag-model reference (real-resource kinds, routes).
pub fn subset_of(tr: &TargetRef) -> Option<Tags> {
    let mut s = Tags::new();
    match tr.kind {
        TargetRefKind::Mesh => {}
        TargetRefKind::MeshService => {
            s.insert(tags::SERVICE.into(), tr.service_name()?.to_string());
        }
        TargetRefKind::MeshServiceSubset => {
            s.insert(tags::SERVICE.into(), tr.service_name()?.to_string());
            s.extend(tr.tags.clone().unwrap_or_default());
        }
        TargetRefKind::MeshSubset => s.extend(tr.tags.clone().unwrap_or_default()),
        _ => return None,
    }
    Some(s)
}

struct Item {
    subset: Tags,
    conf: Value,
    origin: Origin,
}

fn build_rules(items: &[Item], mode: MergeMode) -> Vec<SubsetRule> {
    let mut subsets: Vec<&Tags> = Vec::new();
    for it in items {
        if !subsets.contains(&&it.subset) {
            subsets.push(&it.subset);
        }
    }
    let mut rules: Vec<SubsetRule> = subsets
        .into_iter()
        .map(|s| {
            let covering = items
                .iter()
                .filter(|it| it.subset.iter().all(|(k, v)| s.get(k) == Some(v)))
                .map(|it| (&it.conf, &it.origin));
            SubsetRule {
                subset: s.clone(),
                merged: merge::merge_all(covering, mode),
            }
        })
        .collect();
    rules.sort_by_key(|r| std::cmp::Reverse(r.subset.len()));
    rules
}

fn origin(ty: ResourceType, name: &str, entry: String) -> Origin {
    Origin {
        ty: ty.name().to_string(),
        name: name.to_string(),
        entry,
    }
}

fn build_type(ty: ResourceType, sels: &[select::Selected]) -> TypeRules {
    let mode = merge_mode(ty);
    let mut out = TypeRules {
        matched: sels
            .iter()
            .map(|s| s.policy.resource.meta.name.clone())
            .collect(),
        ..TypeRules::default()
    };
    let mut to_items = Vec::new();
    let mut from_items: BTreeMap<u32, Vec<Item>> = BTreeMap::new();
    let mut singles = Vec::new();
    for sel in sels {
        let name = &sel.policy.resource.meta.name;
        let spec = &sel.policy.spec;
        for (i, item) in array(spec, "to").iter().enumerate() {
            let Some(tr) = item
                .get("targetRef")
                .and_then(|t| serde_json::from_value::<TargetRef>(t.clone()).ok())
            else {
                continue;
            };
            let Some(subset) = subset_of(&tr) else {
                continue;
            };
            to_items.push(Item {
                subset,
                conf: item_conf(item),
                origin: origin(ty, name, format!("to[{i}]")),
            });
        }
        let mut inbound_items = Vec::new();
        for (i, item) in array(spec, "from").iter().enumerate() {
            let Some(tr) = item
                .get("targetRef")
                .and_then(|t| serde_json::from_value::<TargetRef>(t.clone()).ok())
            else {
                continue;
            };
            let Some(subset) = subset_of(&tr) else {
                continue;
            };
            inbound_items.push((subset, item_conf(item), format!("from[{i}]")));
        }
        for (i, item) in array(spec, "rules").iter().enumerate() {
            // Routes' `rules` live under `to[]`; top-level `rules[]` are inbound.
            let has_matches = item
                .get("matches")
                .is_some_and(|m| m.as_array().is_some_and(|a| !a.is_empty()));
            if has_matches || item.get("default").is_none() {
                continue;
            }
            inbound_items.push((Tags::new(), item_conf(item), format!("rules[{i}]")));
        }
        for port in &sel.inbounds {
            for (subset, conf, entry) in &inbound_items {
                from_items.entry(*port).or_default().push(Item {
                    subset: subset.clone(),
                    conf: conf.clone(),
                    origin: origin(ty, name, entry.clone()),
                });
            }
        }
        if let Some(d) = spec.get("default") {
            singles.push((d.clone(), origin(ty, name, "default".into())));
        }
    }
    out.to = build_rules(&to_items, mode);
    out.from = from_items
        .into_iter()
        .map(|(port, items)| (port, build_rules(&items, mode)))
        .collect();
    if !singles.is_empty() {
        out.single = Some(merge::merge_all(singles.iter().map(|(v, o)| (v, o)), mode));
    }
    out
}

fn array<'a>(spec: &'a Value, key: &str) -> &'a [Value] {
    spec.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An entry's conf: its `default`, or (routes) everything but `targetRef`.
fn item_conf(item: &Value) -> Value {
    if let Some(d) = item.get("default") {
        return d.clone();
    }
    let mut o = item.as_object().cloned().unwrap_or_default();
    o.remove("targetRef");
    Value::Object(o)
}
