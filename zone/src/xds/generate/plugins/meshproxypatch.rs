//! MeshProxyPatch (Kuma order 9999, single item, so last): the merged
//! `appendModifications`, in order, on the proxy's finished clusters and
//! listeners, as Kuma's `ApplyMods`:
//!
//! - `Add` puts the `value` resource in (replacing one of the same name);
//! - `Remove` drops every matching resource;
//! - `Patch` changes every matching resource: with `jsonPatches`, RFC 6902 on
//!   its proto3 JSON (Kuma's `jsonpb` shape: camelCase, `Any`s expanded) read
//!   back whole; otherwise `value` merged in as protobuf merge (lists append,
//!   durations replaced).
//!
//! `match` (absent: everything) selects by `name`, `origin` (Weft's resources
//! carry Kuma's: `inbound`, `outbound`, `prometheus`, `mesh-trace`; added ones
//! `proxy-template-modifications` (clusters) or `mesh-proxy-patch`
//! (listeners)) and, for listeners, `tags` against their `io.kuma.tags`
//! metadata (`*`: any value). Where Kuma would fail the whole proxy's update, Weft
//! skips the one modification (or the one resource a patch breaks) and logs it:
//! a `value` or patched JSON that does not read back as the Envoy type is never
//! sent (unlike Kuma, unknown field and enum names are refused, not dropped). `networkFilter`, `httpFilter` and `virtualHost` modifications are not
//! applied (the PUT answer warns).

use super::Ctx;
use super::meshmetric::ADMIN_CLUSTER;
use crate::xds::generate::json::{merge_message, message_from_json, message_to_json};
use crate::xds::generate::jsonpatch;
use crate::xds::generate::model::{Assembled, ClusterRole, ProxyConfig};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use std::collections::BTreeMap;
use weft_model::resource::ResourceType;
use weft_model::resource::Tags;
use weft_model::resource::policy::meshproxypatch::{Conf, Mod, Operation};

const TY: ResourceType = ResourceType::MeshProxyPatch;
/// Kuma's origin of a cluster a MeshProxyPatch adds.
pub const ORIGIN_ADDED_CLUSTER: &str = "proxy-template-modifications";
/// Kuma's origin of a listener a MeshProxyPatch adds.
pub const ORIGIN_ADDED_LISTENER: &str = "mesh-proxy-patch";

/// The generator (Kuma's origin) of each cluster and listener, by name.
#[derive(Debug, Default, Clone)]
pub struct Origins {
    clusters: BTreeMap<String, &'static str>,
    listeners: BTreeMap<String, &'static str>,
}

impl Origins {
    /// Read from the configuration before it is assembled.
    pub fn of(cfg: &ProxyConfig) -> Origins {
        let mut o = Origins::default();
        for (name, c) in &cfg.clusters {
            let origin = match &c.role {
                ClusterRole::Local { .. } => Some("inbound"),
                ClusterRole::Outbound { .. } => Some("outbound"),
                ClusterRole::System if name == ADMIN_CLUSTER => Some("prometheus"),
                ClusterRole::System if name.starts_with("meshtrace:") => Some("mesh-trace"),
                ClusterRole::System => None,
            };
            if let Some(origin) = origin {
                o.clusters.insert(name.clone(), origin);
            }
        }
        for l in &cfg.inbounds {
            o.listeners.insert(l.name.clone(), "inbound");
        }
        for l in &cfg.outbounds {
            o.listeners.insert(l.name.clone(), "outbound");
        }
        for l in &cfg.system_listeners {
            o.listeners.insert(l.name.clone(), "prometheus");
        }
        o
    }
}

/// Applies the proxy's merged MeshProxyPatch to its finished resources.
pub fn apply(a: &mut Assembled, origins: &Origins, ctx: &Ctx<'_>) {
    let Some(conf) = ctx.single::<Conf>(TY) else {
        return;
    };
    let mut origins = origins.clone();
    for (i, m) in conf
        .append_modifications
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(c) = &m.cluster {
            let matches = |cl: &Cluster, o: &Origins| {
                c.r#match.as_ref().is_none_or(|mm| {
                    mm.name.as_ref().is_none_or(|n| *n == cl.name)
                        && mm
                            .origin
                            .as_ref()
                            .is_none_or(|x| o.clusters.get(&cl.name).is_some_and(|y| x == y))
                })
            };
            let added = modify(
                i,
                "cluster",
                c,
                &mut a.clusters,
                |cl| &cl.name,
                |cl| matches(cl, &origins),
            );
            if let Some(added) = added {
                origins.clusters.insert(added, ORIGIN_ADDED_CLUSTER);
            }
        } else if let Some(l) = &m.listener {
            let matches = |li: &Listener, o: &Origins| {
                l.r#match.as_ref().is_none_or(|mm| {
                    mm.name.as_ref().is_none_or(|n| *n == li.name)
                        && mm
                            .origin
                            .as_ref()
                            .is_none_or(|x| o.listeners.get(&li.name).is_some_and(|y| x == y))
                        && mm
                            .tags
                            .as_ref()
                            .is_none_or(|t| tags_match(t, &listener_tags(li)))
                })
            };
            let added = modify(
                i,
                "listener",
                l,
                &mut a.listeners,
                |li| &li.name,
                |li| matches(li, &origins),
            );
            if let Some(added) = added {
                origins.listeners.insert(added, ORIGIN_ADDED_LISTENER);
            }
        }
    }
}

/// One cluster or listener modification; the name of a resource it added.
fn modify<T, M>(
    i: usize,
    kind: &str,
    m: &Mod<M>,
    resources: &mut Vec<T>,
    name: impl Fn(&T) -> &String,
    matches: impl Fn(&T) -> bool,
) -> Option<String>
where
    T: prost::Message + prost::Name + Default + Clone,
{
    let skip = |error: &str| {
        tracing::warn!(policy = %TY, modification = i, kind, %error, "MeshProxyPatch modification skipped");
    };
    let value: Option<T> = match m.value.as_deref().map(parse::<T>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            skip(&e);
            return None;
        }
    };
    match m.operation {
        Operation::Add => {
            let Some(v) = value else {
                skip("Add without a value");
                return None;
            };
            let n = name(&v).clone();
            if n.is_empty() {
                skip("the added resource has no name");
                return None;
            }
            resources.retain(|r| *name(r) != n);
            resources.push(v);
            Some(n)
        }
        Operation::Remove => {
            resources.retain(|r| !matches(r));
            None
        }
        Operation::Patch => {
            let patches = m.json_patches.as_deref().unwrap_or_default();
            for r in resources.iter_mut().filter(|r| matches(r)) {
                let patched = if !patches.is_empty() {
                    json_patch(r, patches)
                } else if let Some(v) = &value {
                    let mut c = r.clone();
                    merge_message(&mut c, v)
                        .map(|_| c)
                        .map_err(|e| e.to_string())
                } else {
                    continue;
                };
                match patched {
                    // A patch does not rename the resource: names key xDS.
                    Ok(p) if name(&p) == name(r) => *r = p,
                    Ok(_) => skip(&format!("the patch renames {}", name(r))),
                    Err(e) => skip(&format!("{}: {e}", name(r))),
                }
            }
            None
        }
        other => {
            skip(&format!("operation {other:?} is not one of a {kind}"));
            None
        }
    }
}

/// A `value` (YAML or JSON) as the Envoy resource.
fn parse<T: prost::Message + prost::Name + Default>(value: &str) -> Result<T, String> {
    let v: serde_json::Value =
        serde_yaml_ng::from_str(value).map_err(|e| format!("value is not YAML: {e}"))?;
    message_from_json(v).map_err(|e| format!("value: {e}"))
}

fn json_patch<T: prost::Message + prost::Name + Default>(
    r: &T,
    patches: &[weft_model::resource::policy::meshproxypatch::JsonPatchBlock],
) -> Result<T, String> {
    let mut doc = message_to_json(r).map_err(|e| e.to_string())?;
    jsonpatch::apply(&mut doc, patches)?;
    message_from_json(doc).map_err(|e| format!("patched resource: {e}"))
}

/// A listener's `io.kuma.tags` metadata.
fn listener_tags(l: &Listener) -> Tags {
    use envoy_types::pb::google::protobuf::value::Kind;
    let mut out = Tags::new();
    if let Some(s) = l
        .metadata
        .as_ref()
        .and_then(|m| m.filter_metadata.get("io.kuma.tags"))
    {
        for (k, v) in &s.fields {
            if let Some(Kind::StringValue(v)) = &v.kind {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Kuma's `TagSelector.Matches`: every selector tag present, with its value or `*`.
fn tags_match(selector: &Tags, tags: &Tags) -> bool {
    selector
        .iter()
        .all(|(k, v)| tags.get(k).is_some_and(|t| v == "*" || t == v))
}
