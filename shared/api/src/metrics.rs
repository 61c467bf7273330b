//! Request metrics for the REST API and the `/metrics` endpoint.

use super::ApiState;
use crate::kuma_metrics::KumaApiMetrics;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    /// Kuma's `api_server_http_*` families.
    pub(crate) kuma: KumaApiMetrics,
}

impl ApiMetrics {
    /// Registers `weft_api_*`, and Kuma's `api_server_http_*` with
    /// `zone="<kuma_zone>"` (see [`crate::kuma_metrics`]).
    pub fn new(registry: &mut Registry, kuma_zone: &str) -> Self {
        let kuma = KumaApiMetrics::new(weft_runtime::kuma_metrics::scope(registry, kuma_zone));
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let sub = registry.sub_registry_with_prefix("weft_api");
        sub.register(
            "requests",
            "REST API requests by method, route and status",
            requests.clone(),
        );
        sub.register(
            "request_duration_seconds",
            "REST API request latency",
            duration.clone(),
        );
        ApiMetrics {
            requests,
            duration,
            kuma,
        }
    }
}

pub(super) async fn track(State(metrics): State<ApiMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    metrics
        .duration
        .get_or_create(&RouteLabels { method, route })
        .observe(start.elapsed().as_secs_f64());
    resp
}

pub(super) async fn serve(State(state): State<ApiState>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        Ok(()) => {
            let mut resp = out.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
