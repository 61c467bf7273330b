//! The web GUI under `/gui`: hand-written HTML, CSS and ES modules
//! (`shared/api/gui/`), embedded in the binary and served without a token. Every
//! piece of data the GUI shows comes from the REST API through `fetch` with the
//! admin token in the `Authorization` header (kept in the browser's
//! `sessionStorage`, never in a URL); see docs/gui.md and decision 0017.
//!
//! Assets are looked up in a fixed table, never on disk, so no request path can
//! reach a file (`/gui/../admin.token` is a 404). A path without an extension is a
//! client-side view and gets the app shell; an unknown asset is a 404. Every
//! answer under `/gui` carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline script, no framing) and no CORS
//! header.

use super::{ApiError, ApiState};
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy every GUI answer carries: only this origin's scripts, styles,
/// images and API; no inline script or style, no plugins, no `<base>`, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its path under `/gui/`, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $ty:expr) => {
        Asset {
            path: $path,
            content_type: $ty,
            body: include_str!(concat!("../gui/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the GUI. `index.html` is the app shell.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("status.js", JS),
    asset!("views/home.js", JS),
    asset!("views/zones.js", JS),
    asset!("views/meshes.js", JS),
    asset!("views/services.js", JS),
    asset!("views/dataplanes.js", JS),
    asset!("views/policies.js", JS),
];

/// `GET /gui`, `/gui/` and `/gui/{*path}`, open (no token).
pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/gui", get(shell))
        .route("/gui/", get(shell))
        .route("/gui/{*path}", get(asset))
        .layer(axum::middleware::map_response(secure))
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

async fn shell() -> Response {
    serve(find("index.html"))
}

/// An asset by its path; a path without an extension is a view of the app
/// (client-side routing) and gets the shell. Parent segments are refused.
async fn asset(Path(path): Path<String>) -> Response {
    let segments: Vec<&str> = path.split('/').collect();
    if segments
        .iter()
        .any(|s| *s == ".." || *s == "." || s.contains('\\'))
    {
        return ApiError::not_found("no such GUI file: paths cannot leave /gui").into_response();
    }
    let last = segments.last().copied().unwrap_or_default();
    if last.contains('.') {
        match find(&path) {
            Some(a) => serve(Some(a)),
            None => ApiError::not_found(format!("no such GUI file: /gui/{path}")).into_response(),
        }
    } else {
        serve(find("index.html"))
    }
}

fn serve(asset: Option<&'static Asset>) -> Response {
    match asset {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                // Revalidate: a new binary serves new files at the same paths.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.body,
        )
            .into_response(),
        None => ApiError::internal("the GUI's index.html is not embedded").into_response(),
    }
}

/// The security headers of every answer under `/gui`, errors included.
async fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{AdminToken, ApiMetrics, Mode};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use prometheus_client::registry::Registry;
    use std::sync::Arc;
    use tower::ServiceExt;

    const TOKEN: &str = "s3cret-admin-token";

    fn app() -> Router {
        let mut registry = Registry::default();
        let metrics = ApiMetrics::new(&mut registry, "Global");
        let state = ApiState {
            store: Arc::new(weft_store::MemoryStore::new()),
            mode: Mode::Global,
            token: AdminToken::new(TOKEN),
            health: weft_runtime::health::Health::default(),
            max_body_bytes: crate::DEFAULT_MAX_BODY_BYTES,
            registry: Arc::new(registry),
            metrics,
            hooks: crate::Hooks::default(),
            cluster_id: "test-cluster".to_string(),
        };
        crate::router(state, Router::new())
    }

    async fn get(path: &str, token: Option<&str>) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn header<'a>(h: &'a axum::http::HeaderMap, name: &str) -> &'a str {
        h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    // Every answer under /gui, a 404 included, carries the strict CSP and the
    // security headers, and no CORS header.
    #[tokio::test]
    async fn security_headers_on_every_answer() {
        for path in [
            "/gui",
            "/gui/",
            "/gui/app.js",
            "/gui/nope.js",
            "/gui/zones/x",
        ] {
            let (_, h, _) = get(path, None).await;
            let csp = header(&h, "content-security-policy");
            assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
            assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
            assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
            assert_eq!(header(&h, "x-frame-options"), "DENY", "{path}");
            assert_eq!(header(&h, "referrer-policy"), "no-referrer", "{path}");
            assert!(h.get("access-control-allow-origin").is_none(), "{path}");
        }
    }

    // Each asset is served without a token, with its content type; views get the shell.
    #[tokio::test]
    async fn assets_open_with_their_content_types() {
        for (path, ty) in [
            ("/gui", "text/html"),
            ("/gui/", "text/html"),
            ("/gui/index.html", "text/html"),
            ("/gui/app.js", "text/javascript"),
            ("/gui/views/dataplanes.js", "text/javascript"),
            ("/gui/style.css", "text/css"),
            ("/gui/favicon.svg", "image/svg+xml"),
            ("/gui/zones/east", "text/html"),
        ] {
            let (s, h, body) = get(path, None).await;
            assert_eq!(s, StatusCode::OK, "{path}");
            assert!(header(&h, "content-type").starts_with(ty), "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        let (_, _, shell) = get("/gui/meshes/default", None).await;
        assert!(shell.contains(r#"<script type="module" src="/gui/app.js">"#));
        // No inline script anywhere in the shell: every <script> has a src.
        assert_eq!(
            shell.matches("<script").count(),
            shell.matches("<script type=\"module\" src=").count()
        );
    }

    // Every file the shell and the modules import is embedded (a missing one
    // would break the GUI in the browser only).
    #[tokio::test]
    async fn every_imported_module_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['"', '\'']).nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = if dir.is_empty() {
                    vec![]
                } else {
                    dir.split('/').collect()
                };
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(find(&resolved).is_some(), "{} imports {spec}", a.path);
            }
        }
    }

    // Unknown files are 404s; parent segments never reach a file, encoded or not.
    #[tokio::test]
    async fn unknown_files_and_traversal_are_404() {
        for path in [
            "/gui/nope.js",
            "/gui/views/nope.css",
            "/gui/../admin.token",
            "/gui/../../etc/passwd",
            "/gui/..%2fadmin.token",
            "/gui/%2e%2e/admin.token",
            "/gui/views/../../Cargo.toml",
            "/gui/./app.js",
            "/gui/..",
        ] {
            let (s, _, body) = get(path, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
            assert!(!body.contains(TOKEN));
        }
    }

    // The GUI is open, the API behind it is not: no token, a wrong one → 401.
    #[tokio::test]
    async fn api_still_needs_the_token() {
        assert_eq!(get("/gui/app.js", None).await.0, StatusCode::OK);
        assert_eq!(get("/meshes", None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            get("/meshes", Some("wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(get("/meshes", Some(TOKEN)).await.0, StatusCode::OK);
        // A GUI-looking path outside /gui is the API's, not the shell.
        assert_eq!(get("/guix", None).await.0, StatusCode::UNAUTHORIZED);
    }
}
