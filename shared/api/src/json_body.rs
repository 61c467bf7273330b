//! Small JSON-body endpoints (token issuing, revocation) shared by both control
//! planes: read a JSON object naming the field of every problem, and answer a
//! token as plain text.

use super::ApiError;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A field error whose top-level `detail` says what kind of request was refused.
pub fn invalid(field: &str, reason: impl Into<String>, detail: &str) -> ApiError {
    let mut e = ApiError::invalid_field(field, reason);
    e.detail = detail.to_string();
    e
}

/// [`invalid`] for a token issuing error, whose reason may already start with the
/// field's path (validation messages do).
pub fn invalid_issue(field: &str, reason: &str, detail: &str) -> ApiError {
    let reason = reason.strip_prefix(&format!("{field}: ")).unwrap_or(reason);
    invalid(field, reason, detail)
}

/// Reads a JSON object body (at most `limit` bytes) into `T`, naming the field of
/// every problem: a missing `required` field, an unknown field, a value of the
/// wrong type.
pub async fn json_body<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    required: &[&str],
    detail: &str,
) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than the limit of {limit} bytes (--api-max-body-bytes)"
            ),
        )
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON object (see docs/api.md): {e}"
        ))
    })?;
    let Value::Object(fields) = &value else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object (see docs/api.md)",
        ));
    };
    for name in required {
        if !fields.contains_key(*name) {
            return Err(invalid(name, "is required", detail));
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // deny_unknown_fields reports at the object itself: name the field instead.
        let field = match inner.strip_prefix("unknown field `") {
            Some(rest) => rest.split('`').next().unwrap_or_default().to_string(),
            None => path,
        };
        invalid(&field, inner, detail)
    })
}

/// Issues a token off the async workers (issuing reads the key directory) and
/// answers it with [`token_response`]. A failure that `invalid` reads as a refused
/// request field (`(field, reason)`) is a 400 under `detail`; any other is a 500.
pub async fn issue_token<E>(
    detail: &str,
    issue: impl FnOnce() -> Result<String, E> + Send + 'static,
    invalid: impl FnOnce(&E) -> Option<(&str, &str)>,
) -> Result<Response, ApiError>
where
    E: std::fmt::Display + Send + 'static,
{
    // What `issue` logs stays in the request's span.
    let span = tracing::Span::current();
    let token = tokio::task::spawn_blocking(move || span.in_scope(issue))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match invalid(&e) {
            Some((field, reason)) => invalid_issue(field, reason, detail),
            None => ApiError::internal(e),
        })?;
    Ok(token_response(token))
}

/// A freshly issued token: `text/plain`, never cached.
pub fn token_response(token: String) -> Response {
    let mut resp = token.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        zone: String,
        #[serde(default)]
        n: Option<u32>,
    }

    fn field_of(e: &ApiError) -> &str {
        &e.invalid_parameters[0].field
    }

    #[tokio::test]
    async fn every_problem_names_its_field() {
        // Missing, unknown and mistyped fields each come back under their own name.
        let missing = json_body::<Req>(Body::from("{}"), 1024, &["zone"], "d")
            .await
            .unwrap_err();
        assert_eq!(field_of(&missing), "zone");
        assert_eq!(missing.detail, "d");
        let unknown = json_body::<Req>(Body::from(r#"{"zone":"a","x":1}"#), 1024, &[], "d")
            .await
            .unwrap_err();
        assert_eq!(field_of(&unknown), "x");
        let typed = json_body::<Req>(Body::from(r#"{"zone":"a","n":"7"}"#), 1024, &[], "d")
            .await
            .unwrap_err();
        assert_eq!(field_of(&typed), "n");
        let too_big = json_body::<Req>(Body::from(r#"{"zone":"a"}"#), 4, &[], "d")
            .await
            .unwrap_err();
        assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn issue_reasons_lose_a_repeated_field_prefix() {
        // "validFor: must be positive" under field validFor reads "must be positive".
        let e = invalid_issue("validFor", "validFor: must be positive", "d");
        assert_eq!(e.invalid_parameters[0].reason, "must be positive");
    }
}
