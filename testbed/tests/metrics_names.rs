//! The Grafana dashboard (`docs/grafana/weft-control-planes.json`) and the
//! metrics the control planes export agree: every metric name a panel's PromQL
//! uses is served by an in-process global or zone once a zone is federated and
//! one proxy has an ADS stream. And Kuma-named series move when their event
//! happens (a generation, an API request, a stored Dataplane, a KDS stream).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use weft_sync::delta::DeltaDiscoveryRequest;
use weft_testbed::ads::{self, CLUSTER_TYPE, DeltaStream};
use weft_testbed::inprocess::{self, Running};
use weft_testbed::wait::{by, eventually, until};

const WITHIN: Duration = Duration::from_secs(30);

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/grafana/weft-control-planes.json"
);

/// Words of PromQL that are not metric names.
const KEYWORDS: [&str; 12] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
];

/// `s` with every `open`..`close` span (nesting counted) removed.
fn strip(s: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// `s` without string literals.
fn strip_strings(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            while let Some(d) = chars.next() {
                match d {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The metric names a PromQL expression selects: identifiers that are not
/// functions (followed by `(`), keywords, label names in `{...}` or in a
/// `by (...)` / `without (...)` / `on (...)` list, Grafana variables or
/// durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let s = strip_strings(expr);
    let s = strip(&s, '{', '}');
    let s = strip(&s, '[', ']');
    // Grouping lists: a keyword then a parenthesised list of label names.
    let mut cleaned = String::new();
    let mut rest = s.as_str();
    'outer: while !rest.is_empty() {
        for kw in [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
        ] {
            if let Some(after) = rest.strip_prefix(kw)
                && !cleaned
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                && after.trim_start().starts_with('(')
            {
                let after = after.trim_start();
                let end = after.find(')').expect("unclosed grouping list");
                cleaned.push(' ');
                rest = &after[end + 1..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap();
        cleaned.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let bytes: Vec<char> = cleaned.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let starts = c.is_ascii_alphabetic() || c == '_' || c == ':';
        if !starts || (i > 0 && (bytes[i - 1] == '$' || bytes[i - 1].is_ascii_digit())) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_' || bytes[i] == ':')
        {
            i += 1;
        }
        let word: String = bytes[start..i].iter().collect();
        let next = bytes[i..].iter().find(|c| !c.is_whitespace());
        if next == Some(&'(') || KEYWORDS.contains(&word.to_lowercase().as_str()) {
            continue;
        }
        names.insert(word);
    }
    names
}

/// Every panel's `expr`s (rows' nested panels too).
fn exprs(panels: &[Value], out: &mut Vec<String>) {
    for p in panels {
        if let Some(inner) = p["panels"].as_array() {
            exprs(inner, out);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push(e.to_string());
            }
        }
    }
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard file");
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

fn dashboard_metric_names() -> BTreeSet<String> {
    let mut all = Vec::new();
    exprs(dashboard()["panels"].as_array().expect("panels"), &mut all);
    all.iter().flat_map(|e| metric_names(e)).collect()
}

/// The sample names in an OpenMetrics text.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

async fn scrape(cp: &Running) -> String {
    cp.api
        .http()
        .get(cp.api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A global, a zone `zone-1` federated with it, and one proxy `web-1` with a
/// delta ADS stream that has ACKed its first response.
async fn federation_with_a_proxy() -> (Running, Running, DeltaStream) {
    let global = inprocess::global().await;
    let zone = inprocess::federated_zone(&global, "zone-1").await;
    until(WITHIN, "mesh default synced to the zone", || async {
        zone.api.get("/meshes/default").await.0.is_success()
    })
    .await;
    let token = zone
        .api
        .request(reqwest::Method::POST, "/tokens/dataplane")
        .json(&serde_json::json!({"mesh": "default", "name": "web-1"}))
        .send()
        .await
        .unwrap();
    assert!(token.status().is_success(), "{}", token.status());
    let token = token.text().await.unwrap();
    let json = ads::dataplane_json("default", "web-1", "web", 8080);
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node("default", "web-1", &json)),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    let channel = ads::channel(&zone.zone().unwrap().xds).await.unwrap();
    let mut stream = DeltaStream::open(channel, Some(token.trim()), first)
        .await
        .unwrap();
    let resp = tokio::time::timeout(WITHIN, stream.next())
        .await
        .expect("a first response")
        .unwrap();
    stream.ack(&resp).await.unwrap();
    (global, zone, stream)
}

// The extractor finds metric names, not functions, labels, keywords or
// Grafana variables.
#[test]
fn extractor_finds_only_metric_names() {
    let got = metric_names(
        r#"histogram_quantile(0.99, sum by (le, zone) (rate(xds_generation_bucket{zone=~"$zone", x="a{b}"}[$__rate_interval]))) / on(zone) group_left cp_info > 0 or vector(0)"#,
    );
    let want: BTreeSet<String> = ["xds_generation_bucket", "cp_info"]
        .map(String::from)
        .into();
    assert_eq!(got, want);
}

// The dashboard is a Grafana dashboard: schemaVersion ≥ 36, a Prometheus
// `datasource` variable every panel uses, and PromQL in every panel.
#[test]
fn dashboard_is_well_formed() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus datasource variable"
    );
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{} has no query",
            p["title"]
        );
    }
    assert!(dashboard_metric_names().len() >= 15);
}

// Every metric the dashboard uses is exported by the global or the zone.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_uses_only_exported_metrics() {
    let wanted = dashboard_metric_names();
    let (global, zone, _stream) = federation_with_a_proxy().await;
    // One API request on each, so the API families have series.
    for cp in [&global, &zone] {
        assert!(cp.api.get("/meshes").await.0.is_success());
    }
    let missing = || async {
        let mut exported = sample_names(&scrape(&global).await);
        exported.extend(sample_names(&scrape(&zone).await));
        wanted
            .iter()
            .filter(|n| !exported.contains(*n))
            .cloned()
            .collect::<Vec<_>>()
    };
    let done = by(tokio::time::Instant::now() + WITHIN, || async {
        missing().await.is_empty().then_some(())
    })
    .await;
    if done.is_none() {
        panic!(
            "the dashboard uses metrics neither control plane exports: {:?}",
            missing().await
        );
    }
}

// Kuma-named series follow their events: the proxy's generation counts in
// `xds_generation` (ms, by proxy type and result) and its ACK in
// `xds_requests_received`; an API request counts in
// `api_server_http_request_duration_seconds` under its route pattern; the
// stored Dataplane in `resources_count`; the zone's streams on global in
// `kds_zone_active_connections`; and `cp_info` names each side.
#[tokio::test(flavor = "multi_thread")]
async fn kuma_series_follow_their_events() {
    let (global, zone, _stream) = federation_with_a_proxy().await;
    let before = scrape(&zone).await;
    let handler = r#"api_server_http_request_duration_seconds_count{zone="zone-1",handler="/meshes/{mesh}/dataplanes",method="GET",code="200"}"#;
    let requests_before = sample(&before, handler).unwrap_or(0.0);
    assert!(
        zone.api
            .get("/meshes/default/dataplanes")
            .await
            .0
            .is_success()
    );
    let text = eventually(WITHIN, "Kuma series on the zone", || async {
        let t = scrape(&zone).await;
        let ok = sample(&t, handler) == Some(requests_before + 1.0)
            && sample(
                &t,
                r#"resources_count{zone="zone-1",resource_type="Dataplane"}"#,
            ) == Some(1.0)
            && sample(
                &t,
                &format!(
                    r#"xds_requests_received{{zone="zone-1",type_url="{CLUSTER_TYPE}",confirmation="ACK",error_type="no_error"}}"#
                ),
            )
            .is_some_and(|n| n >= 1.0);
        ok.then_some(t)
    })
    .await;
    let generations: f64 = text
        .lines()
        .filter(|l| l.starts_with(r#"xds_generation_count{zone="zone-1",proxy_type="dataplane""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(generations >= 1.0, "{text}");
    assert_eq!(
        sample(&text, r#"xds_streams_active{zone="zone-1"}"#),
        Some(1.0),
        "{text}"
    );
    // The raw path never appears as a handler.
    assert!(!text.contains("handler=\"/meshes/default"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("cp_info{zone=\"zone-1\"") && l.contains("product=\"Weft\"")),
        "{text}"
    );

    let g = eventually(WITHIN, "Kuma KDS series on global", || async {
        let t = scrape(&global).await;
        let ok = sample(
            &t,
            r#"kds_zone_active_connections{zone="Global",zone_name="zone-1"}"#,
        ) == Some(2.0)
            && t.lines().any(|l| {
                l.starts_with(r#"kds_delta_generation_count{zone="Global",reason="resync""#)
                    && l.contains(r#"zone_name="zone-1""#)
            });
        ok.then_some(t)
    })
    .await;
    assert_eq!(
        sample(&g, r#"kds_delta_streams_active{zone="Global"}"#),
        Some(1.0),
        "{g}"
    );
    // The zone sends zone→global: its own delta stream.
    assert_eq!(
        sample(&text, r#"kds_delta_streams_active{zone="zone-1"}"#),
        Some(1.0),
        "{text}"
    );
}
