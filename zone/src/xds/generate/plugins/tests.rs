//! Per-plugin tests: each policy changes the Envoy field Kuma's does.

use crate::xds::generate::generate_config;
use crate::xds::generate::tests::*;
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::health_check;
use envoy_types::pb::envoy::config::route::v3::RouteAction;
use envoy_types::pb::envoy::config::route::v3::{Route, route};

fn action(r: &Route) -> &RouteAction {
    match &r.action {
        Some(route::Action::Route(a)) => a,
        other => panic!("not a route action: {other:?}"),
    }
}

fn backend_routes(a: &crate::xds::generate::model::Assembled) -> Vec<Route> {
    route_config(listener(a, "outbound:127.0.0.1:20001")).virtual_hosts[0]
        .routes
        .clone()
}

const TIMEOUT: &str = r#"
type: MeshTimeout
mesh: default
name: timeouts
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: Mesh}
      default: {connectionTimeout: 2s, idleTimeout: 30s, http: {requestTimeout: 1s, streamIdleTimeout: 7s, requestHeadersTimeout: 3s, maxStreamDuration: 9s}}
  from:
    - targetRef: {kind: Mesh}
      default: {connectionTimeout: 4s, http: {requestTimeout: 11s}}
"#;

#[test]
fn meshtimeout_sets_cluster_route_hcm_and_tcp_fields() {
    // MeshTimeout: connect_timeout, route timeout/idle, HCM request_headers_timeout, tcp idle, inbound from[].
    let view = mesh_view(&[res(TIMEOUT)]);
    let a = generate_config(&view, &web()).unwrap();
    assert_eq!(cluster(&a, "backend").connect_timeout.unwrap().seconds, 2);
    assert_eq!(
        cluster(&a, "localhost:21000")
            .connect_timeout
            .unwrap()
            .seconds,
        4
    );
    let r = &backend_routes(&a)[0];
    assert_eq!(action(r).timeout.unwrap().seconds, 1);
    assert_eq!(action(r).idle_timeout.unwrap().seconds, 7);
    let h = hcm(listener(&a, "outbound:127.0.0.1:20001"));
    assert_eq!(h.request_headers_timeout.unwrap().seconds, 3);
    assert_eq!(
        tcp_proxy(listener(&a, "outbound:127.0.0.1:20002"))
            .idle_timeout
            .unwrap()
            .seconds,
        30
    );
    let inbound = route_config(listener(&a, "inbound:127.0.0.1:20000"));
    assert_eq!(
        action(&inbound.virtual_hosts[0].routes[0])
            .timeout
            .unwrap()
            .seconds,
        11
    );
    envoy_validate(&a);
}

#[test]
fn meshretry_http_and_tcp() {
    // MeshRetry: route retry_policy (num, per-try, codes, methods) and tcp max_connect_attempts; numRetries 0 removes it.
    let p = res(r#"
type: MeshRetry
mesh: default
name: retry
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        tcp: {maxConnectAttempt: 4}
        http: {numRetries: 3, perTryTimeout: 2s, backOff: {baseInterval: 10ms, maxInterval: 100ms}, retryOn: [5xx, "503", HttpMethodGet], hostSelection: [{predicate: OmitPreviousHosts}]}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let rp = action(&backend_routes(&a)[0]).retry_policy.clone().unwrap();
    assert_eq!(rp.num_retries.unwrap().value, 3);
    assert_eq!(rp.retry_on, "5xx,retriable-status-codes");
    assert_eq!(rp.retriable_status_codes, vec![503]);
    assert_eq!(rp.retriable_request_headers.len(), 1);
    assert_eq!(rp.retry_host_predicate.len(), 1);
    assert_eq!(
        tcp_proxy(listener(&a, "outbound:127.0.0.1:20002"))
            .max_connect_attempts
            .unwrap()
            .value,
        4
    );
    envoy_validate(&a);
    let off = res(
        "type: MeshRetry\nmesh: default\nname: off\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {numRetries: 0}}\n",
    );
    let a = generate_config(&mesh_view(&[off]), &web()).unwrap();
    assert!(action(&backend_routes(&a)[0]).retry_policy.is_none());
}

#[test]
fn meshcircuitbreaker_limits_and_outlier_detection() {
    // MeshCircuitBreaker: thresholds with track_remaining; configured detectors enforce 100, others 0.
    let p = res(r#"
type: MeshCircuitBreaker
mesh: default
name: cb
spec:
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        connectionLimits: {maxConnections: 2, maxPendingRequests: 3, maxRequests: 4, maxRetries: 5}
        outlierDetection:
          interval: 1s
          baseEjectionTime: 30s
          maxEjectionPercent: 50
          detectors: {totalFailures: {consecutive: 2}, successRate: {standardDeviationFactor: "1.9"}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let c = cluster(&a, "backend");
    let t = &c.circuit_breakers.as_ref().unwrap().thresholds[0];
    assert_eq!(t.max_connections.unwrap().value, 2);
    assert!(t.track_remaining);
    let od = c.outlier_detection.as_ref().unwrap();
    assert_eq!(od.consecutive_5xx.unwrap().value, 2);
    assert_eq!(od.enforcing_consecutive_5xx.unwrap().value, 100);
    assert_eq!(od.enforcing_consecutive_gateway_failure.unwrap().value, 0);
    assert_eq!(od.success_rate_stdev_factor.unwrap().value, 1900);
    assert!(cluster(&a, "redis").outlier_detection.is_none());
    envoy_validate(&a);
}

#[test]
fn meshhealthcheck_by_protocol() {
    // MeshHealthCheck: HTTP checker for http destinations, TCP for tcp ones, Kuma's defaults.
    let p = res(r#"
type: MeshHealthCheck
mesh: default
name: hc
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {interval: 5s, timeout: 2s, http: {path: /health, expectedStatuses: [200]}, tcp: {send: ping, receive: [pong]}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let hc = &cluster(&a, "backend").health_checks[0];
    assert_eq!(hc.interval.unwrap().seconds, 5);
    assert_eq!(hc.unhealthy_threshold.unwrap().value, 5);
    match &hc.health_checker {
        Some(health_check::HealthChecker::HttpHealthCheck(h)) => assert_eq!(h.path, "/health"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        cluster(&a, "redis").health_checks[0].health_checker,
        Some(health_check::HealthChecker::TcpHealthCheck(_))
    ));
    envoy_validate(&a);
}

#[test]
fn meshloadbalancingstrategy_policy_and_hash() {
    // MeshLoadBalancingStrategy: cluster lb_policy + ring hash config, route hash_policy.
    let p = res(r#"
type: MeshLoadBalancingStrategy
mesh: default
name: lb
spec:
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        loadBalancer: {type: RingHash, ringHash: {minRingSize: 64, hashPolicies: [{type: Header, header: {name: x-user}}]}}
    - targetRef: {kind: MeshService, name: redis}
      default:
        loadBalancer: {type: LeastRequest, leastRequest: {choiceCount: 3}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let c = cluster(&a, "backend");
    assert_eq!(c.lb_policy, cluster::LbPolicy::RingHash as i32);
    assert_eq!(action(&backend_routes(&a)[0]).hash_policy.len(), 1);
    assert_eq!(
        cluster(&a, "redis").lb_policy,
        cluster::LbPolicy::LeastRequest as i32
    );
    envoy_validate(&a);
}
