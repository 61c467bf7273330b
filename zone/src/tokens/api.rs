//! `POST /tokens/dataplane`, merged into the shared API's authenticated router
//! (admin token required).

use super::{DataplaneTokens, TokensError};
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use std::sync::Arc;
use weft_api::json_body::{issue_token, json_body};
use weft_api::{ApiError, ApiState};
use weft_security::tokens::DataplaneTokenBody;

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
    let body: DataplaneTokenBody = json_body(body, state.max_body_bytes, &["mesh"], DETAIL).await?;
    let issue = move || {
        let issued = tokens.issue(body)?;
        issued.log("api");
        Ok(issued.token.into_string())
    };
    issue_token(DETAIL, issue, |e| match e {
        TokensError::Issue(e) => e.invalid_field(),
        _ => None,
    })
    .await
}
