//! What an operator sees of KDS: global's `/metrics` has per-zone series for
//! streams, responses, ACKs and propagation latency, and global's JSON log can be
//! filtered to one zone's stream by its `kds` span (real processes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::time::Duration;
use weft_testbed::wait::eventually;
use weft_testbed::{Client, ControlPlane};

const WITHIN: Duration = Duration::from_secs(30);

async fn metrics(global: &ControlPlane) -> String {
    reqwest::get(format!("{}/metrics", global.api_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the first sample line starting with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// Both zones' streams, responses, ACKs and propagation appear per zone on global's
// /metrics, and each zone's log lines carry its own span only.
#[tokio::test(flavor = "multi_thread")]
async fn per_zone_metrics_and_spans() {
    let global = ControlPlane::global(&["--log-format", "json"]).unwrap();
    let zones =
        ["zone-a", "zone-b"].map(|z| ControlPlane::federated_zone(&global, z, &[]).unwrap());
    let api = Client::new(global.api_url(), global.token());
    let policy = "type: MeshTimeout\nname: observed\nmesh: default\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {idleTimeout: 7s}\n";
    let (status, body) = api
        .put("/meshes/default/meshtimeouts/observed", policy)
        .await;
    assert!(status.is_success(), "{status} {body}");

    for zone in ["zone-a", "zone-b"] {
        let streams = format!(r#"weft_kds_streams{{zone="{zone}",direction="global_to_zone"}}"#);
        let up = format!(r#"weft_kds_streams{{zone="{zone}",direction="zone_to_global"}}"#);
        let acks = format!(
            r#"weft_kds_acks_total{{zone="{zone}",direction="global_to_zone",type="MeshTimeout"}}"#
        );
        let propagation = format!(
            r#"weft_kds_propagation_seconds_count{{zone="{zone}",direction="global_to_zone"}}"#
        );
        let text = eventually(WITHIN, "per-zone KDS series on /metrics", || async {
            let text = metrics(&global).await;
            let ok = sample(&text, &streams) == Some(1.0)
                && sample(&text, &up) == Some(1.0)
                && sample(&text, &acks).is_some_and(|n| n >= 1.0)
                && sample(&text, &propagation).is_some_and(|n| n >= 1.0);
            ok.then_some(text)
        })
        .await;
        let bytes = format!(
            r#"weft_kds_bytes_total{{zone="{zone}",direction="global_to_zone",type="Mesh"}}"#
        );
        assert!(sample(&text, &bytes).is_some_and(|b| b > 0.0), "{text}");
    }

    // Global's log, filtered by the span of zone-a's streams.
    let log = global.process.log();
    let of_zone = |zone: &str| -> Vec<Value> {
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["span"]["name"] == "kds" && v["span"]["zone"] == zone)
            .collect()
    };
    let a = of_zone("zone-a");
    assert!(
        a.iter().any(|v| v["message"]
            .as_str()
            .is_some_and(|m| m.contains("GlobalToZoneSync stream opened"))),
        "no span-tagged stream line for zone-a in:\n{log}"
    );
    let directions: std::collections::BTreeSet<_> = a
        .iter()
        .filter_map(|v| v["span"]["direction"].as_str())
        .collect();
    assert_eq!(
        directions,
        ["global_to_zone", "zone_to_global"].into_iter().collect()
    );
    assert!(
        a.iter().all(|v| !v.to_string().contains("zone-b")),
        "zone-a's span holds a zone-b line"
    );
    assert!(!of_zone("zone-b").is_empty());
    drop(zones);
}
