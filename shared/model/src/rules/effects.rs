//! What an accepted policy will not do in Weft, said so that it is never silent.
//!
//! Kuma's format allows more than Weft applies today: policy types whose Envoy
//! configuration Weft does not generate yet, and targetRefs that name resources
//! Weft does not have (gateways, MeshMultiZoneServices, MeshServices selected by
//! arbitrary labels). Such a policy is still accepted, stored and synced (a Kuma
//! user's files apply unchanged), and [`warnings`] lists each part that has no
//! effect, with its path; the API returns them in the PUT answer.

use crate::resource::policy::targetref::{ProxyType, TargetRef, TargetRefKind};
use crate::resource::{Resource, ResourceType};
use serde_json::Value;

/// Policy types that are stored and synced but produce no Envoy configuration.
pub const NOT_GENERATED: &[ResourceType] = &[ResourceType::MeshPassthrough];

/// Policy types whose top-level `kind: MeshHTTPRoute` narrows them to that
/// route's Envoy routes.
pub const ROUTE_SCOPED: &[ResourceType] = &[ResourceType::MeshTimeout, ResourceType::MeshRetry];

/// One warning per part of `res` that has no effect in Weft.
pub fn warnings(res: &Resource) -> Vec<String> {
    let ty = res.resource_type();
    if ty == ResourceType::MeshService {
        return vec![
            "MeshService resources are listed and synced to the other zones, but Weft \
             routes by kuma.io/service: a MeshService adds no destination of its own yet"
                .to_string(),
        ];
    }
    if !ty.is_policy() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if NOT_GENERATED.contains(&ty) {
        out.push(not_generated(ty));
        return out;
    }
    let value = res.to_value();
    let spec = &value["spec"];
    if let Some(top) = target_ref(&spec["targetRef"]) {
        if top.kind == TargetRefKind::MeshHTTPRoute && !ROUTE_SCOPED.contains(&ty) {
            out.push(format!(
                "spec.targetRef: a {ty} scoped to a MeshHTTPRoute is not applied yet; \
                 select the proxies (Mesh, MeshService, Dataplane) and name the \
                 destination in `to`"
            ));
        } else {
            check("spec.targetRef", &top, &mut out);
        }
    }
    for (i, rule) in items(&spec["rules"]) {
        if rule["matches"].as_array().is_some_and(|m| !m.is_empty()) {
            out.push(format!(
                "spec.rules[{i}].matches: rules that match clients by spiffeID or SNI are \
                 not applied yet: this rule has no effect"
            ));
        }
    }
    for section in ["to", "from"] {
        for (i, item) in items(&spec[section]) {
            let at = format!("spec.{section}[{i}]");
            if section == "to" && GATEWAY_ONLY_TO.contains(&ty) {
                out.push(format!(
                    "{at}: a {ty} in `to` configures gateway outbounds, which Weft does not \
                     have: not applied (sidecars take it in `from` or `rules`)"
                ));
            }
            if let Some(tr) = target_ref(&item["targetRef"]) {
                check(&format!("{at}.targetRef"), &tr, &mut out);
                if section == "to" && tr.kind == TargetRefKind::MeshHTTPRoute && tr.name.is_some() {
                    out.push(format!(
                        "{at}.targetRef: a `to` item for a MeshHTTPRoute is not applied yet: \
                         name the destination (MeshService) instead"
                    ));
                }
                if section == "from" && !SOURCE_SPECIFIC.contains(&ty) && !any_client(&tr) {
                    out.push(format!(
                        "{at}.targetRef: a {ty} for some clients (kind {}) is not applied yet: \
                         only `from` items with kind Mesh configure the inbound",
                        tr.kind
                    ));
                }
            }
            for (j, rule) in items(&item["rules"]) {
                let rule_at = format!("{at}.rules[{j}].default");
                for (k, b) in items(&rule["default"]["backendRefs"]) {
                    backend(&format!("{rule_at}.backendRefs[{k}]"), b, &mut out);
                }
                for (k, f) in items(&rule["default"]["filters"]) {
                    let b = &f["requestMirror"]["backendRef"];
                    if b.is_object() {
                        let p = format!("{rule_at}.filters[{k}].requestMirror.backendRef");
                        backend(&p, b, &mut out);
                    }
                }
            }
            conf_warnings(ty, &at, &item["default"], &mut out);
        }
    }
    for (i, rule) in items(&spec["rules"]) {
        conf_warnings(ty, &format!("spec.rules[{i}]"), &rule["default"], &mut out);
    }
    if ty == ResourceType::MeshMetric {
        metric_warnings(&spec["default"], &mut out);
    }
    if ty == ResourceType::MeshTrace {
        trace_warnings(&spec["default"], &mut out);
    }
    if ty == ResourceType::MeshProxyPatch {
        proxy_patch_warnings(&spec["default"], &mut out);
    }
    out
}

/// The origins Weft's sidecar resources carry (Kuma's names), by kind.
const CLUSTER_ORIGINS: &[&str] = &[
    "inbound",
    "outbound",
    "prometheus",
    "mesh-trace",
    "proxy-template-modifications",
];
const LISTENER_ORIGINS: &[&str] = &["inbound", "outbound", "prometheus", "mesh-proxy-patch"];

/// MeshProxyPatch: cluster and listener modifications are applied to sidecars;
/// the filter and virtual host kinds are not yet, and origins of generators
/// Weft does not have match nothing.
fn proxy_patch_warnings(conf: &Value, out: &mut Vec<String>) {
    for (i, m) in items(&conf["appendModifications"]) {
        let at = format!("spec.default.appendModifications[{i}]");
        for (kind, what) in [
            ("networkFilter", "network filter"),
            ("httpFilter", "HTTP filter"),
            ("virtualHost", "virtual host"),
        ] {
            if m[kind].is_object() {
                out.push(format!(
                    "{at}.{kind}: {what} modifications are not applied yet (only cluster and \
                     listener ones are): this modification has no effect"
                ));
            }
        }
        for (kind, origins) in [("cluster", CLUSTER_ORIGINS), ("listener", LISTENER_ORIGINS)] {
            if let Some(origin) = m[kind]["match"]["origin"].as_str()
                && !origins.contains(&origin)
            {
                out.push(format!(
                    "{at}.{kind}.match.origin: {origin:?} matches no {kind} in Weft (its \
                     {kind}s' origins: {})",
                    origins.join(", ")
                ));
            }
        }
    }
}

/// Why a type in [`NOT_GENERATED`] has no effect.
fn not_generated(ty: ResourceType) -> String {
    match ty {
        ResourceType::MeshPassthrough => format!(
            "{ty} is stored and synced to zones, but has no effect: it decides where a \
             transparent proxy lets intercepted traffic to non-mesh destinations go, and \
             Weft's sidecars have no transparent proxying (outbounds are explicit)"
        ),
        _ => format!(
            "{ty} is stored and synced to zones, but Weft does not generate its Envoy \
             configuration yet: it has no effect on proxies"
        ),
    }
}

/// MeshMetric: Weft has Envoy serve its own stats on the Prometheus listener
/// (decision 0014), so what kuma-dp does on top of them is not applied.
fn metric_warnings(conf: &Value, out: &mut Vec<String>) {
    let at = "spec.default";
    let prometheus = items(&conf["backends"]).any(|(_, b)| b["type"] == "Prometheus");
    let profiles = &conf["sidecar"]["profiles"];
    let append = profiles["appendProfiles"]
        .as_array()
        .filter(|a| !a.is_empty());
    match append {
        None if prometheus => out.push(format!(
            "{at}.sidecar.profiles: Kuma's default Basic profile is not applied: every \
             Envoy stat is published, as with the All profile"
        )),
        None => {}
        // Kuma publishes the broadest profile named: with All, that is everything.
        Some(list) if list.iter().any(|p| p["name"] == "All") => {}
        Some(list) => {
            for (i, p) in list.iter().enumerate() {
                if p["name"] != "All" {
                    out.push(format!(
                        "{at}.sidecar.profiles.appendProfiles[{i}]: the {} profile is not \
                         applied: every Envoy stat is published, as with the All profile",
                        p["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    for field in ["include", "exclude"] {
        for (i, _) in items(&profiles[field]) {
            out.push(format!(
                "{at}.sidecar.profiles.{field}[{i}]: not applied: Envoy's stats endpoint \
                 cannot select by Prometheus name (sidecar.regex filters by Envoy stat name)"
            ));
        }
    }
    for (i, _) in items(&conf["applications"]) {
        out.push(format!(
            "{at}.applications[{i}]: not scraped: the Prometheus endpoint publishes \
             Envoy's stats only (Kuma's kuma-dp merges the application's metrics in)"
        ));
    }
    for (i, b) in items(&conf["backends"]) {
        let bp = format!("{at}.backends[{i}]");
        if b["type"] == "OpenTelemetry" {
            out.push(format!(
                "{bp}: OpenTelemetry metrics are not pushed yet: this backend receives nothing"
            ));
        }
        let mode = &b["prometheus"]["tls"]["mode"];
        if mode == "ProvidedTLS" || mode == "ActiveMTLSBackend" {
            out.push(format!(
                "{bp}.prometheus.tls.mode: {} is not applied: the endpoint is served in \
                 plaintext (as Kuma does without kuma-dp's metrics certificate)",
                mode.as_str().unwrap_or_default()
            ));
        }
    }
}

/// MeshTrace backends Weft cannot configure a collector for.
fn trace_warnings(conf: &Value, out: &mut Vec<String>) {
    for (k, b) in items(&conf["backends"]) {
        let bp = format!("spec.default.backends[{k}]");
        if b["openTelemetry"]["backendRef"].is_object() {
            out.push(format!(
                "{bp}.openTelemetry.backendRef: Weft has no MeshOpenTelemetryBackend \
                 resources: no collector is configured (the listeners get the sampling \
                 and tags without a tracer, as Kuma when the backend is not found); use \
                 `endpoint`"
            ));
        }
        if let Some(url) = b["zipkin"]["url"].as_str()
            && crate::resource::net::split_url(url).is_none_or(|u| u.host.is_empty())
        {
            out.push(format!(
                "{bp}.zipkin.url: {url:?} is not a `scheme://host[:port]/path` URL: no \
                 tracer is configured"
            ));
        }
    }
}

/// Policy types whose `from[]` items for some clients are applied (RBAC
/// principals; fault filters matched on the client's `x-kuma-tags`).
const SOURCE_SPECIFIC: &[ResourceType] = &[
    ResourceType::MeshTrafficPermission,
    ResourceType::MeshFaultInjection,
];

/// Policy types whose `to[]` only configures gateways.
const GATEWAY_ONLY_TO: &[ResourceType] = &[
    ResourceType::MeshFaultInjection,
    ResourceType::MeshRateLimit,
];

/// Whether a `from[]` targetRef means every client (the only inbound conf applied).
fn any_client(tr: &TargetRef) -> bool {
    match tr.kind {
        TargetRefKind::Mesh => true,
        TargetRefKind::MeshSubset => tr.tags.as_ref().is_none_or(|t| t.is_empty()),
        _ => false,
    }
}

/// A route backend (`backendRefs[]`, `requestMirror.backendRef`): its targetRef
/// part, and the fields the routes do not use.
fn backend(at: &str, b: &Value, out: &mut Vec<String>) {
    let Some(tr) = target_ref(b) else { return };
    check(at, &tr, out);
    if let Some(port) = b["port"].as_u64() {
        out.push(format!(
            "{at}.port: {port} is not applied: a backend gets the traffic on its \
             kuma.io/service endpoints, whatever their port"
        ));
    }
}

/// Fields of one `default` conf that are accepted but not applied yet; `at` is
/// the item (`spec.to[0]`, `spec.rules[1]`).
fn conf_warnings(ty: ResourceType, at: &str, conf: &Value, out: &mut Vec<String>) {
    let at = format!("{at}.default");
    match ty {
        ResourceType::MeshAccessLog => {
            for (k, b) in items(&conf["backends"]) {
                let bp = format!("{at}.backends[{k}]");
                if b["type"] == "OpenTelemetry" {
                    out.push(format!(
                        "{bp}: OpenTelemetry access logs are not generated yet: this backend \
                         receives nothing"
                    ));
                }
                for kind in ["file", "tcp"] {
                    if b[kind]["format"]["omitEmptyValues"] == true {
                        out.push(format!(
                            "{bp}.{kind}.format.omitEmptyValues: not applied yet: every key \
                             is written, empty values included"
                        ));
                    }
                }
            }
        }
        ResourceType::MeshLoadBalancingStrategy => {
            let lb = &conf["loadBalancer"];
            for (list, p) in [
                (&conf["hashPolicies"], format!("{at}.hashPolicies")),
                (
                    &lb["ringHash"]["hashPolicies"],
                    format!("{at}.loadBalancer.ringHash.hashPolicies"),
                ),
                (
                    &lb["maglev"]["hashPolicies"],
                    format!("{at}.loadBalancer.maglev.hashPolicies"),
                ),
            ] {
                for (k, h) in items(list) {
                    if h["connection"]["sourceIP"] == false {
                        out.push(format!(
                            "{p}[{k}].connection.sourceIP: false is not applied: a connection \
                             hash policy always hashes the source IP"
                        ));
                    }
                }
            }
        }
        _ => {}
    }
}

fn items(v: &Value) -> impl Iterator<Item = (usize, &Value)> {
    v.as_array().into_iter().flatten().enumerate()
}

fn target_ref(v: &Value) -> Option<TargetRef> {
    serde_json::from_value(v.clone()).ok()
}

fn check(at: &str, tr: &TargetRef, out: &mut Vec<String>) {
    let nothing = "selects nothing in Weft";
    match tr.kind {
        TargetRefKind::MeshGateway => out.push(format!(
            "{at}: kind MeshGateway {nothing}: Weft has no built-in gateways"
        )),
        TargetRefKind::MeshMultiZoneService => out.push(format!(
            "{at}: kind MeshMultiZoneService {nothing}: Weft has no MeshMultiZoneService \
             resources; cross-zone services are reached by their kuma.io/service name"
        )),
        TargetRefKind::MeshExternalService => out.push(format!(
            "{at}: policies towards a MeshExternalService are not applied yet (its \
             traffic leaves through the zone egress with the egress's defaults)"
        )),
        TargetRefKind::MeshService | TargetRefKind::MeshServiceSubset
            if tr.service_name().is_none() =>
        {
            out.push(format!(
                "{at}.labels: {nothing}: a MeshService is matched by `name` or by the \
                 `kuma.io/display-name` label alone"
            ))
        }
        TargetRefKind::MeshHTTPRoute if tr.name.is_none() => out.push(format!(
            "{at}.labels: {nothing}: a MeshHTTPRoute is matched by `name` only"
        )),
        _ => {}
    }
    if let Some(ns) = &tr.namespace {
        out.push(format!(
            "{at}.namespace: {ns:?} is not applied: Weft resources have no namespace; the \
             targetRef matches by name or labels alone"
        ));
    }
    if let Some(types) = &tr.proxy_types
        && !types.is_empty()
        && !types.contains(&ProxyType::Sidecar)
    {
        out.push(format!(
            "{at}.proxyTypes: only Gateway {nothing}: Weft has no built-in gateways"
        ));
    }
    if let Some(section) = &tr.section_name
        && matches!(tr.kind, TargetRefKind::MeshService)
    {
        out.push(format!(
            "{at}.sectionName: {section:?} is not applied: the policy applies to every \
             port of the service"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::parse_resource;

    fn warned(yaml: &str) -> Vec<String> {
        warnings(&parse_resource(yaml.as_bytes(), false).unwrap_or_else(|e| panic!("{e}")))
    }

    // Types without generated Envoy config say so; others are quiet when
    // everything they name is something Weft applies.
    #[test]
    fn not_generated_types_and_quiet_policies() {
        let passthrough = "type: MeshPassthrough\nmesh: m\nname: t\nspec:\n  targetRef: {kind: Mesh}\n  default: {passthroughMode: All}\n";
        assert_eq!(warned(passthrough).len(), 1, "{:?}", warned(passthrough));
        assert!(
            warned(passthrough)[0].contains("has no effect"),
            "{:?}",
            warned(passthrough)
        );
        let metric = "type: MeshMetric\nmesh: m\nname: m\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    sidecar: {includeUnused: true, profiles: {appendProfiles: [{name: All}]}}\n    backends: [{type: Prometheus, prometheus: {port: 5670}}]\n";
        assert!(warned(metric).is_empty(), "{:?}", warned(metric));
        let trace = "type: MeshTrace\nmesh: m\nname: t\nspec:\n  targetRef: {kind: Dataplane, name: web-1}\n  default:\n    backends: [{type: Zipkin, zipkin: {url: 'http://z:9411/api/v2/spans'}}]\n    sampling: {overall: 10}\n    tags: [{name: team, literal: core}]\n";
        assert!(warned(trace).is_empty(), "{:?}", warned(trace));
        let timeout = "type: MeshTimeout\nmesh: m\nname: t\nspec:\n  targetRef: {kind: MeshService, labels: {kuma.io/display-name: web}}\n  to:\n    - targetRef: {kind: MeshService, name: backend}\n      default: {idleTimeout: 1s}\n";
        assert!(warned(timeout).is_empty(), "{:?}", warned(timeout));
        let patch = "type: MeshProxyPatch\nmesh: m\nname: p\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    appendModifications:\n      - cluster: {match: {origin: outbound}, operation: Patch, value: 'connectTimeout: 1s'}\n      - listener: {match: {name: x, origin: inbound}, operation: Remove}\n";
        assert!(warned(patch).is_empty(), "{:?}", warned(patch));
    }

    // MeshProxyPatch: the modification kinds and origins Weft does not apply are named.
    #[test]
    fn proxy_patch_unapplied_kinds_and_origins() {
        let patch = "type: MeshProxyPatch\nmesh: m\nname: p\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    appendModifications:\n      - httpFilter: {operation: Remove, match: {name: envoy.filters.http.router}}\n      - networkFilter: {operation: AddFirst, value: 'name: x'}\n      - virtualHost: {operation: Remove, match: {name: v}}\n      - cluster: {match: {origin: transparent}, operation: Remove}\n";
        let w = warned(patch);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].starts_with("spec.default.appendModifications[0].httpFilter: HTTP filter modifications are not applied"), "{w:?}");
        assert!(
            w[1].starts_with("spec.default.appendModifications[1].networkFilter:"),
            "{w:?}"
        );
        assert!(
            w[2].starts_with("spec.default.appendModifications[2].virtualHost:"),
            "{w:?}"
        );
        assert!(w[3].starts_with("spec.default.appendModifications[3].cluster.match.origin: \"transparent\" matches no cluster"), "{w:?}");
    }

    // Each targetRef Weft cannot resolve is named with its path.
    #[test]
    fn unresolvable_target_refs_are_named() {
        let yaml = r#"
type: MeshTimeout
mesh: m
name: t
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, labels: {team: payments}}
      default: {idleTimeout: 1s}
    - targetRef: {kind: MeshMultiZoneService, name: backend}
      default: {idleTimeout: 1s}
    - targetRef: {kind: MeshExternalService, name: httpbin}
      default: {idleTimeout: 1s}
    - targetRef: {kind: MeshService, name: backend, sectionName: http}
      default: {idleTimeout: 1s}
"#;
        let rules = "type: MeshTimeout\nmesh: m\nname: t\nspec:\n  targetRef: {kind: Mesh}\n  rules:\n    - default: {idleTimeout: 1s}\n    - matches: [{spiffeID: {type: Exact, value: 'spiffe://m/web'}}]\n      default: {http: {requestTimeout: 1s}}\n";
        assert_eq!(warned(rules).len(), 1, "{:?}", warned(rules));
        assert!(warned(rules)[0].starts_with("spec.rules[1].matches"));
        let w = warned(yaml);
        let paths: Vec<&str> = w
            .iter()
            .map(|s| s.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            paths,
            [
                "spec.to[0].targetRef.labels",
                "spec.to[1].targetRef",
                "spec.to[2].targetRef",
                "spec.to[3].targetRef.sectionName"
            ],
            "{w:?}"
        );
        // MeshTimeout and MeshRetry apply to a MeshHTTPRoute's routes; others do not.
        let route = "type: MeshRetry\nmesh: m\nname: r\nspec:\n  targetRef: {kind: MeshHTTPRoute, name: route-1}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {http: {numRetries: 1}}\n";
        assert!(warned(route).is_empty(), "{:?}", warned(route));
        let limit = "type: MeshRateLimit\nmesh: m\nname: l\nspec:\n  targetRef: {kind: MeshHTTPRoute, name: route-1}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {local: {http: {requestRate: {num: 1, interval: 1s}}}}\n";
        assert!(
            warned(limit)[0]
                .starts_with("spec.targetRef: a MeshRateLimit scoped to a MeshHTTPRoute"),
            "{:?}",
            warned(limit)
        );
    }

    fn paths(w: &[String]) -> Vec<&str> {
        w.iter()
            .map(|s| s.split(':').next().unwrap_or(""))
            .collect()
    }

    // MeshTrace is generated; only a backendRef (no MeshOpenTelemetryBackend in
    // Weft) and a Zipkin URL without a scheme are warned, each with its path.
    #[test]
    fn meshtrace_warns_only_what_has_no_collector() {
        let doc = |b: &str| {
            format!("type: MeshTrace\nmesh: m\nname: t\nspec:\n  default:\n    backends: [{b}]\n")
        };
        for quiet in [
            "{type: Datadog, datadog: {url: 'http://dd:8126', splitService: true}}",
            "{type: OpenTelemetry, openTelemetry: {endpoint: 'otel:4317'}}",
            "{type: Zipkin, zipkin: {url: 'https://z/api/v2/spans', apiVersion: httpProto}}",
        ] {
            assert!(
                warned(&doc(quiet)).is_empty(),
                "{quiet}: {:?}",
                warned(&doc(quiet))
            );
        }
        let by_ref = doc(
            "{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend, name: otel}}}",
        );
        assert_eq!(
            paths(&warned(&by_ref)),
            ["spec.default.backends[0].openTelemetry.backendRef"]
        );
        let no_scheme = doc("{type: Zipkin, zipkin: {url: 'jaeger.obs:9411/api/v2/spans'}}");
        assert_eq!(
            paths(&warned(&no_scheme)),
            ["spec.default.backends[0].zipkin.url"]
        );
    }

    // Fields Weft accepts but does not apply yet are each named with their path.
    #[test]
    fn unapplied_fields_are_named() {
        let log = "type: MeshAccessLog\nmesh: m\nname: l\nspec:\n  targetRef: {kind: Mesh, proxyTypes: [Gateway]}\n  to:\n    - targetRef: {kind: MeshHTTPRoute, name: r}\n      default: {backends: [{type: File, file: {path: /tmp/l, format: {type: Json, omitEmptyValues: true, json: [{key: a, value: b}]}}}, {type: OpenTelemetry, openTelemetry: {endpoint: 'otel:4317'}}]}\n";
        let inbound = "type: MeshAccessLog\nmesh: m\nname: l\nspec:\n  rules:\n    - default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: 'otel:4317'}}]}\n";
        assert_eq!(
            paths(&warned(inbound)),
            ["spec.rules[0].default.backends[0]"],
            "{:?}",
            warned(inbound)
        );
        assert_eq!(
            paths(&warned(log)),
            [
                "spec.targetRef.proxyTypes",
                "spec.to[0].targetRef",
                "spec.to[0].default.backends[0].file.format.omitEmptyValues",
                "spec.to[0].default.backends[1]",
            ],
            "{:?}",
            warned(log)
        );
        let hc = "type: MeshHealthCheck\nmesh: m\nname: h\nspec:\n  to:\n    - targetRef: {kind: MeshService, name: b, namespace: ns}\n      default: {failTrafficOnPanic: true, eventLogPath: /tmp/hc, http: {path: /}}\n";
        // failTrafficOnPanic and eventLogPath are applied.
        assert_eq!(
            paths(&warned(hc)),
            ["spec.to[0].targetRef.namespace"],
            "{:?}",
            warned(hc)
        );
        let lb = "type: MeshLoadBalancingStrategy\nmesh: m\nname: lb\nspec:\n  to:\n    - targetRef: {kind: Mesh}\n      default:\n        loadBalancer: {type: RingHash, ringHash: {hashPolicies: [{type: Connection, connection: {sourceIP: true}}, {type: Connection, connection: {sourceIP: false}}]}}\n";
        assert_eq!(
            paths(&warned(lb)),
            ["spec.to[0].default.loadBalancer.ringHash.hashPolicies[1].connection.sourceIP"],
            "{:?}",
            warned(lb)
        );
        let fi = "type: MeshFaultInjection\nmesh: m\nname: f\nspec:\n  targetRef: {kind: MeshService, name: web}\n  from:\n    - targetRef: {kind: Mesh}\n      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}\n    - targetRef: {kind: MeshService, name: web}\n      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}\n";
        // Source-specific faults are applied (matched on x-kuma-tags).
        assert!(warned(fi).is_empty(), "{:?}", warned(fi));
        let gw = "type: MeshRateLimit\nmesh: m\nname: g\nspec:\n  targetRef: {kind: Mesh}\n  to:\n    - targetRef: {kind: Mesh}\n      default: {local: {http: {requestRate: {num: 1, interval: 1s}}}}\n";
        assert_eq!(paths(&warned(gw)), ["spec.to[0]"], "{:?}", warned(gw));
        let route = "type: MeshHTTPRoute\nmesh: m\nname: r\nspec:\n  to:\n    - targetRef: {kind: MeshService, name: web}\n      rules:\n        - matches: [{path: {type: PathPrefix, value: /}}]\n          default:\n            backendRefs: [{kind: MeshService, labels: {kuma.io/display-name: v2}, port: 8080}]\n            filters: [{type: RequestMirror, requestMirror: {backendRef: {kind: MeshService, name: shadow, port: 80}}}]\n";
        assert_eq!(
            paths(&warned(route)),
            [
                "spec.to[0].rules[0].default.backendRefs[0].port",
                "spec.to[0].rules[0].default.filters[0].requestMirror.backendRef.port",
            ],
            "{:?}",
            warned(route)
        );
        let metric = "type: MeshMetric\nmesh: m\nname: m\nspec:\n  targetRef: {kind: Mesh}\n  default:\n    sidecar: {profiles: {appendProfiles: [{name: Basic}], include: [{type: Prefix, match: envoy_}], exclude: [{type: Contains, match: rq}]}}\n    applications: [{port: 8080}]\n    backends:\n      - {type: Prometheus, prometheus: {tls: {mode: ProvidedTLS}}}\n      - {type: OpenTelemetry, openTelemetry: {endpoint: 'otel:4317'}}\n";
        assert_eq!(
            paths(&warned(metric)),
            [
                "spec.default.sidecar.profiles.appendProfiles[0]",
                "spec.default.sidecar.profiles.include[0]",
                "spec.default.sidecar.profiles.exclude[0]",
                "spec.default.applications[0]",
                "spec.default.backends[0].prometheus.tls.mode",
                "spec.default.backends[1]",
            ],
            "{:?}",
            warned(metric)
        );
        // Kuma's default profile is Basic: a Prometheus backend without profiles says so.
        let plain = "type: MeshMetric\nmesh: m\nname: m\nspec:\n  default: {backends: [{type: Prometheus, prometheus: {}}]}\n";
        assert_eq!(
            paths(&warned(plain)),
            ["spec.default.sidecar.profiles"],
            "{:?}",
            warned(plain)
        );
    }
}
