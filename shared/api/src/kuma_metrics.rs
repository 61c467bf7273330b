//! Kuma's control-plane metrics that the REST API side serves, under Kuma's
//! names (decision 0018), labelled `zone` as Kuma labels every metric:
//!
//! - `api_server_http_request_duration_seconds{handler,method,code}` (histogram,
//!   default buckets), `api_server_http_response_size_bytes{handler,method,code}`
//!   (100 B .. 1 GB buckets) and `api_server_http_requests_inflight{handler}`:
//!   what Kuma's HTTP middleware records. `handler` is the route pattern as Kuma
//!   names it (`/meshes/{mesh}/dataplanes/{name}`: Kuma registers a route per
//!   type, Weft one per shape, so the type's plural is put back), never the
//!   raw path; an unknown path is `handler=""`, as Kuma's.
//! - `cp_info{instance_id,cluster_id,product,version,build_date,git_commit,git_tag,based_on_kuma}`:
//!   1, the control plane's identity.
//! - `resources_count{resource_type}`: see [`crate::resource_count`].

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;
use weft_model::resource::ResourceType;
use weft_runtime::kuma_metrics::DEFAULT_BUCKETS;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    handler: String,
    method: String,
    code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HandlerLabels {
    handler: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(100.0, 10.0, 8))
}

/// `api_server_http_*`; cheap to clone (clones share the families).
#[derive(Clone, Debug)]
pub struct KumaApiMetrics {
    duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    size: Family<RequestLabels, Histogram, fn() -> Histogram>,
    inflight: Family<HandlerLabels, Gauge>,
}

impl KumaApiMetrics {
    /// Registers the families in `kuma` (a registry with Kuma's `zone` label).
    pub fn new(kuma: &mut Registry) -> Self {
        let m = KumaApiMetrics {
            duration: Family::new_with_constructor(duration_histogram),
            size: Family::new_with_constructor(size_histogram),
            inflight: Family::default(),
        };
        kuma.register(
            "api_server_http_request_duration_seconds",
            "The latency of the HTTP requests.",
            m.duration.clone(),
        );
        kuma.register(
            "api_server_http_response_size_bytes",
            "The size of the HTTP responses.",
            m.size.clone(),
        );
        kuma.register(
            "api_server_http_requests_inflight",
            "The number of inflight requests being handled at the same time.",
            m.inflight.clone(),
        );
        m
    }
}

/// Kuma's handler name of a request: the matched route with Weft's generic
/// `{plural}` segment replaced by the request's (when it names a type), `""`
/// when no route matched.
pub fn handler(matched: Option<&str>, path: &str) -> String {
    let Some(pattern) = matched else {
        return String::new();
    };
    if !pattern.contains("{plural}") {
        return pattern.to_string();
    }
    let mut actual = path.split('/');
    pattern
        .split('/')
        .map(|segment| {
            let seg = actual.next();
            match seg {
                Some(p) if segment == "{plural}" && ResourceType::from_plural(p).is_some() => p,
                _ => segment,
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Decrements the in-flight gauge however the request ends (a client that
/// goes away drops the handler's future).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The middleware: times each request and counts it under Kuma's labels.
pub(crate) async fn track(
    State(metrics): State<KumaApiMetrics>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let handler = handler(
        req.extensions().get::<MatchedPath>().map(|p| p.as_str()),
        req.uri().path(),
    );
    let gauge = metrics
        .inflight
        .get_or_create(&HandlerLabels {
            handler: handler.clone(),
        })
        .clone();
    gauge.inc();
    let _inflight = InFlight(gauge);
    let resp = next.run(req).await;
    let labels = RequestLabels {
        handler,
        method,
        code: resp.status().as_u16().to_string(),
    };
    metrics
        .duration
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    let bytes = resp
        .body()
        .size_hint()
        .exact()
        .or_else(|| {
            resp.headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
        })
        .unwrap_or(0);
    metrics.size.get_or_create(&labels).observe(bytes as f64);
    resp
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CpInfo {
    instance_id: String,
    cluster_id: String,
    product: String,
    version: String,
    build_date: String,
    git_commit: String,
    git_tag: String,
    based_on_kuma: String,
}

/// Registers `cp_info` (always 1) in `kuma`. Build facts come from the
/// compile-time environment (`WEFT_BUILD_DATE`, `WEFT_GIT_COMMIT`,
/// `WEFT_GIT_TAG`), `unknown` when unset, as Kuma's are.
pub fn register_cp_info(kuma: &mut Registry, instance_id: &str, cluster_id: &str) {
    let info = Family::<CpInfo, Gauge>::default();
    info.get_or_create(&CpInfo {
        instance_id: instance_id.to_string(),
        cluster_id: cluster_id.to_string(),
        product: "Weft".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        build_date: option_env!("WEFT_BUILD_DATE").unwrap_or("unknown").into(),
        git_commit: option_env!("WEFT_GIT_COMMIT").unwrap_or("unknown").into(),
        git_tag: option_env!("WEFT_GIT_TAG").unwrap_or("unknown").into(),
        based_on_kuma: crate::BASED_ON_KUMA.into(),
    })
    .set(1);
    kuma.register("cp_info", "Static information about the CP instance", info);
}

#[cfg(test)]
mod tests {
    use super::*;

    // The handler is the route pattern, with the type's plural put back as Kuma
    // names its per-type routes; raw names never appear; no route: "".
    #[test]
    fn handler_names_follow_kuma() {
        let cases = [
            (
                Some("/meshes/{mesh}/{plural}/{name}"),
                "/meshes/default/dataplanes/backend-1",
                "/meshes/{mesh}/dataplanes/{name}",
            ),
            (Some("/{plural}"), "/meshtimeouts", "/meshtimeouts"),
            (Some("/{plural}/{name}"), "/zones/east", "/zones/{name}"),
            (Some("/{plural}"), "/no-such-type", "/{plural}"),
            (Some("/meshes/{name}"), "/meshes/default", "/meshes/{name}"),
            (None, "/whatever/secret-name", ""),
        ];
        for (matched, path, want) in cases {
            assert_eq!(handler(matched, path), want, "{matched:?} {path}");
        }
    }
}
