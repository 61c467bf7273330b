//! Checking a certificate against a CA with the same verifier TLS uses (rustls'
//! webpki, client-auth profile): chain, validity period and key usage.

use super::tls;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;

/// Whether `leaf` chains directly to `ca` and is valid now for client auth.
pub fn signed_by(leaf: &CertificateDer<'_>, ca: &CertificateDer<'static>) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca.clone()).is_err() {
        return false;
    }
    let Ok(verifier) =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), tls::crypto_provider())
            .build()
    else {
        return false;
    };
    verifier
        .verify_client_cert(leaf, &[], UnixTime::now())
        .is_ok()
}
