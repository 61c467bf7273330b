//! The Envoy admin relay (decision 0015): Envoy's admin listens on 127.0.0.1
//! only, and the zone reaches it through here. `weft-dp` holds
//! `GET /envoy-admin/relay` open to the zone (with its dataplane token); each
//! line the zone writes is a [`RelayCommand`]; `weft-dp` checks it, performs the
//! one `GET` it names on Envoy's admin (`/config_dump`, `/stats` or `/clusters`
//! and nothing else), bounded by [`ENVOY_TIMEOUT`] and [`MAX_RESPONSE_BYTES`], and
//! posts the answer to `/envoy-admin/relay/{session}/{id}`. The relay reconnects
//! with back-off for as long as Envoy runs.

use crate::config::DpConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};
use hyper::http::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::convert::Infallible;
use std::time::Duration;
use tokio::task::JoinSet;
use weft_model::proxy::admin::{
    ENVOY_TIMEOUT, MAX_RESPONSE_BYTES, RELAY_ERROR_ENVOY, RELAY_ERROR_HEADER,
    RELAY_ERROR_TOO_LARGE, RelayCommand,
};

/// No line (not even the zone's heartbeat) for this long: the relay is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// After the zone refused the token: retrying soon cannot help.
const REFUSED_BACKOFF: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest line the zone may write.
const MAX_LINE: usize = 64 * 1024;

type Http<B> = Client<HttpConnector, B>;

enum End {
    /// The zone refused the relay (401, 403): why.
    Refused(String),
    /// Anything else: why.
    Retry(String),
}

/// Runs the relay until the future is dropped (when Envoy exits).
pub async fn run(cfg: DpConfig) -> Infallible {
    let stream_client: Http<Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let post_client: Http<Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut pause = BACKOFF_START;
    loop {
        match session(&stream_client, &post_client, &cfg).await {
            Ok(()) => {
                tracing::info!("envoy admin relay: the zone closed it; reconnecting");
                pause = BACKOFF_START;
            }
            Err(End::Refused(why)) => {
                tracing::warn!(reason = %why, "envoy admin relay: the zone refused it");
                pause = REFUSED_BACKOFF;
            }
            Err(End::Retry(why)) => {
                tracing::debug!(reason = %why, retry_in = ?pause, "envoy admin relay: not connected");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn with_token(
    mut req: hyper::http::request::Builder,
    cfg: &DpConfig,
) -> hyper::http::request::Builder {
    if let Some(token) = &cfg.token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    req
}

/// One relay connection, until it ends.
async fn session(
    stream_client: &Http<Empty<Bytes>>,
    post_client: &Http<Full<Bytes>>,
    cfg: &DpConfig,
) -> Result<(), End> {
    let url = format!(
        "{}/envoy-admin/relay?proxyType={}&mesh={}&name={}",
        cfg.cp_url,
        cfg.proxy_type.as_str(),
        encode(&cfg.mesh),
        encode(&cfg.name)
    );
    let req = with_token(Request::get(&url), cfg)
        .body(Empty::new())
        .map_err(|e| End::Retry(format!("cannot build the request: {e}")))?;
    let resp = tokio::time::timeout(CONNECT_TIMEOUT, stream_client.request(req))
        .await
        .map_err(|_| End::Retry(format!("{url}: no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| End::Retry(format!("cannot reach {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let body = Limited::new(resp.into_body(), 4096)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let why = format!("{status}: {}", crate::client::reason(&body));
        return Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => End::Refused(why),
            _ => End::Retry(why),
        });
    }
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut session: Option<String> = None;
    let mut answering = JoinSet::new();
    loop {
        while answering.try_join_next().is_some() {}
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
            Err(_) => {
                return Err(End::Retry(format!(
                    "nothing from the zone for {IDLE_TIMEOUT:?}"
                )));
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(End::Retry(format!("the relay stream broke: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if line.is_empty() || line == b"{}" {
                continue;
            }
            let Some(s) = &session else {
                let v: Value = serde_json::from_slice(line)
                    .map_err(|e| End::Retry(format!("bad first relay line: {e}")))?;
                let s = v["session"]
                    .as_str()
                    .ok_or_else(|| End::Retry("the relay's first line names no session".into()))?;
                tracing::info!("envoy admin relay: connected to the zone");
                session = Some(s.to_string());
                continue;
            };
            match serde_json::from_slice::<RelayCommand>(line) {
                Ok(command) => {
                    let (client, cfg, s) = (post_client.clone(), cfg.clone(), s.clone());
                    answering.spawn(async move { answer(&client, &cfg, &s, command).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "envoy admin relay: ignoring a command it cannot read")
                }
            }
        }
        if buf.len() > MAX_LINE {
            return Err(End::Retry(format!(
                "a relay line is longer than {MAX_LINE} bytes"
            )));
        }
    }
}

/// What Envoy's admin gave for `path`: its content type and body, or the relay
/// error kind and why.
async fn ask_envoy(
    client: &Http<Empty<Bytes>>,
    admin_port: u16,
    path: &str,
) -> Result<(String, Bytes), (&'static str, String)> {
    let url = format!("http://127.0.0.1:{admin_port}{path}");
    let req = Request::get(&url)
        .body(Empty::new())
        .map_err(|e| (RELAY_ERROR_ENVOY, format!("cannot build the request: {e}")))?;
    let fetch = async {
        let resp = client.request(req).await.map_err(|e| {
            (
                RELAY_ERROR_ENVOY,
                format!("cannot reach its admin at 127.0.0.1:{admin_port}: {e}"),
            )
        })?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/plain")
            .to_string();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    (
                        RELAY_ERROR_TOO_LARGE,
                        format!("more than {MAX_RESPONSE_BYTES} bytes"),
                    )
                } else {
                    (RELAY_ERROR_ENVOY, format!("reading its answer failed: {e}"))
                }
            })?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)]).to_string();
            return Err((
                RELAY_ERROR_ENVOY,
                format!("{path} answered {status}: {}", text.trim()),
            ));
        }
        Ok((content_type, body))
    };
    tokio::time::timeout(ENVOY_TIMEOUT, fetch)
        .await
        .unwrap_or_else(|_| {
            Err((
                RELAY_ERROR_ENVOY,
                format!("no answer within {ENVOY_TIMEOUT:?}"),
            ))
        })
}

/// Carries out one command and posts its answer.
async fn answer(client: &Http<Full<Bytes>>, cfg: &DpConfig, session: &str, command: RelayCommand) {
    let envoy: Http<Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let outcome = match command.query.check(command.op) {
        Err(e) => Err((
            RELAY_ERROR_ENVOY,
            format!("weft-dp refused the request: {e}"),
        )),
        Ok(()) => {
            ask_envoy(
                &envoy,
                cfg.admin_port,
                &command.query.envoy_path(command.op),
            )
            .await
        }
    };
    let url = format!("{}/envoy-admin/relay/{session}/{}", cfg.cp_url, command.id);
    let req = with_token(Request::post(&url), cfg);
    let req = match outcome {
        Ok((content_type, body)) => req
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body)),
        Err((kind, why)) => req
            .header(RELAY_ERROR_HEADER, kind)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Full::new(Bytes::from(why))),
    };
    let Ok(req) = req else { return };
    match tokio::time::timeout(CONNECT_TIMEOUT, client.request(req)).await {
        Ok(Ok(r)) if r.status().is_success() => {}
        Ok(Ok(r)) => {
            tracing::debug!(status = %r.status(), "envoy admin relay: the zone did not take an answer")
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "envoy admin relay: posting an answer failed"),
        Err(_) => tracing::debug!("envoy admin relay: posting an answer timed out"),
    }
}
