//! MeshProxyPatch (Kuma order 9999, single item): raw edits of the generated
//! Envoy config: add, remove or patch clusters, listeners, network / HTTP
//! filters and virtual hosts, with a YAML `value` or RFC 6902 `jsonPatches`.
//! `appendModifications` are concatenated across policies.
//! Kuma: `pkg/plugins/policies/meshproxypatch/api/v1alpha1`.

use super::common::check_single_item;
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::Tags;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use TargetRefKind::*;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshProxyPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub default: Conf,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_modifications: Option<Vec<Modification>>,
}

/// Exactly one of the five kinds of modification.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Modification {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Mod<ClusterMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<Mod<ListenerMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_filter: Option<Mod<FilterMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_filter: Option<Mod<FilterMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_host: Option<Mod<VirtualHostMatch>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Add,
    Remove,
    Patch,
    AddFirst,
    AddLast,
    AddBefore,
    AddAfter,
}

/// One modification: which objects (`match`), what to do, and with what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mod<M> {
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<M>,
    pub operation: Operation,
    /// The Envoy resource (or the part to merge) as YAML text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_patches: Option<Vec<JsonPatchBlock>>,
}

fn none<T>() -> Option<T> {
    None
}

/// Selects clusters. `origin` is the generator that made them (`inbound`, `outbound`, ...).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tags in the listener's `io.kuma.tags` metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
}

/// Selects network or HTTP filters (by filter `name`) inside listeners.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_tags: Option<Tags>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHostMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_configuration_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonPatchOp {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
}

/// One RFC 6902 operation. `value` keeps an explicit `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonPatchBlock {
    pub op: JsonPatchOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A present field, even `null`, is `Some`; only an absent one is `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Top-level kinds over Kuma 2.9–2.14.
pub const TOP_KINDS: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshService,
    MeshServiceSubset,
    MeshGateway,
    Dataplane,
];

/// What each kind of modification allows.
#[derive(Clone, Copy)]
struct KindRules {
    field: &'static str,
    ops: &'static [Operation],
    /// Filters: Patch / AddBefore / AddAfter need `match.name`.
    filter: bool,
}

const RESOURCE_OPS: &[Operation] = &[Operation::Add, Operation::Patch, Operation::Remove];
const FILTER_OPS: &[Operation] = &[
    Operation::AddFirst,
    Operation::AddLast,
    Operation::AddBefore,
    Operation::AddAfter,
    Operation::Patch,
    Operation::Remove,
];

impl Validate for MeshProxyPatch {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_single_item(path, &self.target_ref, TOP_KINDS, &self.default, errs);
        super::checks::check_no_listener_tags(path, &self.target_ref, errs);
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let mp = path.field("appendModifications");
        let mods = self.append_modifications.as_deref().unwrap_or_default();
        if mods.is_empty() {
            errs.add(&mp, "must not be empty");
        }
        for (i, m) in mods.iter().enumerate() {
            m.validate(&mp.index(i), errs);
        }
    }
}

impl Validate for Modification {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let set = [
            self.cluster.is_some(),
            self.listener.is_some(),
            self.network_filter.is_some(),
            self.http_filter.is_some(),
            self.virtual_host.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if set != 1 {
            errs.add(
                path,
                format!(
                    "exactly one modification can be defined at a time. Currently, {set} modifications are defined"
                ),
            );
            return;
        }
        let res = |field| KindRules {
            field,
            ops: RESOURCE_OPS,
            filter: false,
        };
        let filt = |field| KindRules {
            field,
            ops: FILTER_OPS,
            filter: true,
        };
        if let Some(m) = &self.cluster {
            check_mod(path, m, m.r#match.is_some(), None, res("cluster"), errs);
        } else if let Some(m) = &self.listener {
            check_mod(path, m, m.r#match.is_some(), None, res("listener"), errs);
        } else if let Some(m) = &self.virtual_host {
            let name = m.r#match.as_ref().and_then(|x| x.name.as_deref());
            // Adding a virtual host may pick the route configuration, not a host name.
            check_mod(path, m, name.is_some(), name, res("virtualHost"), errs);
        } else if let Some(m) = &self.network_filter {
            let name = m.r#match.as_ref().and_then(|x| x.name.as_deref());
            check_mod(path, m, false, name, filt("networkFilter"), errs);
        } else if let Some(m) = &self.http_filter {
            let name = m.r#match.as_ref().and_then(|x| x.name.as_deref());
            check_mod(path, m, false, name, filt("httpFilter"), errs);
        }
    }
}

/// `match_on_add`: a match that `Add` forbids is present (`match` for clusters and
/// listeners, `match.name` for virtual hosts). `match_name`: the filter name matched.
fn check_mod<M>(
    parent: &Path,
    m: &Mod<M>,
    match_on_add: bool,
    match_name: Option<&str>,
    rules: KindRules,
    errs: &mut ValidationErrors,
) {
    let path = parent.field(rules.field);
    if !rules.ops.contains(&m.operation) {
        let ops: Vec<String> = rules.ops.iter().map(|o| format!("\"{o:?}\"")).collect();
        errs.add(
            &path.field("operation"),
            format!(
                "invalid operation. Available operations: {}",
                ops.join(", ")
            ),
        );
        return;
    }
    let match_name_path = path.field("match").field("name");
    match m.operation {
        Operation::Add if match_on_add => {
            let at = if rules.field == "virtualHost" {
                match_name_path
            } else {
                path.field("match")
            };
            errs.add(&at, "must not be defined");
            check_value(&path.field("value"), &m.value, errs);
        }
        Operation::Add | Operation::AddFirst | Operation::AddLast => {
            check_value(&path.field("value"), &m.value, errs);
        }
        Operation::AddBefore | Operation::AddAfter => {
            if match_name.is_none() {
                let which = if m.operation == Operation::AddBefore {
                    "before"
                } else {
                    "after"
                };
                errs.add(
                    &match_name_path,
                    format!("must be defined. You need to pick a filter {which} which this one will be added"),
                );
            }
            check_value(&path.field("value"), &m.value, errs);
        }
        Operation::Patch => {
            if rules.filter && match_name.is_none() {
                errs.add(&match_name_path, "must be defined");
            }
            check_patch(&path, m, errs);
        }
        Operation::Remove => {
            if m.value.is_some() {
                errs.add(&path.field("value"), "must not be defined");
            }
        }
    }
}

/// `value` must be present and parse as a YAML mapping (an Envoy resource).
fn check_value(path: &Path, value: &Option<String>, errs: &mut ValidationErrors) {
    match value {
        None => errs.add(path, "must be defined"),
        Some(v) => {
            if let Err(reason) = yaml_mapping(v) {
                errs.add(
                    path,
                    format!("native Envoy resource is not valid: {reason}"),
                );
            }
        }
    }
}

fn yaml_mapping(text: &str) -> Result<(), String> {
    match serde_yaml_ng::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err("expected a YAML mapping".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn check_patch<M>(path: &Path, m: &Mod<M>, errs: &mut ValidationErrors) {
    let patches = m.json_patches.as_deref().unwrap_or_default();
    match (&m.value, patches.is_empty()) {
        (Some(_), false) => errs.add(path, "must have only one type defined: value, jsonPatches"),
        (Some(v), true) => {
            if let Err(reason) = yaml_mapping(v) {
                errs.add(
                    &path.field("value"),
                    format!("native Envoy resource is not valid: {reason}"),
                );
            }
        }
        (None, true) => errs.add(path, "must have exactly one defined: value, jsonPatches"),
        (None, false) => {
            for (i, p) in patches.iter().enumerate() {
                p.validate(&path.field("jsonPatches").index(i), errs);
            }
        }
    }
}

impl Validate for JsonPatchBlock {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        use JsonPatchOp::*;
        let needs_from = matches!(self.op, Move | Copy);
        match (&self.from, needs_from) {
            (None, true) => errs.add(
                &path.field("from"),
                "must not be empty when 'op' is one of: move, copy",
            ),
            (Some(_), false) => errs.add(
                &path.field("from"),
                "is allowed only when 'op' is one of: move, copy",
            ),
            _ => {}
        }
        let needs_value = matches!(self.op, Add | Replace);
        match (&self.value, needs_value) {
            (None, true) => errs.add(
                &path.field("value"),
                "must not be empty when 'op' is one of: add, replace",
            ),
            (Some(_), false) => errs.add(
                &path.field("value"),
                "is allowed only when 'op' is one of: add, replace",
            ),
            _ => {}
        }
        match self.path.as_deref() {
            None => errs.add(&path.field("path"), "must be defined"),
            Some("" | "/") if self.op == Remove => {
                errs.add(&path.field("path"), "root path cannot be removed");
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_messages;

    fn violations(yaml: &str) -> Vec<String> {
        spec_messages::<MeshProxyPatch>(yaml)
    }

    // Every kind of modification with a legal operation validates.
    #[test]
    fn valid_mods() {
        let v = violations(
            "default:\n  appendModifications:\n  - cluster:\n      operation: Add\n      value: |\n        name: test-cluster\n        connectTimeout: 5s\n  - cluster:\n      match: {origin: outbound, name: backend}\n      operation: Patch\n      jsonPatches:\n      - {op: replace, path: /connectTimeout, value: 1s}\n      - {op: copy, from: /a, path: /b}\n  - listener:\n      match: {origin: inbound, tags: {kuma.io/service: web}}\n      operation: Remove\n  - networkFilter:\n      match: {name: envoy.filters.network.tcp_proxy, listenerName: 'inbound:10.0.0.1:8080'}\n      operation: AddBefore\n      value: 'name: envoy.filters.network.local_ratelimit'\n  - httpFilter:\n      match: {name: envoy.filters.http.router, origin: outbound}\n      operation: Patch\n      value: 'typedConfig: {}'\n  - virtualHost:\n      match: {routeConfigurationName: 'outbound:backend'}\n      operation: Add\n      value: |\n        name: extra\n        domains: ['*']\n",
        );
        assert!(v.is_empty(), "{v:?}");
    }

    // One modification per item; operations per kind; value / jsonPatches rules.
    #[test]
    fn collects_all() {
        let v = violations(
            "default:\n  appendModifications:\n  - {}\n  - cluster: {operation: AddFirst}\n  - listener: {match: {name: x}, operation: Add, value: 'name: l'}\n  - httpFilter: {operation: AddAfter, value: '- not a mapping'}\n  - networkFilter: {operation: Patch}\n  - virtualHost: {operation: Remove, value: 'name: v'}\n  - cluster:\n      operation: Patch\n      jsonPatches: [{op: remove, path: /, value: 1}, {op: move, path: /a}, {op: add}]\n",
        );
        let m = "spec.default.appendModifications";
        assert_eq!(
            v,
            vec![
                format!(
                    "{m}[0]: exactly one modification can be defined at a time. Currently, 0 modifications are defined"
                ),
                format!(
                    "{m}[1].cluster.operation: invalid operation. Available operations: \"Add\", \"Patch\", \"Remove\""
                ),
                format!("{m}[2].listener.match: must not be defined"),
                format!(
                    "{m}[3].httpFilter.match.name: must be defined. You need to pick a filter after which this one will be added"
                ),
                format!(
                    "{m}[3].httpFilter.value: native Envoy resource is not valid: expected a YAML mapping"
                ),
                format!("{m}[4].networkFilter.match.name: must be defined"),
                format!("{m}[4].networkFilter: must have exactly one defined: value, jsonPatches"),
                format!("{m}[5].virtualHost.value: must not be defined"),
                format!(
                    "{m}[6].cluster.jsonPatches[0].value: is allowed only when 'op' is one of: add, replace"
                ),
                format!("{m}[6].cluster.jsonPatches[0].path: root path cannot be removed"),
                format!(
                    "{m}[6].cluster.jsonPatches[1].from: must not be empty when 'op' is one of: move, copy"
                ),
                format!(
                    "{m}[6].cluster.jsonPatches[2].value: must not be empty when 'op' is one of: add, replace"
                ),
                format!("{m}[6].cluster.jsonPatches[2].path: must be defined"),
            ]
        );
        assert_eq!(
            violations("default: {}\n"),
            vec!["spec.default.appendModifications: must not be empty"]
        );
    }

    // An explicit `value: null` in a JSON patch survives a round trip.
    #[test]
    fn null_patch_value() {
        let b: JsonPatchBlock =
            serde_json::from_str(r#"{"op":"replace","path":"/x","value":null}"#).unwrap();
        assert_eq!(b.value, Some(serde_json::Value::Null));
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"op":"replace","path":"/x","value":null}"#
        );
    }
}
