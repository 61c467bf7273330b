//! `POST /tokens/dataplane`, merged into the shared API's authenticated router
//! (admin token required).

use super::{DataplaneTokens, TokensError};
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::sync::Arc;
use weft_shared::api::{ApiError, ApiState};
use weft_shared::tokens::{DataplaneTokenBody, IssueError};

const DETAIL: &str = "dataplane token request is not valid";

/// The dataplane-token routes; merge them into the authenticated `extra` router.
pub fn routes(tokens: Arc<DataplaneTokens>) -> Router<ApiState> {
    Router::new()
        .route("/tokens/dataplane", post(issue))
        .layer(Extension(tokens))
}

/// `{"mesh": "default", "name": "web-1", "tags": {"kuma.io/service": "web"},
/// "validFor": "24h"}` → the JWT as text/plain.
async fn issue(
    State(state): State<ApiState>,
    Extension(tokens): Extension<Arc<DataplaneTokens>>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body is larger than the limit (--api-max-body-bytes)",
            )
        })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let body: DataplaneTokenBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            let field = if reason.contains("missing field `mesh`") {
                "mesh"
            } else {
                "body"
            };
            invalid(field, reason)
        } else {
            invalid(&path, reason)
        }
    })?;
    let issued = tokio::task::spawn_blocking(move || tokens.issue(body))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            TokensError::Issue(IssueError::Invalid { field, reason }) => {
                let reason = reason
                    .strip_prefix(&format!("{field}: "))
                    .map_or(reason.clone(), str::to_string);
                invalid(field, reason)
            }
            other => ApiError::internal(other),
        })?;
    issued.log("api");
    let mut resp = issued.token.into_string().into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid_field(field, reason);
    e.detail = DETAIL.to_string();
    e
}
