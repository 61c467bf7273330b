//! `POST /bootstrap`: what `weft-dp` calls before starting Envoy.
//!
//! Body: `{"dataplane": <Dataplane as a JSON object, or a YAML/JSON string>,
//! "proxyType": "sidecar", "xdsApi": "delta"|"sotw", "version": {...}}`, with
//! `Authorization: Bearer <dataplane token>` (the admin token also works). The
//! Dataplane is validated (400 naming the fields), its mesh must exist, the token must
//! admit it ([`Admission`]: 401 without a token or with a bad one, 403 with a genuine
//! token that does not admit this Dataplane; the reason in
//! `detail` and in the zone's log); the answer is the Envoy bootstrap as JSON
//! ([`envoy::bootstrap`]).

pub mod envoy;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use envoy::{XdsApi, XdsTarget};

use crate::admission::{Admission, AdmissionError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use weft_api::{ApiError, ApiState};
use weft_model::resource::{
    Resource, ResourceKey, ResourceType, ValidationErrors, Violation, parse_document,
};

/// Where the bootstrap points Envoy: filled by the zone from its bound xDS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapParams {
    /// The xDS host; `None` when the zone listens on every address (0.0.0.0 / ::):
    /// then the host `weft-dp` used to reach the API (its `Host` header) is used.
    pub xds_host: Option<String>,
    pub xds_port: u16,
    /// The xDS CA certificate (PEM), inlined so Envoy verifies the zone; `None` only
    /// while the xDS server serves plaintext.
    pub ca_pem: Option<String>,
}

impl BootstrapParams {
    /// Params for an xDS server bound on `address` with `ca_pem`: a wildcard bind
    /// (0.0.0.0 / ::) leaves the host to the request's `Host` header.
    pub fn from_bound(address: std::net::SocketAddr, ca_pem: Option<String>) -> Self {
        let ip = address.ip();
        BootstrapParams {
            xds_host: (!ip.is_unspecified()).then(|| ip.to_string()),
            xds_port: address.port(),
            ca_pem,
        }
    }
}

/// The proxy types `weft-dp` can ask for, and the resource each presents.
pub const PROXY_TYPES: [&str; 3] = ["sidecar", "ingress", "egress"];

fn expected_type(proxy_type: &str) -> ResourceType {
    match proxy_type {
        "ingress" => ResourceType::ZoneIngress,
        "egress" => ResourceType::ZoneEgress,
        _ => ResourceType::Dataplane,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BootstrapRequest {
    dataplane: Value,
    #[serde(default)]
    proxy_type: Option<String>,
    #[serde(default)]
    xds_api: Option<XdsApi>,
    #[serde(default)]
    version: Option<Value>,
    /// Where `weft-dp` receives access logs (a unix socket path).
    #[serde(default)]
    access_log_socket_path: Option<String>,
}

pub use weft_model::proxy::MAX_SOCKET_PATH;

#[derive(Clone)]
struct BootstrapState {
    params: Arc<BootstrapParams>,
    admission: Admission,
}

/// The open route (it authenticates with the dataplane token itself); merge into
/// [`weft_api::ExtraRoutes::open`].
pub fn routes(params: BootstrapParams, admission: Admission) -> Router<ApiState> {
    Router::new()
        .route("/bootstrap", post(bootstrap))
        .route("/bootstrap/leave", post(leave))
        .layer(Extension(BootstrapState {
            params: Arc::new(params),
            admission,
        }))
}

async fn bootstrap(
    State(state): State<ApiState>,
    Extension(bs): Extension<BootstrapState>,
    headers: HeaderMap,
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
    let req = parse_request(&bytes)?;
    let proxy_type = req.proxy_type.as_deref().unwrap_or("sidecar");
    match proxy_type {
        "sidecar" | "ingress" | "egress" => {}
        other => {
            return Err(invalid(
                "proxyType",
                format!(
                    "unknown proxy type {other:?}; expected one of {}",
                    PROXY_TYPES.join(", ")
                ),
            ));
        }
    }
    if let Some(path) = &req.access_log_socket_path {
        check_socket_path(path)?;
    }
    let mut dataplane = parse_dataplane(req.dataplane, expected_type(proxy_type))?;
    crate::xds::node::sanitize_zone_proxy(&mut dataplane);
    let mesh = dataplane.meta.mesh.clone().unwrap_or_default();
    let mesh_key = ResourceKey::new(ResourceType::Mesh, None, &mesh);
    if dataplane.resource_type() == ResourceType::Dataplane
        && state.store.get(&mesh_key).await?.is_none()
    {
        return Err(invalid(
            "dataplane.mesh",
            format!("mesh {mesh:?} does not exist in this zone"),
        ));
    }
    let token = bearer(&headers);
    if let Err(e) = bs.admission.admit(token, &dataplane) {
        tracing::warn!(
            mesh = %mesh,
            dataplane = %dataplane.meta.name,
            reason = %e,
            "refused a bootstrap request"
        );
        let status = match e {
            AdmissionError::MissingToken => StatusCode::UNAUTHORIZED,
            AdmissionError::Refused(_) => StatusCode::UNAUTHORIZED,
            AdmissionError::Denied(_) => StatusCode::FORBIDDEN,
        };
        return Err(ApiError::new(status, e.to_string()));
    }
    let xds = XdsTarget {
        host: bs
            .params
            .xds_host
            .clone()
            .or_else(|| request_host(&headers))
            .unwrap_or_else(|| "127.0.0.1".into()),
        port: bs.params.xds_port,
        ca_pem: bs.params.ca_pem.clone(),
    };
    let api = req.xds_api.unwrap_or_default();
    let config = envoy::bootstrap(&envoy::BootstrapInput {
        dataplane: &dataplane,
        xds: &xds,
        api,
        token,
        version: req.version.as_ref(),
        access_log_socket: req.access_log_socket_path.as_deref(),
    });
    tracing::info!(
        mesh = %mesh,
        dataplane = %dataplane.meta.name,
        xds = %format!("{}:{}", xds.host, xds.port),
        api = ?api,
        "answered a bootstrap request"
    );
    let mut resp = axum::Json(config).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /bootstrap/leave`: a stopping proxy leaves the mesh now rather than
/// after the grace period that follows its stream's end. Same body and token as
/// `/bootstrap`; its Dataplane (ZoneIngress, ZoneEgress) is deleted, so every
/// other proxy stops sending to it while its Envoy still serves what is in
/// flight. `204` also when it is already gone.
async fn leave(
    State(state): State<ApiState>,
    Extension(bs): Extension<BootstrapState>,
    headers: HeaderMap,
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
    let req = parse_request(&bytes)?;
    let proxy_type = req.proxy_type.as_deref().unwrap_or("sidecar");
    if !PROXY_TYPES.contains(&proxy_type) {
        return Err(invalid(
            "proxyType",
            format!(
                "unknown proxy type {proxy_type:?}; expected one of {}",
                PROXY_TYPES.join(", ")
            ),
        ));
    }
    let presented = parse_dataplane(req.dataplane, expected_type(proxy_type))?;
    // The token must admit what is stored under that name, not what the
    // request says about it; what came from global is never a proxy's to delete.
    let dataplane = match state.store.get(&presented.key()).await? {
        None => return Ok(StatusCode::NO_CONTENT.into_response()),
        Some(stored) if crate::xds::server::is_from_global(&stored) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} {} belongs to another zone (received from global)",
                    stored.resource_type().name(),
                    stored.meta.name
                ),
            ));
        }
        Some(stored) => stored,
    };
    if let Err(e) = bs.admission.admit(bearer(&headers), &dataplane) {
        tracing::warn!(proxy = %dataplane.key(), reason = %e, "refused a leave request");
        let status = match e {
            AdmissionError::Denied(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        return Err(ApiError::new(status, e.to_string()));
    }
    let mut keys = vec![dataplane.key()];
    if dataplane.resource_type() == ResourceType::Dataplane {
        keys.push(ResourceKey::new(
            ResourceType::DataplaneInsight,
            dataplane.meta.mesh.as_deref(),
            &dataplane.meta.name,
        ));
    }
    for key in keys {
        match state.store.delete(&key, None).await {
            Ok(_) | Err(weft_store::StoreError::NotFound(_)) => {}
            Err(weft_store::StoreError::MeshNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(proxy = %dataplane.key(), "a proxy left the mesh");
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn check_socket_path(path: &str) -> Result<(), ApiError> {
    if !path.starts_with('/') {
        return Err(invalid("accessLogSocketPath", "must be an absolute path"));
    }
    if path.len() > MAX_SOCKET_PATH {
        return Err(invalid(
            "accessLogSocketPath",
            format!(
                "is {} bytes; a unix socket path has at most {MAX_SOCKET_PATH}",
                path.len()
            ),
        ));
    }
    Ok(())
}

fn parse_request(bytes: &[u8]) -> Result<BootstrapRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            if reason.contains("missing field `dataplane`") {
                return invalid("dataplane", "is required: the proxy's Dataplane resource");
            }
            return ApiError::bad_request(format!(
                "the body must be a JSON object {{\"dataplane\": ..., \"proxyType\": \"sidecar\", \
                 \"xdsApi\": \"delta\"}}: {reason}"
            ));
        }
        invalid(&path, reason)
    })
}

/// A Dataplane object, or a YAML / JSON document in a string; validated.
fn parse_dataplane(value: Value, expected: ResourceType) -> Result<Resource, ApiError> {
    let value = match value {
        Value::String(text) => parse_document(text.as_bytes(), false)
            .map_err(|e| invalid("dataplane", e.to_string()))?,
        v @ Value::Object(_) => v,
        _ => {
            return Err(invalid(
                "dataplane",
                "must be a Dataplane object or a YAML/JSON string",
            ));
        }
    };
    let resource = Resource::from_value(value).map_err(|e| invalid_dataplane(&e))?;
    resource.validate().map_err(|e| invalid_dataplane(&e))?;
    if resource.resource_type() != expected {
        return Err(invalid(
            "dataplane.type",
            format!(
                "must be {} for this proxy type, got {}",
                expected.name(),
                resource.resource_type().name()
            ),
        ));
    }
    Ok(resource)
}

fn invalid_dataplane(errs: &ValidationErrors) -> ApiError {
    let mut e = ApiError::bad_request("Dataplane is not valid");
    e.invalid_parameters = errs
        .violations()
        .iter()
        .map(|v| Violation {
            field: if v.field.is_empty() {
                "dataplane".into()
            } else {
                format!("dataplane.{}", v.field)
            },
            reason: v.reason.clone(),
        })
        .collect();
    e
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid_field(field, reason);
    e.detail = "bootstrap request is not valid".into();
    e
}

/// The presented token, without `Bearer `.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(weft_security::tokens::strip_bearer)
        .filter(|t| !t.is_empty())
}

/// The host part of the `Host` header (`[::1]:5691` → `::1`).
fn request_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.trim();
    let host = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next()?
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_string())
}
