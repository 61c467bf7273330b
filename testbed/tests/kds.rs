//! KDS in-process: a global and federated zones over TLS with zone tokens.
//! Policies applied on global reach the zone, updates and deletes follow, and a
//! zone with the wrong credentials is refused with the right gRPC code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use weft_testbed::inprocess;
use weft_testbed::wait::eventually;

const TIMEOUT: &str = "type: MeshTimeout\nname: t1\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 1h\n";

/// Waits until the zone answers `/ready` (its first sync from global is applied).
async fn until_ready(zone: &inprocess::Running) {
    eventually(Duration::from_secs(10), "zone ready", || async {
        let r = zone
            .api
            .http()
            .get(zone.api.url("/ready"))
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
}

async fn idle_timeout(api: &weft_testbed::Client, path: &str) -> Option<String> {
    let (s, body): (StatusCode, Value) = api.get(path).await;
    (s == StatusCode::OK).then(|| {
        body["spec"]["to"][0]["default"]["idleTimeout"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

// A policy PUT on global appears on the zone; update and delete follow; the zone is
// ready only after its first sync and refuses local writes of global-owned types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_flow_global_to_zone() {
    let global = inprocess::global().await;
    let zone = inprocess::federated_zone(&global, "zone-1").await;
    let path = "/meshes/default/meshtimeouts/t1";

    until_ready(&zone).await;
    let (s, mesh) = zone.api.get("/meshes/default").await;
    assert_eq!(s, StatusCode::OK, "the default mesh comes from global");
    assert_eq!(mesh["labels"]["kuma.io/origin"], "global");

    let (s, _) = global.api.put(path, TIMEOUT).await;
    assert_eq!(s, StatusCode::CREATED);
    eventually(Duration::from_secs(5), "policy on the zone", || async {
        (idle_timeout(&zone.api, path).await? == "1h").then_some(())
    })
    .await;
    let (s, _) = global.api.put(path, &TIMEOUT.replace("1h", "2h")).await;
    assert_eq!(s, StatusCode::OK);
    eventually(Duration::from_secs(5), "update on the zone", || async {
        (idle_timeout(&zone.api, path).await? == "2h").then_some(())
    })
    .await;

    let (s, body) = zone.api.put(path, TIMEOUT).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("global"),
        "{body}"
    );

    let (s, _) = global.api.delete(path).await;
    assert_eq!(s, StatusCode::OK);
    eventually(Duration::from_secs(5), "delete on the zone", || async {
        (zone.api.get(path).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    zone.stop().await;
    global.stop().await;
}

// Wrong credentials are refused: no token / a forged one → UNAUTHENTICATED,
// zone-a's token presented as zone-b → PERMISSION_DENIED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_authentication() {
    let global = inprocess::global().await;
    let good = inprocess::kds_client_config(&global, "zone-a").await;
    weft_zone::kds::probe(&good)
        .await
        .expect("zone-a with its own token is accepted");

    let code = |r: Result<(), weft_zone::kds::SessionError>| match r {
        Err(weft_zone::kds::SessionError::Refused(status)) => status.code(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let mut as_b = good.clone();
    as_b.zone = "zone-b".into();
    assert_eq!(
        code(weft_zone::kds::probe(&as_b).await),
        tonic::Code::PermissionDenied
    );

    let mut forged = good.clone();
    let t = good.token.to_string();
    let (head, sig) = t.rsplit_once('.').unwrap();
    let flipped: String = sig.chars().rev().collect();
    forged.token = format!("{head}.{flipped}").into();
    assert_eq!(
        code(weft_zone::kds::probe(&forged).await),
        tonic::Code::Unauthenticated
    );

    let mut missing = good.clone();
    missing.token = "".into();
    assert_eq!(
        code(weft_zone::kds::probe(&missing).await),
        tonic::Code::Unauthenticated
    );
    global.stop().await;
}

const DATAPLANE: &str = "type: Dataplane\nname: backend-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: backend\n";
const INGRESS: &str = "type: ZoneIngress\nname: ingress\nnetworking:\n  address: 127.0.0.1\n  advertisedAddress: 127.0.0.1\n  port: 10001\n  advertisedPort: 10001\n";

// Zones report up: a Dataplane on zone-1 shows on global labelled with its zone;
// zone-1's ZoneIngress reaches zone-2, offering zone-1's services, and never comes
// back to zone-1; deletes follow (the offer too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_report_up_and_ingresses_fan_out() {
    let global = inprocess::global().await;
    let z1 = inprocess::federated_zone(&global, "zone-1").await;
    let z2 = inprocess::federated_zone(&global, "zone-2").await;
    for z in [&z1, &z2] {
        until_ready(z).await;
    }
    let (s, body) = z1
        .api
        .put("/meshes/default/dataplanes/backend-1", DATAPLANE)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = z1.api.put("/zoneingresses/ingress", INGRESS).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let dp = eventually(Duration::from_secs(5), "dataplane on global", || async {
        let (_, list) = global.api.get("/meshes/default/dataplanes").await;
        list["items"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(dp["labels"]["kuma.io/zone"], "zone-1");
    assert_eq!(dp["labels"]["kuma.io/origin"], "zone");
    assert_eq!(dp["labels"]["kuma.io/display-name"], "backend-1");
    assert!(
        dp["name"].as_str().unwrap().starts_with("backend-1-"),
        "{dp}"
    );

    let ing = eventually(
        Duration::from_secs(5),
        "zone-1's ingress on zone-2",
        || async {
            let (_, list) = z2.api.get("/zoneingresses").await;
            list["items"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(ing["zone"], "zone-1");
    assert_eq!(ing["labels"]["kuma.io/origin"], "global");
    // zone-1 offers its services through the ingress, computed from its
    // Dataplanes on change; zone-2 sees the offer.
    let offered = eventually(
        Duration::from_secs(5),
        "zone-1's available services on zone-2",
        || async {
            let (_, list) = z2.api.get("/zoneingresses").await;
            let svc = list["items"].as_array()?.first()?["availableServices"]
                .as_array()?
                .first()?
                .clone();
            Some(svc)
        },
    )
    .await;
    assert_eq!(offered["tags"]["kuma.io/service"], "backend", "{offered}");
    assert_eq!(offered["instances"], 1, "{offered}");
    assert_eq!(offered["mesh"], "default", "{offered}");
    let (_, own) = z1.api.get("/zoneingresses").await;
    assert_eq!(own["total"], 1, "zone-1 holds only its own ingress: {own}");
    let (_, on_global) = global.api.get("/zoneingresses").await;
    assert_eq!(on_global["total"], 1, "{on_global}");

    let (s, _) = z1.api.delete("/meshes/default/dataplanes/backend-1").await;
    assert_eq!(s, StatusCode::OK);
    eventually(
        Duration::from_secs(5),
        "the offer withdrawn on zone-2",
        || async {
            let (_, list) = z2.api.get("/zoneingresses").await;
            let ing = list["items"].as_array()?.first()?.clone();
            ing.get("availableServices").is_none().then_some(())
        },
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "dataplane gone from global",
        || async {
            let (_, list) = global.api.get("/meshes/default/dataplanes").await;
            (list["total"] == 0).then_some(())
        },
    )
    .await;
    let (s, ov) = global.api.get("/zones/zone-1/_overview").await;
    assert_eq!(s, StatusCode::OK, "{ov}");
    let insight = &ov["zoneInsight"];
    assert_eq!(insight["online"], true, "{ov}");
    assert_eq!(insight["version"], env!("CARGO_PKG_VERSION"));
    assert!(insight["connectTime"].is_string(), "{ov}");
    assert!(
        insight["sent"]["Mesh"]["acked"].as_u64().unwrap() >= 1,
        "{ov}"
    );
    assert_eq!(insight["sent"]["Mesh"]["nacked"], 0, "{ov}");
    assert!(
        insight["received"]["Dataplane"]["resourcesReceived"]
            .as_u64()
            .unwrap()
            >= 1,
        "{ov}"
    );
    z1.stop().await;
    eventually(
        Duration::from_secs(5),
        "zone-1 offline after it stopped",
        || async {
            let (_, ov) = global.api.get("/zones/zone-1/_overview").await;
            (ov["zoneInsight"]["online"] == false
                && ov["zoneInsight"]["disconnectTime"].is_string())
            .then_some(())
        },
    )
    .await;
    let (_, all) = global.api.get("/zones/_overview").await;
    assert_eq!(all["total"], 2, "{all}");
    z2.stop().await;
    global.stop().await;
}

// Revoking a zone's token closes its live stream within 5 s, with UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_cuts_live_streams() {
    let global = inprocess::global().await;
    let config = inprocess::kds_client_config(&global, "zone-r").await;
    let held = tokio::spawn({
        let config = config.clone();
        async move { weft_zone::kds::wait_for_end(&config).await }
    });
    // The stream is open once the Zone resource exists (created after authentication).
    eventually(Duration::from_secs(5), "zone registered", || async {
        (global.api.get("/zones/zone-r").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let r = global
        .api
        .request(reqwest::Method::POST, "/tokens/zone/revoke")
        .json(&serde_json::json!({"token": config.token.to_string()}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let revoked_at = tokio::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("the live stream was not cut within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    eprintln!("stream cut {:?} after the revocation", revoked_at.elapsed());
    let refused = weft_zone::kds::probe(&config).await;
    assert!(matches!(
        refused,
        Err(weft_zone::kds::SessionError::Refused(ref status))
            if status.code() == tonic::Code::Unauthenticated
    ));
    global.stop().await;
}

// A zone that restarts declares the versions it holds, so global resends nothing
// unchanged: on the new connection the `sent` counters show zero resources for
// every type, and a change made while the zone was away is the only thing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_zone_resumes_without_full_resend() {
    let global = inprocess::global().await;
    // Only the 20 policies below: drop the default mesh's default MeshTimeouts.
    for name in [
        "mesh-timeout-all-default",
        "mesh-gateways-timeout-all-default",
    ] {
        let path = format!("/meshes/default/meshtimeouts/{name}");
        assert_eq!(global.api.delete(&path).await.0, StatusCode::OK);
    }
    for i in 0..20 {
        let body = TIMEOUT.replace("name: t1", &format!("name: t{i}"));
        let (s, _) = global
            .api
            .put(&format!("/meshes/default/meshtimeouts/t{i}"), &body)
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let dir = tempfile::tempdir().unwrap();
    let zone = inprocess::federated_zone_in(&global, "zone-r", dir.path()).await;
    eventually(
        Duration::from_secs(10),
        "all 20 policies on the zone",
        || async {
            let (_, list) = zone.api.get("/meshes/default/meshtimeouts").await;
            (list["total"] == 20).then_some(())
        },
    )
    .await;
    let sent_first = |ov: &Value, ty: &str| {
        ov["zoneInsight"]["sent"][ty]["resourcesSent"]
            .as_u64()
            .unwrap_or(0)
    };
    let (_, ov) = global.api.get("/zones/zone-r/_overview").await;
    assert_eq!(sent_first(&ov, "MeshTimeout"), 20, "{ov}");
    zone.stop().await;
    eventually(Duration::from_secs(5), "zone offline", || async {
        let (_, ov) = global.api.get("/zones/zone-r/_overview").await;
        (ov["zoneInsight"]["online"] == false).then_some(())
    })
    .await;

    // While the zone is away: one policy changes.
    let (s, _) = global
        .api
        .put(
            "/meshes/default/meshtimeouts/t0",
            &TIMEOUT.replace("1h", "3h").replace("name: t1", "name: t0"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    let zone = inprocess::federated_zone_in(&global, "zone-r", dir.path()).await;
    eventually(
        Duration::from_secs(10),
        "the change reached the restarted zone",
        || async {
            (idle_timeout(&zone.api, "/meshes/default/meshtimeouts/t0").await? == "3h")
                .then_some(())
        },
    )
    .await;
    let (_, ov) = global.api.get("/zones/zone-r/_overview").await;
    assert_eq!(
        sent_first(&ov, "MeshTimeout"),
        1,
        "only the changed policy travels: {ov}"
    );
    assert_eq!(
        sent_first(&ov, "Mesh"),
        0,
        "the unchanged mesh is not resent: {ov}"
    );
    zone.stop().await;
    global.stop().await;
}

/// A zone-origin MeshTrust as a zone's own MeshIdentity component writes it.
fn zone_trust(zone: &str, name: &str, domain: &str) -> weft_model::resource::Resource {
    let ca =
        weft_security::pki::workload::MeshCa::generate(domain, Duration::from_secs(3600)).unwrap();
    let yaml = format!(
        "type: MeshTrust\nmesh: default\nname: {name}\nlabels:\n  kuma.io/origin: zone\n  kuma.io/zone: {zone}\nspec:\n  trustDomain: {domain}\n  caBundles:\n    - type: Pem\n      pem:\n        value: |\n{}",
        ca.cert_pem()
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    );
    weft_model::resource::parse_resource(yaml.as_bytes(), false).unwrap()
}

// A trust domain belongs to the zone that published it first: another zone's
// MeshTrust claiming it (or the mesh's own Mesh-mTLS domain) is refused by global
// and reaches no other zone, so a compromised zone cannot mint another zone's
// identities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_cannot_claim_another_zones_trust_domain() {
    let g = inprocess::global().await;
    let (s, body) = g
        .api
        .put("/meshes/default", "type: Mesh\nname: default\n")
        .await;
    assert!(s.is_success(), "{s} {body}");
    let east = inprocess::federated_zone(&g, "east").await;
    let west = inprocess::federated_zone(&g, "west").await;
    for z in [&east, &west] {
        eventually(Duration::from_secs(10), "the mesh synced", || async {
            (z.api.get("/meshes/default").await.0 == StatusCode::OK).then_some(())
        })
        .await;
    }
    let domains = |api: weft_testbed::Client| async move {
        let (_, list) = api.get("/meshes/default/meshtrusts").await;
        let mut d: Vec<String> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["spec"]["trustDomain"].as_str().map(str::to_string))
            .collect();
        d.sort();
        d
    };
    weft_store::put(
        east.store.as_ref(),
        zone_trust("east", "identity", "default.east.mesh.local"),
        None,
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "west trusts east", || async {
        (domains(west.api.clone()).await == ["default.east.mesh.local"]).then_some(())
    })
    .await;
    // West claims east's domain, and the mesh's own.
    for (name, domain) in [("stolen", "default.east.mesh.local"), ("mesh", "default")] {
        weft_store::put(west.store.as_ref(), zone_trust("west", name, domain), None)
            .await
            .unwrap();
    }
    // A legitimate one after them shows west's updates have been processed.
    weft_store::put(
        west.store.as_ref(),
        zone_trust("west", "identity", "default.west.mesh.local"),
        None,
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "east trusts west's own domain",
        || async {
            (domains(east.api.clone()).await
                == ["default.east.mesh.local", "default.west.mesh.local"])
            .then_some(())
        },
    )
    .await;
    assert_eq!(
        domains(g.api.clone()).await,
        ["default.east.mesh.local", "default.west.mesh.local"],
        "global stored a claim"
    );
    east.stop().await;
    west.stop().await;
    g.stop().await;
}

const WEB: &str = "type: Dataplane\nname: web-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags: {kuma.io/service: web, kuma.io/protocol: http}\n  outbound:\n    - port: 19001\n      tags: {kuma.io/service: backend}\n";

/// The merged MeshTimeout `idleTimeout` web-1 gets towards backend, and the
/// policy it comes from, from the zone's `_rules`.
async fn web_idle_timeout(zone: &inprocess::Running) -> Option<(String, String)> {
    let (s, body): (StatusCode, Value) = zone
        .api
        .get("/meshes/default/dataplanes/web-1/_rules")
        .await;
    if s != StatusCode::OK {
        return None;
    }
    let timeout = body["rules"]
        .as_array()?
        .iter()
        .find(|r| r["type"] == "MeshTimeout")?;
    let to = timeout["to"]
        .as_array()?
        .iter()
        .find(|r| r["subset"].as_object().is_some_and(|s| s.is_empty()))?;
    Some((
        to["conf"]["idleTimeout"].as_str()?.to_string(),
        to["origins"]["/idleTimeout"]["name"].as_str()?.to_string(),
    ))
}

// Kuma 2.14's zone-origin policies: a federated zone accepts a policy labelled
// kuma.io/origin: zone (and refuses one without), reports it to global, where it
// is read-only under a hashed name with its provenance; on the zone it beats
// global's policy of the same kind (origin zone > global), and global's copies
// stay read-only on the zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_origin_policy_reaches_global_and_wins() {
    let global = inprocess::global().await;
    let zone = inprocess::federated_zone(&global, "zone-1").await;
    let (s, _) = global
        .api
        .put(
            "/meshes/default/meshtimeouts/from-global",
            &TIMEOUT.replace("name: t1", "name: from-global"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    eventually(
        Duration::from_secs(10),
        "global's policy on the zone",
        || async { idle_timeout(&zone.api, "/meshes/default/meshtimeouts/from-global").await },
    )
    .await;
    let (s, body) = zone.api.put("/meshes/default/dataplanes/web-1", WEB).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let mesh_wide = |rules: Option<(String, String)>| rules.map(|(t, _)| t);
    eventually(Duration::from_secs(5), "global's 1h applies", || async {
        (mesh_wide(web_idle_timeout(&zone).await)? == "1h").then_some(())
    })
    .await;

    let local_path = "/meshes/default/meshtimeouts/local";
    let local = TIMEOUT
        .replace("name: t1", "name: local")
        .replace("1h", "2h");
    let (s, body) = zone.api.put(local_path, &local).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("kuma.io/origin: zone"),
        "{body}"
    );
    let labelled = local.replace(
        "mesh: default\n",
        "mesh: default\nlabels: {kuma.io/origin: zone}\n",
    );
    let (s, body) = zone.api.put(local_path, &labelled).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    eventually(
        Duration::from_secs(5),
        "the zone's own policy wins",
        || async {
            (web_idle_timeout(&zone).await? == ("2h".into(), "local".into())).then_some(())
        },
    )
    .await;

    // On global: reported, hashed name, provenance labels, read-only.
    let on_global = eventually(
        Duration::from_secs(10),
        "the zone's policy on global",
        || async {
            let (_, list): (StatusCode, Value) =
                global.api.get("/meshes/default/meshtimeouts").await;
            list["items"]
                .as_array()?
                .iter()
                .find(|p| p["labels"]["kuma.io/display-name"] == "local")
                .cloned()
        },
    )
    .await;
    assert_eq!(on_global["labels"]["kuma.io/origin"], "zone");
    assert_eq!(on_global["labels"]["kuma.io/zone"], "zone-1");
    assert_eq!(on_global["spec"]["to"][0]["default"]["idleTimeout"], "2h");
    let name = on_global["name"].as_str().unwrap();
    assert_ne!(name, "local", "names from zones are hashed");
    let global_path = format!("/meshes/default/meshtimeouts/{name}");
    let (s, body) = global
        .api
        .put(
            &global_path,
            &local.replace("name: local", &format!("name: {name}")),
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (s, _) = global.api.delete(&global_path).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    // Global's copy stays read-only on the zone.
    let (s, _) = zone
        .api
        .delete("/meshes/default/meshtimeouts/from-global")
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);

    // Deleted on the zone: gone from global, and global's policy applies again.
    let (s, _) = zone.api.delete(local_path).await;
    assert_eq!(s, StatusCode::OK);
    eventually(Duration::from_secs(10), "gone from global", || async {
        (global.api.get(&global_path).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    eventually(Duration::from_secs(5), "global's 1h again", || async {
        (mesh_wide(web_idle_timeout(&zone).await)? == "1h").then_some(())
    })
    .await;
    zone.stop().await;
    global.stop().await;
}

// Kuma 2.14's MeshServices: with meshServices enabled on the mesh, zone-1
// generates one for its Dataplanes' service, reports it to global, and zone-2
// sees it (hashed name, zone-1's provenance, read-only); it goes with the last
// Dataplane. The mesh's default (mode Disabled) generates none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_service_from_one_zone_is_visible_in_another() {
    let global = inprocess::global().await;
    let z1 = inprocess::federated_zone(&global, "zone-1").await;
    let z2 = inprocess::federated_zone(&global, "zone-2").await;
    for z in [&z1, &z2] {
        until_ready(z).await;
    }
    let dp_path = "/meshes/default/dataplanes/backend-1";
    let (s, body) = z1.api.put(dp_path, DATAPLANE).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    eventually(
        Duration::from_secs(5),
        "the dataplane on global",
        || async {
            let (_, list) = global.api.get("/meshes/default/dataplanes").await;
            list["items"].as_array()?.first().map(drop)
        },
    )
    .await;
    let (_, list) = z1.api.get("/meshes/default/meshservices").await;
    assert_eq!(list["total"], 0, "mode Disabled generates none: {list}");

    let (s, body) = global
        .api
        .put(
            "/meshes/default",
            "type: Mesh\nname: default\nmeshServices: {mode: Everywhere}\n",
        )
        .await;
    assert!(s.is_success(), "{body}");
    let on_z2 = eventually(
        Duration::from_secs(10),
        "zone-1's MeshService on zone-2",
        || async {
            let (_, list) = z2.api.get("/meshes/default/meshservices").await;
            list["items"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(on_z2["labels"]["kuma.io/display-name"], "backend");
    assert_eq!(on_z2["labels"]["kuma.io/zone"], "zone-1");
    assert_eq!(on_z2["labels"]["kuma.io/origin"], "global");
    assert_eq!(
        on_z2["spec"]["selector"]["dataplaneTags"]["kuma.io/service"],
        "backend"
    );
    let name = on_z2["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("backend-"), "{on_z2}");
    let (s, local) = z1.api.get("/meshes/default/meshservices/backend").await;
    assert_eq!(s, StatusCode::OK, "{local}");
    assert_eq!(
        local["labels"]["kuma.io/managed-by"],
        "meshservice-generator"
    );
    let (s, _) = z2
        .api
        .delete(&format!("/meshes/default/meshservices/{name}"))
        .await;
    assert_eq!(
        s,
        StatusCode::METHOD_NOT_ALLOWED,
        "a copy from another zone is read-only"
    );

    let (s, _) = z1.api.delete(dp_path).await;
    assert_eq!(s, StatusCode::OK);
    eventually(Duration::from_secs(10), "gone from zone-2", || async {
        let (_, list) = z2.api.get("/meshes/default/meshservices").await;
        (list["total"] == 0).then_some(())
    })
    .await;
    z1.stop().await;
    z2.stop().await;
    global.stop().await;
}
