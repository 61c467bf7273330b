//! The routes `weft-dp` uses to relay admin requests to its Envoy (open routes:
//! each authenticates with the proxy's dataplane token, like `/bootstrap`).
//!
//! - `GET /envoy-admin/relay?proxyType=sidecar|ingress|egress&mesh=M&name=N`: the
//!   token must admit the proxy stored under that name (`401`/`403` otherwise;
//!   `404` until its Envoy has connected and it is stored; weft-dp retries). The
//!   answer is a stream of JSON lines that stays open: first
//!   `{"session": "<secret>"}`, then one [`RelayCommand`] per request, and `{}`
//!   every [`HEARTBEAT`] when idle.
//! - `POST /envoy-admin/relay/{session}/{id}`: the answer to command `id`, as
//!   Envoy gave it (its `content-type`), or, with header
//!   [`RELAY_ERROR_HEADER`] (`too-large`, `envoy`), why there is none. Same token
//!   as the session; `204` when taken, `404` when nothing waits for it.

use super::{AnswerError, Connection, HEARTBEAT, Outcome, Relay};
use crate::admission::{Admission, AdmissionError};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use tokio::sync::mpsc;
use weft_api::{ApiError, ApiState};
use weft_model::proxy::admin::{
    MAX_RESPONSE_BYTES, ProxyRef, RELAY_ERROR_ENVOY, RELAY_ERROR_HEADER, RELAY_ERROR_TOO_LARGE,
    RelayCommand,
};
use weft_model::resource::{ResourceKey, ResourceType};

#[derive(Clone)]
struct RelayState {
    relay: Relay,
    admission: Admission,
}

/// The open routes; merge into [`weft_api::ExtraRoutes::open`].
pub fn routes(relay: Relay, admission: Admission) -> Router<ApiState> {
    Router::new()
        .route("/envoy-admin/relay", get(open))
        .route("/envoy-admin/relay/{session}/{id}", post(answer))
        .layer(Extension(RelayState { relay, admission }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenQuery {
    proxy_type: String,
    #[serde(default)]
    mesh: String,
    name: String,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(weft_security::tokens::strip_bearer)
        .filter(|t| !t.is_empty())
}

async fn open(
    State(state): State<ApiState>,
    Extension(rs): Extension<RelayState>,
    headers: HeaderMap,
    query: Result<Query<OpenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "the relay takes ?proxyType=sidecar|ingress|egress&mesh=M&name=N: {e}"
        ))
    })?;
    let ty = match q.proxy_type.as_str() {
        "sidecar" => ResourceType::Dataplane,
        "ingress" => ResourceType::ZoneIngress,
        "egress" => ResourceType::ZoneEgress,
        other => {
            return Err(ApiError::invalid_field(
                "proxyType",
                format!("unknown proxy type {other:?}; expected sidecar, ingress or egress"),
            ));
        }
    };
    let mesh = (ty == ResourceType::Dataplane).then_some(q.mesh.as_str());
    let proxy = ProxyRef::new(ty, mesh, &q.name).map_err(ApiError::bad_request)?;
    let key = ResourceKey::new(ty, proxy.mesh.as_deref(), &proxy.name);
    // The token must admit what is stored under that name, as for leaving.
    let Some(stored) = state.store.get(&key).await? else {
        return Err(ApiError::not_found(format!(
            "{proxy} is not in this zone yet (its Envoy has not connected)"
        )));
    };
    if crate::xds::server::is_from_global(&stored) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{proxy} belongs to another zone (received from global)"),
        ));
    }
    let token = bearer(&headers);
    if let Err(e) = rs.admission.admit(token, &stored) {
        tracing::warn!(%proxy, reason = %e, "envoy admin: refused a relay");
        let status = match e {
            AdmissionError::Denied(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        return Err(ApiError::new(status, e.to_string()));
    }
    let (conn, commands) = rs.relay.connect(proxy.clone(), token.map(str::to_string));
    tracing::info!(%proxy, "envoy admin: relay open");
    let mut resp = Response::new(Body::from_stream(lines(conn, commands)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The relay stream's lines; the connection stays registered while the stream
/// lives (hyper drops it when `weft-dp` goes away).
fn lines(
    conn: Connection,
    commands: mpsc::Receiver<RelayCommand>,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    let first = format!("{}\n", serde_json::json!({ "session": conn.session }));
    let state = (conn, commands, Some(first));
    futures::stream::unfold(state, |(conn, mut commands, first)| async move {
        if let Some(line) = first {
            return Some((Ok(Bytes::from(line)), (conn, commands, None)));
        }
        let line = match tokio::time::timeout(HEARTBEAT, commands.recv()).await {
            Ok(Some(command)) => match serde_json::to_string(&command) {
                Ok(json) => format!("{json}\n"),
                Err(_) => "{}\n".to_string(),
            },
            // The relay replaced this connection (a newer one of the same proxy).
            Ok(None) => return None,
            Err(_) => "{}\n".to_string(),
        };
        Some((Ok(Bytes::from(line)), (conn, commands, None)))
    })
}

async fn answer(
    Extension(rs): Extension<RelayState>,
    Path((session, id)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES + 1)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes or broken: {e}"),
            )
        })?;
    let outcome = match headers
        .get(RELAY_ERROR_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        None => Outcome::Reply(super::AdminReply {
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain")
                .to_string(),
            body: bytes.to_vec(),
        }),
        Some(RELAY_ERROR_TOO_LARGE) => Outcome::TooLarge,
        Some(kind) => {
            let reason = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_string();
            Outcome::Envoy(if kind == RELAY_ERROR_ENVOY {
                reason
            } else {
                format!("{kind}: {reason}")
            })
        }
    };
    match rs.relay.answer(&session, bearer(&headers), id, outcome) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e @ AnswerError::WrongToken) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, e.to_string()))
        }
        Err(e) => Err(ApiError::not_found(e.to_string())),
    }
}
