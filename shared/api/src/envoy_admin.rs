//! The REST routes of Envoy admin through the control plane (decision 0015),
//! alike on zone and global; each side supplies how a request is carried out
//! ([`AdminBackend`]): the zone through the proxy's `weft-dp` relay, global over
//! KDS to the zone that owns the proxy.
//!
//! | route | Envoy | query |
//! |---|---|---|
//! | `GET /meshes/{mesh}/dataplanes/{name}/xds` | `/config_dump` | `include_eds` |
//! | `GET /meshes/{mesh}/dataplanes/{name}/stats` | `/stats` | `format` (text, json), `filter` (regex) |
//! | `GET /meshes/{mesh}/dataplanes/{name}/clusters` | `/clusters` | `format` |
//!
//! and the same under `/zoneingresses/{name}/…` and `/zoneegresses/{name}/…`.

use crate::{ApiError, ApiState};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use weft_model::proxy::admin::{AdminError, AdminOp, AdminQuery, AdminReply, ProxyRef};
use weft_model::resource::ResourceType;

/// Carries out an admin request for a proxy named as the API names it.
pub trait AdminBackend: Clone + Send + Sync + 'static {
    fn execute(
        &self,
        proxy: ProxyRef,
        op: AdminOp,
        query: AdminQuery,
    ) -> impl Future<Output = Result<AdminReply, AdminError>> + Send;
}

/// The nine routes, served by `backend` (behind the admin token).
pub fn routes<B: AdminBackend>(backend: B) -> Router<ApiState> {
    let mut router = Router::new();
    for op in AdminOp::ALL {
        let seg = op.segment();
        let b = backend.clone();
        router = router.route(
            &format!("/meshes/{{mesh}}/dataplanes/{{name}}/{seg}"),
            get(
                move |Path((mesh, name)): Path<(String, String)>, query: RawPairs| {
                    let b = b.clone();
                    async move {
                        handle(&b, ResourceType::Dataplane, Some(&mesh), &name, op, query).await
                    }
                },
            ),
        );
        for (plural, ty) in [
            ("zoneingresses", ResourceType::ZoneIngress),
            ("zoneegresses", ResourceType::ZoneEgress),
        ] {
            let b = backend.clone();
            router = router.route(
                &format!("/{plural}/{{name}}/{seg}"),
                get(move |Path(name): Path<String>, query: RawPairs| {
                    let b = b.clone();
                    async move { handle(&b, ty, None, &name, op, query).await }
                }),
            );
        }
    }
    router
}

type RawPairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

async fn handle<B: AdminBackend>(
    backend: &B,
    ty: ResourceType,
    mesh: Option<&str>,
    name: &str,
    op: AdminOp,
    query: RawPairs,
) -> Result<Response, ApiError> {
    let Query(pairs) =
        query.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let query = AdminQuery::parse(op, &pairs)
        .map_err(|e| ApiError::invalid_field(e.field(), e.to_string()))?;
    let proxy = ProxyRef::new(ty, mesh, name).map_err(ApiError::bad_request)?;
    let reply = backend
        .execute(proxy, op, query)
        .await
        .map_err(|e| error(&e))?;
    Ok(response(op, reply))
}

/// The API error for an admin error, with its status.
pub fn error(e: &AdminError) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    ApiError::new(status, e.to_string())
}

/// Envoy's answer as the API's: its body and content type, never cached.
pub fn response(op: AdminOp, reply: AdminReply) -> Response {
    let fallback = match op {
        AdminOp::XdsConfig => "application/json",
        _ => "text/plain; charset=UTF-8",
    };
    let content_type = HeaderValue::from_str(&reply.content_type)
        .ok()
        .filter(|_| !reply.content_type.is_empty())
        .unwrap_or_else(|| HeaderValue::from_static(fallback));
    let mut resp = reply.body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
