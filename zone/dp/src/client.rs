//! Getting the bootstrap from the zone (`POST /bootstrap`), retrying with a bounded
//! back-off while the zone is unreachable or not ready; a refusal (4xx) is final and
//! carries the zone's reason.

use super::config::DpConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// First and largest pause between attempts.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// One attempt's limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest bootstrap read.
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the zone refused the bootstrap request ({status}): {reason}")]
    Refused { status: StatusCode, reason: String },
    #[error(
        "the zone at {url} did not answer the bootstrap request within {waited:?} \
         (--bootstrap-timeout); last error: {last}"
    )]
    Unreachable {
        url: String,
        waited: Duration,
        last: String,
    },
}

/// What a single attempt gave.
enum Attempt {
    Done(Vec<u8>),
    Retry(String),
    Fatal(FetchError),
}

/// The body weft-dp sends; `access_log_socket` is its access-log sink.
pub fn request_body(cfg: &DpConfig, access_log_socket: Option<&Path>) -> Value {
    let mut body = json!({
        "dataplane": cfg.dataplane,
        "proxyType": cfg.proxy_type.as_str(),
        "xdsApi": cfg.xds_api,
        "version": { "weftDp": env!("CARGO_PKG_VERSION") },
    });
    if let (Some(p), Some(b)) = (access_log_socket, body.as_object_mut()) {
        b.insert(
            "accessLogSocketPath".into(),
            Value::String(p.display().to_string()),
        );
    }
    body
}

/// Fetches the bootstrap (JSON bytes).
pub async fn fetch_bootstrap(
    cfg: &DpConfig,
    access_log_socket: Option<&Path>,
) -> Result<Vec<u8>, FetchError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("{}/bootstrap", cfg.cp_url);
    let body = request_body(cfg, access_log_socket).to_string();
    let started = Instant::now();
    let deadline = started + cfg.bootstrap_timeout;
    let mut pause = BACKOFF_START;
    loop {
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(&client, &url, cfg, &body))
            .await
            .unwrap_or_else(|_| Attempt::Retry(format!("no answer within {ATTEMPT_TIMEOUT:?}")));
        let last = match outcome {
            Attempt::Done(bytes) => return Ok(bytes),
            Attempt::Fatal(e) => return Err(e),
            Attempt::Retry(why) => why,
        };
        let now = Instant::now();
        if now + pause > deadline {
            return Err(FetchError::Unreachable {
                url,
                waited: now - started,
                last,
            });
        }
        tracing::info!(reason = %last, retry_in = ?pause, "the zone is not ready for the bootstrap yet");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

/// Tells the zone this proxy is leaving (`POST /bootstrap/leave`): the zone
/// removes it from every other proxy's endpoints at once, while its Envoy still
/// serves what is in flight. One try, bounded; a failure only costs the grace
/// period the zone otherwise waits after the stream closes.
pub async fn leave(cfg: &DpConfig) -> Result<(), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("{}/bootstrap/leave", cfg.cp_url);
    let body = json!({"dataplane": cfg.dataplane, "proxyType": cfg.proxy_type.as_str()});
    let mut req = Request::post(&url).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = &cfg.token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let resp = tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(req))
        .await
        .map_err(|_| format!("{url}: no answer within {ATTEMPT_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", resp.status()))
    }
}

async fn attempt(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    cfg: &DpConfig,
    body: &str,
) -> Attempt {
    let mut req = Request::post(url).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = &cfg.token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = match req.body(Full::new(Bytes::from(body.to_string()))) {
        Ok(r) => r,
        Err(e) => return Attempt::Retry(format!("cannot build the request: {e}")),
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => return Attempt::Retry(format!("cannot reach {url}: {e}")),
    };
    let status = resp.status();
    let bytes = match Limited::new(resp.into_body(), MAX_RESPONSE).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Attempt::Retry(format!("cannot read the answer: {e}")),
    };
    if status.is_success() {
        return Attempt::Done(bytes.to_vec());
    }
    let reason = reason(&bytes);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Attempt::Retry(format!("{status}: {reason}"));
    }
    Attempt::Fatal(FetchError::Refused { status, reason })
}

/// The zone's explanation: `detail` plus every `field: reason` of an API error.
pub fn reason(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(body).trim().to_string();
    };
    let mut out = v
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("no detail")
        .to_string();
    if let Some(params) = v.get("invalid_parameters").and_then(Value::as_array) {
        let fields: Vec<String> = params
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.get("field").and_then(Value::as_str).unwrap_or("?"),
                    p.get("reason").and_then(Value::as_str).unwrap_or("?")
                )
            })
            .collect();
        if !fields.is_empty() {
            out.push_str(&format!(" ({})", fields.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use weft_model::proxy::XdsApi;
    use weft_runtime::config::LogFormat;

    fn config(authority: &str, timeout: Duration) -> DpConfig {
        DpConfig {
            cp_authority: authority.into(),
            cp_url: format!("http://{authority}"),
            dataplane: json!({"type": "Dataplane", "mesh": "default", "name": "a"}),
            proxy_type: crate::config::ProxyType::Sidecar,
            mesh: "default".into(),
            name: "a".into(),
            token: Some("t0k".into()),
            envoy_bin: "envoy".into(),
            xds_api: XdsApi::Sotw,
            admin_port: 9901,
            envoy_log_level: "info".into(),
            bootstrap_timeout: timeout,
            drain_time: Duration::from_secs(1),
            log_level: "info".into(),
            log_format: LogFormat::Text,
        }
    }

    /// A zone stand-in answering `answers[i]` to request i (the last one afterwards).
    async fn fake_zone(answers: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = hits.clone();
        let app = axum::Router::new().route(
            "/bootstrap",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = seen.clone();
                let answers = answers.clone();
                async move {
                    let i = seen.fetch_add(1, Ordering::SeqCst);
                    let (code, text) = answers[i.min(answers.len() - 1)];
                    assert_eq!(headers[header::AUTHORIZATION], "Bearer t0k");
                    let req: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(req["xdsApi"], "sotw");
                    assert_eq!(req["dataplane"]["name"], "a");
                    (StatusCode::from_u16(code).unwrap(), text)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, hits)
    }

    // 503s are retried with back-off until the zone answers; the body is the bootstrap.
    #[tokio::test]
    async fn retries_until_ready() {
        let (addr, hits) = fake_zone(vec![(503, "{}"), (503, "{}"), (200, r#"{"node":{}}"#)]).await;
        let got = fetch_bootstrap(&config(&addr, Duration::from_secs(10)), None)
            .await
            .unwrap();
        assert_eq!(got, br#"{"node":{}}"#);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    // A 4xx is final at once and carries the zone's reason.
    #[tokio::test]
    async fn refusal_is_final() {
        let (addr, hits) = fake_zone(vec![(
            403,
            r#"{"detail":"dataplane token refused: wrong mesh"}"#,
        )])
        .await;
        let err = fetch_bootstrap(&config(&addr, Duration::from_secs(10)), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("403"), "{err}");
        assert!(err.to_string().contains("wrong mesh"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    // Nobody listening: it gives up after --bootstrap-timeout, saying why.
    #[tokio::test]
    async fn unreachable_gives_up_in_time() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let err = fetch_bootstrap(
            &config(&format!("127.0.0.1:{port}"), Duration::from_millis(500)),
            None,
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("--bootstrap-timeout"), "{err}");
        assert!(err.to_string().contains("cannot reach"), "{err}");
    }

    // The reason names the detail and each invalid field; non-JSON is shown as text.
    #[test]
    fn reason_text() {
        let body = br#"{"detail":"Dataplane is not valid","invalid_parameters":[{"field":"dataplane.networking.address","reason":"is required"}]}"#;
        assert_eq!(
            reason(body),
            "Dataplane is not valid (dataplane.networking.address: is required)"
        );
        assert_eq!(reason(b" oops \n"), "oops");
    }
}
