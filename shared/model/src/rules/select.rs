//! Step 1: does a policy's top-level targetRef select a proxy (and which of its
//! inbounds), and where does it sort among the policies that do.

use crate::resource::dataplane::DataplaneSpec;
use crate::resource::policy::targetref::{ProxyType, TargetRef, TargetRefKind};
use crate::resource::{Resource, Tags, tags};
use serde_json::Value;
use std::cmp::Reverse;
use std::sync::Arc;

/// What matching needs to know about a proxy.
#[derive(Debug)]
pub struct ProxyView<'a> {
    pub name: &'a str,
    pub labels: &'a Tags,
    /// (port, name, tags) per inbound.
    pub inbounds: Vec<(u32, Option<&'a str>, &'a Tags)>,
    /// The proxy's zone (`kuma.io/zone` of an inbound or label), if known.
    pub zone: Option<&'a str>,
}

impl<'a> ProxyView<'a> {
    pub fn new(resource: &'a Resource, dp: &'a DataplaneSpec) -> Self {
        let inbounds: Vec<_> = dp
            .networking
            .iter()
            .flat_map(|n| n.inbound.iter())
            .map(|i| (i.port, i.name.as_deref(), &i.tags))
            .collect();
        let zone = inbounds
            .iter()
            .find_map(|(_, _, t)| t.get(tags::ZONE).map(String::as_str))
            .or_else(|| resource.meta.labels.get(tags::ZONE).map(String::as_str));
        ProxyView {
            name: &resource.meta.name,
            labels: &resource.meta.labels,
            inbounds,
            zone,
        }
    }
}

/// Sort key, ascending = weaker: (kind specificity, Dataplane sub-order, origin,
/// role, inverted display name).
pub type SortKey = (u8, u8, u8, u8, Reverse<String>);

/// A policy prepared once for matching many proxies: its spec as JSON and its
/// top-level targetRef (`None` when it does not decode).
#[derive(Debug, Clone)]
pub struct Policy {
    pub resource: Arc<Resource>,
    pub spec: Value,
    pub top: Option<TargetRef>,
}

impl Policy {
    pub fn new(resource: Arc<Resource>) -> Policy {
        let spec = resource
            .to_value()
            .get("spec")
            .cloned()
            .unwrap_or(Value::Null);
        let top = match spec.get("targetRef") {
            None | Some(Value::Null) => Some(TargetRef::mesh()),
            Some(t) => serde_json::from_value(t.clone()).ok(),
        };
        Policy {
            resource,
            spec,
            top,
        }
    }
}

/// A policy that selects the proxy: which inbounds (by port) and its sort key.
#[derive(Debug, Clone)]
pub struct Selected<'a> {
    pub policy: &'a Policy,
    pub inbounds: Vec<u32>,
    pub key: SortKey,
}

/// The display name Kuma sorts by (`kuma.io/display-name`, else the name).
pub fn display_name(r: &Resource) -> &str {
    r.meta
        .labels
        .get(tags::DISPLAY_NAME)
        .map(String::as_str)
        .unwrap_or(&r.meta.name)
}

pub fn sort_key(policy: &Resource, top: &TargetRef) -> SortKey {
    let dp_order = if top.kind == TargetRefKind::Dataplane {
        let by_name = u8::from(top.name.is_some());
        let section = u8::from(top.section_name.is_some());
        by_name * 2 + section
    } else {
        0
    };
    let origin = match policy.meta.labels.get(tags::ORIGIN).map(String::as_str) {
        Some("global") => 1,
        Some("zone") => 3,
        _ => 2,
    };
    let role = match policy
        .meta
        .labels
        .get(tags::POLICY_ROLE)
        .map(String::as_str)
    {
        Some("system") => 1,
        Some("producer") => 2,
        Some("consumer") => 3,
        Some("workload-owner") => 4,
        _ => 0,
    };
    (
        top.kind.specificity(),
        dp_order,
        origin,
        role,
        Reverse(display_name(policy).to_string()),
    )
}

fn tags_match(selector: &Tags, tags: &Tags) -> bool {
    selector
        .iter()
        .all(|(k, v)| tags.get(k).is_some_and(|t| v == "*" || t == v))
}

/// `Some` when `policy` selects `proxy`.
pub fn select<'a>(proxy: &ProxyView, prepared: &'a Policy) -> Option<Selected<'a>> {
    let policy = prepared.resource.as_ref();
    let labels = &policy.meta.labels;
    if labels.get(tags::EFFECT).is_some_and(|e| e == "shadow") {
        return None;
    }
    if labels.get(tags::ORIGIN).is_some_and(|o| o == "zone")
        && let (Some(pz), Some(z)) = (labels.get(tags::ZONE), proxy.zone)
        && pz != z
    {
        return None;
    }
    let top = prepared.top.clone()?;
    let all: Vec<u32> = proxy.inbounds.iter().map(|(p, _, _)| *p).collect();
    let inbounds: Vec<u32> = match top.kind {
        TargetRefKind::Mesh => {
            let sidecar = top
                .proxy_types
                .as_ref()
                .is_none_or(|t| t.is_empty() || t.contains(&ProxyType::Sidecar));
            if !sidecar {
                return None;
            }
            all
        }
        TargetRefKind::MeshSubset => {
            let sidecar = top
                .proxy_types
                .as_ref()
                .is_none_or(|t| t.is_empty() || t.contains(&ProxyType::Sidecar));
            if !sidecar {
                return None;
            }
            let sel = top.tags.clone().unwrap_or_default();
            if sel.is_empty() {
                all
            } else {
                proxy
                    .inbounds
                    .iter()
                    .filter(|(_, _, t)| tags_match(&sel, t))
                    .map(|(p, _, _)| *p)
                    .collect()
            }
        }
        TargetRefKind::MeshService | TargetRefKind::MeshServiceSubset => {
            let mut sel = top.tags.clone().unwrap_or_default();
            if top.kind == TargetRefKind::MeshService {
                sel.clear();
            }
            sel.insert(tags::SERVICE.into(), top.service_name()?.to_string());
            proxy
                .inbounds
                .iter()
                .filter(|(_, _, t)| tags_match(&sel, t))
                .map(|(p, _, _)| *p)
                .collect()
        }
        TargetRefKind::Dataplane => {
            if let Some(n) = &top.name {
                if n != proxy.name {
                    return None;
                }
            } else if let Some(l) = &top.labels
                && !tags_match(l, proxy.labels)
            {
                return None;
            }
            match &top.section_name {
                None => all,
                Some(s) => {
                    let picked: Vec<u32> = proxy
                        .inbounds
                        .iter()
                        .filter(|(p, n, _)| n.is_some_and(|n| n == s) || p.to_string() == *s)
                        .map(|(p, _, _)| *p)
                        .collect();
                    if picked.is_empty() {
                        return None;
                    }
                    picked
                }
            }
        }
        _ => return None,
    };
    if inbounds.is_empty()
        && !(top.kind == TargetRefKind::Mesh || top.kind == TargetRefKind::Dataplane)
    {
        return None;
    }
    let key = sort_key(policy, &top);
    Some(Selected {
        policy: prepared,
        inbounds,
        key,
    })
}
