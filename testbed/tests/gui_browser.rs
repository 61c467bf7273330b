//! The web GUI in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, see scripts/setup.sh) driven over W3C WebDriver, against
//! real `weft-global` and `weft-zone` processes joined over KDS: log in (a wrong
//! token is refused), then the zones, a dataplane and a policy, each checked
//! against what the REST API answers; the token never appears in a URL. A
//! screenshot of each view goes to `<target>/gui-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use weft_testbed::browser::Browser;
use weft_testbed::wait::{eventually, until};
use weft_testbed::{Client, ControlPlane};

const VIEW_WAIT: Duration = Duration::from_secs(30);
const SYNC_WAIT: Duration = Duration::from_secs(30);
const DP: &str = "web-1";
const POLICY: &str = "gui-timeout";

const DATAPLANE: &str = "type: Dataplane\nname: web-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: web\n";
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

/// Online as the API says: Weft's `zoneInsight.online`, else Kuma's
/// subscriptions (one without a disconnect time).
fn zone_online(item: &Value) -> bool {
    let zi = &item["zoneInsight"];
    if let Some(b) = zi["online"].as_bool() {
        return b;
    }
    zi["subscriptions"].as_array().is_some_and(|subs| {
        subs.iter()
            .any(|s| !s["connectTime"].is_null() && s["disconnectTime"].is_null())
    })
}

/// A DataplaneInsight (stored or live) is online: Weft's `connected`, else an
/// open subscription.
fn dataplane_online(insight: Option<&Value>) -> bool {
    let Some(i) = insight else { return false };
    if let Some(b) = i["connected"].as_bool() {
        return b;
    }
    i["subscriptions"].as_array().is_some_and(|subs| {
        subs.iter()
            .any(|s| !s["connectTime"].is_null() && s["disconnectTime"].is_null())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gui_in_a_real_browser_on_global_and_zone() {
    // The browser first: without it the test fails at once, saying how to install it.
    let b = Browser::start()
        .await
        .unwrap_or_else(|e| panic!("no browser for the GUI test: {e}"));

    let global = tokio::task::spawn_blocking(|| ControlPlane::global(&[]))
        .await
        .unwrap()
        .unwrap();
    let zone = ControlPlane::federated_zone(&global, "east", &[]).unwrap();
    let (g, z) = (
        Client::new(global.api_url(), global.token()),
        Client::new(zone.api_url(), zone.token()),
    );
    let (s, body) = g
        .put(&format!("/meshes/default/meshtimeouts/{POLICY}"), TIMEOUT)
        .await;
    assert!(s.is_success(), "{s} {body}");
    until(SYNC_WAIT, "the zone holds global's policy", || async {
        z.get(&format!("/meshes/default/meshtimeouts/{POLICY}"))
            .await
            .0
            == StatusCode::OK
    })
    .await;
    let (s, body) = z
        .put(&format!("/meshes/default/dataplanes/{DP}"), DATAPLANE)
        .await;
    assert!(s.is_success(), "{s} {body}");
    // Global stores the zone's Dataplane under a hashed name.
    let stored = eventually(SYNC_WAIT, "global holds the zone's dataplane", || async {
        let (_, list) = g
            .get(&format!("/meshes/default/dataplanes?name={DP}"))
            .await;
        list["items"][0]["name"].as_str().map(str::to_string)
    })
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

    login(&b, &gtoken).await;
    assert_eq!(text_of(&b, "dd[data-field=\"mode\"]").await, "global");
    let counts = text_of(&b, "#counts").await;
    assert!(counts.contains("Dataplanes"), "{counts}");
    shot(&b, "home-global").await;
    assert_token_not_in_urls(&b, &gtoken, &mut seen).await;

    // Zones: the name and the online state match GET /zones/_overview.
    click(&b, "a[data-nav=\"zones\"]").await;
    wait_view(&b, "zones").await;
    let (_, overview) = g.get("/zones/_overview").await;
    let east = overview["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "east" || i["zone"]["name"] == "east")
        .expect("east in the overview")
        .clone();
    let row = "tr[data-zone=\"east\"]";
    assert_eq!(
        text_of(&b, &format!("{row} td[data-field=\"name\"]")).await,
        "east"
    );
    let shown = text_of(&b, &format!("{row} td[data-field=\"status\"]")).await;
    let want = if zone_online(&east) {
        "online"
    } else {
        "offline"
    };
    assert_eq!(shown, want);
    shot(&b, "zones").await;
    click(&b, &format!("{row} td[data-field=\"name\"] a")).await;
    wait_view(&b, "zones").await;
    assert_eq!(text_of(&b, "dd[data-field=\"name\"]").await, "east");
    assert_eq!(text_of(&b, "dd[data-field=\"status\"]").await, want);
    shot(&b, "zone-east").await;

    // A dataplane: name, mesh and status as the API has them.
    click(&b, "a[data-nav=\"dataplanes\"]").await;
    wait_view(&b, "dataplanes").await;
    let range = text_of(&b, "[data-field=\"range\"]").await;
    let (_, all) = g.get("/meshes/default/dataplanes?size=1").await;
    assert!(range.ends_with(&format!("of {}", all["total"])), "{range}");
    shot(&b, "dataplanes").await;
    click(
        &b,
        &format!("tr[data-dataplane=\"{stored}\"] td[data-field=\"name\"] a"),
    )
    .await;
    wait_view(&b, "dataplanes").await;
    let (_, dp) = g.get(&format!("/meshes/default/dataplanes/{stored}")).await;
    let (s, insight) = g
        .get(&format!("/meshes/default/dataplane-insights/{stored}"))
        .await;
    let online = dataplane_online((s == StatusCode::OK).then_some(&insight));
    assert_eq!(
        text_of(&b, "section[data-state=\"ready\"] dd[data-field=\"name\"]").await,
        dp["labels"]["kuma.io/display-name"].as_str().unwrap()
    );
    assert_eq!(text_of(&b, "dd[data-field=\"mesh\"]").await, dp["mesh"]);
    assert_eq!(text_of(&b, "dd[data-field=\"zone\"]").await, "east");
    let status = text_of(&b, "dd[data-field=\"status\"]").await;
    assert!(
        status.starts_with(if online { "online" } else { "offline" }),
        "{status}"
    );
    shot(&b, "dataplane-global").await;
    assert_token_not_in_urls(&b, &gtoken, &mut seen).await;

    // A policy: its name and spec, and the dataplanes it affects (or the note
    // saying this control plane does not list them).
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
    let affected_state = eventually(VIEW_WAIT, "the affected dataplanes", || async {
        let v = b
            .execute(
                "return document.getElementById('affected')?.dataset.state;",
                vec![],
            )
            .await
            .ok()?;
        v.as_str().filter(|s| *s != "loading").map(str::to_string)
    })
    .await;
    let (s, affected) = g
        .get(&format!(
            "/meshes/default/meshtimeouts/{POLICY}/_resources/dataplanes"
        ))
        .await;
    let shown = text_of(&b, "#affected").await;
    if s == StatusCode::OK {
        assert_eq!(affected_state, "listed");
        for d in affected["items"].as_array().unwrap() {
            let name = d["labels"]["kuma.io/display-name"]
                .as_str()
                .or(d["name"].as_str())
                .unwrap();
            assert!(shown.contains(name), "{shown} lacks {name}");
        }
    } else {
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(affected_state, "unsupported");
        assert!(shown.contains("does not list"), "{shown}");
    }
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

    // Services: the zone's dataplane counted under its kuma.io/service.
    click(&b, "a[data-nav=\"services\"]").await;
    wait_view(&b, "services").await;
    let web = text_of(&b, "tr[data-service=\"web\"]").await;
    assert!(web.starts_with("web\t1\t"), "{web:?}");
    shot(&b, "services").await;

    // A mesh on global: its mTLS (off here) and no CA Secrets.
    click(&b, "a[data-nav=\"meshes\"]").await;
    wait_view(&b, "meshes").await;
    click(&b, "td[data-field=\"name\"] a").await;
    wait_view(&b, "meshes").await;
    assert_eq!(text_of(&b, "dd[data-field=\"mtls\"]").await, "off");
    let ca = text_of(&b, "#ca").await;
    assert!(ca.contains("No CA Secrets"), "{ca}");
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

    // The zone serves the GUI too: no Zones view; its dataplane with the
    // policies the zone computes for it.
    let ztoken = zone.token();
    b.goto(&format!("{}/gui", zone.api_url())).await.unwrap();
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
    b.goto(&format!(
        "{}/gui#/meshes/default/dataplanes/{DP}",
        zone.api_url()
    ))
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
    let status = text_of(&b, "dd[data-field=\"status\"]").await;
    let online = dataplane_online(Some(&ov["dataplaneInsight"]));
    assert!(
        status.starts_with(if online { "online" } else { "offline" }),
        "{status}"
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
    let policies = text_of(&b, "#matched-policies table").await;
    assert!(policies.contains(POLICY), "{policies}");
    shot(&b, "dataplane-zone").await;
    click(&b, "#xds-config summary").await;
    let config = text_of(&b, "#xds-config .xds-type summary").await;
    assert!(!config.is_empty());
    assert_token_not_in_urls(&b, &ztoken, &mut Vec::new()).await;

    // No script error and no CSP violation in the console (the refused
    // token's 401 and the 404s of optional endpoints are network entries).
    let console = b.console().await.unwrap();
    let errors: Vec<&String> = console
        .iter()
        .filter(|l| l.contains("SEVERE") && !l.contains("Failed to load resource"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    b.close().await;
}
