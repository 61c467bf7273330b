use super::*;
use crate::resource::test_support::{self, fields_at, messages_at};
use crate::resource::validate::Path;

fn parse(yaml: &str) -> MeshSpec {
    test_support::parse(yaml)
}

fn fields(spec: &MeshSpec) -> Vec<String> {
    fields_at(spec, &Path::root())
}

fn reasons(spec: &MeshSpec) -> Vec<String> {
    messages_at(spec, &Path::root())
}

const BUILTIN: &str = r#"
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
      mode: PERMISSIVE
      dpCert:
        rotation: {expiration: 1d}
        requestTimeout: 5s
      conf:
        caCert: {RSAbits: 2048, expiration: 10y}
      rootChain: {requestTimeout: 10s}
"#;

// An empty mesh is valid and has mTLS off.
#[test]
fn empty_mesh() {
    let m = MeshSpec::default();
    assert!(fields(&m).is_empty());
    assert!(!m.mtls_enabled());
    assert!(m.enabled_backend().is_none());
    assert_eq!(m.mtls_mode(), None);
    assert!(m.passthrough_enabled());
    assert_eq!(m.mesh_services_mode(), MeshServicesMode::Disabled);
}

// A builtin backend named by enabledBackend turns mTLS on and is returned.
#[test]
fn builtin_backend_enables_mtls() {
    let m = parse(BUILTIN);
    assert!(fields(&m).is_empty(), "{:?}", reasons(&m));
    assert!(m.mtls_enabled());
    let b = m.enabled_backend().unwrap();
    assert_eq!(b.name, "ca-1");
    assert_eq!(b.backend_type, Some(CaBackendType::Builtin));
    assert_eq!(
        b.conf.as_ref().unwrap().ca_cert.as_ref().unwrap().rsa_bits,
        Some(2048)
    );
    assert_eq!(m.mtls_mode(), Some(MtlsMode::Permissive));
}

// An empty enabledBackend means mTLS off, even with backends listed.
#[test]
fn empty_enabled_backend_is_off() {
    let m = parse("mtls: {enabledBackend: '', backends: [{name: a, type: builtin}]}");
    assert!(fields(&m).is_empty());
    assert!(!m.mtls_enabled());
    assert!(m.enabled_backend().is_none());
}

// enabledBackend must name a backend; at most 8 backends (a CA rotation needs
// two); names unique.
#[test]
fn mtls_backend_rules() {
    let m = parse(
        r#"
mtls:
  enabledBackend: missing
  backends:
    - {name: a, type: builtin}
    - {name: a, type: builtin}
    - {name: b, type: builtin}
    - {name: c, type: builtin}
    - {name: d, type: builtin}
    - {name: e, type: builtin}
    - {name: f, type: builtin}
    - {name: g, type: builtin}
    - {name: h, type: builtin}
"#,
    );
    assert_eq!(
        reasons(&m),
        [
            "mtls.backends: cannot have more than 8 backends",
            "mtls.backends[1].name: \"a\" name is already used for another backend",
            "mtls.enabledBackend: has to be set to one of the backends in the mesh",
        ]
    );
}

// Durations must parse and be positive; type is required.
#[test]
fn mtls_durations_and_type() {
    let m = parse(
        r#"
mtls:
  backends:
    - name: a
      dpCert: {rotation: {expiration: soon}, requestTimeout: 0s}
      rootChain: {requestTimeout: -1s}
"#,
    );
    assert_eq!(
        fields(&m),
        [
            "mtls.backends[0].dpCert.rotation.expiration",
            "mtls.backends[0].dpCert.requestTimeout",
            "mtls.backends[0].rootChain.requestTimeout",
            "mtls.backends[0].type",
        ]
    );
}

// Builtin conf refuses provided fields and weak keys; provided needs cert and key.
#[test]
fn ca_conf_depends_on_type() {
    let m = parse(
        r#"
mtls:
  backends:
    - name: a
      type: builtin
      conf:
        caCert: {RSAbits: 1024, expiration: 0s}
        cert: {file: /ca.pem}
"#,
    );
    assert_eq!(
        fields(&m),
        [
            "mtls.backends[0].conf.caCert.RSAbits",
            "mtls.backends[0].conf.caCert.expiration",
            "mtls.backends[0].conf.cert",
        ]
    );
    let m = parse(
        r#"
mtls:
  backends:
    - name: a
      type: provided
      conf:
        cert: {secret: ca-cert}
        caCert: {RSAbits: 2048}
"#,
    );
    assert_eq!(
        fields(&m),
        ["mtls.backends[0].conf.key", "mtls.backends[0].conf.caCert"]
    );
    let m = parse("mtls: {backends: [{name: a, type: provided}]}");
    assert_eq!(fields(&m), ["mtls.backends[0].conf"]);
    let ok = parse(
        r#"
mtls:
  enabledBackend: a
  backends:
    - name: a
      type: provided
      conf:
        cert: {secret: ca-cert}
        key: {inline: a2V5}
"#,
    );
    assert!(fields(&ok).is_empty(), "{:?}", reasons(&ok));
}

// Unknown backend types and modes are refused when reading the document.
#[test]
fn enums_refuse_unknown_values() {
    assert!(
        serde_yaml_ng::from_str::<MeshSpec>("mtls: {backends: [{name: a, type: vault}]}").is_err()
    );
    assert!(
        serde_yaml_ng::from_str::<MeshSpec>("mtls: {backends: [{name: a, mode: strict}]}").is_err()
    );
    assert!(serde_yaml_ng::from_str::<MeshSpec>("meshServices: {mode: Sometimes}").is_err());
}

// Tracing: zipkin URLs need an explicit port, datadog needs address and port,
// sampling is a percentage, defaultBackend names a backend.
#[test]
fn tracing_rules() {
    let m = parse(
        r#"
tracing:
  defaultBackend: nope
  backends:
    - {name: z, type: zipkin, sampling: 101, conf: {url: "http://zipkin/api/v2/spans", apiVersion: v3, port: 1}}
    - {name: d, type: datadog, conf: {port: 0}}
    - {name: z, type: zipkin, conf: {url: "not a url"}}
    - {name: ok, type: zipkin, sampling: 50.5, conf: {url: "http://zipkin.local:9411/api/v2/spans"}}
"#,
    );
    assert_eq!(
        fields(&m),
        [
            "tracing.backends[2].name",
            "tracing.defaultBackend",
            "tracing.backends[0].sampling",
            "tracing.backends[0].conf.url",
            "tracing.backends[0].conf.apiVersion",
            "tracing.backends[0].conf.port",
            "tracing.backends[1].conf.address",
            "tracing.backends[1].conf.port",
            "tracing.backends[2].conf.url",
        ]
    );
}

// Logging: file needs a path, tcp a host:port address.
#[test]
fn logging_rules() {
    let m = parse(
        r#"
logging:
  defaultBackend: file
  backends:
    - {name: file, type: file, conf: {path: /var/log/access.log}}
    - {name: tcp, type: tcp, format: '%START_TIME%', conf: {address: "logstash:5000"}}
    - {name: bad-tcp, type: tcp, conf: {address: logstash}}
    - {name: bad-file, type: file}
    - {name: typeless}
"#,
    );
    assert_eq!(
        fields(&m),
        [
            "logging.backends[2].conf.address",
            "logging.backends[3].conf.path",
            "logging.backends[4].type",
        ]
    );
}

// Metrics: enabledBackend names a backend, prometheus conf ports and paths are
// checked, and `skipMTLS` disagreeing with `tls` is refused.
#[test]
fn metrics_rules() {
    let m = parse(
        r#"
metrics:
  enabledBackend: prom-2
  backends:
    - name: prom-1
      type: prometheus
      conf:
        port: 70000
        path: metrics
        tags: {kuma.io/service: dataplane-metrics}
        skipMTLS: true
        aggregate:
          - {name: app, port: 8080, path: /stats}
          - {name: app, port: 0}
        envoy: {filterRegex: "http2_act.*", usedOnly: true}
        tls: {mode: providedTLS}
"#,
    );
    assert_eq!(
        fields(&m),
        [
            "metrics.enabledBackend",
            "metrics.backends[0].conf.port",
            "metrics.backends[0].conf.path",
            "metrics.backends[0].conf",
            "metrics.backends[0].conf.aggregate[1].name",
            "metrics.backends[0].conf.aggregate[1].port",
        ]
    );
}

// Membership rules need tags; '*' is allowed as a value.
#[test]
fn constraints_rules() {
    let m = parse(
        r#"
constraints:
  dataplaneProxy:
    requirements: [{tags: {kuma.io/zone: '*'}}, {tags: {}}]
    restrictions: [{tags: {"bad key!": x}}]
skipCreatingInitialPolicies: ['*', '']
"#,
    );
    assert_eq!(
        fields(&m),
        [
            "constraints.dataplaneProxy.requirements[1].tags",
            r#"constraints.dataplaneProxy.restrictions[0].tags["bad key!"]"#,
            "skipCreatingInitialPolicies[1]",
        ]
    );
}

// skipCreatingInitialPolicies: '*' skips all, a name skips one.
#[test]
fn initial_policies() {
    let all = parse("skipCreatingInitialPolicies: ['*']");
    assert!(!all.creates_initial_policy("MeshRetry"));
    let one = parse("skipCreatingInitialPolicies: [MeshRetry]");
    assert!(!one.creates_initial_policy("MeshRetry"));
    assert!(one.creates_initial_policy("MeshTimeout"));
}

// Passthrough and meshServices.mode read back what was written.
#[test]
fn switches() {
    let m = parse(
        "networking: {outbound: {passthrough: false}}\nmeshServices: {mode: Exclusive}\nrouting: {zoneEgress: true, localityAwareLoadBalancing: true, defaultForbidMeshExternalServiceAccess: true}",
    );
    // A zone egress needs mTLS (it routes by the client's certificate).
    assert_eq!(fields(&m), ["mtls"]);
    assert!(!m.passthrough_enabled());
    assert_eq!(m.mesh_services_mode(), MeshServicesMode::Exclusive);
    assert_eq!(m.routing.unwrap().zone_egress, Some(true));
}

// Serialization uses Kuma's JSON names and round-trips.
#[test]
fn kuma_json_names() {
    let m = parse(BUILTIN);
    let v = serde_json::to_value(&m).unwrap();
    let b = &v["mtls"]["backends"][0];
    assert_eq!(b["dpCert"]["rotation"]["expiration"], "1d");
    assert_eq!(b["conf"]["caCert"]["RSAbits"], 2048);
    assert_eq!(b["type"], "builtin");
    assert_eq!(b["mode"], "PERMISSIVE");
    let back: MeshSpec = serde_json::from_value(v).unwrap();
    assert_eq!(back, m);
}
