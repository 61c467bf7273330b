//! The echo app the end-to-end tests put behind Envoy: an HTTP/1.1 server that says
//! who answered, and can be told to be slow or to fail; or a raw TCP echo.
//!
//! HTTP: every request gets `{"service","zone","instance","path","method","headers"}`
//! (JSON; `headers` lower-case name → value). Per request:
//! - `?delay=2s` or `x-echo-delay: 2s`: answer after that long;
//! - `?status=503` or `x-echo-status: 503`: answer with that status;
//! - `x-echo-fail: 0.5`: fail (with `--fail-status`, default 503) that share of requests.
//!
//! `--fail-rate R` makes the whole instance flaky. Failures are spread evenly and
//! deterministically (request n fails when ⌊(n+1)·R⌋ > ⌊n·R⌋: R = 0.5 fails every
//! second request), so tests need no luck.
//!
//! HTTPS (`--tls-cert`, `--tls-key`): the same over TLS (HTTP/1.1), as an
//! external service outside the mesh would serve.
//!
//! TCP (`--tcp`): on connect the server writes one JSON line
//! `{"service","zone","instance"}` and then echoes every byte back.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use weft_model::resource::duration::parse_duration;

/// Longest delay a request may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

/// Who this instance is and how it misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoConfig {
    pub service: String,
    pub zone: String,
    pub instance: String,
    /// Share of requests that fail, 0.0..=1.0.
    pub fail_rate: f64,
    pub fail_status: u16,
}

impl EchoConfig {
    pub fn new(service: &str, instance: &str) -> Self {
        EchoConfig {
            service: service.into(),
            zone: String::new(),
            instance: instance.into(),
            fail_rate: 0.0,
            fail_status: 503,
        }
    }

    fn identity(&self) -> serde_json::Value {
        json!({"service": self.service, "zone": self.zone, "instance": self.instance})
    }
}

/// Even, deterministic failures at `rate`: request `n` (from 0) fails when
/// ⌊(n+1)·rate⌋ > ⌊n·rate⌋.
#[derive(Debug, Default)]
pub struct FailSpreader {
    n: AtomicU64,
}

impl FailSpreader {
    pub fn next(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let n = self.n.fetch_add(1, Ordering::Relaxed) as f64;
        let rate = rate.min(1.0);
        ((n + 1.0) * rate).floor() > (n * rate).floor()
    }
}

struct EchoState {
    config: EchoConfig,
    instance_fail: FailSpreader,
    header_fail: FailSpreader,
}

/// The HTTP app.
pub fn router(config: EchoConfig) -> Router {
    let state = Arc::new(EchoState {
        config,
        instance_fail: FailSpreader::default(),
        header_fail: FailSpreader::default(),
    });
    Router::new().fallback(echo).with_state(state)
}

async fn echo(
    State(state): State<Arc<EchoState>>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let delay = query
        .get("delay")
        .map(String::as_str)
        .or_else(|| header("x-echo-delay"));
    if let Some(text) = delay {
        match parse_duration(text) {
            Ok(d) if d <= MAX_DELAY => tokio::time::sleep(d).await,
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("bad delay {text:?}: a duration up to 60s, e.g. 2s or 300ms"),
                )
                    .into_response();
            }
        }
    }
    let asked = query
        .get("status")
        .map(String::as_str)
        .or_else(|| header("x-echo-status"));
    let mut status = match asked.map(|s| {
        s.parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
    }) {
        None => StatusCode::OK,
        Some(Some(s)) => s,
        Some(None) => {
            return (
                StatusCode::BAD_REQUEST,
                "bad status: a number from 100 to 999",
            )
                .into_response();
        }
    };
    let fail =
        StatusCode::from_u16(state.config.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if state.instance_fail.next(state.config.fail_rate) {
        status = fail;
    }
    if let Some(rate) = header("x-echo-fail").and_then(|r| r.parse::<f64>().ok())
        && state.header_fail.next(rate)
    {
        status = fail;
    }
    let mut shown: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        shown
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut body = state.config.identity();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("path".into(), json!(uri.path()));
        obj.insert("method".into(), json!(method.as_str()));
        obj.insert("headers".into(), json!(shown));
        obj.insert("status".into(), json!(status.as_u16()));
    }
    (status, axum::Json(body)).into_response()
}

/// Serves HTTP on `listener` until the process ends.
pub async fn serve_http(listener: TcpListener, config: EchoConfig) -> std::io::Result<()> {
    axum::serve(listener, router(config)).await
}

/// Serves the HTTP echo over TLS (certificate chain and key in PEM) on
/// `listener` until the process ends; a failed handshake drops that connection
/// only.
pub async fn serve_https(
    listener: TcpListener,
    config: EchoConfig,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> std::io::Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("--tls-cert", &e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("--tls-key", &e))?;
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS", &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| bad("--tls-cert/--tls-key", &e))?;
    let listener = TlsListener {
        tcp: listener,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
    };
    axum::serve(listener, router(config)).await
}

/// Accepts TCP connections and completes their TLS handshake.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((tcp, addr)) => {
                    if let Ok(tls) = self.acceptor.accept(tcp).await {
                        return (tls, addr);
                    }
                }
                // Out of file descriptors and the like: do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves the TCP echo on `listener` until the process ends.
pub async fn serve_tcp(listener: TcpListener, config: EchoConfig) -> std::io::Result<()> {
    let banner = format!("{}\n", config.identity());
    loop {
        let (mut conn, _) = listener.accept().await?;
        let banner = banner.clone();
        tokio::spawn(async move {
            if conn.write_all(banner.as_bytes()).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Binds `address`; the bound address (port 0 picks one).
pub async fn bind(address: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Failures are spread evenly: rate 0.5 fails every second request, 0 never, 1 always.
    #[test]
    fn spreader_is_even() {
        let s = FailSpreader::default();
        let got: Vec<bool> = (0..6).map(|_| s.next(0.5)).collect();
        assert_eq!(got, [false, true, false, true, false, true]);
        let s = FailSpreader::default();
        assert_eq!((0..100).filter(|_| s.next(0.1)).count(), 10);
        let s = FailSpreader::default();
        assert!((0..10).all(|_| s.next(1.0)));
        assert!(!(0..10).any(|_| s.next(0.0)));
    }

    // The app answers who it is, echoes the request, and obeys status and fail headers.
    #[tokio::test]
    async fn http_echo() {
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut cfg = EchoConfig::new("backend", "b-1");
        cfg.zone = "east".into();
        tokio::spawn(serve_http(listener, cfg));
        let client = reqwest::Client::new();
        let resp = client
            .get(format!("http://{addr}/hello?x=1"))
            .header("x-test", "yes")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["service"], "backend");
        assert_eq!(body["zone"], "east");
        assert_eq!(body["instance"], "b-1");
        assert_eq!(body["path"], "/hello");
        assert_eq!(body["method"], "GET");
        assert_eq!(body["headers"]["x-test"], "yes");
        let resp = client
            .get(format!("http://{addr}/?status=503"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        let statuses: Vec<u16> = {
            let mut v = Vec::new();
            for _ in 0..4 {
                let r = client
                    .get(format!("http://{addr}/"))
                    .header("x-echo-fail", "0.5")
                    .send()
                    .await
                    .unwrap();
                v.push(r.status().as_u16());
            }
            v
        };
        assert_eq!(statuses, [200, 503, 200, 503]);
        let bad = client
            .get(format!("http://{addr}/?delay=forever"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
    }

    // The TCP mode greets with its identity and echoes bytes back.
    #[tokio::test]
    async fn tcp_echo() {
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        tokio::spawn(serve_tcp(listener, EchoConfig::new("db", "d-1")));
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"ping").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.ends_with(b"ping") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        let (banner, rest) = text.split_once('\n').unwrap();
        let id: serde_json::Value = serde_json::from_str(banner).unwrap();
        assert_eq!(id["instance"], "d-1");
        assert_eq!(rest, "ping");
    }
}
