//! The PKI of the KDS link between global and its zones, and of mesh identities.
//!
//! - [`workload`]: a mesh CA (generated, or provided as PEM) and the SPIFFE
//!   certificates it issues to proxies; [`verify`]: checking a certificate against a
//!   CA as TLS does; [`mesh_ca`]: a Mesh's mTLS backends as CAs (builtin ones
//!   generated into the mesh's Secrets).
//! - [`Ca`] / [`ServerCert`]: generate a CA and server certificates it signs (PEM).
//! - [`KdsTls`]: the KDS server's certificate chain and key, loaded from the user's
//!   files or created on first start in `<data-dir>/kds-tls/` ([`KdsTls::load_or_create`]).
//! - [`Fingerprint`]: SHA-256 of a CA certificate's DER, as zone tokens carry it.
//! - [`server_config`] / [`client_config`]: rustls configurations (ring only). A zone
//!   trusts global either through a CA file ([`ServerTrust::CaCerts`]) or by pinning the
//!   CA fingerprint from its token ([`ServerTrust::Pinned`], verified by
//!   [`PinnedCaVerifier`]). There is no mode that skips verification.

mod files;
mod fingerprint;
mod issue;
mod kds;
pub mod mesh_ca;
mod tls;
pub mod verify;
pub mod workload;

#[cfg(test)]
mod tests;

pub use fingerprint::Fingerprint;
pub use issue::{CA_VALIDITY, Ca, SERVER_RENEW_BEFORE, SERVER_VALIDITY, ServerCert};
pub use kds::{
    CA_CERT_FILE, CA_KEY_FILE, KDS_TLS_DIR, KdsTls, SERVER_CERT_FILE, SERVER_KEY_FILE, default_sans,
};
pub use tls::{
    ALPN_H2, PinnedCaVerifier, ServerTrust, client_config, crypto_provider, server_config,
    server_name,
};

use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("could not generate a key or certificate: {0}")]
    Generate(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid PEM: {0}")]
    BadPem(String),
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    #[error("invalid subject alternative names: {0} (expected DNS names or IP addresses)")]
    BadSan(String),
    #[error(
        "invalid CA fingerprint {0:?}: expected 64 hex digits (the SHA-256 of the CA certificate)"
    )]
    BadFingerprint(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl PkiError {
    fn generate(e: rcgen::Error) -> Self {
        PkiError::Generate(e.to_string())
    }

    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| PkiError::Io { path, source }
    }
}

/// A PEM-encoded private key. `Debug` never shows it; [`PrivateKeyPem::expose`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub fn new(pem: impl Into<String>) -> Self {
        PrivateKeyPem(pem.into())
    }

    /// The PEM text, for writing to a 0600 file or handing to a TLS library.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key as DER (PKCS#8, SEC1 or PKCS#1, whichever the PEM holds).
    pub fn to_der(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.0.as_bytes())
            .map_err(|e| PkiError::BadPem(format!("private key: {e}")))
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// PEM-encodes `der` under `label`, 64 base64 characters per line.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = weft_model::resource::secret::encode_base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
