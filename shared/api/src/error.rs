//! One mapping from everything that can go wrong in a request to an HTTP answer,
//! in Kuma's "std-errors" shape:
//! `{"type":"/std-errors","status":400,"title":"Bad Request","detail":"...","invalid_parameters":[...]}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use weft_model::resource::{DocumentError, ResourceError, ValidationErrors, Violation};
use weft_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: &'static str,
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
    pub invalid_parameters: Vec<Violation>,
}

/// The JSON of an [`ApiError`], as Kuma 2.14 writes it: beside `type`,
/// `status`, `title`, `detail` and `invalid_parameters`, the deprecated
/// `details` (the detail again) and `causes` (`{field, message}` per invalid
/// parameter) that older Kuma clients read.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    status: u16,
    title: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    invalid_parameters: &'a [Violation],
    details: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause<'a>>,
}

#[derive(Serialize)]
struct Cause<'a> {
    field: &'a str,
    message: &'a str,
}

impl Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        Wire {
            kind: self.kind,
            status: self.status.as_u16(),
            title: &self.title,
            detail: &self.detail,
            invalid_parameters: &self.invalid_parameters,
            details: &self.detail,
            causes: self
                .invalid_parameters
                .iter()
                .map(|v| Cause {
                    field: &v.field,
                    message: &v.reason,
                })
                .collect(),
        }
        .serialize(ser)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            kind: "/std-errors",
            status,
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            detail: detail.into(),
            invalid_parameters: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token: send 'Authorization: Bearer <token>' with the admin token \
             from <data-dir>/admin.token",
        )
    }

    /// 400 naming one field.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> Self {
        let mut e = Self::bad_request("Resource is not valid");
        e.invalid_parameters.push(Violation {
            field: field.to_string(),
            reason: reason.into(),
        });
        e
    }

    pub fn invalid(errs: &ValidationErrors) -> Self {
        let mut e = Self::bad_request("Resource is not valid");
        e.invalid_parameters = errs.violations().to_vec();
        e
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error: see the control plane's log",
        )
    }
}

impl From<ResourceError> for ApiError {
    fn from(e: ResourceError) -> Self {
        match e {
            ResourceError::Invalid(errs) => ApiError::invalid(&errs),
            ResourceError::Document(doc) => ApiError::from(doc),
        }
    }
}

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::AlreadyExists(_) | StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            StoreError::MeshNotFound(mesh) => {
                let mut err = ApiError::invalid_field(
                    "mesh",
                    format!("mesh {mesh:?} does not exist: create it first (PUT /meshes/{mesh})"),
                );
                err.detail = "Mesh is not found".into();
                err
            }
            StoreError::Compacted { .. }
            | StoreError::Lagged
            | StoreError::Io(_)
            | StoreError::Corrupt(_) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
