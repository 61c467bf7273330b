//! A populated multi-zone setup in this process, for tests and harnesses that
//! read Kuma's insight and inspect endpoints: a global and one federated zone
//! (`zone-1`), mesh `default` with builtin mTLS and mesh `other` without, one
//! policy of each of the sixteen targetRef types, a MeshExternalService, a
//! Secret and a MeshIdentity (in `other`) on global, and in the zone a
//! MeshService, three dataplanes and a zone ingress and egress:
//!
//! | proxy | service, tags | connected (ADS stream open) |
//! |---|---|---|
//! | `web-1` | `web`, outbound to `backend` | yes |
//! | `backend-1` | `backend`, `version: v1` | yes |
//! | `backend-2` | `backend`, `version: v2` | no (written through the API) |
//! | `zi-1` (ZoneIngress) | | yes |
//! | `ze-1` (ZoneEgress) | | yes |
//!
//! The MeshTrafficPermission `allow-backend` selects exactly the `backend`
//! proxies (`MeshSubset` on `kuma.io/service: backend`).

use crate::ads::{self, CLUSTER_TYPE, DeltaStream};
use crate::inprocess::{self, Running};
use crate::wait::eventually;
use serde_json::{Value, json};
use std::time::Duration;
use weft_sync::delta::DeltaDiscoveryRequest;

/// The federated zone's name.
pub const ZONE: &str = "zone-1";

/// How long setting up may wait for sync between global and the zone.
const SYNC: Duration = Duration::from_secs(20);

/// One small policy of each targetRef type Weft serves: (plural, name, YAML).
pub const POLICIES: &[(&str, &str, &str)] = &[
    (
        "meshtrafficpermissions",
        "allow-backend",
        "type: MeshTrafficPermission\nmesh: default\nname: allow-backend\nspec:\n  targetRef: {kind: MeshSubset, tags: {kuma.io/service: backend}}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {action: Allow}\n",
    ),
    (
        "meshtimeouts",
        "timeouts",
        "type: MeshTimeout\nmesh: default\nname: timeouts\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {idleTimeout: 1h, http: {requestTimeout: 5s, maxStreamDuration: 10m}}\n",
    ),
    (
        "meshretries",
        "retries",
        "type: MeshRetry\nmesh: default\nname: retries\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {numRetries: 3}}\n",
    ),
    (
        "meshcircuitbreakers",
        "breakers",
        "type: MeshCircuitBreaker\nmesh: default\nname: breakers\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {connectionLimits: {maxConnections: 100}}\n",
    ),
    (
        "meshhealthchecks",
        "health",
        "type: MeshHealthCheck\nmesh: default\nname: health\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {interval: 10s, timeout: 2s, unhealthyThreshold: 3, healthyThreshold: 1, tcp: {disabled: false}}\n",
    ),
    (
        "meshloadbalancingstrategies",
        "balance",
        "type: MeshLoadBalancingStrategy\nmesh: default\nname: balance\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {loadBalancer: {type: RoundRobin}}\n",
    ),
    (
        "meshhttproutes",
        "api-route",
        "type: MeshHTTPRoute\nmesh: default\nname: api-route\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      rules:\n        - matches: [{path: {type: PathPrefix, value: /api}}]\n          default: {backendRefs: [{kind: MeshService, name: backend}]}\n",
    ),
    (
        "meshtcproutes",
        "tcp-route",
        "type: MeshTCPRoute\nmesh: default\nname: tcp-route\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      rules:\n        - default: {backendRefs: [{kind: MeshService, name: backend}]}\n",
    ),
    (
        "meshfaultinjections",
        "faults",
        "type: MeshFaultInjection\nmesh: default\nname: faults\nspec:\n  targetRef: {kind: MeshSubset, proxyTypes: [Sidecar], tags: {kuma.io/service: backend}}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {http: [{abort: {httpStatus: 503, percentage: 1}}]}\n",
    ),
    (
        "meshratelimits",
        "limits",
        "type: MeshRateLimit\nmesh: default\nname: limits\nspec:\n  targetRef: {kind: MeshSubset, proxyTypes: [Sidecar], tags: {kuma.io/service: backend}}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {local: {http: {requestRate: {num: 100, interval: 1s}}}}\n",
    ),
    (
        "meshaccesslogs",
        "logs",
        "type: MeshAccessLog\nmesh: default\nname: logs\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {backends: [{type: File, file: {path: /tmp/weft-access.log}}]}\n",
    ),
    (
        "meshtraces",
        "traces",
        "type: MeshTrace\nmesh: default\nname: traces\nspec:\n  targetRef: {kind: Mesh}\n  default: {backends: [{type: Zipkin, zipkin: {url: 'http://zipkin.local:9411/api/v2/spans'}}]}\n",
    ),
    (
        "meshmetrics",
        "metrics",
        "type: MeshMetric\nmesh: default\nname: metrics\nspec:\n  targetRef: {kind: Mesh}\n  default: {backends: [{type: Prometheus, prometheus: {port: 5670, path: /metrics}}]}\n",
    ),
    (
        "meshtlses",
        "tls",
        "type: MeshTLS\nmesh: default\nname: tls\nspec:\n  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {tlsVersion: {min: TLS12}}\n",
    ),
    (
        "meshpassthroughs",
        "passthrough",
        "type: MeshPassthrough\nmesh: default\nname: passthrough\nspec:\n  targetRef: {kind: Mesh}\n  default: {passthroughMode: All}\n",
    ),
    (
        "meshproxypatches",
        "patch",
        "type: MeshProxyPatch\nmesh: default\nname: patch\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    appendModifications:\n      - cluster: {operation: Remove, match: {name: not-there}}\n",
    ),
];

/// What the zone's proxies are, as [`start`] set them up.
pub const DATAPLANES: &[&str] = &["backend-1", "backend-2", "web-1"];

/// A running global and federated zone with what the module's table lists.
/// Dropping it closes the proxies' streams and stops both control planes.
pub struct Populated {
    pub global: Running,
    pub zone: Running,
    /// The open ADS streams of the connected proxies.
    streams: Vec<DeltaStream>,
}

impl Populated {
    /// Closes the proxies' streams, then stops the zone and global.
    pub async fn stop(mut self) {
        self.streams.clear();
        self.zone.stop().await;
        self.global.stop().await;
    }

    /// Disconnects every connected proxy (their streams end).
    pub fn disconnect_all(&mut self) {
        self.streams.clear();
    }
}

fn dataplane(name: &str, service: &str, version: &str, port: u16, outbound: bool) -> Value {
    let mut dp = json!({
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": port, "tags": {"kuma.io/service": service, "version": version}}],
        }
    });
    if outbound {
        dp["networking"]["outbound"] =
            json!([{"port": 10001, "tags": {"kuma.io/service": "backend"}}]);
    }
    dp
}

async fn put_ok(api: &crate::Client, path: &str, yaml: &str) -> Result<(), String> {
    let (s, body) = api.put(path, yaml).await;
    if s.is_success() {
        Ok(())
    } else {
        Err(format!("PUT {path}: {s} {body}"))
    }
}

/// Opens a delta ADS stream for a proxy whose node carries `json`.
async fn connect(
    zone: &Running,
    mesh: &str,
    name: &str,
    json: &Value,
) -> Result<DeltaStream, String> {
    let bound = zone.zone().ok_or("not a zone")?;
    let ch = ads::channel(&bound.xds)
        .await
        .map_err(|e| format!("xDS channel: {e}"))?;
    let first = DeltaDiscoveryRequest {
        node: Some(ads::node(mesh, name, &json.to_string())),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    };
    DeltaStream::open(ch, Some(bound.token.expose()), first)
        .await
        .map_err(|e| format!("ADS stream of {name}: {e}"))
}

/// The `total` of a list the API answers at `path` (0 when it does not answer).
pub async fn total(api: &crate::Client, path: &str) -> u64 {
    let (s, body) = api.get(path).await;
    if s.is_success() {
        body["total"].as_u64().unwrap_or(0)
    } else {
        0
    }
}

/// Sets everything up and waits until global holds what the zone reports
/// (dataplanes, insights of the connected ones, the ingress and egress) and
/// the zone holds every policy.
pub async fn start() -> Result<Populated, String> {
    let global = inprocess::global().await;
    let zone = inprocess::federated_zone(&global, ZONE).await;
    eventually(SYNC, "the zone's first sync", || async {
        let r = zone
            .api
            .http()
            .get(zone.api.url("/ready"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let g = &global.api;
    put_ok(
        g,
        "/meshes/default",
        "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - {name: ca-1, type: builtin}\n",
    )
    .await?;
    put_ok(g, "/meshes/other", "type: Mesh\nname: other\n").await?;
    for (plural, name, yaml) in POLICIES {
        put_ok(g, &format!("/meshes/default/{plural}/{name}"), yaml).await?;
    }
    put_ok(
        g,
        "/meshes/default/meshexternalservices/httpbin",
        "type: MeshExternalService\nmesh: default\nname: httpbin\nspec:\n  match: {type: HostnameGenerator, port: 443, protocol: tcp}\n  endpoints:\n    - {address: httpbin.org, port: 443}\n",
    )
    .await?;
    g.put_secret("default", "app-password", b"not-a-real-password")
        .await?;
    put_ok(
        g,
        "/meshes/other/meshidentities/identity",
        "type: MeshIdentity\nmesh: other\nname: identity\nspec:\n  selector: {dataplane: {matchLabels: {}}}\n  provider: {type: Bundled, bundled: {autogenerate: {enabled: true}}}\n",
    )
    .await?;

    let mut streams = Vec::new();
    for (name, service, version, port, outbound) in [
        ("web-1", "web", "v1", 8080, true),
        ("backend-1", "backend", "v1", 8081, false),
    ] {
        let dp = dataplane(name, service, version, port, outbound);
        streams.push(connect(&zone, "default", name, &dp).await?);
    }
    let offline = dataplane("backend-2", "backend", "v2", 8082, false);
    put_ok(
        &zone.api,
        "/meshes/default/dataplanes/backend-2",
        &offline.to_string(),
    )
    .await?;
    // A MeshService of the zone's own (its origin label makes it the zone's).
    put_ok(
        &zone.api,
        "/meshes/default/meshservices/backend",
        "type: MeshService\nmesh: default\nname: backend\nlabels: {kuma.io/origin: zone}\nspec:\n  selector: {dataplaneTags: {kuma.io/service: backend}}\n  ports:\n    - {port: 8081, targetPort: 8081, appProtocol: http}\n",
    )
    .await?;
    let ingress = json!({"type": "ZoneIngress", "name": "zi-1",
        "networking": {"address": "127.0.0.1", "port": 10001, "advertisedAddress": "127.0.0.1", "advertisedPort": 10001}});
    streams.push(connect(&zone, "", "zi-1", &ingress).await?);
    let egress = json!({"type": "ZoneEgress", "name": "ze-1",
        "networking": {"address": "127.0.0.1", "port": 10002}});
    streams.push(connect(&zone, "", "ze-1", &egress).await?);

    let policies = POLICIES.len() as u64;
    eventually(
        SYNC,
        "global holds the zone's proxies and the zone every policy",
        || async {
            let dps = total(g, "/meshes/default/dataplanes/_overview?online=true").await;
            let all = total(g, "/meshes/default/dataplanes").await;
            let zi = total(g, "/zoneingresses").await;
            let ze = total(g, "/zoneegresses").await;
            let mut on_zone = 0;
            for (plural, name, _) in POLICIES {
                on_zone += total(&zone.api, &format!("/meshes/default/{plural}?name={name}")).await;
            }
            (dps == 2 && all == 3 && zi == 1 && ze == 1 && on_zone == policies).then_some(())
        },
    )
    .await;
    Ok(Populated {
        global,
        zone,
        streams,
    })
}
