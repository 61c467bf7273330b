//! The REST API of an in-process standalone zone: what it owns, what it refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use weft_testbed::client::invalid_fields;
use weft_testbed::inprocess;

const DATAPLANE: &str = r#"
type: Dataplane
name: backend-1
mesh: default
networking:
  address: 127.0.0.1
  inbound:
    - port: 18080
      servicePort: 8080
      tags:
        kuma.io/service: backend
        kuma.io/protocol: http
"#;

// `GET /` says zone and the zone's name.
#[tokio::test]
async fn index_names_the_zone() {
    let z = inprocess::zone(Some("zone-1")).await;
    let (s, body) = z.api.get("/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["mode"], "zone");
    assert_eq!(body["zone"], "zone-1");
    z.stop().await;
}

// A standalone zone accepts Dataplanes and policies, and validates them fully.
#[tokio::test]
async fn standalone_zone_accepts_dataplanes_and_policies() {
    let z = inprocess::zone(Some("zone-1")).await;
    let (s, body) = z
        .api
        .put("/meshes/default/dataplanes/backend-1", DATAPLANE)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = z.api.get("/meshes/default/dataplanes/backend-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body["networking"]["inbound"][0]["tags"]["kuma.io/service"],
        "backend"
    );
    let bad = DATAPLANE
        .replace("address: 127.0.0.1", "address: 0.0.0.0")
        .replace("port: 18080", "port: 70000");
    let (s, body) = z
        .api
        .put("/meshes/default/dataplanes/backend-1", &bad)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let f = invalid_fields(&body);
    assert!(f.contains(&"networking.address".to_string()), "{body}");
    assert!(
        f.contains(&"networking.inbound[0].port".to_string()),
        "{body}"
    );
    let (s, _) = z.api.get("/dataplanes").await;
    assert_eq!(s, StatusCode::OK);
    z.stop().await;
}

// Zone resources live on global; a mesh with proxies in it is not deleted from under them.
#[tokio::test]
async fn zone_refusals() {
    let z = inprocess::zone(None).await;
    let (s, body) = z
        .api
        .put("/zones/zone-1", "type: Zone\nname: zone-1\n")
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (s, _) = z
        .api
        .put("/meshes/default/dataplanes/backend-1", DATAPLANE)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = z.api.delete("/meshes/default").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("dataplanes attached"),
        "{body}"
    );
    let (s, _) = z.api.delete("/meshes/default/dataplanes/backend-1").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = z.api.delete("/meshes/default").await;
    assert_eq!(s, StatusCode::OK);
    z.stop().await;
}
