//! rustls configurations for the KDS link, with ring as the only crypto provider.
//!
//! gRPC needs HTTP/2, so both sides offer the `h2` ALPN protocol.

use super::{Fingerprint, PkiError};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::path::Path;
use std::sync::Arc;

/// The ALPN protocol id of HTTP/2, which gRPC runs on.
pub const ALPN_H2: &[u8] = b"h2";

/// The process's crypto provider: ring. Passed explicitly to every builder so that no
/// process-wide default has to be installed (and no aws-lc provider can be picked).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `name` as a TLS server name: a DNS name or an IP address.
pub fn server_name(name: &str) -> Result<ServerName<'static>, PkiError> {
    ServerName::try_from(name.to_string()).map_err(|_| PkiError::BadSan(name.to_string()))
}

/// A server configuration presenting `chain` (leaf first) with `key`; no client
/// certificates (zones authenticate with their token); ALPN `h2`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, PkiError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// How a zone decides to trust the global's KDS server.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerTrust {
    /// Standard verification against these CA certificates (`--global-ca-file`).
    CaCerts(Vec<CertificateDer<'static>>),
    /// Verification against the CA, sent by the server in its chain, whose SHA-256
    /// fingerprint is this one (taken from the zone token). See [`PinnedCaVerifier`].
    Pinned(Fingerprint),
}

impl ServerTrust {
    /// Every certificate in a PEM bundle; at least one is required.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, PkiError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PkiError::BadPem(format!("CA certificates: {e}")))?;
        if certs.is_empty() {
            return Err(PkiError::BadPem(
                "no CERTIFICATE block in the CA bundle".into(),
            ));
        }
        Ok(ServerTrust::CaCerts(certs))
    }

    /// The CA bundle in `path` (`--global-ca-file`).
    pub fn from_ca_file(path: &Path) -> Result<Self, PkiError> {
        let pem = std::fs::read(path).map_err(PkiError::io(path))?;
        Self::from_ca_pem(&pem).map_err(|e| PkiError::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// The zone's client configuration for connecting to global: full webpki verification
/// of chain, validity period and server name, rooted either in the given CA
/// certificates or in the pinned CA. No client certificate; ALPN `h2`.
pub fn client_config(trust: &ServerTrust) -> Result<ClientConfig, PkiError> {
    let provider = crypto_provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match trust {
        ServerTrust::CaCerts(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone())?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        ServerTrust::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier::new(*pin, provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// Verifies a server by a pinned CA fingerprint.
///
/// The chain is accepted only if one of the certificates the server sent after its leaf
/// has the pinned SHA-256 fingerprint, **and** the leaf verifies with webpki against
/// that certificate as the *only* trust anchor: signatures along the chain, validity
/// periods, key usage (serverAuth) and the server name are all checked, exactly as with
/// a CA file. Pinning only chooses the root; it never skips verification. The handshake
/// signature is verified with the leaf's key as usual.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl PinnedCaVerifier {
    pub fn new(pin: Fingerprint, provider: Arc<CryptoProvider>) -> Self {
        PinnedCaVerifier { pin, provider }
    }
}

#[derive(thiserror::Error)]
enum PinError {
    #[error(
        "no certificate the server sent has the pinned CA fingerprint {0}: this is not the \
         global control plane the zone token was issued by, or its chain does not include \
         its CA (then give the CA with --global-ca-file)"
    )]
    NotInChain(Fingerprint),
    #[error(
        "the server's own certificate has the pinned fingerprint {0}; the pin must be the \
         fingerprint of the CA that signed it"
    )]
    PinnedLeaf(Fingerprint),
}

/// rustls prints certificate errors with `Debug`; make that the operator's message.
impl std::fmt::Debug for PinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn pin_error(e: PinError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Fingerprint::of_der(end_entity) == self.pin {
            return Err(pin_error(PinError::PinnedLeaf(self.pin)));
        }
        let Some(pos) = intermediates
            .iter()
            .position(|c| Fingerprint::of_der(c) == self.pin)
        else {
            return Err(pin_error(PinError::NotInChain(self.pin)));
        };
        let mut roots = RootCertStore::empty();
        roots.add(intermediates[pos].clone().into_owned())?;
        let others: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != pos)
            .map(|(_, c)| c.clone())
            .collect();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &others, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether `chain` (leaf first) verifies against `ca` for every name in `names` at time
/// `at`. Used to decide whether a stored server certificate can be kept.
pub(super) fn verify_chain(
    ca: &CertificateDer<'static>,
    chain: &[CertificateDer<'static>],
    names: &[String],
    at: UnixTime,
) -> Result<(), PkiError> {
    let Some((leaf, rest)) = chain.split_first() else {
        return Err(PkiError::BadPem("empty certificate chain".into()));
    };
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone())?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    for name in names {
        verifier.verify_server_cert(leaf, rest, &server_name(name)?, &[], at)?;
    }
    Ok(())
}
