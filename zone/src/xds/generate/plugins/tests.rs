//! Per-plugin tests: each policy changes the Envoy field Kuma's does.

use crate::xds::generate::generate_config;
use crate::xds::generate::tests::*;
use envoy_types::pb::envoy::config::cluster::v3::cluster;
use envoy_types::pb::envoy::config::core::v3::health_check;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::route::v3::RouteAction;
use envoy_types::pb::envoy::config::route::v3::{Route, route};
use prost::Message;
use std::sync::Arc;

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
    // Local-origin success rate follows success rate, as in Kuma.
    assert_eq!(od.enforcing_local_origin_success_rate.unwrap().value, 100);
    assert_eq!(
        od.enforcing_failure_percentage_local_origin.unwrap().value,
        0
    );
    assert!(cluster(&a, "redis").outlier_detection.is_none());
    envoy_validate(&a);

    // A consecutive detector without its count enforces nothing (Kuma's rule),
    // and local-origin detectors take effect with splitExternalAndLocalErrors.
    let p = res(r#"
type: MeshCircuitBreaker
mesh: default
name: cb
spec:
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        outlierDetection:
          splitExternalAndLocalErrors: true
          detectors: {totalFailures: {}, localOriginFailures: {consecutive: 3}, failurePercentage: {threshold: 80}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let od = cluster(&a, "backend").outlier_detection.clone().unwrap();
    assert_eq!(od.enforcing_consecutive_5xx.unwrap().value, 0);
    assert!(od.split_external_local_origin_errors);
    assert_eq!(od.consecutive_local_origin_failure.unwrap().value, 3);
    assert_eq!(
        od.enforcing_consecutive_local_origin_failure.unwrap().value,
        100
    );
    assert_eq!(
        od.enforcing_failure_percentage_local_origin.unwrap().value,
        100
    );
    envoy_validate(&a);
}

#[test]
fn every_cluster_tracks_remaining_without_a_circuit_breaker() {
    // As Kuma's MeshCircuitBreaker plugin: every cluster, with no policy at all,
    // has one DEFAULT threshold with track_remaining and no limits; a policy sets
    // only the limits it names on that same threshold.
    let a = generate_config(&mesh_view(&[]), &web()).unwrap();
    assert!(!a.clusters.is_empty());
    for c in &a.clusters {
        let t = &c.circuit_breakers.as_ref().expect(&c.name).thresholds;
        assert_eq!(t.len(), 1, "{}", c.name);
        assert!(t[0].track_remaining, "{}", c.name);
        assert_eq!(t[0].priority, 0, "{}", c.name);
        assert!(t[0].max_connections.is_none() && t[0].max_requests.is_none());
    }
    let p = res(r#"
type: MeshCircuitBreaker
mesh: default
name: cb
spec:
  to:
    - targetRef: {kind: MeshService, name: backend}
      default: {connectionLimits: {maxRequests: 7}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let t = &cluster(&a, "backend")
        .circuit_breakers
        .as_ref()
        .unwrap()
        .thresholds;
    assert_eq!(t.len(), 1);
    assert!(t[0].track_remaining);
    assert_eq!(t[0].max_requests.unwrap().value, 7);
    assert!(t[0].max_connections.is_none());
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

/// A client of an http, a tcp and a grpc service, each with one instance.
fn three_protocols(
    policies: &[Arc<weft_model::resource::Resource>],
) -> (
    crate::xds::generate::MeshView,
    Arc<weft_model::resource::Resource>,
) {
    let client = dataplane(
        "client-1",
        "127.0.0.1",
        20000,
        "client",
        "http",
        "",
        "    - {port: 20001, tags: {kuma.io/service: backend}}\n    - {port: 20002, tags: {kuma.io/service: redis}}\n    - {port: 20003, tags: {kuma.io/service: rpc}}\n",
    );
    let mut all = vec![
        client.clone(),
        dataplane(
            "backend-1",
            "127.0.0.2",
            20010,
            "backend",
            "http",
            "",
            "    []",
        ),
        dataplane("redis-1", "127.0.0.4", 20020, "redis", "tcp", "", "    []"),
        dataplane("rpc-1", "127.0.0.5", 20030, "rpc", "grpc", "", "    []"),
    ];
    all.extend(policies.iter().cloned());
    let mesh = res("type: Mesh\nname: default\n");
    (crate::xds::generate::MeshView::new(mesh, all), client)
}

#[test]
fn meshhealthcheck_checkers_only_from_set_sections() {
    // As Kuma's selectHealthCheckType: the destination protocol's own section
    // when set and enabled; a disabled http/grpc section falls back to an
    // enabled tcp one; a section the policy does not set gives no checker.
    use health_check::HealthChecker as H;
    let kind = |c: &envoy_types::pb::envoy::config::cluster::v3::Cluster| {
        assert!(c.health_checks.len() <= 1, "{}", c.name);
        match c
            .health_checks
            .first()
            .and_then(|h| h.health_checker.as_ref())
        {
            None => "-",
            Some(H::HttpHealthCheck(_)) => "http",
            Some(H::TcpHealthCheck(_)) => "tcp",
            Some(H::GrpcHealthCheck(_)) => "grpc",
            Some(_) => "other",
        }
    };
    for (sections, expected) in [
        ("{tcp: {}}", ["-", "tcp", "-"]),
        ("{http: {path: /h}}", ["http", "-", "-"]),
        ("{grpc: {}}", ["-", "-", "grpc"]),
        ("{http: {disabled: true}, tcp: {}}", ["tcp", "tcp", "-"]),
        ("{http: {disabled: true}}", ["-", "-", "-"]),
        ("{grpc: {disabled: true}, tcp: {}}", ["-", "tcp", "tcp"]),
        ("{grpc: {}, tcp: {disabled: true}}", ["-", "-", "grpc"]),
        ("{http: {}, tcp: {}, grpc: {}}", ["http", "tcp", "grpc"]),
    ] {
        let p = res(&format!(
            "type: MeshHealthCheck\nmesh: default\nname: hc\nspec:\n  to:\n    - targetRef: {{kind: Mesh}}\n      default: {sections}\n"
        ));
        let (view, client) = three_protocols(&[p]);
        let a = generate_config(&view, &client).unwrap();
        let got = [
            kind(cluster(&a, "backend")),
            kind(cluster(&a, "redis")),
            kind(cluster(&a, "rpc")),
        ];
        assert_eq!(got, expected, "{sections}");
        envoy_validate(&a);
    }
}

#[test]
fn meshhealthcheck_http_headers_event_log_and_panic() {
    // Kuma's HTTP checker headers (x-kuma-tags first, add then set, comma values
    // split), the event log file sink, fail_traffic_on_panic, decoded TCP payloads.
    let p = res(r#"
type: MeshHealthCheck
mesh: default
name: hc
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        eventLogPath: /tmp/hc-events.log
        failTrafficOnPanic: true
        healthyPanicThreshold: 30
        http:
          path: /health
          requestHeadersToAdd:
            set: [{name: x-set, value: s}]
            add: [{name: x-add, value: "a,b"}]
        tcp: {send: cGluZw==, receive: [cG9uZw==]}
"#);
    let (view, client) = three_protocols(&[p]);
    let a = generate_config(&view, &client).unwrap();
    let c = cluster(&a, "backend");
    let hc = &c.health_checks[0];
    let Some(health_check::HealthChecker::HttpHealthCheck(h)) = &hc.health_checker else {
        panic!("{hc:?}")
    };
    let headers: Vec<(String, String, i32)> = h
        .request_headers_to_add
        .iter()
        .map(|o| {
            let hv = o.header.clone().unwrap();
            (hv.key, hv.value, o.append_action)
        })
        .collect();
    assert_eq!(
        headers,
        vec![
            (
                "x-kuma-tags".into(),
                "&kuma.io/protocol=http&&kuma.io/service=client&".into(),
                0
            ),
            ("x-add".into(), "a".into(), 0),
            ("x-add".into(), "b".into(), 0),
            ("x-set".into(), "s".into(), 2),
        ]
    );
    assert_eq!(hc.event_logger.len(), 1);
    assert_eq!(
        hc.event_logger[0].name,
        "envoy.health_check.event_sinks.file"
    );
    let lb = c.common_lb_config.as_ref().unwrap();
    assert_eq!(lb.healthy_panic_threshold.as_ref().unwrap().value, 30.0);
    match &lb.locality_config_specifier {
        Some(cluster::common_lb_config::LocalityConfigSpecifier::ZoneAwareLbConfig(z)) => {
            assert!(z.fail_traffic_on_panic)
        }
        other => panic!("{other:?}"),
    }
    let Some(health_check::HealthChecker::TcpHealthCheck(t)) =
        &cluster(&a, "redis").health_checks[0].health_checker
    else {
        panic!()
    };
    let text = |p: &Option<health_check::Payload>| match p.as_ref().and_then(|p| p.payload.clone())
    {
        Some(health_check::payload::Payload::Text(t)) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(text(&t.send), "70696e67", "hex of the decoded \"ping\"");
    assert_eq!(text(&t.receive.first().cloned()), "706f6e67");
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

const HTTP_ROUTE: &str = r#"
type: MeshHTTPRoute
mesh: default
name: route
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, name: backend}
      rules:
        - matches: [{path: {type: PathPrefix, value: /api}, method: GET, headers: [{type: Exact, name: x-user, value: a}], queryParams: [{type: Exact, name: q, value: "1"}]}]
          default:
            filters:
              - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-set, value: "1"}], add: [{name: x-add, value: "2"}], remove: [x-gone]}}
              - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-resp, value: "3"}]}}
              - {type: URLRewrite, urlRewrite: {hostname: example.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
            backendRefs:
              - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}
              - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}
        - matches: [{path: {type: Exact, value: /old}}]
          default:
            filters:
              - {type: RequestRedirect, requestRedirect: {scheme: https, hostname: new.example, path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}}
        - matches: [{path: {type: RegularExpression, value: "^/re/[0-9]+$"}}]
          default:
            filters:
              - {type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /fixed}}}
              - {type: RequestMirror, requestMirror: {percentage: 25, backendRef: {kind: MeshService, name: redis}}}
"#;

#[test]
fn meshhttproute_matches_splits_filters_and_order() {
    // MeshHTTPRoute: prefix → two routes, exact/regex, weighted subset clusters with filtered CLAs, filters, catch-all last.
    let view = mesh_view(&[res(HTTP_ROUTE)]);
    let a = generate_config(&view, &web()).unwrap();
    let routes = backend_routes(&a);
    use envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier as P;
    let paths: Vec<String> = routes
        .iter()
        .map(
            |r| match r.r#match.as_ref().unwrap().path_specifier.as_ref().unwrap() {
                P::Path(p) => format!("path {p}"),
                P::Prefix(p) => format!("prefix {p}"),
                P::SafeRegex(re) => format!("regex {}", re.regex),
                other => format!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(
        paths,
        vec![
            "path /old",
            "path /api",
            "prefix /api/",
            "regex ^/re/[0-9]+$",
            "prefix /"
        ]
    );
    let api = &routes[1];
    assert_eq!(api.r#match.as_ref().unwrap().headers.len(), 2);
    assert_eq!(api.r#match.as_ref().unwrap().query_parameters.len(), 1);
    assert_eq!(api.request_headers_to_add.len(), 2);
    assert_eq!(api.request_headers_to_remove, vec!["x-gone"]);
    assert_eq!(api.response_headers_to_add.len(), 1);
    let act = action(api);
    assert_eq!(act.prefix_rewrite, "/v2");
    assert_eq!(action(&routes[2]).prefix_rewrite, "/v2/");
    use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
    let Some(ClusterSpecifier::WeightedClusters(w)) = &act.cluster_specifier else {
        panic!("{act:?}")
    };
    let weights: Vec<u32> = w.clusters.iter().map(|c| c.weight.unwrap().value).collect();
    assert_eq!(weights, vec![90, 10]);
    // Each subset cluster has exactly the instance with its version.
    for c in &w.clusters {
        let cla =
            ClusterLoadAssignment::decode(a.endpoints[&c.name].payload.value.as_slice()).unwrap();
        assert_eq!(
            cla.endpoints
                .iter()
                .map(|l| l.lb_endpoints.len())
                .sum::<usize>(),
            1
        );
        assert!(c.name.starts_with("backend-"));
    }
    assert!(matches!(routes[0].action, Some(route::Action::Redirect(_))));
    assert_eq!(action(&routes[3]).request_mirror_policies.len(), 1);
    assert!(action(&routes[3]).regex_rewrite.is_some());
    envoy_validate(&a);
}

#[test]
fn meshtcproute_weighted_and_http_as_tcp() {
    // MeshTCPRoute: weighted tcp_proxy clusters; an HTTP service with only a TCP route is proxied as TCP.
    let p = res(r#"
type: MeshTCPRoute
mesh: default
name: tcp
spec:
  to:
    - targetRef: {kind: MeshService, name: backend}
      rules:
        - default:
            backendRefs:
              - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 3}
              - {kind: MeshService, name: redis, weight: 1}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let tcp = tcp_proxy(listener(&a, "outbound:127.0.0.1:20001"));
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier;
    let Some(ClusterSpecifier::WeightedClusters(w)) = tcp.cluster_specifier else {
        panic!()
    };
    assert_eq!(w.clusters.len(), 2);
    envoy_validate(&a);
}

fn backend_1() -> Arc<weft_model::resource::Resource> {
    dataplane(
        "backend-1",
        "127.0.0.2",
        20010,
        "backend",
        "http",
        ", version: v1",
        "    []",
    )
}

#[test]
fn meshfaultinjection_inbound_filters_before_router() {
    // MeshFaultInjection: one fault filter per http[] entry on the selected inbound, before the router.
    let p = res(r#"
type: MeshFaultInjection
mesh: default
name: fault
spec:
  targetRef: {kind: MeshService, name: backend}
  from:
    - targetRef: {kind: Mesh}
      default:
        http:
          - abort: {httpStatus: 503, percentage: 50}
          - delay: {value: 1s, percentage: "12.5"}
          - responseBandwidth: {limit: 100kbps, percentage: 100}
"#);
    let a = generate_config(&mesh_view(&[p]), &backend_1()).unwrap();
    let h = hcm(listener(&a, "inbound:127.0.0.2:20010"));
    let names: Vec<&str> = h.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "envoy.filters.http.fault",
            "envoy.filters.http.fault",
            "envoy.filters.http.fault",
            "envoy.filters.http.router"
        ]
    );
    let Some(envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType::TypedConfig(any)) = &h.http_filters[0].config_type else { panic!() };
    let fault = envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault::decode(
        any.value.as_slice(),
    )
    .unwrap();
    assert_eq!(fault.abort.unwrap().percentage.unwrap().numerator, 500_000);
    assert!(super::meshfaultinjection::kbps("2Mbps") == Some(2000));
    // web is not selected: no fault filter there.
    let w = generate_config(&mesh_view(&[]), &web()).unwrap();
    assert_eq!(
        hcm(listener(&w, "inbound:127.0.0.1:20000"))
            .http_filters
            .len(),
        1
    );
    envoy_validate(&a);
}

fn faults(
    l: &envoy_types::pb::envoy::config::listener::v3::Listener,
) -> Vec<envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault> {
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
    hcm(l)
        .http_filters
        .iter()
        .filter(|f| f.name == "envoy.filters.http.fault")
        .map(|f| match &f.config_type {
            Some(ConfigType::TypedConfig(any)) => {
                envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault::decode(
                    any.value.as_slice(),
                )
                .unwrap()
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

/// `(regex, inverted)` of each `x-kuma-tags` matcher of a fault.
fn tag_matchers(
    f: &envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault,
) -> Vec<(String, bool)> {
    use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
    use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
    f.headers
        .iter()
        .map(|h| {
            assert_eq!(h.name, "x-kuma-tags");
            match &h.header_match_specifier {
                Some(HeaderMatchSpecifier::StringMatch(m)) => match &m.match_pattern {
                    Some(MatchPattern::SafeRegex(r)) => (r.regex.clone(), h.invert_match),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

#[test]
fn meshfaultinjection_from_sources_matches_x_kuma_tags() {
    // As Kuma's legacy from-rules: the clients split into "web" (the merge of the
    // Mesh and the web entry: arrays replace, so web's fault only) and "not web"
    // (the Mesh entry), matched on the x-kuma-tags header the client's outbound sets.
    let p = res(r#"
type: MeshFaultInjection
mesh: default
name: fault
spec:
  targetRef: {kind: MeshService, name: backend}
  from:
    - targetRef: {kind: Mesh}
      default: {http: [{abort: {httpStatus: 500, percentage: 10}}]}
    - targetRef: {kind: MeshService, name: web}
      default: {http: [{abort: {httpStatus: 503, percentage: 100}}]}
"#);
    let view = mesh_view(&[p]);
    let a = generate_config(&view, &backend_1()).unwrap();
    let f = faults(listener(&a, "inbound:127.0.0.2:20010"));
    assert_eq!(f.len(), 2, "{f:?}");
    let status = |f: &envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault| {
        match f.abort.as_ref().unwrap().error_type {
            Some(envoy_types::pb::envoy::extensions::filters::http::fault::v3::fault_abort::ErrorType::HttpStatus(s)) => s,
            ref other => panic!("{other:?}"),
        }
    };
    let from_web = r".*&kuma\.io/service=([^&]*,)?web[,&].*".to_string();
    assert_eq!(status(&f[0]), 503);
    assert_eq!(tag_matchers(&f[0]), vec![(from_web.clone(), false)]);
    assert_eq!(status(&f[1]), 500);
    assert_eq!(tag_matchers(&f[1]), vec![(from_web, true)]);
    envoy_validate(&a);

    // The client's outbound routes carry its tags once a mesh has a MeshFaultInjection.
    let w = generate_config(&view, &web()).unwrap();
    let rc = route_config(listener(&w, "outbound:127.0.0.1:20001"));
    let h = rc.request_headers_to_add[0].header.clone().unwrap();
    assert_eq!(
        (h.key.as_str(), h.value.as_str()),
        (
            "x-kuma-tags",
            "&kuma.io/protocol=http&&kuma.io/service=web&"
        )
    );
    let plain = generate_config(&mesh_view(&[]), &web()).unwrap();
    assert!(
        route_config(listener(&plain, "outbound:127.0.0.1:20001"))
            .request_headers_to_add
            .is_empty()
    );
}

#[test]
fn meshfaultinjection_source_groups_exclude_every_other_value() {
    // Two MeshServiceSubset sources: three groups; the rest of the clients
    // excludes both values (one inverted matcher each); only-source entries
    // leave everyone else without a fault.
    let p = res(r#"
type: MeshFaultInjection
mesh: default
name: fault
spec:
  targetRef: {kind: MeshService, name: backend}
  from:
    - targetRef: {kind: MeshSubset, tags: {version: v1}}
      default: {http: [{abort: {httpStatus: 501, percentage: 100}}]}
    - targetRef: {kind: MeshSubset, tags: {version: v2}}
      default: {http: [{abort: {httpStatus: 502, percentage: 100}}]}
    - targetRef: {kind: Mesh}
      default: {http: [{delay: {value: 1s, percentage: 100}}]}
"#);
    let a = generate_config(&mesh_view(&[p]), &backend_1()).unwrap();
    let f = faults(listener(&a, "inbound:127.0.0.2:20010"));
    let m: Vec<Vec<(String, bool)>> = f.iter().map(tag_matchers).collect();
    let v = |x: &str| format!(".*&version=([^&]*,)?{x}[,&].*");
    assert_eq!(
        m,
        vec![
            vec![(v("v1"), false)],
            vec![(v("v2"), false)],
            vec![(v("v1"), true), (v("v2"), true)],
        ]
    );
    assert!(f[2].delay.is_some() && f[2].abort.is_none());
    envoy_validate(&a);

    let only = res(r#"
type: MeshFaultInjection
mesh: default
name: fault
spec:
  targetRef: {kind: MeshService, name: backend}
  from:
    - targetRef: {kind: MeshService, name: web}
      default: {http: [{abort: {httpStatus: 503, percentage: 100}}]}
"#);
    let a = generate_config(&mesh_view(&[only]), &backend_1()).unwrap();
    assert_eq!(faults(listener(&a, "inbound:127.0.0.2:20010")).len(), 1);
}

#[test]
fn meshratelimit_http_and_tcp() {
    // MeshRateLimit: HTTP local_ratelimit filter + per-route token bucket; TCP network filter first.
    let p = res(r#"
type: MeshRateLimit
mesh: default
name: rl
spec:
  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}
  from:
    - targetRef: {kind: Mesh}
      default:
        local:
          http: {requestRate: {num: 10, interval: 1s}, onRateLimit: {status: 429, headers: {set: [{name: x-limited, value: "yes"}]}}}
          tcp: {connectionRate: {num: 5, interval: 10s}}
"#);
    let view = mesh_view(&[p]);
    let a = generate_config(&view, &backend_1()).unwrap();
    let l = listener(&a, "inbound:127.0.0.2:20010");
    let h = hcm(l);
    assert_eq!(h.http_filters[0].name, super::meshratelimit::HTTP_FILTER);
    let Some(envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType::TypedConfig(any)) = &h.http_filters[0].config_type else { panic!() };
    let rl = envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit::decode(any.value.as_slice()).unwrap();
    let tb = rl.token_bucket.unwrap();
    assert_eq!((tb.max_tokens, tb.fill_interval.unwrap().seconds), (10, 1));
    assert_eq!(rl.status.unwrap().code, 429);
    envoy_validate(&a);
    let redis = dataplane("redis-1", "127.0.0.4", 20020, "redis", "tcp", "", "    []");
    let r = generate_config(&view, &redis).unwrap();
    let l = listener(&r, "inbound:127.0.0.4:20020");
    assert_eq!(
        l.filter_chains[0].filters[0].name,
        "envoy.filters.network.local_ratelimit"
    );
    envoy_validate(&r);
}

#[test]
fn meshaccesslog_file_and_tcp() {
    // MeshAccessLog: file logger with Kuma placeholders substituted; a TCP backend logs
    // through the bootstrap's access_log_sink with the collector in the tag, and adds no cluster.
    let p = res(r#"
type: MeshAccessLog
mesh: default
name: al
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: Mesh}
      default:
        backends:
          - {type: File, file: {path: /tmp/weft-al-test.log}}
          - {type: Tcp, tcp: {address: "127.0.0.1:5170", format: {type: Json, json: [{key: dst, value: "%KUMA_DESTINATION_SERVICE%"}]}}}
  from:
    - targetRef: {kind: Mesh}
      default:
        backends:
          - {type: File, file: {path: /tmp/weft-al-in.log, format: {type: Plain, plain: "%KUMA_MESH% %RESPONSE_CODE%"}}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let h = hcm(listener(&a, "outbound:127.0.0.1:20001"));
    assert_eq!(h.access_log.len(), 2);
    assert_eq!(h.access_log[0].name, "envoy.access_loggers.file");
    assert_eq!(h.access_log[1].name, "envoy.access_loggers.fluentd");
    assert_eq!(
        tcp_proxy(listener(&a, "outbound:127.0.0.1:20002"))
            .access_log
            .len(),
        2
    );
    assert!(
        a.clusters
            .iter()
            .all(|c| !c.name.starts_with("meshaccesslog")),
        "no per-collector cluster"
    );
    let Some(envoy_types::pb::envoy::config::accesslog::v3::access_log::ConfigType::TypedConfig(
        fluentd,
    )) = &h.access_log[1].config_type
    else {
        panic!()
    };
    let fluentd = envoy_types::pb::envoy::extensions::access_loggers::fluentd::v3::FluentdAccessLogConfig::decode(
        fluentd.value.as_slice(),
    )
    .unwrap();
    assert_eq!(fluentd.cluster, "access_log_sink");
    assert_eq!(fluentd.tag, "weft.tcp.127.0.0.1:5170");
    let message = format!("{:?}", fluentd.record.unwrap().fields["message"]);
    assert!(
        message.contains(r#"dst"#) && message.contains("backend"),
        "{message}"
    );
    let inbound = hcm(listener(&a, "inbound:127.0.0.1:20000"));
    let Some(envoy_types::pb::envoy::config::accesslog::v3::access_log::ConfigType::TypedConfig(
        any,
    )) = &inbound.access_log[0].config_type
    else {
        panic!()
    };
    let text = String::from_utf8_lossy(&any.value).to_string();
    assert!(text.contains("default %RESPONSE_CODE%"), "{text}");
    envoy_validate(&a);
}

#[test]
fn meshmetric_prometheus_listener_to_envoy_admin() {
    // MeshMetric: one listener per Prometheus backend on the proxy's address, routing
    // the path to Envoy's admin stats with usedonly/filter; taken ports and OpenTelemetry
    // backends add nothing.
    use crate::xds::generate::plugins::meshmetric::ADMIN_CLUSTER;
    let p = res(r#"
type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef: {kind: Mesh}
  default:
    sidecar: {includeUnused: true, regex: "^server\\."}
    backends:
      - {type: Prometheus, prometheus: {port: 5670}}
      - {type: Prometheus, prometheus: {clientId: second, port: 5671, path: /stats}}
      - {type: Prometheus, prometheus: {clientId: clash, port: 20000}}
      - {type: OpenTelemetry, openTelemetry: {endpoint: "otel:4317"}}
"#);
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    let metric: Vec<&str> = a
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .filter(|n| n.starts_with("_kuma:metrics"))
        .collect();
    assert_eq!(
        metric,
        [
            "_kuma:metrics:prometheus:default-backend",
            "_kuma:metrics:prometheus:second"
        ]
    );
    let l = listener(&a, "_kuma:metrics:prometheus:second");
    assert_eq!(
        l.address,
        Some(crate::xds::generate::envoy::socket("127.0.0.1", 5671))
    );
    let r = &route_config(l).virtual_hosts[0].routes[0];
    assert_eq!(
        r.r#match.as_ref().unwrap().path_specifier,
        Some(
            envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::Prefix(
                "/stats".into()
            )
        )
    );
    let act = action(r);
    assert_eq!(
        act.cluster_specifier,
        Some(
            envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier::Cluster(
                ADMIN_CLUSTER.into()
            )
        )
    );
    assert_eq!(
        act.regex_rewrite.as_ref().unwrap().substitution,
        "/stats/prometheus?filter=%5Eserver%5C.&text_readouts"
    );
    let admin = cluster(&a, ADMIN_CLUSTER);
    let ep = format!("{:?}", admin.load_assignment);
    assert!(
        ep.contains("127.0.0.1") && ep.contains("PortValue(9901)"),
        "{ep}"
    );
    envoy_validate(&a);

    // Without a policy: no listener, no admin cluster.
    let none = generate_config(&mesh_view(&[]), &web()).unwrap();
    assert!(none.clusters.iter().all(|c| c.name != ADMIN_CLUSTER));
    assert!(
        none.listeners
            .iter()
            .all(|l| !l.name.starts_with("_kuma:metrics"))
    );
}

#[test]
fn every_policy_together_is_accepted_by_envoy() {
    // All plugins at once on a client and a server proxy: Envoy accepts the whole config.
    let all = [
        res(TIMEOUT),
        res(HTTP_ROUTE),
        res(
            "type: MeshRetry\nmesh: default\nname: r\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {tcp: {maxConnectAttempt: 3}, http: {numRetries: 2, retryOn: [5xx]}}\n",
        ),
        res(
            "type: MeshCircuitBreaker\nmesh: default\nname: cb\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {connectionLimits: {maxConnections: 10}, outlierDetection: {detectors: {gatewayFailures: {consecutive: 3}}}}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {connectionLimits: {maxRequests: 20}}\n",
        ),
        res(
            "type: MeshHealthCheck\nmesh: default\nname: hc\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {interval: 10s, http: {path: /}}\n",
        ),
        res(
            "type: MeshLoadBalancingStrategy\nmesh: default\nname: lb\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {loadBalancer: {type: Maglev, maglev: {hashPolicies: [{type: Cookie, cookie: {name: s, ttl: 1h}}]}}}\n",
        ),
        res(
            "type: MeshFaultInjection\nmesh: default\nname: fi\nspec:\n  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}\n",
        ),
        res(
            "type: MeshRateLimit\nmesh: default\nname: rl\nspec:\n  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {local: {http: {requestRate: {num: 100, interval: 1s}}, tcp: {connectionRate: {num: 100, interval: 1s}}}}\n",
        ),
        res(
            "type: MeshAccessLog\nmesh: default\nname: al\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {backends: [{type: File, file: {path: /tmp/weft-al-all.log}}]}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {backends: [{type: Tcp, tcp: {address: \"localhost:5170\"}}]}\n",
        ),
        res(
            "type: MeshMetric\nmesh: default\nname: mm\nspec:\n  targetRef: {kind: Mesh}\n  default: {backends: [{type: Prometheus, prometheus: {port: 5670}}]}\n",
        ),
        res(
            "type: MeshTrace\nmesh: default\nname: t\nspec:\n  default: {backends: [{type: Zipkin, zipkin: {url: 'http://zipkin:9411/api/v2/spans'}}], sampling: {overall: 50}}\n",
        ),
    ];
    let view = mesh_view(&all);
    for dp in [web(), backend_1()] {
        let a = generate_config(&view, &dp).unwrap();
        envoy_validate(&a);
    }
}

#[test]
fn every_emitted_type_renders_as_envoy_json() {
    // The inspect API's descriptor set (zone/proto/envoy.pb) knows every type the generator emits.
    let al = res(
        "type: MeshAccessLog\nmesh: default\nname: al\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {backends: [{type: File, file: {path: /tmp/x.log}}, {type: Tcp, tcp: {address: \"127.0.0.1:1\"}}]}\n",
    );
    let fi = res(
        "type: MeshFaultInjection\nmesh: default\nname: fi\nspec:\n  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {http: [{abort: {httpStatus: 500, percentage: 1}, delay: {value: 1s, percentage: 1}}]}\n",
    );
    let rl = res(
        "type: MeshRateLimit\nmesh: default\nname: rl\nspec:\n  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {local: {http: {requestRate: {num: 1, interval: 1s}}, tcp: {connectionRate: {num: 1, interval: 1s}}}}\n",
    );
    let retry = res(
        "type: MeshRetry\nmesh: default\nname: r\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {hostSelection: [{predicate: OmitPreviousHosts}, {predicate: OmitPreviousPriorities, updateFrequency: 2}, {predicate: OmitHostsWithTags, tags: {version: v1}}]}}\n",
    );
    let mm = res(
        "type: MeshMetric\nmesh: default\nname: mm\nspec:\n  targetRef: {kind: Mesh}\n  default: {backends: [{type: Prometheus, prometheus: {port: 5670}}]}\n",
    );
    // An https Zipkin collector: the tracer config and the TLS socket render too.
    let trace = res(
        "type: MeshTrace\nmesh: default\nname: t\nspec:\n  default: {backends: [{type: Zipkin, zipkin: {url: 'https://zipkin:9411/api/v2/spans'}}]}\n",
    );
    let view = mesh_view(&[al, fi, rl, retry, mm, res(HTTP_ROUTE), trace]);
    let redis = dataplane("redis-1", "127.0.0.4", 20020, "redis", "tcp", "", "    []");
    for dp in [web(), backend_1(), redis] {
        let snap = crate::xds::generate::generate(&view, &dp).unwrap();
        for ty in snap.type_urls() {
            for (name, entry) in snap.get(ty).unwrap().iter() {
                let v = crate::xds::generate::json::any_to_json(&entry.payload)
                    .unwrap_or_else(|e| panic!("{ty} {name}: {e}"));
                assert!(!packed_any(&v), "an Any left packed in {name}: {v}");
            }
        }
    }
}

/// Whether `v` holds an `Any` prost-reflect could not expand (`{"@type", "value"}` only).
fn packed_any(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(o) => {
            (o.len() == 2 && o.contains_key("@type") && o.contains_key("value"))
                || o.values().any(packed_any)
        }
        serde_json::Value::Array(a) => a.iter().any(packed_any),
        _ => false,
    }
}

#[test]
fn meshtimeout_fills_kuma_defaults_and_skips_grpc_clusters() {
    // What a MeshTimeout leaves unset takes Kuma's defaults (request 15 s,
    // stream idle 30 min, idle 1 h, connect 5 s); gRPC clusters get no HTTP
    // options from it, as in Kuma.
    let p = res(r#"
type: MeshTimeout
mesh: default
name: connect-only
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: Mesh}
      default: {connectionTimeout: 2s}
"#);
    let grpc = dataplane(
        "grpc-1",
        "127.0.0.5",
        20030,
        "grpcsvc",
        "grpc",
        "",
        "    []",
    );
    let caller = dataplane(
        "caller-1",
        "127.0.0.6",
        20040,
        "caller",
        "http",
        "",
        "    - port: 20041\n      tags: {kuma.io/service: grpcsvc}",
    );
    let a = generate_config(&mesh_view(&[p.clone(), grpc.clone()]), &web()).unwrap();
    let r = &backend_routes(&a)[0];
    assert_eq!(action(r).timeout.unwrap().seconds, 15);
    assert_eq!(action(r).idle_timeout.unwrap().seconds, 1800);
    let c = cluster(&a, "backend");
    assert_eq!(c.connect_timeout.unwrap().seconds, 2);
    let opts = c
        .typed_extension_protocol_options
        .values()
        .next()
        .map(|any| {
            envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions::decode(
                any.value.as_slice(),
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(
        opts.common_http_protocol_options
            .unwrap()
            .idle_timeout
            .unwrap()
            .seconds,
        3600
    );
    assert_eq!(
        tcp_proxy(listener(&a, "outbound:127.0.0.1:20002"))
            .idle_timeout
            .unwrap()
            .seconds,
        3600
    );
    envoy_validate(&a);
    let a = generate_config(&mesh_view(&[p, grpc]), &caller).unwrap();
    let g = cluster(&a, "grpcsvc");
    assert_eq!(g.connect_timeout.unwrap().seconds, 2);
    let common = g
        .typed_extension_protocol_options
        .values()
        .next()
        .map(|any| {
            envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions::decode(
                any.value.as_slice(),
            )
            .unwrap()
            .common_http_protocol_options
        });
    assert!(
        common.flatten().is_none(),
        "a gRPC cluster gets no idle or durations from MeshTimeout"
    );
    envoy_validate(&a);
}

#[test]
fn meshretry_http_section_applies_to_http2_destinations() {
    // Decision 0012 §2: Kuma gives an `http2` destination no retry policy; Weft
    // applies MeshRetry's `http` section to `http` and `http2` alike.
    let mesh = res("type: Mesh\nname: default\n");
    let backend = crate::xds::generate::tests::dataplane(
        "backend-1",
        "127.0.0.2",
        20010,
        "backend",
        "http2",
        "",
        "    []",
    );
    let retry = res(
        "type: MeshRetry\nmesh: default\nname: r\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {numRetries: 2}}\n",
    );
    let view = crate::xds::generate::MeshView::new(mesh, vec![web(), backend, retry]);
    let a = generate_config(&view, &web()).unwrap();
    let rp = action(&backend_routes(&a)[0]).retry_policy.clone();
    assert_eq!(rp.and_then(|r| r.num_retries).map(|n| n.value), Some(2));
    envoy_validate(&a);
}

#[test]
fn meshretry_omit_hosts_with_tags_matches_endpoint_metadata() {
    // OmitHostsWithTags becomes Envoy's omit_host_metadata predicate over the
    // `envoy.lb` metadata every endpoint carries (its tags), as in Kuma.
    let retry = res(
        "type: MeshRetry\nmesh: default\nname: r\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default: {http: {numRetries: 2, hostSelection: [{predicate: OmitHostsWithTags, tags: {version: v1}}]}}\n",
    );
    let a = generate_config(&mesh_view(&[retry]), &web()).unwrap();
    let policy = action(&backend_routes(&a)[0]).retry_policy.clone().unwrap();
    assert_eq!(
        policy.retry_host_predicate[0].name,
        "envoy.retry_host_predicates.omit_host_metadata"
    );
    let entry = a.endpoints.get("backend").unwrap();
    let cla = ClusterLoadAssignment::decode(entry.payload.value.as_slice()).unwrap();
    let tagged = cla.endpoints[0].lb_endpoints.iter().any(|e| {
        e.metadata
            .as_ref()
            .is_some_and(|m| m.filter_metadata["envoy.lb"].fields.contains_key("version"))
    });
    assert!(tagged, "endpoints carry their tags: {cla:?}");
    envoy_validate(&a);
}

#[test]
fn top_level_meshhttproute_applies_to_that_routes_only() {
    // MeshTimeout and MeshRetry with `targetRef: {kind: MeshHTTPRoute}` change the
    // Envoy routes generated from that route's rules (named by their matches)
    // and no other route; the mesh-wide conf still applies to the others and is
    // the base the route's conf merges over. A route that does not select the
    // proxy leaves it untouched (its policy would win the merge: smaller name).
    let route = |name: &str, top: &str| {
        res(&format!(
            r#"
type: MeshHTTPRoute
mesh: default
name: {name}
spec:
  targetRef: {top}
  to:
    - targetRef: {{kind: MeshService, name: backend}}
      rules:
        - matches: [{{path: {{type: PathPrefix, value: /api}}}}]
          default: {{}}
"#
        ))
    };
    let on_route = |ty: &str, name: &str, default: &str| {
        let lower = ty.to_lowercase();
        res(&format!(
            "type: {ty}\nmesh: default\nname: {lower}-{name}\nspec:\n  targetRef: {{kind: MeshHTTPRoute, name: {name}}}\n  to:\n    - targetRef: {{kind: Mesh}}\n      default: {default}\n"
        ))
    };
    let mesh_wide = res(
        "type: MeshTimeout\nmesh: default\nname: all\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {requestTimeout: 20s, streamIdleTimeout: 40s}}\n",
    );
    let view = mesh_view(&[
        route("api", "{kind: Mesh}"),
        route("a-elsewhere", "{kind: MeshService, name: redis}"),
        mesh_wide,
        on_route("MeshTimeout", "api", "{http: {requestTimeout: 3s}}"),
        on_route("MeshRetry", "api", "{http: {numRetries: 7}}"),
        on_route("MeshTimeout", "a-elsewhere", "{http: {requestTimeout: 9s}}"),
    ]);
    let a = generate_config(&view, &web()).unwrap();
    let routes = backend_routes(&a);
    let api = crate::xds::generate::names::route_name(&[serde_json::from_str(
        r#"{"path": {"type": "PathPrefix", "value": "/api"}}"#,
    )
    .unwrap()]);
    let (ours, others): (Vec<&Route>, Vec<&Route>) = routes.iter().partition(|r| r.name == api);
    assert_eq!(ours.len(), 2, "/api and /api/: {routes:?}");
    assert!(!others.is_empty());
    for r in ours {
        assert_eq!(action(r).timeout.unwrap().seconds, 3);
        assert_eq!(
            action(r).idle_timeout.unwrap().seconds,
            40,
            "merged over the mesh-wide conf"
        );
        assert_eq!(
            action(r)
                .retry_policy
                .as_ref()
                .unwrap()
                .num_retries
                .unwrap()
                .value,
            7
        );
    }
    for r in others {
        assert_eq!(action(r).timeout.unwrap().seconds, 20);
        assert!(action(r).retry_policy.is_none());
    }
    envoy_validate(&a);
}

fn proxy_patch(mods: &str) -> Arc<weft_model::resource::Resource> {
    res(&format!(
        "type: MeshProxyPatch\nmesh: default\nname: patch\nspec:\n  targetRef: {{kind: Mesh}}\n  default:\n    appendModifications:\n{mods}"
    ))
}

#[test]
fn meshproxypatch_adds_patches_and_removes_clusters_and_listeners() {
    // MeshProxyPatch: Add (value), Patch (value merged / jsonPatches), Remove, matched
    // by name, origin and listener tags, on the finished clusters and listeners.
    let p = proxy_patch(
        r#"      - cluster:
          operation: Add
          value: |
            name: patched-cluster
            type: STATIC
            connectTimeout: 3s
            loadAssignment:
              clusterName: patched-cluster
              endpoints: [{lbEndpoints: [{endpoint: {address: {socketAddress: {address: 127.0.0.1, portValue: 9999}}}}]}]
      - listener:
          operation: Add
          value: |
            name: patched-listener
            address: {socketAddress: {address: 127.0.0.1, portValue: 20099}}
            filterChains:
              - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typedConfig:
                      '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      statPrefix: patched
                      cluster: patched-cluster
      - cluster:
          match: {origin: inbound}
          operation: Patch
          value: '{"connectTimeout": "0.5s", "perConnectionBufferLimitBytes": 1024}'
      - cluster:
          match: {name: backend, origin: outbound}
          operation: Patch
          jsonPatches:
            - {op: add, path: /connectTimeout, value: 9s}
            - {op: replace, path: /name, value: backend}
      - cluster:
          match: {name: backend, origin: inbound}
          operation: Patch
          jsonPatches: [{op: add, path: /connectTimeout, value: 1s}]
      - listener:
          match: {origin: inbound}
          operation: Patch
          jsonPatches: [{op: add, path: /perConnectionBufferLimitBytes, value: 32768}]
      - listener:
          match: {tags: {kuma.io/service: backend}}
          operation: Patch
          value: 'perConnectionBufferLimitBytes: 4096'
      - listener:
          match: {name: outbound:127.0.0.1:20002}
          operation: Remove
      - cluster:
          match: {name: redis}
          operation: Remove
      - listener:
          match: {origin: mesh-proxy-patch}
          operation: Patch
          jsonPatches: [{op: replace, path: /filterChains/0/filters/0/typedConfig/statPrefix, value: added}]
"#,
    );
    let base = generate_config(&mesh_view(&[]), &web()).unwrap();
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    // Add.
    assert_eq!(
        cluster(&a, "patched-cluster")
            .connect_timeout
            .unwrap()
            .seconds,
        3
    );
    let added = listener(&a, "patched-listener");
    assert_eq!(tcp_proxy(added).stat_prefix, "added");
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier;
    assert_eq!(
        tcp_proxy(added).cluster_specifier,
        Some(ClusterSpecifier::Cluster("patched-cluster".into()))
    );
    // Patch by value: protobuf merge, a duration replaced whole.
    let local = cluster(&a, "localhost:21000");
    let ct = local.connect_timeout.unwrap();
    assert_eq!((ct.seconds, ct.nanos), (0, 500_000_000));
    assert_eq!(
        local.per_connection_buffer_limit_bytes.map(|v| v.value),
        Some(1024)
    );
    assert_eq!(
        cluster(&base, "localhost:21000").eds_cluster_config,
        local.eds_cluster_config
    );
    // Patch by jsonPatches, by name and origin (the inbound-origin one matches nothing).
    assert_eq!(cluster(&a, "backend").connect_timeout.unwrap().seconds, 9);
    assert_eq!(
        cluster(&a, "backend").eds_cluster_config,
        cluster(&base, "backend").eds_cluster_config
    );
    assert_eq!(
        listener(&a, "inbound:127.0.0.1:20000")
            .per_connection_buffer_limit_bytes
            .map(|v| v.value),
        Some(32768)
    );
    assert_eq!(
        listener(&a, "outbound:127.0.0.1:20001")
            .per_connection_buffer_limit_bytes
            .map(|v| v.value),
        Some(4096)
    );
    assert_eq!(
        hcm(listener(&a, "outbound:127.0.0.1:20001")),
        hcm(listener(&base, "outbound:127.0.0.1:20001"))
    );
    // Remove.
    assert!(
        a.listeners
            .iter()
            .all(|l| l.name != "outbound:127.0.0.1:20002")
    );
    assert!(a.clusters.iter().all(|c| c.name != "redis"));
    assert_eq!(a.listeners.len(), base.listeners.len());
    assert_eq!(a.clusters.len(), base.clusters.len());
    envoy_validate(&a);
}

#[test]
fn meshproxypatch_skips_what_would_be_invalid() {
    // A value or a patch that does not read back as the Envoy type, an Add without a
    // name, a patch that renames, or a failing JSON patch: skipped, the rest applies.
    let p = proxy_patch(
        r#"      - cluster:
          operation: Patch
          value: 'connectTimeout: banana'
      - cluster:
          operation: Patch
          value: 'connectTimeoutt: 1s'
      - cluster:
          match: {name: backend}
          operation: Patch
          jsonPatches: [{op: replace, path: /type, value: NOT_A_TYPE}]
      - cluster:
          match: {name: backend}
          operation: Patch
          jsonPatches: [{op: replace, path: /no/such/path, value: 1}]
      - cluster:
          match: {name: backend}
          operation: Patch
          jsonPatches: [{op: replace, path: /name, value: other}]
      - cluster:
          operation: Add
          value: 'type: STATIC'
      - listener:
          operation: Add
          value: |
            name: bad
            filterChains: [{filters: [{name: x, typedConfig: {'@type': type.googleapis.com/not.a.Type}}]}]
      - listener:
          match: {name: inbound:127.0.0.1:20000}
          operation: Patch
          jsonPatches: [{op: add, path: /address/socketAddress/portValue, value: "not a port"}]
      - cluster:
          match: {name: backend}
          operation: Patch
          value: 'perConnectionBufferLimitBytes: 2048'
"#,
    );
    let base = generate_config(&mesh_view(&[]), &web()).unwrap();
    let a = generate_config(&mesh_view(&[p]), &web()).unwrap();
    assert_eq!(a.listeners, base.listeners);
    let mut expected = base.clusters.clone();
    for c in &mut expected {
        if c.name == "backend" {
            c.per_connection_buffer_limit_bytes =
                Some(envoy_types::pb::google::protobuf::UInt32Value { value: 2048 });
        }
    }
    assert_eq!(a.clusters, expected);
    envoy_validate(&a);
}
