//! `POST /tokens/dataplane` and `POST /tokens/zone` (this zone's ingress and
//! egress tokens), merged into the shared API's authenticated router (admin token
//! required).

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
use weft_security::tokens::{DataplaneTokenBody, ZoneTokenBody};

const DETAIL: &str = "dataplane token request is not valid";
const ZONE_DETAIL: &str = "zone token request is not valid";

/// This zone's name, for the zone-proxy tokens it issues.
#[derive(Clone)]
struct ZoneName(Arc<str>);

/// The token routes of zone `zone`; merge them into the authenticated `extra`
/// router.
pub fn routes(tokens: Arc<DataplaneTokens>, zone: &str) -> Router<ApiState> {
    Router::new()
        .route("/tokens/dataplane", post(issue))
        .route("/tokens/zone", post(issue_zone_proxy))
        .layer(Extension(tokens))
        .layer(Extension(ZoneName(zone.into())))
}

/// `{"zone": "<this zone>", "scope": ["ingress"], "validFor": "720h"}` → the JWT
/// as text/plain, for this zone's ingress (or egress).
async fn issue_zone_proxy(
    State(state): State<ApiState>,
    Extension(tokens): Extension<Arc<DataplaneTokens>>,
    Extension(zone): Extension<ZoneName>,
    body: Body,
) -> Result<Response, ApiError> {
    let body: ZoneTokenBody = json_body(body, state.max_body_bytes, &["zone"], ZONE_DETAIL).await?;
    let issue = move || {
        let issued = tokens.issue_zone_proxy(&zone.0, body)?;
        issued.log("api");
        Ok(issued.token.into_string())
    };
    issue_token(ZONE_DETAIL, issue, |e| match e {
        TokensError::Issue(e) => e.invalid_field(),
        _ => None,
    })
    .await
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
