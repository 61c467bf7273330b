use super::*;
use crate::resource::test_support::{self, fields_at, pairs_of, validate_at};
use crate::resource::validate::Path;

fn parse(yaml: &str) -> DataplaneSpec {
    test_support::parse(yaml)
}

fn violations(spec: &DataplaneSpec) -> Vec<(String, String)> {
    pairs_of(&validate_at(spec, &Path::root()))
}

fn fields(spec: &DataplaneSpec) -> Vec<String> {
    fields_at(spec, &Path::root())
}

const SIDECAR: &str = r#"
networking:
  address: 192.168.0.2
  advertisedAddress: 10.0.0.2
  inbound:
    - port: 8000
      servicePort: 80
      tags: {kuma.io/service: backend, kuma.io/protocol: http, version: v1}
    - port: 9000
      address: 192.168.0.3
      serviceAddress: 127.0.0.1
      tags: {kuma.io/service: backend-admin}
      state: NotReady
    - port: 9100
      tags: {kuma.io/service: backend}
      health: {ready: false}
  outbound:
    - port: 10000
      tags: {kuma.io/service: redis}
    - port: 10001
      address: 127.0.0.2
      backendRef: {kind: MeshService, name: db, port: 5432}
  admin: {port: 9901}
"#;

// A typical sidecar is valid.
#[test]
fn sidecar_is_valid() {
    let dp = parse(SIDECAR);
    assert!(violations(&dp).is_empty(), "{:?}", violations(&dp));
}

// Inbound interfaces resolve Kuma's defaults: listener IP, advertised IP, workload IP and port.
#[test]
fn inbound_interfaces_resolve_defaults() {
    let ifaces = parse(SIDECAR).inbound_interfaces();
    assert_eq!(
        ifaces[0],
        InboundInterface {
            dataplane_ip: "192.168.0.2".into(),
            dataplane_advertised_ip: "10.0.0.2".into(),
            dataplane_port: 8000,
            workload_ip: "192.168.0.2".into(),
            workload_port: 80,
        }
    );
    assert_eq!(ifaces[1].dataplane_ip, "192.168.0.3");
    assert_eq!(ifaces[1].workload_ip, "127.0.0.1");
    assert_eq!(ifaces[1].workload_port, 9000);
    let no_adv = parse("networking: {address: 1.2.3.4, inbound: [{port: 80, servicePort: 0}]}");
    let i = &no_adv.inbound_interfaces()[0];
    assert_eq!(i.dataplane_advertised_ip, "1.2.3.4");
    assert_eq!(i.workload_port, 80);
}

// Outbounds default to 127.0.0.1.
#[test]
fn outbound_interfaces_default_to_loopback() {
    let o = parse(SIDECAR).outbound_interfaces();
    assert_eq!(
        o,
        [
            OutboundInterface {
                dataplane_ip: "127.0.0.1".into(),
                dataplane_port: 10000
            },
            OutboundInterface {
                dataplane_ip: "127.0.0.2".into(),
                dataplane_port: 10001
            },
        ]
    );
    assert!(DataplaneSpec::default().outbound_interfaces().is_empty());
}

// Healthy means Ready (default) and health absent or ready; out of range is unhealthy.
#[test]
fn inbound_health() {
    let dp = parse(SIDECAR);
    assert!(dp.is_inbound_healthy(0));
    assert!(!dp.is_inbound_healthy(1), "NotReady");
    assert!(!dp.is_inbound_healthy(2), "health.ready false");
    assert!(!dp.is_inbound_healthy(3), "no such inbound");
    let ready = parse("networking: {inbound: [{port: 1, state: Ready, health: {ready: true}}]}");
    assert!(ready.is_inbound_healthy(0));
    let ignored = parse("networking: {inbound: [{port: 1, state: Ignored}]}");
    assert!(!ignored.is_inbound_healthy(0));
}

// Service tags are distinct, gateway first, in order.
#[test]
fn service_tags_and_identity() {
    let dp = parse(SIDECAR);
    assert_eq!(dp.service_tags(), ["backend", "backend-admin"]);
    assert_eq!(dp.identifying_service(), Some("backend"));
    let gw = parse("networking: {address: 1.1.1.1, gateway: {tags: {kuma.io/service: edge}}}");
    assert_eq!(gw.service_tags(), ["edge"]);
    assert_eq!(gw.gateway_type(), Some(GatewayType::Delegated));
    assert!(DataplaneSpec::default().service_tags().is_empty());
    assert_eq!(
        parse(SIDECAR).networking.unwrap().inbound[0].protocol(),
        "http"
    );
}

// Networking must be defined.
#[test]
fn networking_required() {
    assert_eq!(
        violations(&DataplaneSpec::default()),
        [("networking".to_string(), "must be defined".to_string())]
    );
}

// The address is required, not a wildcard, an IP or a DNS name.
#[test]
fn address_rules() {
    for (addr, reason) in [
        ("", "address can't be empty"),
        ("0.0.0.0", "must not be 0.0.0.0 or ::"),
        ("::", "must not be 0.0.0.0 or ::"),
        (
            "not an address!",
            "address has to be valid IP address or domain name",
        ),
    ] {
        let dp = parse(&format!(
            "networking: {{address: '{addr}', inbound: [{{port: 1, tags: {{kuma.io/service: a}}}}]}}"
        ));
        assert_eq!(
            violations(&dp),
            [("networking.address".to_string(), reason.to_string())],
            "{addr:?}"
        );
    }
    let dns = parse(
        "networking: {address: backend.svc.local, inbound: [{port: 1, tags: {kuma.io/service: a}}]}",
    );
    assert!(violations(&dns).is_empty());
}

// Inbounds: port range, service tag, known protocol, IP addresses, probe durations.
#[test]
fn inbound_rules() {
    let dp = parse(
        r#"
networking:
  address: 10.0.0.1
  inbound:
    - port: 0
      servicePort: 70000
      address: host.local
      serviceAddress: nope
      tags: {kuma.io/protocol: smtp}
      protocol: quic
      serviceProbe: {interval: 0s, timeout: x, healthyThreshold: 0, unhealthyThreshold: 3, tcp: {}}
      name: main
    - port: 8080
      serviceAddress: 10.0.0.1
      tags: {kuma.io/service: web}
      name: main
"#,
    );
    let inb = "networking.inbound[0]";
    assert_eq!(
        fields(&dp),
        [
            format!("{inb}.port"),
            format!("{inb}.servicePort"),
            format!("{inb}.address"),
            format!("{inb}.serviceAddress"),
            format!(r#"{inb}.tags["kuma.io/service"]"#),
            format!(r#"{inb}.tags["kuma.io/protocol"]"#),
            format!("{inb}.protocol"),
            format!("{inb}.serviceProbe.interval"),
            format!("{inb}.serviceProbe.timeout"),
            format!("{inb}.serviceProbe.healthyThreshold"),
            "networking.inbound[1].serviceAddress".to_string(),
            "networking.inbound[1].name".to_string(),
        ]
    );
    let v = violations(&dp);
    assert_eq!(v[4].1, "tag has to exist");
    assert_eq!(
        v[5].1,
        r#"tag "kuma.io/protocol" has an invalid value "smtp". Allowed values: tcp, http, http2, grpc, kafka"#
    );
    assert_eq!(
        v[10].1,
        "serviceAddress and servicePort has to differ from address and port"
    );
}

// Outbounds need a kuma.io/service tag or a backendRef, never both.
#[test]
fn outbound_rules() {
    let dp = parse(
        r#"
networking:
  address: 10.0.0.1
  inbound: [{port: 80, tags: {kuma.io/service: web}}]
  outbound:
    - {port: 10000}
    - {port: 10001, tags: {version: v1}}
    - {port: 10002, tags: {kuma.io/service: a}, backendRef: {kind: MeshService, name: a, port: 80}}
    - {port: 10003, backendRef: {kind: MeshService}}
    - {port: 10004, backendRef: {kind: MeshExternalService, name: httpbin}}
    - {port: 70000, address: localhost, backendRef: {labels: {app: a}, port: 1}}
"#,
    );
    assert_eq!(
        violations(&dp),
        [
            (
                "networking.outbound[0].tags",
                "mandatory tag \"kuma.io/service\" is missing"
            ),
            (
                "networking.outbound[1].tags",
                "mandatory tag \"kuma.io/service\" is missing"
            ),
            (
                "networking.outbound[2].backendRef",
                "both backendRef and tags/service cannot be defined"
            ),
            (
                "networking.outbound[3].backendRef",
                "either 'name' or 'labels' should be specified"
            ),
            (
                "networking.outbound[3].backendRef.port",
                "port must be in the range [1, 65535]"
            ),
            (
                "networking.outbound[5].port",
                "port must be in the range [1, 65535]"
            ),
            (
                "networking.outbound[5].address",
                "address has to be valid IP address"
            ),
            (
                "networking.outbound[5].backendRef.kind",
                "invalid value. Available values are: MeshExternalService,MeshMultiZoneService,MeshService"
            ),
        ]
        .map(|(f, r)| (f.to_string(), r.to_string()))
    );
}

// Gateways exclude inbounds (and outbounds and probes for builtin ones).
#[test]
fn gateway_exclusivity() {
    let delegated = parse(
        r#"
networking:
  address: 10.0.0.1
  gateway: {tags: {kuma.io/protocol: http}}
  inbound: [{port: 80, tags: {kuma.io/service: web}}]
"#,
    );
    assert_eq!(
        violations(&delegated),
        [
            (
                "networking.inbound",
                "inbound cannot be defined for delegated gateways"
            ),
            (
                r#"networking.gateway.tags["kuma.io/service"]"#,
                "tag has to exist"
            ),
            (
                r#"networking.gateway.tags["kuma.io/protocol"]"#,
                "other values than tcp are not allowed, provided value \"http\""
            ),
        ]
        .map(|(f, r)| (f.to_string(), r.to_string()))
    );
    let builtin = parse(
        r#"
networking:
  address: 10.0.0.1
  gateway: {type: BUILTIN, tags: {kuma.io/service: edge}}
  inbound: [{port: 80, tags: {kuma.io/service: web}}]
  outbound: [{port: 81, tags: {kuma.io/service: api}}]
probes: {port: 9000}
"#,
    );
    assert_eq!(
        fields(&builtin),
        ["networking.inbound", "networking.outbound", "probes"]
    );
    let nothing = parse("networking: {address: 10.0.0.1}");
    assert_eq!(fields(&nothing), ["networking"]);
}

// The admin port must not collide with inbound/outbound listeners or redirect ports.
#[test]
fn admin_port_rules() {
    let dp = parse(
        r#"
networking:
  address: 10.0.0.1
  inbound: [{port: 9901, serviceAddress: 127.0.0.1, servicePort: 9901, tags: {kuma.io/service: web}}]
  outbound: [{port: 9901, tags: {kuma.io/service: api}}]
  admin: {port: 9901}
"#,
    );
    let reasons: Vec<String> = violations(&dp)
        .into_iter()
        .filter(|(f, _)| f == "networking.admin.port")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        reasons,
        ["must differ from inbound", "must differ from outbound"]
    );
    // On a non-loopback address the same port does not collide.
    let ok = parse(
        "networking: {address: 10.0.0.1, inbound: [{port: 9901, tags: {kuma.io/service: web}}], admin: {port: 9901}}",
    );
    assert!(violations(&ok).is_empty(), "{:?}", violations(&ok));
    let tp = parse(
        r#"
networking:
  address: 10.0.0.1
  inbound: [{port: 80, tags: {kuma.io/service: web}}]
  transparentProxying: {redirectPortInbound: 15001, redirectPortOutbound: 15001}
  admin: {port: 15001}
"#,
    );
    assert_eq!(
        fields(&tp),
        [
            "networking.transparentProxying.redirectPortOutbound",
            "networking.admin.port",
            "networking.admin.port",
        ]
    );
}

// Transparent proxying: port ranges, service names, reachable backend refs.
#[test]
fn transparent_proxying_rules() {
    let dp = parse(
        r#"
networking:
  address: 10.0.0.1
  inbound: [{port: 80, tags: {kuma.io/service: web}}]
  transparentProxying:
    redirectPortInbound: 0
    redirectPortOutbound: 15001
    directAccessServices: ['*', 'bad/name']
    reachableServices: [redis, '*']
    ipFamilyMode: IPv4
    reachableBackends:
      refs:
        - {kind: MeshService, name: redis, port: 6379}
        - {kind: MeshService, namespace: kuma-demo}
        - {kind: MeshService}
        - {kind: MeshExternalService, name: httpbin, labels: {a: b}}
        - {name: x, port: 0}
"#,
    );
    let tp = "networking.transparentProxying";
    assert_eq!(
        fields(&dp),
        [
            format!("{tp}.redirectPortInbound"),
            format!("{tp}.directAccessServices[1]"),
            format!("{tp}.reachableServices[1]"),
            format!("{tp}.reachableBackends.refs[1].name"),
            format!("{tp}.reachableBackends.refs[2].name"),
            format!("{tp}.reachableBackends.refs[3].labels"),
            format!("{tp}.reachableBackends.refs[4].kind"),
            format!("{tp}.reachableBackends.refs[4].port"),
        ]
    );
}

// Probes, metrics and listeners are checked too.
#[test]
fn probes_metrics_listeners() {
    let dp = parse(
        r#"
networking:
  address: 10.0.0.1
  listeners:
    - {type: ZoneIngress, port: 10001, address: 10.0.0.1}
    - {port: 10001, address: host}
metrics:
  conf: {port: 0}
probes:
  port: 9000
  endpoints:
    - {inboundPort: 8080, inboundPath: /healthz, path: /8080/healthz}
    - {inboundPort: 0, inboundPath: healthz, path: ''}
envoy: {xdsTransportProtocolVariant: DELTA_GRPC}
"#,
    );
    assert_eq!(
        fields(&dp),
        [
            "networking.listeners[1].type",
            "networking.listeners[1].address",
            "networking.listeners[1].name",
            "probes.endpoints[1].inboundPort",
            "probes.endpoints[1].inboundPath",
            "probes.endpoints[1].path",
            "metrics.type",
            "metrics.conf.port",
        ]
    );
}

// Unknown enum values are refused when reading, unknown fields are listed (and
// ignored); Kuma's JSON names are used.
#[test]
fn strict_reading_and_json_names() {
    let read = crate::resource::Resource::read(serde_json::json!({
        "type": "Dataplane", "name": "d", "mesh": "m",
        "networking": {"adress": "1.1.1.1", "address": "1.1.1.1",
                       "inbound": [{"port": 1, "tags": {"kuma.io/service": "a"}}]}
    }))
    .unwrap();
    assert_eq!(read.unknown, ["networking.adress"]);
    for bad in [
        "networking: {inbound: [{port: 1, state: Broken}]}",
        "networking: {gateway: {type: delegated}}",
        "networking: {transparentProxying: {redirectPortInbound: -1}}",
    ] {
        assert!(
            serde_yaml_ng::from_str::<DataplaneSpec>(bad).is_err(),
            "{bad}"
        );
    }
    let dp = parse(
        "networking: {address: 1.1.1.1, transparentProxying: {redirectPortInbound: 15006, ipFamilyMode: DualStack}, inbound: [{port: 1, serviceProbe: {unhealthyThreshold: 3}}]}",
    );
    let v = serde_json::to_value(&dp).unwrap();
    assert_eq!(
        v["networking"]["transparentProxying"]["redirectPortInbound"],
        15006
    );
    assert_eq!(
        v["networking"]["inbound"][0]["serviceProbe"]["unhealthyThreshold"],
        3
    );
    assert_eq!(serde_json::from_value::<DataplaneSpec>(v).unwrap(), dp);
}
