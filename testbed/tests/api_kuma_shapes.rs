//! Kuma 2.14's answer shapes, per endpoint group, without a Kuma checkout: an
//! in-process global and federated zone populated as
//! `weft_testbed::populated` describes (web-1 and backend-1 connected,
//! backend-2 not; a zone ingress and egress; one policy of each type). Each
//! test asserts the fields Kuma's OpenAPI spec requires, with their JSON
//! types, and values that follow from the setup (counts, selections,
//! online/offline, filters, `next` links). `examples/kuma_openapi.rs` holds
//! the same answers against the spec itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;
use weft_testbed::Client;
use weft_testbed::populated::{self, DATAPLANES, POLICIES, Populated, ZONE};

/// Asserts that `v` (an object) has every one of `fields`.
fn required(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(v.get(f).is_some(), "missing required field {f:?} in {v}");
    }
}

/// The JSON types Kuma's spec gives fields.
#[derive(Clone, Copy)]
enum T {
    Str,
    Int,
    Bool,
    Obj,
    Arr,
}

/// Asserts that each `(field, type)` of `v` is present with that JSON type.
fn typed(v: &Value, fields: &[(&str, T)]) {
    for (f, t) in fields {
        let x = &v[*f];
        let ok = match t {
            T::Str => x.is_string(),
            T::Int => x.is_u64() || x.is_i64(),
            T::Bool => x.is_boolean(),
            T::Obj => x.is_object(),
            T::Arr => x.is_array(),
        };
        assert!(ok, "field {f:?} is not a {} in {v}", name(*t));
    }
}

fn name(t: T) -> &'static str {
    match t {
        T::Str => "string",
        T::Int => "integer",
        T::Bool => "boolean",
        T::Obj => "object",
        T::Arr => "array",
    }
}

/// Kuma's `Meta`: type, mesh, name (strings) and labels (a map of strings).
fn meta(v: &Value) {
    typed(
        v,
        &[
            ("type", T::Str),
            ("mesh", T::Str),
            ("name", T::Str),
            ("labels", T::Obj),
        ],
    );
    assert!(
        v["labels"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string),
        "labels must map strings to strings: {v}"
    );
}

/// A list page: `total` (integer), `items` (array) and `next` (a URL or null).
fn page(v: &Value) -> &Vec<Value> {
    typed(v, &[("total", T::Int), ("items", T::Arr)]);
    assert!(v["next"].is_null() || v["next"].is_string(), "{v}");
    v["items"].as_array().unwrap()
}

async fn ok(api: &Client, path: &str) -> Value {
    let (s, body) = api.get(path).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {body}");
    body
}

/// The names (in their zone: `kuma.io/display-name` on global) of a list's items.
fn names(list: &Value) -> BTreeSet<String> {
    page(list)
        .iter()
        .map(|i| {
            i["labels"]["kuma.io/display-name"]
                .as_str()
                .or(i["name"].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The path and query of a `next` link (`http://host/path?query`).
fn path_of(next: &Value) -> String {
    let url = next.as_str().unwrap();
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

async fn setup() -> Populated {
    match populated::start().await {
        Ok(p) => p,
        Err(e) => panic!("setting up: {e}"),
    }
}

// GET / (Kuma's Index), /_resources, /policies, /versions and /config on both
// control planes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_resources_policies_versions_config() {
    let p = setup().await;
    for api in [&p.global.api, &p.zone.api] {
        // Index requires hostname, product, version, instanceId, clusterId and gui.
        let index = ok(api, "/").await;
        typed(
            &index,
            &[
                ("hostname", T::Str),
                ("product", T::Str),
                ("version", T::Str),
                ("instanceId", T::Str),
                ("clusterId", T::Str),
                ("gui", T::Str),
                ("basedOnKuma", T::Str),
            ],
        );
        assert_eq!(index["basedOnKuma"], "2.14.3");
        assert_eq!(index["gui"], "/gui");
        assert_eq!(
            ok(api, "/").await["clusterId"],
            index["clusterId"],
            "a stable cluster id"
        );

        // Every type: name, scope (Global or Mesh), readOnly, path, display names,
        // includeInFederation and shortName; policies also their targetRef shape.
        let resources = ok(api, "/_resources").await;
        let all = resources["resources"].as_array().unwrap();
        let mut policies = 0;
        for r in all {
            typed(
                r,
                &[
                    ("name", T::Str),
                    ("scope", T::Str),
                    ("readOnly", T::Bool),
                    ("path", T::Str),
                    ("singularDisplayName", T::Str),
                    ("pluralDisplayName", T::Str),
                    ("includeInFederation", T::Bool),
                    ("shortName", T::Str),
                ],
            );
            assert!(
                ["Global", "Mesh"].contains(&r["scope"].as_str().unwrap()),
                "{r}"
            );
            if let Some(pol) = r.get("policy") {
                policies += 1;
                typed(
                    pol,
                    &[
                        ("isTargetRef", T::Bool),
                        ("hasToTargetRef", T::Bool),
                        ("hasFromTargetRef", T::Bool),
                        ("hasRulesTargetRef", T::Bool),
                        ("isFromAsRules", T::Bool),
                    ],
                );
            }
        }
        assert_eq!(policies, 16, "the sixteen targetRef policies: {resources}");

        let list = ok(api, "/policies").await;
        let list = list["policies"].as_array().unwrap();
        assert_eq!(list.len(), 16);
        for pol in list {
            typed(
                pol,
                &[("name", T::Str), ("path", T::Str), ("readOnly", T::Bool)],
            );
        }

        // kumaDp: per version, the Envoy it runs.
        let versions = ok(api, "/versions").await;
        let dp = versions["kumaDp"].as_object().unwrap();
        assert!(!dp.is_empty());
        assert!(dp.values().all(|v| v["envoy"].is_string()), "{versions}");

        assert!(ok(api, "/config").await.is_object());
    }
    // Policies written on global are read-only on the federated zone.
    let zone_types = ok(&p.zone.api, "/_resources").await;
    let mtp = zone_types["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MeshTrafficPermission")
        .unwrap();
    assert_eq!(mtp["path"], "meshtrafficpermissions");
    assert_eq!(mtp["scope"], "Mesh");
    p.stop().await;
}

// DataplaneOverview lists on both control planes: Kuma's fields, online and
// offline proxies, the tag/name/online/gateway filters, paging with `next`
// links that keep the filters, the legacy `+insights` paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataplane_overviews_filters_and_paging() {
    let p = setup().await;
    for api in [&p.global.api, &p.zone.api] {
        let all = ok(api, "/meshes/default/dataplanes/_overview").await;
        assert_eq!(all["total"], 3, "{all}");
        assert_eq!(names(&all), set(DATAPLANES));
        for item in page(&all) {
            meta(item);
            assert_eq!(item["type"], "DataplaneOverview");
            typed(
                item,
                &[
                    ("dataplane", T::Obj),
                    ("dataplaneInsight", T::Obj),
                    ("kri", T::Str),
                ],
            );
            assert!(
                item["dataplane"]["networking"]["inbound"].is_array(),
                "{item}"
            );
            assert!(
                item["dataplaneInsight"]["subscriptions"].is_array(),
                "{item}"
            );
        }
        let legacy = ok(api, "/meshes/default/dataplanes+insights").await;
        assert_eq!(names(&legacy), set(DATAPLANES));
        let everywhere = ok(api, "/dataplanes/_overview").await;
        assert_eq!(everywhere["total"], 3);

        let online = ok(api, "/meshes/default/dataplanes/_overview?online=true").await;
        assert_eq!(names(&online), set(&["backend-1", "web-1"]));
        for item in page(&online) {
            let subs = item["dataplaneInsight"]["subscriptions"]
                .as_array()
                .unwrap();
            assert!(!subs.is_empty(), "{item}");
            assert!(subs.last().unwrap()["connectTime"].is_string(), "{item}");
        }
        let offline = ok(api, "/meshes/default/dataplanes/_overview?online=false").await;
        assert_eq!(names(&offline), set(&["backend-2"]));

        let backend = ok(
            api,
            "/meshes/default/dataplanes/_overview?tag=kuma.io/service:backend",
        )
        .await;
        assert_eq!(names(&backend), set(&["backend-1", "backend-2"]));
        let v2 = ok(
            api,
            "/meshes/default/dataplanes/_overview?tag=kuma.io/service:backend&tag=version:v2",
        )
        .await;
        assert_eq!(names(&v2), set(&["backend-2"]));
        let any_version = ok(api, "/meshes/default/dataplanes/_overview?tag=version:*").await;
        assert_eq!(any_version["total"], 3);
        let by_name = ok(api, "/meshes/default/dataplanes/_overview?name=backend").await;
        assert_eq!(names(&by_name), set(&["backend-1", "backend-2"]));
        let gateways = ok(api, "/meshes/default/dataplanes/_overview?gateway=true").await;
        assert_eq!(gateways["total"], 0, "Weft has no gateways");

        // Paging one at a time through the backends: `next` keeps the filter, and
        // the last page has none.
        let mut path =
            "/meshes/default/dataplanes/_overview?tag=kuma.io/service:backend&size=1".to_string();
        let mut seen = BTreeSet::new();
        for i in 0..2 {
            let body = ok(api, &path).await;
            assert_eq!(body["total"], 2, "{body}");
            assert_eq!(page(&body).len(), 1);
            seen.extend(names(&body));
            if i == 0 {
                let next = &body["next"];
                assert!(
                    next.as_str()
                        .unwrap()
                        .contains("tag=kuma.io/service:backend"),
                    "{body}"
                );
                assert!(next.as_str().unwrap().contains("offset=1"), "{body}");
                path = path_of(next);
            } else {
                assert!(body["next"].is_null(), "the last page has no next: {body}");
            }
        }
        assert_eq!(seen, set(&["backend-1", "backend-2"]));

        let (s, body) = api
            .get("/meshes/default/dataplanes/_overview?colour=red")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(body["invalid_parameters"][0]["field"], "colour", "{body}");
        let (s, _) = api.get("/meshes/nowhere/dataplanes/_overview").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    // One overview by name; on the zone the live stream is one subscription.
    let one = ok(&p.zone.api, "/meshes/default/dataplanes/web-1/_overview").await;
    meta(&one);
    assert_eq!(one["name"], "web-1");
    let subs = one["dataplaneInsight"]["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "one stream, one subscription: {one}");
    assert!(subs[0]["disconnectTime"].is_null(), "{one}");
    let legacy = ok(&p.zone.api, "/meshes/default/dataplanes+insights/web-1").await;
    assert_eq!(legacy["name"], "web-1");
    p.stop().await;
}

// Global's zone overviews: the zone online with its KDS subscription, and what
// it reported (three dataplanes, two online; one ingress, one egress).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_overviews() {
    let p = setup().await;
    let g = &p.global.api;
    for path in ["/zones/_overview", "/zones+insights"] {
        let list = ok(g, path).await;
        assert_eq!(list["total"], 1, "{list}");
        let z = &page(&list)[0];
        typed(
            z,
            &[
                ("type", T::Str),
                ("name", T::Str),
                ("zone", T::Obj),
                ("zoneInsight", T::Obj),
            ],
        );
        assert_eq!(z["type"], "ZoneOverview");
        assert_eq!(z["name"], ZONE);
        assert_eq!(z["zone"]["enabled"], true);
        let subs = z["zoneInsight"]["subscriptions"].as_array().unwrap();
        assert!(!subs.is_empty(), "{z}");
        assert!(subs.last().unwrap()["connectTime"].is_string(), "{z}");
        assert_eq!(z["zoneInsight"]["online"], true, "{z}");
        let proxies = &z["proxies"];
        assert_eq!(proxies["dataplanes"]["total"], 3, "{z}");
        assert_eq!(proxies["dataplanes"]["online"], 2, "{z}");
        assert_eq!(proxies["dataplanes"]["byMesh"]["default"], 3, "{z}");
        assert_eq!(proxies["ingresses"].as_array().unwrap().len(), 1, "{z}");
        assert_eq!(proxies["ingresses"][0]["name"], "zi-1", "{z}");
        assert_eq!(proxies["egresses"].as_array().unwrap().len(), 1, "{z}");
    }
    for path in [
        format!("/zones/{ZONE}/_overview"),
        format!("/zones+insights/{ZONE}"),
    ] {
        let one = ok(g, &path).await;
        assert_eq!(one["name"], ZONE);
    }
    let (s, _) = g.get("/zones/nowhere/_overview").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    p.stop().await;
}

// Zone ingress and egress overviews (and the legacy paths) on both control
// planes: Kuma's overview types with the proxy and its insight, online.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_and_egress_overviews() {
    let p = setup().await;
    for api in [&p.global.api, &p.zone.api] {
        for (path, kind, spec, insight, proxy) in [
            (
                "/zoneingresses/_overview",
                "ZoneIngressOverview",
                "zoneIngress",
                "zoneIngressInsight",
                "zi-1",
            ),
            (
                "/zoneingresses+insights",
                "ZoneIngressOverview",
                "zoneIngress",
                "zoneIngressInsight",
                "zi-1",
            ),
            (
                "/zoneegresses/_overview",
                "ZoneEgressOverview",
                "zoneEgress",
                "zoneEgressInsight",
                "ze-1",
            ),
            (
                "/zoneegressoverviews",
                "ZoneEgressOverview",
                "zoneEgress",
                "zoneEgressInsight",
                "ze-1",
            ),
        ] {
            let list = ok(api, path).await;
            assert_eq!(list["total"], 1, "{path}: {list}");
            assert_eq!(names(&list), set(&[proxy]));
            let item = &page(&list)[0];
            typed(
                item,
                &[
                    ("type", T::Str),
                    ("name", T::Str),
                    ("labels", T::Obj),
                    (spec, T::Obj),
                    (insight, T::Obj),
                ],
            );
            assert_eq!(item["type"], kind);
            assert!(item[spec]["networking"]["address"].is_string(), "{item}");
            assert!(item[insight]["subscriptions"].is_array(), "{item}");
            assert_eq!(item[insight]["online"], true, "{path}: {item}");
            // And the one item by its name (global's stored name).
            let name = item["name"].as_str().unwrap();
            let base = path.trim_end_matches("/_overview");
            let one = if base == path {
                ok(api, &format!("{path}/{name}")).await
            } else {
                ok(api, &format!("{base}/{name}/_overview")).await
            };
            assert_eq!(one["type"], kind);
            assert_eq!(one["name"], name);
        }
    }
    p.stop().await;
}

// GET /global-insight and /mesh-insights count what was set up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_and_mesh_insights() {
    let p = setup().await;
    let g = &p.global.api;
    let gi = ok(g, "/global-insight").await;
    required(
        &gi,
        &[
            "createdAt",
            "services",
            "zones",
            "dataplanes",
            "policies",
            "meshes",
            "resources",
        ],
    );
    typed(&gi, &[("createdAt", T::Str)]);
    // FullStatus: online, offline, partiallyDegraded, total.
    let full = |v: &Value| {
        typed(
            v,
            &[
                ("online", T::Int),
                ("offline", T::Int),
                ("partiallyDegraded", T::Int),
                ("total", T::Int),
            ],
        )
    };
    let dps = &gi["dataplanes"];
    for k in ["standard", "gatewayBuiltin", "gatewayDelegated"] {
        full(&dps[k]);
    }
    assert_eq!(
        (
            dps["standard"]["online"].as_u64(),
            dps["standard"]["offline"].as_u64()
        ),
        (Some(2), Some(1)),
        "{gi}"
    );
    assert_eq!(dps["standard"]["total"], 3);
    let services = &gi["services"];
    required(
        services,
        &[
            "total",
            "internal",
            "external",
            "gatewayBuiltin",
            "gatewayDelegated",
        ],
    );
    full(&services["internal"]);
    // web (its one instance online) and backend (one of two online).
    assert_eq!(services["internal"]["online"], 1, "{gi}");
    assert_eq!(services["internal"]["partiallyDegraded"], 1, "{gi}");
    assert_eq!(
        services["external"]["total"], 1,
        "the MeshExternalService: {gi}"
    );
    let zones = &gi["zones"];
    for k in ["controlPlanes", "zoneIngresses", "zoneEgresses"] {
        typed(&zones[k], &[("online", T::Int), ("total", T::Int)]);
        assert_eq!(
            (zones[k]["online"].as_u64(), zones[k]["total"].as_u64()),
            (Some(1), Some(1)),
            "{k}: {gi}"
        );
    }
    assert_eq!(gi["meshes"]["total"], 2);
    assert!(
        gi["policies"]["total"].as_u64().unwrap() >= POLICIES.len() as u64,
        "{gi}"
    );
    let resources = gi["resources"].as_object().unwrap();
    assert!(resources.values().all(|r| r["total"].is_u64()), "{gi}");
    assert_eq!(resources["MeshTrafficPermission"]["total"], 1, "{gi}");
    assert_eq!(resources["Dataplane"]["total"], 3, "{gi}");

    let list = ok(g, "/mesh-insights").await;
    assert_eq!(list["total"], 2);
    let default = page(&list)
        .iter()
        .find(|m| m["name"] == "default")
        .unwrap()
        .clone();
    assert_eq!(default["type"], "MeshInsight");
    full(&default["dataplanes"]);
    assert_eq!(
        (
            default["dataplanes"]["online"].as_u64(),
            default["dataplanes"]["offline"].as_u64()
        ),
        (Some(2), Some(1)),
        "{default}"
    );
    assert_eq!(
        default["policies"]["MeshTrafficPermission"]["total"], 1,
        "{default}"
    );
    assert_eq!(default["services"]["internal"], 2, "{default}");
    assert_eq!(default["services"]["external"], 1, "{default}");
    let one = ok(g, "/mesh-insights/other").await;
    assert_eq!(one["dataplanes"]["total"], 0, "{one}");
    let paged = ok(g, "/mesh-insights?size=1").await;
    assert_eq!(page(&paged).len(), 1);
    assert!(
        paged["next"].as_str().unwrap().contains("offset=1"),
        "{paged}"
    );
    p.stop().await;
}

// `{policy}/{name}/_resources/dataplanes`: Kuma's Meta of exactly the proxies a
// policy's top-level targetRef selects, paged, on both control planes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_resources_dataplanes() {
    let p = setup().await;
    for api in [&p.global.api, &p.zone.api] {
        let mtp = ok(
            api,
            "/meshes/default/meshtrafficpermissions/allow-backend/_resources/dataplanes",
        )
        .await;
        required(&mtp, &["total", "items"]);
        for item in page(&mtp) {
            meta(item);
            assert_eq!(item["type"], "Dataplane");
            assert_eq!(item["mesh"], "default");
        }
        assert_eq!(
            names(&mtp),
            set(&["backend-1", "backend-2"]),
            "MeshSubset kuma.io/service: backend"
        );
        let everyone = ok(
            api,
            "/meshes/default/meshtimeouts/timeouts/_resources/dataplanes",
        )
        .await;
        assert_eq!(names(&everyone), set(DATAPLANES), "targetRef Mesh");
        let first = ok(
            api,
            "/meshes/default/meshtimeouts/timeouts/_resources/dataplanes?size=2",
        )
        .await;
        assert_eq!(first["total"], 3);
        assert_eq!(page(&first).len(), 2);
        let rest = ok(api, &path_of(&first["next"])).await;
        assert_eq!(page(&rest).len(), 1);
        assert!(rest["next"].is_null());
        let (s, _) = api
            .get("/meshes/default/meshtimeouts/nothing/_resources/dataplanes")
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    // A MeshService's proxies: those its selector picks.
    let svc = ok(
        &p.zone.api,
        "/meshes/default/meshservices/backend/_dataplanes",
    )
    .await;
    required(&svc, &["total", "items"]);
    page(&svc).iter().for_each(meta);
    assert_eq!(names(&svc), set(&["backend-1", "backend-2"]), "{svc}");
    let (s, _) = p
        .zone
        .api
        .get("/meshes/default/meshservices/nothing/_dataplanes")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    p.stop().await;
}

// A resource by its KRI answers as its GET does: a global policy on both
// control planes, and the zone's MeshService on the zone and on global (where
// it is stored under another name); bad or unknown KRIs are refused clearly.
// `who-am-i` names the one identity, the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kri_lookup_and_who_am_i() {
    let p = setup().await;
    let service_kri = format!("kri_msvc_default_{ZONE}__backend_");
    for api in [&p.global.api, &p.zone.api] {
        let timeout = ok(api, "/_kri/kri_mt_default___timeouts_").await;
        assert_eq!(timeout["type"], "MeshTimeout");
        assert_eq!(timeout["kri"], "kri_mt_default___timeouts_");
        let svc = ok(api, &format!("/_kri/{service_kri}")).await;
        assert_eq!(svc["type"], "MeshService", "{svc}");
        assert_eq!(svc["kri"], service_kri.as_str(), "{svc}");
        let (s, body) = api.get("/_kri/not-a-kri").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        let (s, body) = api.get("/_kri/kri_mt_default___nothing_").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        let me = ok(api, "/who-am-i").await;
        assert_eq!(me["name"], "mesh-system:admin");
        assert!(me["groups"].is_array());
    }
    p.stop().await;
}

// The zone's Kuma 2.14 inspect endpoints: proxy-wide `_policies`, one
// inbound's and one outbound's policies, each with the KRIs of its origins;
// `_config` of a proxy whose mesh has mTLS (RBAC filters) renders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_inspect_policies() {
    let p = setup().await;
    let z = &p.zone.api;
    let conf = |v: &Value| {
        typed(v, &[("kind", T::Str), ("origins", T::Arr)]);
        for o in v["origins"].as_array().unwrap() {
            assert!(o["kri"].as_str().unwrap().starts_with("kri_"), "{v}");
        }
    };
    let proxy = ok(z, "/meshes/default/dataplanes/backend-1/_policies").await;
    let kinds: BTreeSet<String> = proxy["policies"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|v| {
            conf(v);
            assert!(v["conf"].is_object(), "{v}");
        })
        .map(|v| v["kind"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "MeshTrace",
        "MeshMetric",
        "MeshPassthrough",
        "MeshProxyPatch",
    ] {
        assert!(kinds.contains(k), "{k} applies proxy-wide: {proxy}");
    }

    let inbound = format!(
        "/meshes/default/dataplanes/backend-1/_inbounds/kri_dp_default_{ZONE}__backend-1_8081/_policies"
    );
    let inbound = ok(z, &inbound).await;
    let mtp = inbound["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "MeshTrafficPermission")
        .unwrap_or_else(|| panic!("allow-backend selects backend-1: {inbound}"))
        .clone();
    conf(&mtp);
    assert!(
        mtp["rules"].as_array().is_some_and(|r| !r.is_empty()),
        "{mtp}"
    );
    assert!(mtp["rules"][0]["conf"].is_object(), "{mtp}");
    assert!(
        mtp["origins"].to_string().contains("allow-backend"),
        "{mtp}"
    );
    // web-1 is not a backend: no MeshTrafficPermission on its inbound.
    let web_in = ok(
        z,
        "/meshes/default/dataplanes/web-1/_inbounds/8080/_policies",
    )
    .await;
    assert!(
        !web_in["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["kind"] == "MeshTrafficPermission"),
        "{web_in}"
    );

    let out = format!(
        "/meshes/default/dataplanes/web-1/_outbounds/kri_msvc_default_{ZONE}__backend_10001/_policies"
    );
    let out = ok(z, &out).await;
    let timeout = out["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "MeshTimeout")
        .unwrap_or_else(|| panic!("a MeshTimeout applies to backend: {out}"))
        .clone();
    conf(&timeout);
    // Merged with the mesh's default MeshTimeout: both are origins; where both
    // set a value the default's wins (same targetRef, and its name sorts first).
    let origins = timeout["origins"].to_string();
    assert!(origins.contains("kri_mt_default___timeouts_"), "{timeout}");
    assert!(origins.contains("mesh-timeout-all-default"), "{timeout}");
    assert_eq!(
        timeout["conf"]["http"]["maxStreamDuration"], "10m",
        "{timeout}"
    );
    assert_eq!(
        timeout["conf"]["http"]["requestTimeout"], "15s",
        "{timeout}"
    );

    let (s, body) = z
        .get("/meshes/default/dataplanes/backend-1/_inbounds/9999/_policies")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    let config = ok(z, "/meshes/default/dataplanes/backend-1/_config").await;
    assert!(
        config["resources"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{config}"
    );
    p.stop().await;
}

// Kuma 2.14 routes Weft does not serve answer 404 (or 405: another method, or
// the other control plane) in the std-errors shape, naming the Kuma route and
// pointing to docs/api.md#kuma-routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuma_routes_weft_does_not_serve_answer_clearly() {
    let global = weft_testbed::inprocess::global().await;
    let zone = weft_testbed::inprocess::zone(Some("z1")).await;
    let check = |body: &Value, status: u16, says: &str| {
        assert_eq!(body["type"], "/std-errors", "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert!(body["title"].is_string(), "{body}");
        assert_eq!(body["details"], body["detail"], "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("docs/api.md#kuma-routes"), "{detail}");
        assert!(detail.contains(says), "{detail:?} should say {says:?}");
    };
    for api in [&global.api, &zone.api] {
        for (path, says) in [
            ("/meshes/default/meshgateways", "MeshGateway"),
            ("/meshes/default/meshgateways/gw-1", "MeshGateway"),
            ("/meshes/default/traffic-routes", "TrafficRoute"),
            (
                "/meshes/default/traffic-routes/route-all-default",
                "TrafficRoute",
            ),
            ("/hostnamegenerators", "HostnameGenerator"),
            ("/meshes/default/service-insights", "ServiceInsight"),
            (
                "/meshes/default/dataplanes/x/_layout",
                "/meshes/{mesh}/dataplanes/{name}/_layout",
            ),
            ("/meshes/default/meshservices/x/_hostnames", "_hostnames"),
            (
                "/meshes/default/meshservices/x/_resources/dataplanes",
                "MeshService",
            ),
            (
                "/meshes/default/meshtimeouts/t/dataplanes",
                "_resources/dataplanes",
            ),
            (
                "/meshes/default/dataplanes/x/_outbounds/k/_routes",
                "_routes",
            ),
        ] {
            let (s, body) = api.get(path).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "GET {path}: {body}");
            check(&body, 404, says);
        }
        // A path Weft serves read-only: PUT is 405, with the Allow header.
        let r = api
            .request(Method::PUT, "/global-insight")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
        check(
            &r.json().await.unwrap(),
            405,
            "PUT is not supported on /global-insight",
        );
        // Neither Weft's nor Kuma's: the plain 404.
        let (s, body) = api.get("/no/such/thing/here/either").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("no such endpoint"),
            "{body}"
        );
    }
    // Served by Weft's zones only: 405 on global, naming the zone.
    let r = global
        .api
        .request(Method::POST, "/tokens/dataplane")
        .json(&serde_json::json!({"name": "x", "mesh": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    check(&r.json().await.unwrap(), 405, "zone");
    // Kuma's path of ExternalService is served.
    let (s, body) = global.api.get("/meshes/default/external-services").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    global.stop().await;
    zone.stop().await;
}

// Envoy admin through the control planes (Kuma's `{dataplane}/{type}` routes):
// without a weft-dp relay behind the test proxies, an answer in the
// std-errors shape naming the proxy (503), a 404 for an unknown proxy, and a
// 400 for a query parameter the route does not take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_admin_routes_answer_in_std_errors() {
    let p = setup().await;
    let z = &p.zone.api;
    for kind in ["xds", "stats", "clusters"] {
        let (s, body) = z
            .get(&format!("/meshes/default/dataplanes/web-1/{kind}"))
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{kind}: {body}");
        assert_eq!(body["type"], "/std-errors", "{body}");
        assert!(body["detail"].as_str().unwrap().contains("web-1"), "{body}");
    }
    let (s, body) = z.get("/meshes/default/dataplanes/nobody/xds").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["type"], "/std-errors", "{body}");
    let (s, body) = z.get("/zoneingresses/zi-1/xds?colour=red").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].to_string().contains("colour")
            || body["invalid_parameters"].to_string().contains("colour"),
        "{body}"
    );
    p.stop().await;
}
