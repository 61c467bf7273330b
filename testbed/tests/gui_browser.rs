//! The web GUI in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, see scripts/setup.sh) driven over W3C WebDriver, against
//! real `weft-global` and `weft-zone` processes joined over KDS, with a real
//! proxy (`weft-dp` + Envoy) connected to the zone in a mesh with builtin mTLS.
//! Log in (a wrong token is refused), then the home counts, the zones (online,
//! version, per-type KDS stat), the online dataplane (status, certificate
//! expiry, the zone that serves its policies), a policy and the dataplanes it
//! affects, the mesh's issued certificates, the zone toggle, each checked
//! against what the REST API answers; the token never appears in a URL. Then
//! the zone's GUI (the proxy's `_policies`, `_rules`, `_config`, the CA state)
//! and a scale check: 1,000 more Dataplanes, the dataplanes view pages them
//! one server-side page (`size` ≤ 100) at a time. A screenshot of each view
//! goes to `<target>/gui-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use weft_testbed::browser::Browser;
use weft_testbed::mesh::{AppSpec, MeshHarness};
use weft_testbed::wait::{eventually, until};
use weft_testbed::{Client, ControlPlane};

const VIEW_WAIT: Duration = Duration::from_secs(30);
const SYNC_WAIT: Duration = Duration::from_secs(30);
const DP: &str = "web-1";
const POLICY: &str = "gui-timeout";

const MESH: &str = "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n      mode: PERMISSIVE\n";
/// Dataplanes written for the scale check (the proxy makes one more).
const MANY: usize = 1000;
const TIMEOUT: &str = "type: MeshTimeout\nname: gui-timeout\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 42s\n";

fn shots_dir() -> PathBuf {
    let bins = weft_testbed::process::bin_dir().expect("the workspace's binaries");
    bins.parent()
        .expect("the target dir")
        .join("gui-screenshots")
}

async fn shot(b: &Browser, name: &str) {
    let path = shots_dir().join(format!("{name}.png"));
    b.screenshot(&path).await.expect("a screenshot");
    println!("screenshot: {}", path.display());
}

/// Waits until the view `view` has loaded (`data-state="ready"`); an error
/// state fails the test with what the page shows and the browser console.
async fn wait_view(b: &Browser, view: &str) {
    let css = format!("section[data-view=\"{view}\"]");
    let state = eventually(VIEW_WAIT, &format!("the {view} view loads"), || {
        let css = format!("{css}[data-state=\"ready\"], {css}[data-state=\"error\"]");
        async move {
            let found = b
                .execute(
                    "const e = document.querySelector(arguments[0]); return e ? e.dataset.state : null;",
                    vec![json!(css)],
                )
                .await
                .ok()?;
            found.as_str().map(str::to_string)
        }
    })
    .await;
    if state != "ready" {
        let text = b.text(&css).await.unwrap_or_default();
        panic!(
            "the {view} view failed: {text:?}\nconsole: {:?}",
            b.console().await
        );
    }
}

/// The text of `css`, once the element exists.
async fn text_of(b: &Browser, css: &str) -> String {
    eventually(VIEW_WAIT, &format!("{css} is shown"), || async move {
        b.text(css).await.ok().flatten()
    })
    .await
}

/// Every URL the page has had or fetched: its location and each resource.
async fn urls(b: &Browser) -> Vec<String> {
    let v = b
        .execute(
            "return [window.location.href, document.URL, \
             ...performance.getEntriesByType('resource').map(e => e.name), \
             ...performance.getEntriesByType('navigation').map(e => e.name)];",
            vec![],
        )
        .await
        .unwrap();
    let mut all: Vec<String> = serde_json::from_value(v).unwrap();
    all.push(b.url().await.unwrap());
    all
}

async fn assert_token_not_in_urls(b: &Browser, token: &str, seen: &mut Vec<String>) {
    let now = urls(b).await;
    for u in &now {
        assert!(!u.contains(token), "the token is in a URL: {u}");
    }
    seen.extend(now);
}

/// The newest subscription of a Kuma insight (ZoneInsight, DataplaneInsight).
fn last_subscription(insight: &Value) -> &Value {
    insight["subscriptions"]
        .as_array()
        .and_then(|s| s.last())
        .unwrap_or(&Value::Null)
}

/// Online as Kuma says it: enabled, and the newest KDS subscription open.
fn zone_online(item: &Value) -> bool {
    let last = last_subscription(&item["zoneInsight"]);
    item["zone"]["enabled"] != json!(false)
        && !last["connectTime"].is_null()
        && last["disconnectTime"].is_null()
}

/// A DataplaneInsight is online: `connected` on a zone, else its newest
/// subscription is open.
fn dataplane_online(insight: &Value) -> bool {
    if let Some(b) = insight["connected"].as_bool() {
        return b;
    }
    let last = last_subscription(insight);
    !last["connectTime"].is_null() && last["disconnectTime"].is_null()
}

/// A time as the GUI shows it (the browser's `toLocaleString`).
async fn local_time(b: &Browser, t: &str) -> String {
    b.execute(
        "return new Date(arguments[0]).toLocaleString();",
        vec![json!(t)],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap()
    .to_string()
}

/// The URLs the page fetched (resource timings) since the last clear.
async fn fetched(b: &Browser) -> Vec<String> {
    let v = b
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

async fn clear_fetched(b: &Browser) {
    b.execute(
        "performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings(); return null;",
        vec![],
    )
    .await
    .unwrap();
}

/// The value of query parameter `key` in `url`.
fn param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// Clicks `css` once it is there (a view may still be rendering).
async fn click(b: &Browser, css: &str) {
    eventually(VIEW_WAIT, &format!("{css} can be clicked"), || async move {
        b.click(css).await.ok()
    })
    .await;
}

async fn login(b: &Browser, token: &str) {
    b.type_into("#token", token).await.unwrap();
    click(b, "#login-submit").await;
    wait_view(b, "home").await;
}

/// The Dataplane JSON of the scale check's `n`th instance.
fn bulk_dataplane(n: usize) -> String {
    json!({
        "type": "Dataplane", "mesh": "default", "name": format!("bulk-{n:04}"),
        "networking": {"address": "127.0.9.1", "inbound": [
            {"port": 20000 + n, "servicePort": 8080, "tags": {"kuma.io/service": "bulk"}}]},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gui_in_a_real_browser_on_global_and_zone() {
    let started = std::time::Instant::now();
    // The browser first: without it the test fails at once, saying how to install it.
    let b = Browser::start()
        .await
        .unwrap_or_else(|e| panic!("no browser for the GUI test: {e}"));

    let (global, zone) = tokio::task::spawn_blocking(|| {
        let global = ControlPlane::global(&[]).unwrap();
        let zone = ControlPlane::federated_zone(&global, "east", &[]).unwrap();
        (global, zone)
    })
    .await
    .unwrap();
    let (g, z) = (
        Client::new(global.api_url(), global.token()),
        Client::new(zone.api_url(), zone.token()),
    );
    for (path, doc) in [
        ("/meshes/default".to_string(), MESH),
        (format!("/meshes/default/meshtimeouts/{POLICY}"), TIMEOUT),
    ] {
        let (s, body) = g.put(&path, doc).await;
        assert!(s.is_success(), "{path}: {s} {body}");
    }
    until(
        SYNC_WAIT,
        "the zone holds global's policy and CA",
        || async {
            z.get(&format!("/meshes/default/meshtimeouts/{POLICY}"))
                .await
                .0
                == StatusCode::OK
                && z.get("/meshes/default/secrets/default.ca-builtin-cert-ca-1")
                    .await
                    .0
                    == StatusCode::OK
        },
    )
    .await;

    // A real proxy: weft-dp and Envoy, admitted with a dataplane token, online.
    let mut mesh = MeshHarness::on_zone(zone, Some("east")).unwrap();
    mesh.start_app(AppSpec::http("web", DP)).await.unwrap();

    // Global learns of it over KDS: stored under a hashed name, online, with
    // its certificate.
    let (stored, global_dp) = eventually(
        SYNC_WAIT,
        "global shows the proxy online with its certificate",
        || async {
            let (_, list) = g
                .get(&format!("/meshes/default/dataplanes/_overview?name={DP}"))
                .await;
            let item = list["items"].get(0)?.clone();
            let insight = &item["dataplaneInsight"];
            (dataplane_online(insight) && insight["mTLS"]["certificateExpirationTime"].is_string())
                .then(|| (item["name"].as_str().unwrap().to_string(), item))
        },
    )
    .await;
    until(SYNC_WAIT, "global shows the zone online", || async {
        let (_, o) = g.get("/zones/_overview").await;
        o["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(zone_online))
    })
    .await;

    let gtoken = global.token();
    let mut seen = Vec::new();

    // Login: the page says where the token is; a wrong token is refused.
    b.goto(&format!("{}/gui", global.api_url())).await.unwrap();
    wait_view(&b, "login").await;
    let page = text_of(&b, "#login").await;
    assert!(page.contains("admin.token"), "{page}");
    shot(&b, "login").await;
    b.type_into("#token", "not-the-admin-token").await.unwrap();
    click(&b, "#login-submit").await;
    let refused = text_of(&b, "#login-error .error").await;
    assert!(refused.contains("refused"), "{refused}");
    let kept = b
        .execute("return sessionStorage.getItem('weft.adminToken');", vec![])
        .await
        .unwrap();
    assert_eq!(kept, Value::Null, "a refused token is not kept");
    assert_eq!(b.text("section[data-view=\"home\"]").await.unwrap(), None);
    shot(&b, "login-refused").await;

    // Home: the counts of GET /global-insight.
    login(&b, &gtoken).await;
    assert_eq!(text_of(&b, "dd[data-field=\"mode\"]").await, "global");
    let (_, gi) = g.get("/global-insight").await;
    let card = text_of(&b, "[data-count=\"Dataplanes\"]").await;
    let want = format!(
        "{}\nDataplanes\n{} online",
        gi["dataplanes"]["standard"]["total"], gi["dataplanes"]["standard"]["online"]
    );
    assert_eq!(card, want);
    assert_eq!(gi["dataplanes"]["standard"]["online"], 1, "{gi}");
    let card = text_of(&b, "[data-count=\"Zones\"]").await;
    assert!(card.ends_with("1 online"), "{card}");
    shot(&b, "home-global").await;
    assert_token_not_in_urls(&b, &gtoken, &mut seen).await;

    // Zones: online with its version and per-type stat, as GET /zones/_overview.
    click(&b, "a[data-nav=\"zones\"]").await;
    wait_view(&b, "zones").await;
    let (_, overview) = g.get("/zones/_overview").await;
    let east = overview["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "east")
        .expect("east in the overview")
        .clone();
    assert!(zone_online(&east), "{east}");
    let version = last_subscription(&east["zoneInsight"])["version"]["kumaCp"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!version.is_empty(), "{east}");
    let row = "tr[data-zone=\"east\"]";
    assert_eq!(
        text_of(&b, &format!("{row} td[data-field=\"name\"]")).await,
        "east"
    );
    assert_eq!(
        text_of(&b, &format!("{row} td[data-field=\"status\"]")).await,
        "online"
    );
    assert_eq!(
        text_of(&b, &format!("{row} td[data-field=\"version\"]")).await,
        version
    );
    shot(&b, "zones").await;
    click(&b, &format!("{row} td[data-field=\"name\"] a")).await;
    wait_view(&b, "zones").await;
    assert_eq!(text_of(&b, "dd[data-field=\"name\"]").await, "east");
    assert_eq!(text_of(&b, "dd[data-field=\"status\"]").await, "online");
    assert_eq!(text_of(&b, "dd[data-field=\"version\"]").await, version);
    let (_, one) = g.get("/zones/east/_overview").await;
    let stat = last_subscription(&one["zoneInsight"])["status"]["stat"]
        .as_object()
        .unwrap()
        .clone();
    assert!(stat.contains_key("MeshTimeout"), "{one}");
    for (ty, _) in &stat {
        let shown = text_of(&b, &format!("tr[data-type=\"{ty}\"]")).await;
        assert!(shown.starts_with(ty.as_str()), "{shown}");
    }
    assert!(text_of(&b, "tr.subscription").await.contains(&version));
    shot(&b, "zone-east").await;

    // The dataplanes list: the proxy online, its certificate expiry.
    let expiry = local_time(
        &b,
        global_dp["dataplaneInsight"]["mTLS"]["certificateExpirationTime"]
            .as_str()
            .unwrap(),
    )
    .await;
    click(&b, "a[data-nav=\"dataplanes\"]").await;
    wait_view(&b, "dataplanes").await;
    let (_, all) = g.get("/meshes/default/dataplanes/_overview?size=1").await;
    let range = text_of(&b, "[data-field=\"range\"]").await;
    assert!(range.ends_with(&format!("of {}", all["total"])), "{range}");
    let row = format!("tr[data-dataplane=\"{stored}\"]");
    assert_eq!(
        text_of(&b, &format!("{row} td[data-field=\"status\"]")).await,
        "online"
    );
    assert_eq!(
        text_of(&b, &format!("{row} td[data-field=\"certExpiry\"]")).await,
        expiry
    );
    shot(&b, "dataplanes").await;

    // One dataplane on global: its zone's name, online, certificate; its
    // policies are the zone's to compute.
    click(&b, &format!("{row} td[data-field=\"name\"] a")).await;
    wait_view(&b, "dataplanes").await;
    assert_eq!(
        text_of(&b, "section[data-state=\"ready\"] dd[data-field=\"name\"]").await,
        DP
    );
    assert_eq!(text_of(&b, "dd[data-field=\"mesh\"]").await, "default");
    assert_eq!(text_of(&b, "dd[data-field=\"zone\"]").await, "east");
    assert!(
        text_of(&b, "dd[data-field=\"status\"]")
            .await
            .starts_with("online")
    );
    assert_eq!(text_of(&b, "dd[data-field=\"certExpiry\"]").await, expiry);
    assert_eq!(
        text_of(&b, "dd[data-field=\"issuedBackend\"]").await,
        "ca-1"
    );
    assert_eq!(text_of(&b, "[data-field=\"served-by\"]").await, "east");
    // Envoy's own stats, fetched by global from the zone over KDS.
    click(&b, "#envoy-stats summary").await;
    let stats = eventually(VIEW_WAIT, "the proxy's Envoy stats", || async {
        b.text("#envoy-stats")
            .await
            .ok()
            .flatten()
            .filter(|t| !t.contains("Loading"))
    })
    .await;
    assert!(stats.contains("server.live: 1"), "{stats}");
    shot(&b, "dataplane-global").await;
    assert_token_not_in_urls(&b, &gtoken, &mut seen).await;

    // A policy: its name and spec, and the dataplanes it affects.
    click(&b, "a[data-nav=\"policies\"]").await;
    wait_view(&b, "policies").await;
    click(&b, "tr[data-type=\"meshtimeouts\"] a").await;
    wait_view(&b, "policies").await;
    click(&b, &format!("tr[data-policy=\"{POLICY}\"] a")).await;
    wait_view(&b, "policies").await;
    assert_eq!(
        text_of(&b, "section[data-state=\"ready\"] dd[data-field=\"name\"]").await,
        POLICY
    );
    let (_, policy) = g
        .get(&format!("/meshes/default/meshtimeouts/{POLICY}"))
        .await;
    let spec: Value = serde_json::from_str(&text_of(&b, "#policy-spec").await).unwrap();
    assert_eq!(spec, policy["spec"]);
    until(VIEW_WAIT, "the affected dataplanes are listed", || async {
        b.execute(
            "return document.getElementById('affected')?.dataset.state;",
            vec![],
        )
        .await
        .is_ok_and(|v| v == "listed")
    })
    .await;
    let (s, affected) = g
        .get(&format!(
            "/meshes/default/meshtimeouts/{POLICY}/_resources/dataplanes"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{affected}");
    assert_eq!(affected["total"], 1, "{affected}");
    assert_eq!(affected["items"][0]["name"], stored.as_str());
    assert_eq!(
        text_of(&b, "[data-field=\"affected-total\"]").await,
        "1 dataplanes."
    );
    assert_eq!(text_of(&b, "td[data-field=\"affected-name\"]").await, DP);
    shot(&b, "policy").await;
    click(&b, "#as-yaml").await;
    let yaml = eventually(VIEW_WAIT, "the policy as YAML", || async {
        b.text("#policy-spec")
            .await
            .ok()
            .flatten()
            .filter(|t| t.contains("type: MeshTimeout"))
    })
    .await;
    assert!(yaml.contains("idleTimeout: 42s"), "{yaml}");
    assert_token_not_in_urls(&b, &gtoken, &mut seen).await;

    // Services: the proxy counted online under its kuma.io/service.
    click(&b, "a[data-nav=\"services\"]").await;
    wait_view(&b, "services").await;
    let web = text_of(&b, "tr[data-service=\"web\"]").await;
    assert!(web.starts_with("web\t1\t1\t0\teast"), "{web:?}");
    shot(&b, "services").await;

    // The mesh on global: mTLS on, and which backend issued the proxies'
    // certificates (GET /mesh-insights/default).
    click(&b, "a[data-nav=\"meshes\"]").await;
    wait_view(&b, "meshes").await;
    click(&b, "td[data-field=\"name\"] a").await;
    wait_view(&b, "meshes").await;
    assert_eq!(
        text_of(&b, "dd[data-field=\"mtls\"]").await,
        "on, backend ca-1"
    );
    let (_, mi) = g.get("/mesh-insights/default").await;
    let issued = &mi["mTLS"]["issuedBackends"]["ca-1"];
    assert_eq!(issued["online"], 1, "{mi}");
    assert_eq!(
        text_of(&b, "tr[data-backend=\"ca-1\"]").await,
        format!(
            "ca-1\t{}\t{}\t{}",
            issued["total"], issued["online"], issued["offline"]
        )
    );
    shot(&b, "mesh-global").await;

    // An API error is shown with its detail.
    b.goto(&format!(
        "{}/gui#/meshes/default/policies/meshtimeouts/nope",
        global.api_url()
    ))
    .await
    .unwrap();
    let err = text_of(&b, "section[data-state=\"error\"] .error").await;
    assert!(err.starts_with("404"), "{err}");
    assert!(err.contains("nope"), "{err}");

    // Disabling the zone: asked first (cancel changes nothing), then the
    // Zone is written with enabled: false and global drops the zone; enabled
    // again, it is accepted again.
    b.goto(&format!("{}/gui#/zones/east", global.api_url()))
        .await
        .unwrap();
    wait_view(&b, "zones").await;
    click(&b, "#zone-toggle").await;
    let ask = text_of(&b, "#zone-confirm").await;
    assert!(ask.contains("Disable zone east?"), "{ask}");
    click(&b, "#zone-confirm-no").await;
    text_of(&b, "#zone-toggle").await;
    assert_ne!(g.get("/zones/east").await.1["enabled"], false);
    click(&b, "#zone-toggle").await;
    click(&b, "#zone-confirm-yes").await;
    let shown = eventually(VIEW_WAIT, "the zone shown disabled", || async {
        b.text("section[data-state=\"ready\"] dd[data-field=\"enabled\"]")
            .await
            .ok()
            .flatten()
            .filter(|t| t.starts_with("no"))
    })
    .await;
    assert!(shown.contains("refuses"), "{shown}");
    assert_eq!(g.get("/zones/east").await.1["enabled"], false);
    until(SYNC_WAIT, "global drops the disabled zone", || async {
        let (_, o) = g.get("/zones/east/_overview").await;
        !last_subscription(&o["zoneInsight"])["disconnectTime"].is_null()
    })
    .await;
    assert_eq!(text_of(&b, "dd[data-field=\"status\"]").await, "offline");
    shot(&b, "zone-disabled").await;
    click(&b, "#zone-toggle").await;
    click(&b, "#zone-confirm-yes").await;
    eventually(VIEW_WAIT, "the zone shown enabled", || async {
        b.text("section[data-state=\"ready\"] dd[data-field=\"enabled\"]")
            .await
            .ok()
            .flatten()
            .filter(|t| t == "yes")
    })
    .await;
    assert_eq!(g.get("/zones/east").await.1["enabled"], true);

    // Logging out forgets the token.
    click(&b, "#logout").await;
    wait_view(&b, "login").await;
    let kept = b
        .execute("return sessionStorage.getItem('weft.adminToken');", vec![])
        .await
        .unwrap();
    assert_eq!(kept, Value::Null);
    assert_token_not_in_urls(&b, &gtoken, &mut seen).await;
    assert!(seen.len() > 10, "few URLs seen: {seen:?}");

    // The zone's GUI: no Zones view; the proxy with the policies the zone
    // computes for it (_policies, _rules) and its generated config.
    let z = mesh.api();
    let ztoken = z.token().to_string();
    let zurl = mesh.zone.api_url();
    b.goto(&format!("{zurl}/gui")).await.unwrap();
    wait_view(&b, "login").await;
    login(&b, &ztoken).await;
    assert_eq!(text_of(&b, "dd[data-field=\"mode\"]").await, "zone");
    assert_eq!(text_of(&b, "dd[data-field=\"zone\"]").await, "east");
    let zones_hidden = b
        .execute(
            "return document.querySelector('a[data-nav=\"zones\"]').hidden;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(zones_hidden, json!(true));
    shot(&b, "home-zone").await;
    b.goto(&format!("{zurl}/gui#/meshes/default/dataplanes/{DP}"))
        .await
        .unwrap();
    wait_view(&b, "dataplanes").await;
    assert_eq!(
        text_of(&b, "section[data-state=\"ready\"] dd[data-field=\"name\"]").await,
        DP
    );
    let (_, ov) = z
        .get(&format!("/meshes/default/dataplanes/{DP}/_overview"))
        .await;
    assert_eq!(ov["dataplaneInsight"]["connected"], true, "{ov}");
    assert!(
        text_of(&b, "dd[data-field=\"status\"]")
            .await
            .starts_with("online")
    );
    let zone_expiry = local_time(
        &b,
        ov["dataplaneInsight"]["mTLS"]["certificateExpirationTime"]
            .as_str()
            .unwrap(),
    )
    .await;
    assert_eq!(
        text_of(&b, "dd[data-field=\"certExpiry\"]").await,
        zone_expiry
    );
    let (_, rules) = z
        .get(&format!("/meshes/default/dataplanes/{DP}/_rules"))
        .await;
    let matched = rules["rules"].as_array().unwrap().iter().any(|t| {
        t["matched"]
            .as_array()
            .is_some_and(|m| m.iter().any(|n| n == POLICY))
    });
    assert!(matched, "the zone's _rules should match {POLICY}: {rules}");
    let policies = text_of(&b, "#matched-policies").await;
    assert!(policies.contains(POLICY), "{policies}");
    let (_, proxy_wide) = z
        .get(&format!("/meshes/default/dataplanes/{DP}/_policies"))
        .await;
    for p in proxy_wide["policies"].as_array().unwrap() {
        let kind = p["kind"].as_str().unwrap();
        text_of(&b, &format!("tr[data-kind=\"{kind}\"]")).await;
    }
    shot(&b, "dataplane-zone").await;
    click(&b, "#xds-config summary").await;
    let config = eventually(VIEW_WAIT, "the generated config", || async {
        b.text("#xds-config")
            .await
            .ok()
            .flatten()
            .filter(|t| !t.contains("Loading"))
    })
    .await;
    assert!(config.contains(" resources."), "{config}");
    assert!(
        !text_of(&b, "#xds-config .xds-type summary")
            .await
            .is_empty()
    );

    // The mesh on the zone: the CA the zone runs.
    b.goto(&format!("{zurl}/gui#/meshes/default"))
        .await
        .unwrap();
    wait_view(&b, "meshes").await;
    assert_eq!(
        text_of(&b, "dd[data-field=\"enabledBackend\"]").await,
        "ca-1"
    );
    assert_eq!(
        text_of(&b, "dd[data-field=\"issuingBackend\"]").await,
        "ca-1"
    );
    shot(&b, "mesh-zone").await;
    assert_token_not_in_urls(&b, &ztoken, &mut Vec::new()).await;

    // Scale: 1,000 more Dataplanes written to the zone. The dataplanes view
    // shows page 1 of N with the API's total, fetching that one page only
    // (size ≤ 100, no request per dataplane); Next fetches the next page.
    let writes = std::time::Instant::now();
    let put = |n: usize| {
        let z = z.clone();
        async move {
            let (s, body) = z
                .put(
                    &format!("/meshes/default/dataplanes/bulk-{n:04}"),
                    &bulk_dataplane(n),
                )
                .await;
            assert!(s.is_success(), "bulk-{n:04}: {s} {body}");
        }
    };
    futures::stream::iter((0..MANY).map(put))
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!("{MANY} Dataplanes written in {:?}", writes.elapsed());
    let (_, list) = z.get("/meshes/default/dataplanes/_overview?size=1").await;
    let total = list["total"].as_u64().unwrap();
    assert_eq!(total, MANY as u64 + 1);
    clear_fetched(&b).await;
    b.goto(&format!("{zurl}/gui#/meshes/default/dataplanes"))
        .await
        .unwrap();
    wait_view(&b, "dataplanes").await;
    let size = 25;
    assert_eq!(
        text_of(&b, "[data-field=\"range\"]").await,
        format!("1–{size} of {total}")
    );
    let pages = total.div_ceil(size);
    assert_eq!(text_of(&b, "#page-of").await, format!("Page 1 of {pages}."));
    let rows = b
        .execute(
            "return document.querySelectorAll('tr[data-dataplane]').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!(size));
    let lists = |urls: Vec<String>| -> Vec<String> {
        urls.into_iter()
            .filter(|u| u.contains("/dataplanes") && !u.contains("/gui/"))
            .collect()
    };
    let first = lists(fetched(&b).await);
    assert_eq!(first.len(), 1, "one page fetched, no more: {first:#?}");
    assert!(
        first[0].contains("/meshes/default/dataplanes/_overview?"),
        "{first:?}"
    );
    let asked: u64 = param(&first[0], "size").unwrap().parse().unwrap();
    assert!(asked <= 100, "{first:?}");
    assert_eq!(param(&first[0], "offset").as_deref(), Some("0"));
    shot(&b, "dataplanes-1001").await;
    clear_fetched(&b).await;
    click(&b, "#next").await;
    let range = eventually(VIEW_WAIT, "page 2", || async {
        b.text("section[data-state=\"ready\"] [data-field=\"range\"]")
            .await
            .ok()
            .flatten()
            .filter(|t| t.starts_with(&format!("{}–", size + 1)))
    })
    .await;
    assert_eq!(range, format!("{}–{} of {total}", size + 1, 2 * size));
    assert_eq!(text_of(&b, "#page-of").await, format!("Page 2 of {pages}."));
    let second = lists(fetched(&b).await);
    assert_eq!(second.len(), 1, "{second:#?}");
    assert_eq!(param(&second[0], "offset").as_deref(), Some("25"));
    assert!(param(&second[0], "size").unwrap().parse::<u64>().unwrap() <= 100);
    shot(&b, "dataplanes-1001-page-2").await;

    // No script error and no CSP violation in the console.
    let console = b.console().await.unwrap();
    let errors: Vec<&String> = console
        .iter()
        .filter(|l| l.contains("SEVERE") && !l.contains("Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.close().await;
    drop(mesh);
    drop(global);
    println!("the GUI test took {:?}", started.elapsed());
}
