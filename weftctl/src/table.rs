//! Tables as kumactl prints them: upper-case headers, columns padded to their
//! widest cell, two spaces apart; and the columns shown for each resource type.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Renders `headers` and `rows` as aligned text, one line each.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                l.push_str(cell);
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// How long ago `time` (RFC 3339) was, kubectl-style: `45s`, `12m`, `5h`, `3d`,
/// `2y`; `-` when unknown.
pub fn age(time: Option<&str>, now: OffsetDateTime) -> String {
    let Some(t) = time.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()) else {
        return "-".into();
    };
    let secs = (now - t).whole_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s if s < 2 * 365 * 86400 => format!("{}d", s / 86400),
        s => format!("{}y", s / (365 * 86400)),
    }
}

/// The text at a dotted `path` of `v` (`mtls.enabledBackend`), or `default`.
pub fn text_at(v: &Value, path: &str, default: &str) -> String {
    let mut cur = v;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return default.into(),
        }
    }
    match cur {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => default.into(),
    }
}

/// `k=v` pairs, sorted, comma-separated.
pub fn pairs(v: Option<&Value>) -> String {
    let Some(Value::Object(m)) = v else {
        return String::new();
    };
    let mut items: Vec<String> = m
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    items.sort();
    items.join(",")
}

/// The table for a list of resources of type `type_name`.
pub fn resources(
    type_name: &str,
    mesh_scoped: bool,
    is_policy: bool,
    items: &[Value],
    now: OffsetDateTime,
) -> String {
    let age_of = |r: &Value| age(r.get("creationTime").and_then(Value::as_str), now);
    let name_of = |r: &Value| text_at(r, "name", "");
    let mesh_of = |r: &Value| text_at(r, "mesh", "");
    let (headers, rows): (Vec<&str>, Vec<Vec<String>>) = match type_name {
        "Mesh" => (
            vec![
                "NAME",
                "mTLS",
                "METRICS",
                "LOGGING",
                "TRACING",
                "LOCALITY",
                "ZONEEGRESS",
                "AGE",
            ],
            items
                .iter()
                .map(|r| {
                    let on_off = |p: &str| {
                        if r.pointer(p).is_some_and(|v| v.as_bool() == Some(true)) {
                            "on".to_string()
                        } else {
                            "off".to_string()
                        }
                    };
                    vec![
                        name_of(r),
                        text_at(r, "mtls.enabledBackend", "off"),
                        text_at(r, "metrics.enabledBackend", "off"),
                        text_at(r, "logging.defaultBackend", "off"),
                        text_at(r, "tracing.defaultBackend", "off"),
                        on_off("/routing/localityAwareLoadBalancing"),
                        on_off("/routing/zoneEgress"),
                        age_of(r),
                    ]
                })
                .collect(),
        ),
        "Dataplane" => (
            vec!["MESH", "NAME", "TAGS", "ADDRESS", "AGE"],
            items
                .iter()
                .map(|r| {
                    vec![
                        mesh_of(r),
                        name_of(r),
                        dataplane_tags(r),
                        text_at(r, "networking.address", "-"),
                        age_of(r),
                    ]
                })
                .collect(),
        ),
        "ZoneIngress" => (
            vec!["NAME", "ZONE", "ADDRESS", "ADVERTISED ADDRESS", "AGE"],
            items
                .iter()
                .map(|r| {
                    let addr = |a: &str, p: &str| {
                        let (a, p) = (text_at(r, a, ""), text_at(r, p, ""));
                        if a.is_empty() {
                            "-".into()
                        } else {
                            format!("{a}:{p}")
                        }
                    };
                    vec![
                        name_of(r),
                        text_at(r, "zone", "-"),
                        addr("networking.address", "networking.port"),
                        addr("networking.advertisedAddress", "networking.advertisedPort"),
                        age_of(r),
                    ]
                })
                .collect(),
        ),
        "ZoneEgress" => (
            vec!["NAME", "ZONE", "ADDRESS", "AGE"],
            items
                .iter()
                .map(|r| {
                    let a = text_at(r, "networking.address", "");
                    vec![
                        name_of(r),
                        text_at(r, "zone", "-"),
                        if a.is_empty() {
                            "-".into()
                        } else {
                            format!("{a}:{}", text_at(r, "networking.port", ""))
                        },
                        age_of(r),
                    ]
                })
                .collect(),
        ),
        "Zone" => (
            vec!["NAME", "ENABLED", "AGE"],
            items
                .iter()
                .map(|r| vec![name_of(r), text_at(r, "enabled", "true"), age_of(r)])
                .collect(),
        ),
        _ if is_policy => (
            vec!["MESH", "NAME", "TARGETREF KIND", "TARGETREF NAME", "AGE"],
            items
                .iter()
                .map(|r| {
                    vec![
                        mesh_of(r),
                        name_of(r),
                        text_at(r, "spec.targetRef.kind", "Mesh"),
                        text_at(r, "spec.targetRef.name", ""),
                        age_of(r),
                    ]
                })
                .collect(),
        ),
        _ if mesh_scoped => (
            vec!["MESH", "NAME", "AGE"],
            items
                .iter()
                .map(|r| vec![mesh_of(r), name_of(r), age_of(r)])
                .collect(),
        ),
        _ => (
            vec!["NAME", "AGE"],
            items.iter().map(|r| vec![name_of(r), age_of(r)]).collect(),
        ),
    };
    render(&headers, &rows)
}

/// A Dataplane's inbound tags (every inbound's, merged), else its gateway's.
pub fn dataplane_tags(r: &Value) -> String {
    let mut tags = std::collections::BTreeSet::new();
    let inbounds = r
        .pointer("/networking/inbound")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for i in &inbounds {
        for t in pairs(i.get("tags")).split(',').filter(|t| !t.is_empty()) {
            tags.insert(t.to_string());
        }
    }
    if tags.is_empty() {
        return pairs(r.pointer("/networking/gateway/tags"));
    }
    tags.into_iter().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2025-01-02T00:00:00Z", &Rfc3339).unwrap()
    }

    // Columns are padded to the widest cell, two spaces apart, no trailing blanks.
    #[test]
    fn aligned_columns() {
        let out = render(
            &["MESH", "NAME", "AGE"],
            &[
                vec!["default".into(), "a".into(), "1s".into()],
                vec!["m".into(), "long-name".into(), "".into()],
            ],
        );
        assert_eq!(
            out,
            "MESH     NAME       AGE\n\
             default  a          1s\n\
             m        long-name\n"
        );
    }

    // Ages read like kubectl's, and an unknown time is a dash.
    #[test]
    fn ages() {
        let at = |s: &str| age(Some(s), now());
        assert_eq!(at("2025-01-01T23:59:15Z"), "45s");
        assert_eq!(at("2025-01-01T23:00:00Z"), "60m");
        assert_eq!(at("2025-01-01T00:00:00Z"), "24h");
        assert_eq!(at("2024-12-01T00:00:00Z"), "32d");
        assert_eq!(at("2020-01-01T00:00:00Z"), "5y");
        assert_eq!(age(None, now()), "-");
        assert_eq!(age(Some("garbage"), now()), "-");
    }

    // Policies show their top-level targetRef; meshes their backends.
    #[test]
    fn columns_per_type() {
        let items = vec![
            json!({"type": "MeshTimeout", "mesh": "default", "name": "t1",
            "creationTime": "2025-01-01T23:59:00Z",
            "spec": {"targetRef": {"kind": "MeshService", "name": "backend"}}}),
        ];
        let out = resources("MeshTimeout", true, true, &items, now());
        assert!(
            out.starts_with("MESH     NAME  TARGETREF KIND  TARGETREF NAME  AGE\n"),
            "{out}"
        );
        assert!(
            out.contains("default  t1    MeshService     backend         60s"),
            "{out}"
        );

        let items = vec![json!({"type": "Mesh", "name": "default",
            "mtls": {"enabledBackend": "ca-1"}, "routing": {"zoneEgress": true}})];
        let out = resources("Mesh", false, false, &items, now());
        assert!(
            out.contains("NAME     mTLS  METRICS  LOGGING  TRACING  LOCALITY  ZONEEGRESS  AGE"),
            "{out}"
        );
        assert!(
            out.contains("default  ca-1  off      off      off      off       on          -"),
            "{out}"
        );

        let items = vec![
            json!({"type": "Dataplane", "mesh": "default", "name": "web-1",
            "networking": {"address": "10.0.0.1", "inbound": [
                {"port": 1, "tags": {"kuma.io/service": "web", "version": "v1"}}]}}),
        ];
        let out = resources("Dataplane", true, false, &items, now());
        assert!(out.contains("kuma.io/service=web,version=v1"), "{out}");
        assert!(out.contains("10.0.0.1"), "{out}");

        let out = resources(
            "Secret",
            true,
            false,
            &[json!({"mesh": "m", "name": "s"})],
            now(),
        );
        assert_eq!(out, "MESH  NAME  AGE\nm     s     -\n");
        let out = resources("GlobalSecret", false, false, &[json!({"name": "g"})], now());
        assert_eq!(out, "NAME  AGE\ng     -\n");
    }
}
