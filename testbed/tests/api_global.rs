//! The REST API of an in-process global on a free port: Kuma's paths, formats,
//! status codes and error bodies (docs/api.md walks through the same calls).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use weft_testbed::client::invalid_fields as fields;
use weft_testbed::inprocess;

const TIMEOUT: &str = r#"
type: MeshTimeout
name: t1
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 1h
        http:
          requestTimeout: 5s
"#;

/// PUTs `body` at `path`, expects 400, and gives the fields the error names.
async fn refused_fields(g: &inprocess::Running, path: &str, body: &str) -> Vec<String> {
    let (s, resp) = g.api.put(path, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{resp}");
    fields(&resp)
}

// `/`, `/ready` and `/metrics` answer without a token; everything else needs it.
#[tokio::test]
async fn auth_and_open_endpoints() {
    let g = inprocess::global().await;
    let index: Value = g
        .api
        .http()
        .get(g.api.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(index["product"], "Weft");
    assert_eq!(index["basedOnKuma"], "2.14.3");
    let host = index["hostname"].as_str().unwrap();
    assert!(!host.is_empty());
    assert!(
        index["instanceId"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{host}-")),
        "{index}"
    );
    assert_eq!(index["mode"], "global");
    // Kuma's required clusterId (UUID form, kept in the data dir) and gui path.
    let cluster = index["clusterId"].as_str().unwrap();
    assert_eq!(cluster.len(), 36, "{index}");
    assert_eq!(cluster.matches('-').count(), 4, "{index}");
    assert_eq!(index["gui"], "/gui");
    assert_eq!(
        g.api
            .http()
            .get(g.api.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let metrics = g
        .api
        .http()
        .get(g.api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("weft_api_requests"), "{metrics}");
    let r = g.api.http().get(g.api.url("/meshes")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = g
        .api
        .http()
        .get(g.api.url("/meshes"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    g.stop().await;
}

// The default mesh exists after the first start.
#[tokio::test]
async fn default_mesh_created() {
    let g = inprocess::global().await;
    let (s, body) = g.api.get("/meshes/default").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["type"], "Mesh");
    assert!(body["creationTime"].is_string());
    g.stop().await;
}

// PUT creates (201) then updates (200); GET gives the spec back with meta, in JSON or YAML.
#[tokio::test]
async fn put_get_round_trip() {
    let g = inprocess::global().await;
    let (s, _) = g.api.put("/meshes/default/meshtimeouts/t1", TIMEOUT).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = g.api.get("/meshes/default/meshtimeouts/t1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body["spec"]["to"][0]["default"]["http"]["requestTimeout"],
        "5s"
    );
    assert_eq!(body["mesh"], "default");
    let created = body["creationTime"].clone();
    let (s, _) = g
        .api
        .put(
            "/meshes/default/meshtimeouts/t1",
            &TIMEOUT.replace("5s", "7s"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, body) = g.api.get("/meshes/default/meshtimeouts/t1").await;
    assert_eq!(
        body["spec"]["to"][0]["default"]["http"]["requestTimeout"],
        "7s"
    );
    assert_eq!(body["creationTime"], created);
    let yaml = g
        .api
        .http()
        .get(g.api.url("/meshes/default/meshtimeouts/t1"))
        .bearer_auth(g.api.token())
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yaml.contains("requestTimeout: 7s"), "{yaml}");
    g.stop().await;
}

// Bad input gets a 4xx naming the cause, never a 500.
#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let g = inprocess::global().await;
    let path = "/meshes/default/meshtimeouts/t1";
    // Every bad field in one answer: a wrong type, an unknown enum value and a
    // missing required field beside a broken semantic rule.
    let bad = TIMEOUT
        .replace("idleTimeout: 1h", "idleTimeout: [1]")
        .replace("    kind: Mesh\n  to:", "    kind: Meshh\n  to:")
        .replace("requestTimeout: 5s", "requestTimeout: -5s");
    assert_eq!(
        refused_fields(&g, path, &bad).await,
        [
            "spec.targetRef.kind",
            "spec.to[0].default.idleTimeout",
            "spec.to[0].default.http.requestTimeout"
        ]
    );
    // An unknown field is accepted, as Kuma does, and named in the warnings.
    let typo = TIMEOUT.replace("idleTimeout: 1h", "idleTimeout: 1h\n        idelTimeout: 1");
    let (s, body) = g.api.put(path, &typo).await;
    assert!(s.is_success(), "{body}");
    assert_eq!(
        body["warnings"],
        serde_json::json!(["spec.to[0].default.idelTimeout: unknown field, ignored"])
    );
    let (s, body) = g.api.put(path, "type: MeshTimeout\nname: [unclosed").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("malformed YAML"),
        "{body}"
    );
    let r = g
        .api
        .http()
        .put(g.api.url(path))
        .bearer_auth(g.api.token())
        .header("content-type", "application/json")
        .body("{\"type\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (s, _) = g.api.put(path, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big = format!("{TIMEOUT}\n# {}\n", "x".repeat(2 * 1024 * 1024));
    let (s, body) = g.api.put(path, &big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        refused_fields(&g, "/meshes/default/meshtimeouts/other", TIMEOUT).await,
        vec!["name"]
    );
    let (s, _) = g.api.put("/meshes/default/nosuchthings/x", TIMEOUT).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    g.stop().await;
}

// Semantic errors are all reported at once, each with its path.
#[tokio::test]
async fn every_invalid_field_is_named() {
    let g = inprocess::global().await;
    let bad = TIMEOUT
        .replace("name: t1", "name: Bad_Name")
        .replace("requestTimeout: 5s", "requestTimeout: soon");
    let (s, body) = g
        .api
        .put("/meshes/default/meshtimeouts/Bad_Name", &bad)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["type"], "/std-errors");
    assert_eq!(body["detail"], "Resource is not valid");
    let f = fields(&body);
    assert!(f.contains(&"name".to_string()), "{body}");
    assert!(
        f.contains(&"spec.to[0].default.http.requestTimeout".to_string()),
        "{body}"
    );
    g.stop().await;
}

// Writing into a mesh that does not exist says so; zone-owned types are refused on global.
#[tokio::test]
async fn missing_mesh_and_zone_owned_types() {
    let g = inprocess::global().await;
    let in_nope = TIMEOUT.replace("mesh: default", "mesh: nope");
    assert_eq!(
        refused_fields(&g, "/meshes/nope/meshtimeouts/t1", &in_nope).await,
        vec!["mesh"]
    );
    let dp = "type: Dataplane\nname: dp-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n";
    let (s, body) = g.api.put("/meshes/default/dataplanes/dp-1", dp).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["detail"].as_str().unwrap().contains("zone"), "{body}");
    g.stop().await;
}

// If-Match turns a PUT into compare-and-swap: a stale version gets 409.
#[tokio::test]
async fn version_conflict() {
    let g = inprocess::global().await;
    let path = "/meshes/default/meshtimeouts/t1";
    let r = g
        .api
        .http()
        .put(g.api.url(path))
        .bearer_auth(g.api.token())
        .body(TIMEOUT)
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let put_if = |tag: String| {
        g.api
            .request(reqwest::Method::PUT, path)
            .header("if-match", tag)
            .body(TIMEOUT)
            .send()
    };
    let r = put_if(etag.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = put_if(etag).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    g.stop().await;
}

// Lists page with size/offset and say the total; `next` links the following page.
#[tokio::test]
async fn pagination() {
    let g = inprocess::global().await;
    // The default mesh's default MeshTimeouts would be counted too.
    for name in [
        "mesh-timeout-all-default",
        "mesh-gateways-timeout-all-default",
    ] {
        let (s, _) = g
            .api
            .delete(&format!("/meshes/default/meshtimeouts/{name}"))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    for i in 0..5 {
        let body = TIMEOUT.replace("name: t1", &format!("name: t{i}"));
        let (s, _) = g
            .api
            .put(&format!("/meshes/default/meshtimeouts/t{i}"), &body)
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (_, page) = g.api.get("/meshes/default/meshtimeouts?size=2").await;
    assert_eq!(page["total"], 5);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["t0", "t1"]);
    let next = page["next"].as_str().unwrap();
    assert!(
        next.ends_with("/meshes/default/meshtimeouts?size=2&offset=2"),
        "{next}"
    );
    let (_, last) = g
        .api
        .get("/meshes/default/meshtimeouts?size=2&offset=4")
        .await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["next"], Value::Null);
    let (_, all) = g.api.get("/meshtimeouts").await;
    assert_eq!(all["total"], 5);
    let (s, body) = g.api.get("/meshes/default/meshtimeouts?size=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), vec!["size"]);
    g.stop().await;
}

// DELETE removes; deleting a mesh removes what is in it.
#[tokio::test]
async fn delete_and_cascade() {
    let g = inprocess::global().await;
    let (s, _) = g.api.put("/meshes/m2", "type: Mesh\nname: m2\n").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = g
        .api
        .put(
            "/meshes/m2/meshtimeouts/t1",
            &TIMEOUT.replace("mesh: default", "mesh: m2"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(g.api.delete("/meshes/m2").await.0, StatusCode::OK);
    let (s, _) = g.api.get("/meshes/m2/meshtimeouts/t1").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, all) = g.api.get("/meshtimeouts").await;
    let in_m2 = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["mesh"] == "m2")
        .count();
    assert_eq!(in_m2, 0, "{all}");
    assert_eq!(g.api.delete("/meshes/m2").await.0, StatusCode::NOT_FOUND);
    g.stop().await;
}

// What was acknowledged is still there after a restart on the same data dir.
#[tokio::test]
async fn survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let g = inprocess::global_in(dir.path()).await;
    let (s, _) = g.api.put("/meshes/default/meshtimeouts/t1", TIMEOUT).await;
    assert_eq!(s, StatusCode::CREATED);
    let token = g.api.token().to_string();
    let cluster = g.api.get("/").await.1["clusterId"].clone();
    g.stop().await;
    let g = inprocess::global_in(dir.path()).await;
    assert_eq!(
        g.api.token(),
        token,
        "the admin token is kept across restarts"
    );
    assert_eq!(
        g.api.get("/").await.1["clusterId"],
        cluster,
        "so is the cluster id"
    );
    let (s, body) = g.api.get("/meshes/default/meshtimeouts/t1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body["spec"]["to"][0]["default"]["http"]["requestTimeout"],
        json!("5s")
    );
    g.stop().await;
}

// Swapping the CA of a mesh with mTLS on is refused unless the old backend stays
// listed (a rotation); turning mTLS off is not refused.
#[tokio::test]
async fn mesh_ca_cannot_be_swapped_while_mtls_is_on() {
    let g = inprocess::global().await;
    let mesh = |enabled: &str| {
        format!(
            "type: Mesh\nname: secure\nmtls:\n  enabledBackend: {enabled}\n  backends:\n    - name: {enabled}\n      type: builtin\n"
        )
    };
    let (s, body) = g.api.put("/meshes/secure", &mesh("ca-1")).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(
        refused_fields(&g, "/meshes/secure", &mesh("ca-2")).await,
        vec!["mtls.enabledBackend"]
    );
    let both = "type: Mesh\nname: secure\nmtls:\n  enabledBackend: ca-2\n  backends:\n    - {name: ca-1, type: builtin}\n    - {name: ca-2, type: builtin}\n";
    let (s, body) = g.api.put("/meshes/secure", both).await;
    assert_eq!(s, StatusCode::OK, "a rotation keeping ca-1 listed: {body}");
    let (s, body) = g
        .api
        .put("/meshes/secure", "type: Mesh\nname: secure\n")
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = g.api.put("/meshes/secure", &mesh("ca-2")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    g.stop().await;
}

// On global, a Mesh without mTLS is accepted with a warning that its services
// stay within their zones (zone ingresses route on the SNI of mTLS); with mTLS,
// or with a MeshIdentity, no such warning.
#[tokio::test]
async fn a_mesh_without_mtls_warns_it_stays_in_its_zones() {
    let g = inprocess::global().await;
    let cross_zone =
        |body: &serde_json::Value| body["warnings"].to_string().contains("other zones");
    let (s, body) = g
        .api
        .put("/meshes/plain", "type: Mesh\nname: plain\n")
        .await;
    assert!(s.is_success(), "{s} {body}");
    assert!(cross_zone(&body), "{body}");
    let (s, body) = g
        .api
        .put(
            "/meshes/secure",
            "type: Mesh\nname: secure\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - {name: ca-1, type: builtin}\n",
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    assert!(!cross_zone(&body), "{body}");
    let identity = "type: MeshIdentity\nmesh: plain\nname: id\nspec:\n  selector: {dataplane: {matchLabels: {}}}\n  provider: {type: Bundled, bundled: {autogenerate: {enabled: true}}}\n";
    let (s, body) = g.api.put("/meshes/plain/meshidentities/id", identity).await;
    assert!(s.is_success(), "{s} {body}");
    let (s, body) = g
        .api
        .put("/meshes/plain", "type: Mesh\nname: plain\n")
        .await;
    assert!(s.is_success(), "{s} {body}");
    assert!(!cross_zone(&body), "{body}");
    g.stop().await;
}

// A policy Weft accepts but cannot apply is never silent: the PUT answer says
// which part has no effect and why.
#[tokio::test]
async fn no_effect_is_warned() {
    let g = inprocess::global().await;
    let passthrough = "type: MeshPassthrough\nmesh: default\nname: t\nspec:\n  targetRef: {kind: Mesh}\n  default: {passthroughMode: All}\n";
    let (s, body) = g
        .api
        .put("/meshes/default/meshpassthroughs/t", passthrough)
        .await;
    assert!(s.is_success(), "{body}");
    let w = body["warnings"].as_array().unwrap();
    assert!(
        w.len() == 1 && w[0].as_str().unwrap().contains("has no effect"),
        "{body}"
    );
    let by_labels = TIMEOUT.replace(
        "    - targetRef:\n        kind: Mesh\n",
        "    - targetRef:\n        kind: MeshService\n        labels: {team: payments}\n",
    );
    let (s, body) = g
        .api
        .put("/meshes/default/meshtimeouts/t1", &by_labels)
        .await;
    assert!(s.is_success(), "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("spec.to[0].targetRef.labels: selects nothing"),
        "{body}"
    );
    g.stop().await;
}

// Kuma's list filters: `name` (contains) and `filter[labels.<key>]=<value>`
// (exact, all of them), applied before paging so `total` counts the matches and
// `next` keeps the filters; other parameters are refused, naming them.
#[tokio::test]
async fn list_filters_by_name_and_labels() {
    let g = inprocess::global().await;
    for (name, team) in [
        ("web-a", "a"),
        ("web-b", "b"),
        ("db-a", "a"),
        ("web-c", "a"),
    ] {
        let doc = TIMEOUT
            .replace("name: t1", &format!("name: {name}"))
            .replace(
                "mesh: default\n",
                &format!("mesh: default\nlabels: {{team: {team}}}\n"),
            );
        let (s, body) = g
            .api
            .put(&format!("/meshes/default/meshtimeouts/{name}"), &doc)
            .await;
        assert!(s.is_success(), "{body}");
    }
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let base = "/meshes/default/meshtimeouts";
    let (s, list) = g.api.get(&format!("{base}?name=web")).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["web-a", "web-b", "web-c"]);
    let (_, list) = g.api.get(&format!("{base}?filter[labels.team]=a")).await;
    assert_eq!(names(&list), ["db-a", "web-a", "web-c"]);
    let (_, list) = g
        .api
        .get(&format!("{base}?name=web&filter[labels.team]=a&size=1"))
        .await;
    assert_eq!(names(&list), ["web-a"]);
    assert_eq!(list["total"], 2);
    let next = list["next"].as_str().unwrap();
    assert!(
        next.contains("offset=1") && next.contains("filter[labels.team]=a"),
        "{next}"
    );
    let (s, body) = g.api.get(&format!("{base}?filter[spec.x]=1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = g.api.get(&format!("{base}?nmae=web")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("nmae"), "{body}");
    g.stop().await;
}

// `GET /_resources` describes every type in Kuma's shape: path, scope, display
// names, short name, whether it is read-only here, and a policy's sections.
#[tokio::test]
async fn resource_types_in_kumas_shape() {
    let g = inprocess::global().await;
    let (s, body) = g.api.get("/_resources").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let all = body["resources"].as_array().unwrap();
    let of = |name: &str| all.iter().find(|r| r["name"] == name).unwrap().clone();
    let mt = of("MeshTimeout");
    assert_eq!(mt["path"], "meshtimeouts");
    assert_eq!(mt["scope"], "Mesh");
    assert_eq!(mt["shortName"], "mt");
    assert_eq!(mt["readOnly"], false);
    assert_eq!(mt["policy"]["hasToTargetRef"], true);
    assert_eq!(
        of("MeshHTTPRoute")["singularDisplayName"],
        "Mesh HTTP Route"
    );
    assert_eq!(of("Dataplane")["readOnly"], true, "zones create them");
    assert_eq!(of("Zone")["scope"], "Global");
    assert_eq!(all.len(), weft_model::resource::ResourceType::ALL.len());
    g.stop().await;
}
