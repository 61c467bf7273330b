//! The zone's inspect endpoints for a proxy: `_config` (the generated xDS
//! resources as Envoy JSON, and as Kuma's `{xds: <config dump>}`), `_rules`
//! (matched policies, merged conf, origins) and Kuma 2.14's `_policies`,
//! `_inbounds/{kri}/_policies`, `_outbounds/{kri}/_policies`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use weft_testbed::inprocess;

const WEB: &str = r#"
type: Dataplane
name: web-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: 18080
      servicePort: 8080
      tags: {kuma.io/service: web, kuma.io/protocol: http}
  outbound:
    - port: 19001
      tags: {kuma.io/service: backend}
"#;

const BACKEND: &str = r#"
type: Dataplane
name: backend-1
mesh: default
networking:
  address: 127.0.0.2
  inbound:
    - port: 18081
      servicePort: 8081
      tags: {kuma.io/service: backend, kuma.io/protocol: http}
"#;

const TIMEOUT: &str = r#"
type: MeshTimeout
name: backend-timeout
mesh: default
spec:
  targetRef: {kind: MeshService, name: web}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default: {http: {requestTimeout: 1s}}
"#;

// _config shows Kuma-named listeners and clusters as Envoy JSON, with policies applied.
#[tokio::test]
async fn config_is_envoy_json_with_policies_applied() {
    let z = inprocess::zone(Some("zone-1")).await;
    for (path, body) in [
        ("/meshes/default/dataplanes/web-1", WEB),
        ("/meshes/default/dataplanes/backend-1", BACKEND),
        ("/meshes/default/meshtimeouts/backend-timeout", TIMEOUT),
    ] {
        let (s, b) = z.api.put(path, body).await;
        assert_eq!(s, StatusCode::CREATED, "{path}: {b}");
    }
    let (s, cfg) = z.api.get("/meshes/default/dataplanes/web-1/_config").await;
    assert_eq!(s, StatusCode::OK, "{cfg}");
    let listeners = cfg["resources"]["type.googleapis.com/envoy.config.listener.v3.Listener"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = listeners
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["inbound:127.0.0.1:18080", "outbound:127.0.0.1:19001"]
    );
    let out = &listeners[1]["resource"];
    assert_eq!(out["trafficDirection"], "OUTBOUND");
    let hcm = &out["filterChains"][0]["filters"][0]["typedConfig"];
    assert_eq!(
        hcm["@type"],
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    let route = &hcm["routeConfig"]["virtualHosts"][0]["routes"][0]["route"];
    assert_eq!(route["cluster"], "backend");
    assert_eq!(route["timeout"], "1s");
    // Default policies of the mesh apply too (Kuma 2.x): retries from mesh-retry-all-default.
    assert_eq!(route["retryPolicy"]["numRetries"], 5);
    let eds =
        cfg["resources"]["type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"]
            .as_array()
            .unwrap();
    assert_eq!(eds[0]["name"], "backend");
    let ep = &eds[0]["resource"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]["socketAddress"];
    assert_eq!(ep["address"], "127.0.0.2");
    assert_eq!(ep["portValue"], 18081);
    // Kuma's shape: the same resources as an Envoy config dump.
    let configs = cfg["xds"]["configs"].as_array().unwrap();
    let of = |ty: &str| {
        configs
            .iter()
            .find(|c| c["@type"] == format!("type.googleapis.com/envoy.admin.v3.{ty}"))
            .unwrap()
            .clone()
    };
    let dumped: Vec<String> = of("ListenersConfigDump")["dynamic_listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["name"], l["active_state"]["listener"]["name"]);
            l["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(dumped, names);
    let clusters = of("ClustersConfigDump")["dynamic_active_clusters"].clone();
    assert!(
        clusters
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["cluster"]["name"] == "backend" && c["version_info"].is_string()),
        "{clusters}"
    );
    let (s, _) = z.api.get("/meshes/default/dataplanes/nope/_config").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    z.stop().await;
}

// Kuma 2.14's policy views: an outbound (by MeshService KRI or by service
// name) shows the merged `to` conf with the KRIs of the policies behind it; an
// inbound (by KRI, name or port) its rules; unknown ones are 404s naming why.
#[tokio::test]
async fn policies_per_outbound_and_inbound() {
    let z = inprocess::zone(Some("zone-1")).await;
    for (path, body) in [
        ("/meshes/default/dataplanes/web-1", WEB),
        ("/meshes/default/meshtimeouts/backend-timeout", TIMEOUT),
    ] {
        let (s, b) = z.api.put(path, body).await;
        assert_eq!(s, StatusCode::CREATED, "{path}: {b}");
    }
    let base = "/meshes/default/dataplanes/web-1";
    for outbound in ["backend", "kri_msvc_default_zone-1__backend_"] {
        let (s, body) = z
            .api
            .get(&format!("{base}/_outbounds/{outbound}/_policies"))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let timeout = body["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["kind"] == "MeshTimeout")
            .unwrap_or_else(|| panic!("no MeshTimeout: {body}"));
        assert_eq!(timeout["conf"]["http"]["requestTimeout"], "1s", "{body}");
        let origins: Vec<&str> = timeout["origins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kri"].as_str().unwrap())
            .collect();
        assert_eq!(
            origins.last(),
            Some(&"kri_mt_default___backend-timeout_"),
            "the most specific policy merges last: {body}"
        );
    }
    // Another destination gets the mesh default, not web's timeout to backend.
    let (_, other) = z.api.get(&format!("{base}/_outbounds/db/_policies")).await;
    let other_timeout = other["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "MeshTimeout")
        .cloned()
        .unwrap_or_default();
    assert_ne!(
        other_timeout["conf"]["http"]["requestTimeout"], "1s",
        "{other}"
    );
    let (s, body) = z
        .api
        .get(&format!("{base}/_outbounds/kri_mt_default___x_/_policies"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    for inbound in ["18080", "kri_dp_default_zone-1__web-1_18080"] {
        let (s, body) = z
            .api
            .get(&format!("{base}/_inbounds/{inbound}/_policies"))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        for p in body["policies"].as_array().unwrap() {
            assert!(
                p["kind"].is_string() && p["rules"].is_array() && p["origins"].is_array(),
                "{p}"
            );
        }
    }
    let (s, body) = z.api.get(&format!("{base}/_inbounds/9999/_policies")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let (s, body) = z.api.get(&format!("{base}/_policies")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["policies"].is_array(), "{body}");
    z.stop().await;
}

// _rules lists matched policies per type, merged confs and each value's origin.
#[tokio::test]
async fn rules_show_merge_and_origins() {
    let z = inprocess::zone(Some("zone-1")).await;
    for (path, body) in [
        ("/meshes/default/dataplanes/web-1", WEB),
        ("/meshes/default/meshtimeouts/backend-timeout", TIMEOUT),
    ] {
        let (s, b) = z.api.put(path, body).await;
        assert_eq!(s, StatusCode::CREATED, "{path}: {b}");
    }
    let (s, body) = z.api.get("/meshes/default/dataplanes/web-1/_rules").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let timeout = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "MeshTimeout")
        .unwrap();
    assert_eq!(
        timeout["matched"],
        serde_json::json!(["mesh-timeout-all-default", "backend-timeout"])
    );
    let backend = timeout["to"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subset"]["kuma.io/service"] == "backend")
        .unwrap();
    assert_eq!(backend["conf"]["http"]["requestTimeout"], "1s");
    assert_eq!(backend["conf"]["connectionTimeout"], "5s");
    assert_eq!(
        backend["origins"]["/http/requestTimeout"]["name"],
        "backend-timeout"
    );
    assert_eq!(
        backend["origins"]["/connectionTimeout"]["name"],
        "mesh-timeout-all-default"
    );
    let inbound = &timeout["from"]["18080"][0];
    assert_eq!(inbound["conf"]["connectionTimeout"], "10s");
    // Kuma's InspectRules beside: the proxy's meta, toRules with matchers and
    // the origin policies' metas, fromRules per inbound.
    assert_eq!(body["resource"]["type"], "Dataplane");
    assert_eq!(body["resource"]["name"], "web-1");
    let to = timeout["toRules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["matchers"][0]["value"] == "backend")
        .unwrap_or_else(|| panic!("no toRule for backend: {timeout}"));
    assert_eq!(to["matchers"][0]["key"], "kuma.io/service");
    assert_eq!(to["matchers"][0]["not"], false);
    assert_eq!(to["conf"]["http"]["requestTimeout"], "1s");
    let origin: Vec<&str> = to["origin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(origin, ["mesh-timeout-all-default", "backend-timeout"]);
    let from = &timeout["fromRules"][0];
    assert_eq!(from["inbound"]["port"], 18080, "{timeout}");
    assert_eq!(from["inbound"]["tags"]["kuma.io/service"], "web");
    assert_eq!(from["rules"][0]["conf"]["connectionTimeout"], "10s");
    z.stop().await;
}
