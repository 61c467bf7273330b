//! Supervision: every component of a running global and of a running federated
//! zone is aborted in turn, as a crash would end it. A critical component (a
//! server) takes the control plane down within 1 s, named in the error its process
//! exits with; a restarting one (feeds, caches, followers, the KDS client) comes
//! back, and `/ready` shows the restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use weft_testbed::inprocess::{self, Running};
use weft_testbed::wait::eventually;

const WITHIN: Duration = Duration::from_secs(10);

/// Which components end the process when they die.
fn critical(component: &str) -> bool {
    matches!(component, "REST API" | "KDS server" | "xDS server")
}

async fn ready(cp: &Running) -> (StatusCode, Value) {
    cp.api.get("/ready").await
}

/// Aborts `component` of `cp` and checks the outcome its kind calls for; returns
/// the control plane when it is still running.
async fn abort_and_check(cp: Running, component: &str) -> Option<Running> {
    eventually(WITHIN, "ready before the abort", || async {
        (ready(&cp).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert!(cp.control().abort(component), "no component {component:?}");
    if critical(component) {
        let ended = tokio::time::timeout(Duration::from_secs(1), cp.wait())
            .await
            .unwrap_or_else(|_| panic!("still running 1 s after {component} was aborted"));
        let err = ended.expect_err("a dead critical component must fail the process");
        assert_eq!(err.component(), component, "{err}");
        assert!(err.to_string().contains("aborted"), "{err}");
        return None;
    }
    let report = eventually(WITHIN, "the restart shown on /ready", || async {
        let (status, body) = ready(&cp).await;
        let r = body["components"][component].clone();
        (status == StatusCode::OK && r["restarts"] == 1 && r["state"] == "ready").then_some(r)
    })
    .await;
    assert_eq!(
        report["lastRestart"]["reason"],
        format!("the {component} was aborted"),
        "{report}"
    );
    Some(cp)
}

// Each of global's components, aborted in turn, either fails global naming it
// within 1 s or is restarted with the interruption on /ready.
#[tokio::test(flavor = "multi_thread")]
async fn global_components_are_supervised() {
    let probe = inprocess::global().await;
    let mut names = probe.control().components();
    probe.stop().await;
    names.sort();
    assert_eq!(
        names,
        [
            "KDS feed",
            "KDS server",
            "REST API",
            "offline zone cleanup",
            "revocation follower",
            "zone follower",
            "zone insight writer"
        ]
    );
    for name in names {
        let global = inprocess::global().await;
        if let Some(g) = abort_and_check(global, name).await {
            // After a restart the KDS feed still serves zones.
            if name == "KDS feed" {
                let zone = inprocess::federated_zone(&g, "zone-a").await;
                eventually(WITHIN, "zone synced after the feed restart", || async {
                    (zone.api.get("/ready").await.0 == StatusCode::OK).then_some(())
                })
                .await;
                zone.stop().await;
            }
            g.stop().await;
        }
    }
}

// Each of a federated zone's components, aborted in turn, either fails the zone
// naming it within 1 s or is restarted with the interruption on /ready; a
// restarted zone still receives global's later changes.
#[tokio::test(flavor = "multi_thread")]
async fn zone_components_are_supervised() {
    let global = inprocess::global().await;
    let probe = inprocess::federated_zone(&global, "zone-probe").await;
    let mut names = probe.control().components();
    probe.stop().await;
    names.sort();
    assert_eq!(
        names,
        [
            "KDS client",
            "MeshService generator",
            "REST API",
            "available services",
            "dataplane insights",
            "mesh identities",
            "xDS cache",
            "xDS rebuilder",
            "xDS server"
        ]
    );
    for (i, name) in names.into_iter().enumerate() {
        let zone = inprocess::federated_zone(&global, &format!("zone-{i}")).await;
        if let Some(z) = abort_and_check(zone, name).await {
            let policy = format!(
                "type: MeshTimeout\nmesh: default\nname: after-{i}\nspec:\n  targetRef: {{kind: Mesh}}\n  to:\n  - targetRef: {{kind: Mesh}}\n    default: {{idleTimeout: 5s}}\n"
            );
            let (status, body) = global
                .api
                .put(&format!("/meshes/default/meshtimeouts/after-{i}"), &policy)
                .await;
            assert!(status.is_success(), "{status} {body}");
            eventually(
                WITHIN,
                "a later policy reaches the restarted zone",
                || async {
                    (z.api
                        .get(&format!("/meshes/default/meshtimeouts/after-{i}"))
                        .await
                        .0
                        == StatusCode::OK)
                        .then_some(())
                },
            )
            .await;
            z.stop().await;
        }
    }
    global.stop().await;
}
