//! The REST client: one HTTP/1.1 connection per request (a CLI makes a handful)
//! over hyper, TLS by rustls (ring) verified against the given CA or the system's
//! roots, `Authorization: Bearer <token>`, every request bounded by
//! `--api-timeout`. Errors say what to do: the address that refused, a rejected
//! token, each invalid field of a std-errors answer.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url:?} is not a control plane address: {reason} (e.g. http://127.0.0.1:5681)")]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot connect to the control plane at {address}: {source} (is weft-global or weft-zone \
         running there? `weftctl config control-planes list` shows the configured address)"
    )]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with the control plane at {address} failed: {source}")]
    Tls {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    TlsConfig(String),
    #[error("cannot read the CA certificate file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "the control plane at {address} did not answer {method} {path} within {after:?} (--api-timeout)"
    )]
    Timeout {
        address: String,
        method: Method,
        path: String,
        after: Duration,
    },
    #[error("{method} {path} at {address} failed: {source}")]
    Http {
        address: String,
        method: Method,
        path: String,
        #[source]
        source: hyper::Error,
    },
    #[error(
        "the control plane at {address} rejected the token (401): check `weftctl config \
         control-planes add` (--auth-type=tokens --auth-conf token=$(cat DATA_DIR/admin.token))"
    )]
    Unauthorized { address: String },
    #[error("{}", api_message(.method, .path, *.status, .detail, .invalid))]
    Api {
        method: Method,
        path: String,
        status: StatusCode,
        detail: String,
        /// `(field, reason)` of a std-errors `invalid_parameters`.
        invalid: Vec<(String, String)>,
    },
    #[error("{method} {path}: the answer is not JSON: {source}")]
    Decode {
        method: Method,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

fn api_message(
    method: &Method,
    path: &str,
    status: StatusCode,
    detail: &str,
    invalid: &[(String, String)],
) -> String {
    let mut s = format!("{method} {path}: {status}");
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    for (field, reason) in invalid {
        s.push_str(&format!("\n  {field}: {reason}"));
    }
    s
}

impl ClientError {
    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Unauthorized { .. } => Some(StatusCode::UNAUTHORIZED),
            _ => None,
        }
    }
}

/// Where and how to reach a control plane.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub url: String,
    pub token: Option<String>,
    pub ca_cert_file: Option<PathBuf>,
    pub skip_verify: bool,
}

/// A parsed base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Base {
    https: bool,
    host: String,
    port: u16,
    /// Path prefix without the trailing slash ("" or "/weft").
    prefix: String,
}

impl Base {
    fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: url.into(),
            reason: reason.into(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(_) => return Err(bad("the scheme must be http or https")),
            None => return Err(bad("it needs a scheme, http:// or https://")),
        };
        let host = uri
            .host()
            .ok_or_else(|| bad("it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if uri.query().is_some() {
            return Err(bad("it may not have a query"));
        }
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Base {
            https,
            host,
            port,
            prefix,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// An answer: status, content type and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn is_json(&self) -> bool {
        self.content_type.contains("json")
    }
}

/// A body to send and its content type.
pub struct Body<'a> {
    pub bytes: Vec<u8>,
    pub content_type: &'a str,
}

pub struct Client {
    base: Base,
    token: Option<String>,
    timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Client {
    pub fn new(target: &Target, timeout: Duration) -> Result<Self, ClientError> {
        let base = Base::parse(&target.url)?;
        let tls = if base.https {
            Some(tls_connector(target)?)
        } else {
            None
        };
        Ok(Client {
            base,
            token: target.token.clone(),
            timeout,
            tls,
        })
    }

    /// Whether requests go over plain HTTP to another host (the token would cross
    /// the network unencrypted).
    pub fn is_cleartext_remote(&self) -> bool {
        !self.base.https && !self.base.is_loopback()
    }

    pub fn address(&self) -> String {
        format!(
            "{}://{}{}",
            if self.base.https { "https" } else { "http" },
            self.base.authority(),
            self.base.prefix
        )
    }

    /// Sends one request; any status comes back as an [`Answer`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
    ) -> Result<Answer, ClientError> {
        let after = self.timeout;
        match tokio::time::timeout(after, self.send_inner(method.clone(), path, body)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                address: self.address(),
                method,
                path: path.into(),
                after,
            }),
        }
    }

    async fn send_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
    ) -> Result<Answer, ClientError> {
        let address = self.address();
        let tcp = TcpStream::connect((self.base.host.as_str(), self.base.port))
            .await
            .map_err(|source| ClientError::Connect {
                address: address.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let request = self.request(&method, path, body)?;
        let answer = match &self.tls {
            None => exchange(tcp, request).await,
            Some(tls) => {
                let name = ServerName::try_from(self.base.host.clone())
                    .map_err(|e| ClientError::TlsConfig(format!("{}: {e}", self.base.host)))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|source| ClientError::Tls {
                        address: address.clone(),
                        source,
                    })?;
                exchange(stream, request).await
            }
        };
        let answer = answer.map_err(|source| ClientError::Http {
            address: address.clone(),
            method: method.clone(),
            path: path.into(),
            source,
        })?;
        if answer.status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized { address });
        }
        Ok(answer)
    }

    fn request(
        &self,
        method: &Method,
        path: &str,
        body: Option<Body<'_>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let uri = format!("{}{}", self.base.prefix, path);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::HOST, self.base.authority())
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("weftctl/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(b) => {
                builder = builder.header(header::CONTENT_TYPE, b.content_type);
                Bytes::from(b.bytes)
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(bytes))
            .map_err(|e| ClientError::BadUrl {
                url: uri.clone(),
                reason: e.to_string(),
            })
    }

    /// GET `path`, which must answer 2xx with JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let answer = self.send(Method::GET, path, None).await?;
        ok_json(Method::GET, path, answer)
    }

    /// Sends and fails on a non-2xx answer (as [`ClientError::Api`]).
    pub async fn send_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
    ) -> Result<Answer, ClientError> {
        let answer = self.send(method.clone(), path, body).await?;
        ensure_ok(method, path, answer)
    }
}

/// `answer` if 2xx, else its std-errors detail and invalid fields as an error.
pub fn ensure_ok(method: Method, path: &str, answer: Answer) -> Result<Answer, ClientError> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    let (detail, invalid) = std_errors(&answer);
    Err(ClientError::Api {
        method,
        path: path.into(),
        status: answer.status,
        detail,
        invalid,
    })
}

/// The JSON of a 2xx answer.
pub fn ok_json(method: Method, path: &str, answer: Answer) -> Result<Value, ClientError> {
    let answer = ensure_ok(method.clone(), path, answer)?;
    serde_json::from_slice(&answer.body).map_err(|source| ClientError::Decode {
        method,
        path: path.into(),
        source,
    })
}

/// A std-errors body's `detail` (else `title`, else the text) and its
/// `invalid_parameters` as (field, reason).
pub fn std_errors(answer: &Answer) -> (String, Vec<(String, String)>) {
    let Ok(v) = serde_json::from_slice::<Value>(&answer.body) else {
        return (answer.text().trim().to_string(), Vec::new());
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let detail = v
        .get("detail")
        .or_else(|| v.get("title"))
        .map(text)
        .unwrap_or_default();
    let invalid = v
        .get("invalid_parameters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p.get("field").map(text).unwrap_or_default(),
                        p.get("reason").map(text).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (detail, invalid)
}

async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Answer, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    driver.abort();
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// The CA bundles of common Linux distributions, tried in order when no CA file
/// is given (after `SSL_CERT_FILE`).
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn tls_connector(target: &Target) -> Result<tokio_rustls::TlsConnector, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::TlsConfig(e.to_string()))?;
    let config = if target.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let files: Vec<PathBuf> = match &target.ca_cert_file {
            Some(f) => vec![f.clone()],
            None => std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .into_iter()
                .chain(SYSTEM_CA_FILES.iter().map(PathBuf::from))
                .filter(|p| p.exists())
                .take(1)
                .collect(),
        };
        for file in &files {
            for cert in read_certs(file)? {
                roots.add(cert).map_err(|e| ClientError::CaFile {
                    path: file.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        if roots.is_empty() {
            return Err(ClientError::TlsConfig(
                "no CA certificates to verify the control plane with: give --ca-cert-file to \
                 `weftctl config control-planes add`"
                    .into(),
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let bad = |reason: String| ClientError::CaFile {
        path: path.into(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("it holds no PEM CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// `--skip-verify`: accepts any server certificate (signatures are still checked,
/// so the handshake itself is sound). For testing only.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Percent-encodes a query component (everything but RFC 3986's unreserved).
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes one path segment.
pub fn encode_segment(s: &str) -> String {
    encode_query(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Base URLs: scheme, host (IPv6 too), default ports, a path prefix; bad ones
    // are refused with the reason.
    #[test]
    fn base_urls() {
        let b = Base::parse("http://127.0.0.1:5681").unwrap();
        assert_eq!(
            (b.https, b.host.as_str(), b.port, b.prefix.as_str()),
            (false, "127.0.0.1", 5681, "")
        );
        assert!(b.is_loopback());
        let b = Base::parse("https://cp.example/weft/").unwrap();
        assert_eq!((b.https, b.port, b.prefix.as_str()), (true, 443, "/weft"));
        assert!(!b.is_loopback());
        let b = Base::parse("http://[::1]:5681").unwrap();
        assert_eq!(b.host, "::1");
        assert_eq!(b.authority(), "[::1]:5681");
        assert!(b.is_loopback());
        assert!(Base::parse("http://localhost:1").unwrap().is_loopback());
        for bad in ["127.0.0.1:5681", "ftp://x", "http://x/?a=b", "not a url"] {
            let err = Base::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    // A std-errors body yields its detail and each field with its reason.
    #[test]
    fn std_errors_body() {
        let answer = Answer {
            status: StatusCode::BAD_REQUEST,
            content_type: "application/json".into(),
            body: Bytes::from_static(
                br#"{"type":"/std-errors","status":400,"title":"Bad Request","detail":"Resource is not valid",
                "invalid_parameters":[{"field":"spec.targetRef.name","reason":"must be set"},
                {"field":"spec.to[0].default.http.perTryTimeout","reason":"not a duration"}]}"#,
            ),
        };
        let (detail, invalid) = std_errors(&answer);
        assert_eq!(detail, "Resource is not valid");
        assert_eq!(invalid.len(), 2);
        assert_eq!(invalid[1].0, "spec.to[0].default.http.perTryTimeout");
        let err = ensure_ok(Method::PUT, "/meshes/default/meshretries/x", answer).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("400") && text.contains("spec.targetRef.name: must be set"),
            "{text}"
        );
        // A plain-text error answer is kept as the detail.
        let answer = Answer {
            status: StatusCode::NOT_FOUND,
            content_type: "text/plain".into(),
            body: Bytes::from_static(b"nothing here\n"),
        };
        assert_eq!(std_errors(&answer).0, "nothing here");
    }

    // Query components are percent-encoded (brackets, spaces, slashes).
    #[test]
    fn query_encoding() {
        assert_eq!(encode_query("filter[labels.k]"), "filter%5Blabels.k%5D");
        assert_eq!(encode_query("kuma.io/zone"), "kuma.io%2Fzone");
        assert_eq!(encode_query("a b"), "a%20b");
        assert_eq!(encode_query("web-1_x.y~"), "web-1_x.y~");
    }

    // Nothing listens: the error names the address.
    #[tokio::test]
    async fn connection_refused_names_the_address() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = Client::new(
            &Target {
                url: format!("http://127.0.0.1:{port}"),
                ..Default::default()
            },
            Duration::from_secs(5),
        )
        .unwrap();
        let err = client.get_json("/").await.unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }

    /// An https server on loopback (a Weft CA's certificate for localhost) that
    /// answers every request `200 {"product":"tls"}`; its address and CA file.
    async fn https_server(dir: &Path) -> (String, PathBuf) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let ca = weft_security::pki::Ca::generate().unwrap();
        let leaf = ca.issue_server_cert(&["localhost".into()]).unwrap();
        let chain = CertificateDer::pem_slice_iter(leaf.chain_pem(&ca).as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, leaf.key_pem.to_der().unwrap())
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let body = r#"{"product":"tls"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        (format!("https://localhost:{port}"), ca_file)
    }

    // https is verified: the right CA file connects, another CA (or the system
    // bundle) is refused naming the address, --skip-verify connects anyway.
    #[tokio::test]
    async fn tls_is_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let (url, ca_file) = https_server(tmp.path()).await;
        let client = |ca: Option<PathBuf>, skip: bool| {
            Client::new(
                &Target {
                    url: url.clone(),
                    token: Some("t".into()),
                    ca_cert_file: ca,
                    skip_verify: skip,
                },
                Duration::from_secs(10),
            )
        };
        let v = client(Some(ca_file), false)
            .unwrap()
            .get_json("/")
            .await
            .unwrap();
        assert_eq!(v["product"], "tls");

        let other = tmp.path().join("other.pem");
        let other_ca = weft_security::pki::Ca::generate().unwrap();
        std::fs::write(&other, other_ca.cert_pem()).unwrap();
        let err = client(Some(other), false)
            .unwrap()
            .get_json("/")
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Tls { .. }), "{err}");
        assert!(
            err.to_string().contains(&url.replace("https://", "")),
            "{err}"
        );

        let v = client(None, true).unwrap().get_json("/").await.unwrap();
        assert_eq!(v["product"], "tls");
    }

    // https without a CA file that exists is refused before any connection.
    #[test]
    fn missing_ca_file() {
        let err = Client::new(
            &Target {
                url: "https://127.0.0.1:1".into(),
                ca_cert_file: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            },
            Duration::from_secs(1),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
