//! Bearer-token authentication of the admin API.
//!
//! The token is 32 random bytes, hex-encoded, written to `<data-dir>/admin.token`
//! (mode 0600) on first start and read back on later starts. It is never logged.

use super::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

pub const ADMIN_TOKEN_FILE: &str = "admin.token";

impl AdminToken {
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        AdminToken(token.into())
    }

    /// Reads `<dir>/admin.token`, creating it with a fresh random token first when absent.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(ADMIN_TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(AdminToken::new(s.trim())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let tmp = dir.join(format!("{ADMIN_TOKEN_FILE}.tmp"));
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(token.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(AdminToken::new(token))
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

pub(super) async fn require_admin(
    State(token): State<AdminToken>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if token.matches(t) => Ok(next.run(req).await),
        _ => Err(ApiError::unauthorized()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The token is created once and read back unchanged on the next start.
    #[test]
    fn created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = AdminToken::load_or_create(dir.path()).unwrap();
        let b = AdminToken::load_or_create(dir.path()).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(ADMIN_TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    // Only the exact token matches; the Debug form never shows it.
    #[test]
    fn matching_and_redaction() {
        let t = AdminToken::new("abc");
        assert!(t.matches("abc"));
        assert!(!t.matches("abd") && !t.matches("ab") && !t.matches(""));
        assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
    }
}
