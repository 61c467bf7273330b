//! Kuma's names for what it generates, so that dashboards, access logs and
//! MeshProxyPatch written for Kuma (legacy `kuma.io/service` model) match:
//!
//! - stat names: every char outside `[A-Za-z0-9_-]` becomes `_`
//!   (`util/xds.SanitizeMetric`); a cluster's `alt_stat_name` is set only when
//!   that changes its name;
//! - a cluster for tags of a service: `<service>-<16 hex>`, the first 8 bytes of
//!   SHA-256 over the sorted tags (`kuma.io/service` included) as key then value
//!   (`tags.DestinationClusterName`); the service's name alone without other tags;
//! - an outbound route: the rule's matches hash, base64 SHA-256 of Go's JSON of
//!   the `matches` list (`meshhttproute.HashMatches`), shared by every route of the
//!   rule; the default catch-all is the hash of `[{path: PathPrefix /}]`;
//! - `x-kuma-tags`: `&key=v1,v2&` per tag key, sorted (`tags.Serialize`).

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use weft_model::resource::policy::header::HeaderMatch;
use weft_model::resource::policy::meshhttproute::{Match, PathMatch, PathMatchType};
use weft_model::resource::secret::encode_base64;
use weft_model::resource::{Tags, tags};

/// Kuma's `SanitizeMetric`.
pub fn stat_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A cluster's `alt_stat_name`: the sanitized name, empty when it is the name.
pub fn alt_stat_name(name: &str) -> String {
    let s = stat_name(name);
    if s == name { String::new() } else { s }
}

/// The cluster of `service` restricted to `subset` (tags besides
/// `kuma.io/service`).
pub fn destination_cluster(service: &str, subset: &Tags) -> String {
    let mut all: BTreeMap<&str, &str> = subset
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.insert(tags::SERVICE, service);
    if all.len() == 1 {
        return service.to_string();
    }
    let mut h = Sha256::new();
    for (k, v) in &all {
        h.update(k.as_bytes());
        h.update(v.as_bytes());
    }
    let digest = h.finalize();
    format!("{service}-{}", hex::encode(&digest[..8]))
}

/// The name of the routes of a MeshHTTPRoute rule with these `matches`.
pub fn route_name(matches: &[Match]) -> String {
    let json = format!(
        "[{}]",
        matches.iter().map(go_match).collect::<Vec<_>>().join(",")
    );
    encode_base64(&Sha256::digest(json.as_bytes()))
}

/// The name of the default catch-all route of an outbound.
pub fn catch_all_route_name() -> String {
    route_name(&[catch_all_match()])
}

pub fn catch_all_match() -> Match {
    Match {
        path: Some(PathMatch {
            r#type: PathMatchType::PathPrefix,
            value: "/".into(),
        }),
        ..Match::default()
    }
}

/// A string as Go's `encoding/json` writes it (HTML characters escaped).
fn go_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// An enum's serde name.
fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One match in the field order and omissions of Kuma's Go structs.
fn go_match(m: &Match) -> String {
    let mut fields = Vec::new();
    if let Some(p) = &m.path {
        fields.push(format!(
            "\"path\":{{\"value\":{},\"type\":{}}}",
            go_string(&p.value),
            go_string(&name_of(&p.r#type))
        ));
    }
    if let Some(method) = &m.method {
        fields.push(format!("\"method\":{}", go_string(&name_of(method))));
    }
    if let Some(q) = &m.query_params {
        let items: Vec<String> = q
            .iter()
            .map(|q| {
                format!(
                    "{{\"type\":{},\"name\":{},\"value\":{}}}",
                    go_string(&name_of(&q.r#type)),
                    go_string(&q.name),
                    go_string(&q.value)
                )
            })
            .collect();
        fields.push(format!("\"queryParams\":[{}]", items.join(",")));
    }
    if let Some(h) = &m.headers {
        let items: Vec<String> = h.iter().map(go_header).collect();
        fields.push(format!("\"headers\":[{}]", items.join(",")));
    }
    format!("{{{}}}", fields.join(","))
}

fn go_header(h: &HeaderMatch) -> String {
    let mut fields = Vec::new();
    if let Some(t) = &h.r#type {
        fields.push(format!("\"type\":{}", go_string(&name_of(t))));
    }
    fields.push(format!("\"name\":{}", go_string(&h.name)));
    if let Some(v) = h.value.as_deref().filter(|v| !v.is_empty()) {
        fields.push(format!("\"value\":{}", go_string(v)));
    }
    format!("{{{}}}", fields.join(","))
}

/// The `x-kuma-tags` value for a proxy whose inbounds carry `inbound_tags`.
pub fn tags_header<'a>(inbound_tags: impl IntoIterator<Item = &'a Tags>) -> String {
    let mut set: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in inbound_tags {
        for (k, v) in t {
            set.entry(k.as_str()).or_default().insert(v.as_str());
        }
    }
    set.iter()
        .map(|(k, vs)| format!("&{k}={}&", vs.iter().copied().collect::<Vec<_>>().join(",")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Names Kuma's goldens show: the catch-all route, split clusters, stat names.
    #[test]
    fn as_kuma_goldens() {
        // meshhttproute/.../default-route.listeners.golden.yaml
        assert_eq!(
            catch_all_route_name(),
            "9Zuf5Tg79OuZcQITwBbQykxAk2u4fRKrwYn3//AL4Yo="
        );
        // outbound-proxy/cluster-dots.envoy.golden.yaml
        assert_eq!(alt_stat_name("backend.kuma-system"), "backend_kuma-system");
        assert_eq!(alt_stat_name("backend"), "");
        assert_eq!(alt_stat_name("localhost:8080"), "localhost_8080");
        assert_eq!(
            destination_cluster("backend", &Tags::new()),
            "backend".to_string()
        );
        // outbound-proxy/04.envoy.golden.yaml
        let role = |r: &str| Tags::from([("role".to_string(), r.to_string())]);
        assert_eq!(
            destination_cluster("db", &role("master")),
            "db-f7d9086d4169338b"
        );
        assert_eq!(
            destination_cluster("db", &role("replica")),
            "db-c182dd9f4bf584d7"
        );
    }

    // Go escapes HTML characters in JSON strings; the hash follows.
    #[test]
    fn go_json_of_matches() {
        let m: Match = serde_json::from_value(serde_json::json!({
            "path": {"type": "Exact", "value": "/a&b"},
            "method": "GET",
            "headers": [{"name": "x", "value": "<y>"}],
        }))
        .unwrap_or_default();
        assert_eq!(
            go_match(&m),
            r#"{"path":{"value":"/a\u0026b","type":"Exact"},"method":"GET","headers":[{"name":"x","value":"\u003cy\u003e"}]}"#
        );
    }

    // `&key=values&` per key, values sorted and joined by commas.
    #[test]
    fn tags_header_serializes_like_kuma() {
        let a = Tags::from([
            ("kuma.io/service".into(), "web".into()),
            ("version".into(), "v1".into()),
        ]);
        let b = Tags::from([("kuma.io/service".into(), "admin".into())]);
        assert_eq!(
            tags_header([&a, &b]),
            "&kuma.io/service=admin,web&&version=v1&"
        );
    }
}
