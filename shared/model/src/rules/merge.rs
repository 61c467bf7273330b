//! Kuma's conf merge: RFC 7386 JSON merge-patch folded in priority order (later
//! wins, objects merge field by field, arrays replace), with MeshHTTPRoute's
//! `rules[]` merged by identical `matches` instead of replaced. Every leaf of
//! the result remembers which policy entry set it.

use super::Origin;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A merged conf and, per JSON pointer of each value set, the entry it came from.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Merged {
    /// The merged `default` (policy-specific Conf) as JSON.
    pub conf: Value,
    /// JSON pointer (`/http/requestTimeout`) → origin of that value.
    pub origins: BTreeMap<String, Origin>,
    /// Every entry that contributed, in merge order.
    pub contributors: Vec<Origin>,
}

impl Merged {
    /// The conf as the policy's typed Conf.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.conf.clone())
    }

    /// Where the value at `pointer` (or the nearest enclosing one) came from.
    pub fn origin_of(&self, pointer: &str) -> Option<&Origin> {
        let mut p = pointer;
        loop {
            if let Some(o) = self.origins.get(p) {
                return Some(o);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// How a policy type's confs merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Plain merge-patch.
    Patch,
    /// MeshHTTPRoute: `rules[]` entries merged by their `matches` key; the later
    /// policy's rules come first ("first matching rule wins" keeps its meaning).
    RoutesByMatches,
}

/// Folds `patch` (from `origin`) into `acc`.
pub fn merge_into(acc: &mut Merged, patch: &Value, origin: &Origin, mode: MergeMode) {
    acc.contributors.push(origin.clone());
    match mode {
        MergeMode::Patch => patch_at(&mut acc.conf, patch, "", origin, &mut acc.origins),
        MergeMode::RoutesByMatches => merge_routes(acc, patch, origin),
    }
}

/// Merges confs in order (first = weakest).
pub fn merge_all<'a>(
    confs: impl IntoIterator<Item = (&'a Value, &'a Origin)>,
    mode: MergeMode,
) -> Merged {
    let mut acc = Merged {
        conf: Value::Object(Map::new()),
        ..Merged::default()
    };
    for (v, o) in confs {
        merge_into(&mut acc, v, o, mode);
    }
    acc
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn clear_under(origins: &mut BTreeMap<String, Origin>, path: &str) {
    let prefix = format!("{path}/");
    origins.retain(|k, _| k != path && !k.starts_with(&prefix));
}

fn patch_at(
    target: &mut Value,
    patch: &Value,
    path: &str,
    origin: &Origin,
    origins: &mut BTreeMap<String, Origin>,
) {
    let Value::Object(p) = patch else {
        clear_under(origins, path);
        *target = patch.clone();
        origins.insert(path.to_string(), origin.clone());
        return;
    };
    if !target.is_object() {
        clear_under(origins, path);
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        let child = format!("{path}/{}", escape(k));
        if v.is_null() {
            t.remove(k);
            clear_under(origins, &child);
            continue;
        }
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        patch_at(slot, v, &child, origin, origins);
    }
}

fn merge_routes(acc: &mut Merged, patch: &Value, origin: &Origin) {
    let Value::Object(p) = patch else { return };
    // Everything but `rules` merges as usual.
    let mut rest = p.clone();
    let new_rules = rest.remove("rules");
    patch_at(
        &mut acc.conf,
        &Value::Object(rest),
        "",
        origin,
        &mut acc.origins,
    );
    let Some(Value::Array(new_rules)) = new_rules else {
        return;
    };
    let mut old: Vec<(Value, Origin)> = match &acc.conf {
        Value::Object(o) => match o.get("rules") {
            Some(Value::Array(rs)) => rs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let o = acc
                        .origins
                        .get(&format!("/rules/{i}"))
                        .cloned()
                        .unwrap_or_else(|| origin.clone());
                    (r.clone(), o)
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    // New rules first (later policy is stronger); a rule whose matches equal an
    // older one's replaces its conf field by field.
    let mut merged: Vec<(Value, Origin)> = Vec::new();
    for nr in new_rules {
        let key = nr.get("matches").cloned().unwrap_or(Value::Null);
        if let Some(pos) = old
            .iter()
            .position(|(r, _)| r.get("matches").cloned().unwrap_or(Value::Null) == key)
        {
            let (mut r, _) = old.remove(pos);
            let mut scratch = BTreeMap::new();
            patch_at(&mut r, &nr, "", origin, &mut scratch);
            merged.push((r, origin.clone()));
        } else {
            merged.push((nr.clone(), origin.clone()));
        }
    }
    merged.extend(old);
    clear_under(&mut acc.origins, "/rules");
    for (i, (_, o)) in merged.iter().enumerate() {
        acc.origins.insert(format!("/rules/{i}"), o.clone());
    }
    if let Value::Object(o) = &mut acc.conf {
        o.insert(
            "rules".into(),
            Value::Array(merged.into_iter().map(|(r, _)| r).collect()),
        );
    }
}
