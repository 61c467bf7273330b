//! Clear answers for the Kuma 2.14 routes Weft does not serve (docs/api.md,
//! "Kuma routes"): instead of a bare "no such endpoint", a `404` (a resource
//! type or endpoint Weft does not have) or a `405` (served by the other
//! control plane, or another method) in Kuma's std-errors shape, whose
//! `detail` names the Kuma route and says what to use instead.
//!
//! Three places ask: the API's fallback (a path no route matched), the
//! `405` fallback (a path served with other methods) and the resource
//! handlers (a plural Weft has no type for).

use super::{ApiError, Mode};
use axum::http::Method;

/// Where in docs/api.md every Kuma route is listed with Weft's status.
pub const DOC: &str = "docs/api.md#kuma-routes";

/// Kuma 2.14 resource types Weft does not have: (plural as in Kuma's paths,
/// Kuma's type, why, and what to use instead).
const LACKING_TYPES: &[(&str, &str, &str)] = &[
    ("meshgateways", "MeshGateway", "gateways are not built"),
    (
        "meshgatewayroutes",
        "MeshGatewayRoute",
        "gateways are not built",
    ),
    (
        "hostnamegenerators",
        "HostnameGenerator",
        "hostname generators are not built: outbounds are declared in the Dataplane",
    ),
    (
        "meshmultizoneservices",
        "MeshMultiZoneService",
        "not built: zone ingresses fail over across zones per kuma.io/service",
    ),
    (
        "meshopentelemetrybackends",
        "MeshOpenTelemetryBackend",
        "not built: MeshTrace and MeshMetric name their backends inline",
    ),
    ("meshzoneaddresses", "MeshZoneAddress", "not built"),
    ("workloads", "Workload", "not built"),
    (
        "service-insights",
        "ServiceInsight",
        "Weft counts services live: GET /mesh-insights/{mesh} (serviceStatus) and /global-insight",
    ),
    (
        "zoneegressinsights",
        "ZoneEgressInsight",
        "Weft keeps egress insights live: GET /zoneegresses/_overview",
    ),
    (
        "zone-ingress-insights",
        "ZoneIngressInsight",
        "Weft keeps ingress insights live: GET /zoneingresses/_overview",
    ),
    (
        "circuit-breakers",
        "CircuitBreaker",
        "old-style policy: use MeshCircuitBreaker",
    ),
    (
        "fault-injections",
        "FaultInjection",
        "old-style policy: use MeshFaultInjection",
    ),
    (
        "health-checks",
        "HealthCheck",
        "old-style policy: use MeshHealthCheck",
    ),
    (
        "proxytemplates",
        "ProxyTemplate",
        "old-style policy: use MeshProxyPatch",
    ),
    (
        "rate-limits",
        "RateLimit",
        "old-style policy: use MeshRateLimit",
    ),
    ("retries", "Retry", "old-style policy: use MeshRetry"),
    ("timeouts", "Timeout", "old-style policy: use MeshTimeout"),
    (
        "traffic-logs",
        "TrafficLog",
        "old-style policy: use MeshAccessLog",
    ),
    (
        "traffic-permissions",
        "TrafficPermission",
        "old-style policy: use MeshTrafficPermission",
    ),
    (
        "traffic-routes",
        "TrafficRoute",
        "old-style policy: use MeshHTTPRoute or MeshTCPRoute",
    ),
    (
        "traffic-traces",
        "TrafficTrace",
        "old-style policy: use MeshTrace",
    ),
    (
        "virtual-outbounds",
        "VirtualOutbound",
        "old-style policy: outbounds are declared in the Dataplane",
    ),
];

/// Where a Kuma route is not served by Weft.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unserved {
    /// Not on either control plane: `404`.
    Anywhere,
    /// Served by Weft's zone only; on global `405`.
    OnGlobal(&'static str),
}

/// Kuma 2.14 routes Weft does not serve (all `GET` but the tokens), as path
/// patterns (`{x}` matches one segment): (method, pattern, where, why).
const ROUTES: &[(&str, &str, Unserved, &str)] = &[
    (
        "GET",
        "/meshes/{mesh}/dataplanes/{name}/_layout",
        Unserved::Anywhere,
        "the networking layout view is not built; GET .../_overview for the dataplane and its inbounds and outbounds",
    ),
    (
        "GET",
        "/meshes/{mesh}/dataplanes/{name}/_outbounds/{kri}/_routes",
        Unserved::Anywhere,
        "per-route inspection is not built; GET .../_rules lists the MeshHTTPRoute and MeshTCPRoute rules",
    ),
    (
        "GET",
        "/meshes/{mesh}/dataplanes/{name}/_outbounds/{kri}/_routes/{route}/_policies",
        Unserved::Anywhere,
        "per-route inspection is not built; GET .../_outbounds/{kri}/_policies or .../_rules",
    ),
    (
        "GET",
        "/meshes/{mesh}/dataplanes/{name}/policies",
        Unserved::Anywhere,
        "Kuma's inspection of old-style policies; Weft has none: GET .../_policies or .../_rules",
    ),
    (
        "GET",
        "/meshes/{mesh}/dataplanes/{name}/rules",
        Unserved::Anywhere,
        "Kuma's older inspection path: GET .../_rules",
    ),
    (
        "GET",
        "/meshes/{mesh}/{type}/{name}/dataplanes",
        Unserved::Anywhere,
        "Kuma's older inspection path: GET /meshes/{mesh}/{type}/{name}/_resources/dataplanes",
    ),
    (
        "GET",
        "/meshes/{mesh}/meshservices/{name}/_resources/dataplanes",
        Unserved::Anywhere,
        "MeshService inspection is not built: GET /meshes/{mesh}/dataplanes/_overview?tag=kuma.io/service:<name>",
    ),
    (
        "GET",
        "/meshes/{mesh}/{type}/{name}/_hostnames",
        Unserved::Anywhere,
        "Weft has no HostnameGenerator: outbounds are declared in the Dataplane",
    ),
    (
        "POST",
        "/tokens/dataplane",
        Unserved::OnGlobal("dataplane tokens are issued by the zone the proxy joins"),
        "",
    ),
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.trim_end_matches('/').split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.starts_with('{') || a == b => {}
            _ => return false,
        }
    }
}

/// The answer for `method path` when it is a Kuma 2.14 route Weft does not
/// serve (here): `None` otherwise.
pub(crate) fn unserved(mode: &Mode, method: &Method, path: &str) -> Option<ApiError> {
    if let Some(e) = lacking_type_in_path(path) {
        return Some(e);
    }
    let (m, pattern, where_, why) = ROUTES.iter().find(|(_, p, _, _)| matches(p, path))?;
    match where_ {
        Unserved::Anywhere => Some(ApiError::not_found(format!(
            "{method} {path}: Kuma 2.14 serves {m} {pattern}, a route Weft does not serve: {why}; see {DOC}"
        ))),
        Unserved::OnGlobal(reason) if *mode == Mode::Global => {
            Some(ApiError::method_not_allowed(format!(
                "{method} {path}: Kuma 2.14 serves {m} {pattern} on global too; Weft serves it on the zone \
                 control plane only ({reason}): call the zone's API; see {DOC}"
            )))
        }
        Unserved::OnGlobal(_) => None,
    }
}

/// The answer for a path that names a resource type Weft does not have, at
/// `/{plural}...` or `/meshes/{mesh}/{plural}...`.
fn lacking_type_in_path(path: &str) -> Option<ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let plural = match segments.as_slice() {
        ["meshes", _, plural, ..] => plural,
        [plural, ..] => plural,
        [] => return None,
    };
    lacking_type(plural)
}

/// `404` naming the Kuma type behind `plural` when Weft does not have it.
pub(crate) fn lacking_type(plural: &str) -> Option<ApiError> {
    let (_, ty, why) = LACKING_TYPES.iter().find(|(p, _, _)| *p == plural)?;
    Some(ApiError::not_found(format!(
        "{plural:?} is Kuma 2.14's {ty}, a resource type Weft does not serve ({why}); GET /_resources \
         lists the types Weft serves; see {DOC}"
    )))
}

/// The fallback's answer: a Kuma route Weft does not serve, or no such path.
pub(crate) fn not_found(mode: &Mode, method: &Method, path: &str) -> ApiError {
    unserved(mode, method, path).unwrap_or_else(|| {
        ApiError::not_found(format!(
            "{method} {path}: no such endpoint, in Weft or Kuma 2.14; see docs/api.md for the paths this API serves"
        ))
    })
}

/// The `405` fallback's answer: the path is served, with other methods.
pub(crate) fn method_not_allowed(mode: &Mode, method: &Method, path: &str) -> ApiError {
    unserved(mode, method, path).unwrap_or_else(|| {
        ApiError::method_not_allowed(format!(
            "{method} is not supported on {path}: the Allow header lists the methods Weft serves here; see {DOC}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Mode {
        Mode::Zone {
            name: Some("z".into()),
            federated: true,
        }
    }

    #[test]
    fn patterns_match_whole_segments() {
        // `{x}` takes exactly one segment; a trailing slash is ignored.
        assert!(matches("/_kri/{kri}", "/_kri/kri_m____default_"));
        assert!(matches("/who-am-i", "/who-am-i/"));
        assert!(!matches("/_kri/{kri}", "/_kri"));
        assert!(!matches("/_kri/{kri}", "/_kri/a/b"));
        assert!(matches(
            "/meshes/{mesh}/{type}/{name}/dataplanes",
            "/meshes/default/meshtimeouts/t1/dataplanes"
        ));
    }

    #[test]
    fn each_answer_names_the_route_and_the_doc() {
        // Kuma-only routes: 404 naming Kuma's pattern; a lacking type: 404
        // naming Kuma's type; a zone's route on global: 405, and nothing on a zone.
        let get = Method::GET;
        let e = not_found(&Mode::Global, &get, "/meshes/default/dataplanes/x/_layout");
        assert_eq!(e.status, 404);
        assert!(
            e.detail
                .contains("/meshes/{mesh}/dataplanes/{name}/_layout"),
            "{}",
            e.detail
        );
        assert!(e.detail.contains(DOC));
        let e = lacking_type("meshgateways").unwrap_or_else(|| ApiError::internal("none"));
        assert!(e.detail.contains("MeshGateway"), "{}", e.detail);
        let e = not_found(
            &Mode::Global,
            &get,
            "/meshes/default/meshgateways/gw/_rules",
        );
        assert!(e.detail.contains("MeshGateway"), "{}", e.detail);
        let post = Method::POST;
        let e = method_not_allowed(&Mode::Global, &post, "/tokens/dataplane");
        assert_eq!(e.status, 405);
        assert!(e.detail.contains("zone"), "{}", e.detail);
        assert!(unserved(&zone(), &post, "/tokens/dataplane").is_none());
        let e = not_found(&zone(), &get, "/nothing/here/at/all");
        assert_eq!(e.status, 404);
        assert!(e.detail.contains("no such endpoint"), "{}", e.detail);
    }
}
