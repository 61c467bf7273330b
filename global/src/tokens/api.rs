//! `POST /tokens/zone` and `POST /tokens/zone/revoke`, merged into the shared API's
//! authenticated router (admin token required, same metrics).

use super::revocations::{self, RevocationError};
use super::{TokensError, ZoneTokens};
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use weft_api::json_body::{invalid, issue_token, json_body};
use weft_api::{ApiError, ApiState};
use weft_security::tokens::{ZoneClaims, ZoneTokenBody};

/// Longest `jti` accepted for revocation (Weft's are 36-character UUIDs).
const MAX_JTI_LEN: usize = 128;

/// The zone-token routes; merge them into the `extra` router of `serve_api`.
pub fn routes(tokens: Arc<ZoneTokens>) -> Router<ApiState> {
    Router::new()
        .route("/tokens/zone", post(issue))
        .route("/tokens/zone/revoke", post(revoke))
        .layer(Extension(tokens))
}

/// `{"zone": "east", "scope": ["cp"], "validFor": "24h"}` → the JWT as text/plain.
async fn issue(
    State(state): State<ApiState>,
    Extension(tokens): Extension<Arc<ZoneTokens>>,
    body: Body,
) -> Result<Response, ApiError> {
    const DETAIL: &str = "zone token request is not valid";
    let body: ZoneTokenBody = json_body(body, state.max_body_bytes, &["zone"], DETAIL).await?;
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

/// Exactly one of the two: the id, or the token whose id to revoke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// `{"jti": "..."}` or `{"token": "..."}` → `{"jti": "...", "alreadyRevoked": false}`.
async fn revoke(
    State(state): State<ApiState>,
    Extension(tokens): Extension<Arc<ZoneTokens>>,
    body: Body,
) -> Result<Response, ApiError> {
    const DETAIL: &str = "zone token revocation is not valid";
    let body: RevokeBody = json_body(body, state.max_body_bytes, &[], DETAIL).await?;
    let jti = match (body.jti, body.token) {
        (Some(jti), None) => {
            check_jti(&jti).map_err(|reason| invalid("jti", reason, DETAIL))?;
            jti
        }
        (None, Some(token)) => {
            // Unverified on purpose: an admin may revoke any id, and a token whose key
            // was since removed can still be named this way.
            let claims = ZoneClaims::read_unverified(&token)
                .map_err(|e| invalid("token", e.to_string(), DETAIL))?;
            check_jti(&claims.registered.jti)
                .map_err(|reason| invalid("token", format!("its jti {reason}"), DETAIL))?;
            claims.registered.jti
        }
        (Some(_), Some(_)) => {
            return Err(invalid("jti", "give either jti or token, not both", DETAIL));
        }
        (None, None) => {
            return Err(invalid(
                "jti",
                "is required (or give token: the zone token to revoke)",
                DETAIL,
            ));
        }
    };
    let revoked = revocations::revoke(state.store.as_ref(), &jti)
        .await
        .map_err(|e| match e {
            RevocationError::Store(e) => ApiError::from(e),
            RevocationError::Contended => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            corrupt @ RevocationError::Corrupt { .. } => ApiError::internal(corrupt),
        })?;
    tokens.apply_revocations(revoked.revision, revoked.set);
    tracing::info!(jti = %jti, already = !revoked.newly, "revoked a zone token");
    Ok(Json(json!({ "jti": jti, "alreadyRevoked": !revoked.newly })).into_response())
}

/// An id that fits Kuma's comma-separated list: 1–128 of `[A-Za-z0-9._:-]`.
fn check_jti(jti: &str) -> Result<(), String> {
    if jti.is_empty() {
        return Err("must not be empty".into());
    }
    if jti.len() > MAX_JTI_LEN {
        return Err(format!("must be at most {MAX_JTI_LEN} characters"));
    }
    if !jti
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err("may hold only letters, digits, '.', '_', ':' and '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ids that would break the comma-separated list, or are absurd, are refused.
    #[test]
    fn jti_shape() {
        assert!(check_jti("6f1c2a9e-3b4d-4f5a-9c8b-7d6e5f4a3b2c").is_ok());
        for bad in ["", "a,b", "a b", "a\nb", &"x".repeat(129)] {
            assert!(check_jti(bad).is_err(), "{bad:?}");
        }
    }
}
