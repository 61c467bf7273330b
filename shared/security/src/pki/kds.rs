//! The KDS server's TLS material: user-provided files, or a CA and server certificate
//! that global creates in `<data-dir>/kds-tls/` on first start and reuses afterwards.

use super::files::{ensure_private_dir, read_optional, write_atomic};
use super::issue::{Ca, SERVER_RENEW_BEFORE};
use super::tls::{crypto_provider, server_config, verify_chain};
use super::{Fingerprint, PkiError, PrivateKeyPem, pem_encode};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The directory under the data dir that holds generated KDS TLS files.
pub const KDS_TLS_DIR: &str = "kds-tls";
/// The generated CA certificate (0644): what a zone's `--global-ca-file` can point to.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The generated CA's private key (0600).
pub const CA_KEY_FILE: &str = "ca.key";
/// The server's chain: its certificate followed by the CA (0644).
pub const SERVER_CERT_FILE: &str = "server.crt";
/// The server's private key (0600).
pub const SERVER_KEY_FILE: &str = "server.key";

const PRIVATE: u32 = 0o600;
const PUBLIC: u32 = 0o644;

/// SANs of a generated server certificate when the operator names none: enough for a
/// zone on the same host.
pub fn default_sans() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The certificate chain and key the KDS server presents, and the CA zones can pin.
#[derive(Debug, Clone)]
pub struct KdsTls {
    chain_pem: String,
    key_pem: PrivateKeyPem,
    chain: Vec<CertificateDer<'static>>,
    ca: Option<CertificateDer<'static>>,
}

impl KdsTls {
    /// Loads the generated material in `dir` (normally `<data-dir>/kds-tls`), creating
    /// what is missing:
    ///
    /// - the CA (`ca.crt`, `ca.key`) is created once and then kept: zone tokens carry its
    ///   fingerprint, so replacing it would strand every zone that pins it;
    /// - the server certificate (`server.crt` = leaf + CA, `server.key`) is reissued by
    ///   the CA when it is missing, does not match its key, does not verify against the
    ///   CA, does not cover every name in `sans`, or expires within
    ///   [`SERVER_RENEW_BEFORE`].
    ///
    /// Keys are written 0600 and every file atomically.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Self, PkiError> {
        Self::load_or_create_at(dir, sans, OffsetDateTime::now_utc())
    }

    pub(crate) fn load_or_create_at(
        dir: &Path,
        sans: &[String],
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        ensure_private_dir(dir)?;
        let ca = load_or_create_ca(dir, now)?;

        let cert_path = dir.join(SERVER_CERT_FILE);
        let key_path = dir.join(SERVER_KEY_FILE);
        let existing = match (read_optional(&cert_path)?, read_optional(&key_path)?) {
            (Some(chain), Some(key)) => Some((chain, PrivateKeyPem::new(key))),
            _ => None,
        };
        if let Some((chain_pem, key_pem)) = existing {
            match Self::from_pem(&chain_pem, key_pem) {
                Ok(tls) => match tls.still_good(&ca, sans, now) {
                    Ok(()) => return Ok(tls),
                    Err(reason) => tracing::info!(
                        dir = %dir.display(),
                        %reason,
                        "reissuing the KDS server certificate"
                    ),
                },
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "the stored KDS server certificate is unusable; reissuing it"
                ),
            }
        }

        let server = ca.issue_server_cert_at(sans, now)?;
        let chain_pem = server.chain_pem(&ca);
        let issued = Self::from_pem(&chain_pem, server.key_pem.clone())?;
        if let Err(reason) = issued.still_good(&ca, sans, now) {
            // Only possible when ca.key is not the key of ca.crt.
            return Err(PkiError::BadFile {
                path: dir.join(CA_KEY_FILE),
                reason: format!(
                    "does not fit {CA_CERT_FILE}: a certificate it signed fails: {reason}"
                ),
            });
        }
        write_atomic(&key_path, server.key_pem.expose().as_bytes(), PRIVATE)?;
        write_atomic(&cert_path, chain_pem.as_bytes(), PUBLIC)?;
        tracing::info!(
            dir = %dir.display(),
            sans = %sans.join(","),
            "issued a KDS server certificate"
        );
        Ok(issued)
    }

    /// The operator's own certificate chain and key (`--kds-tls-cert`, `--kds-tls-key`).
    /// When the chain holds more than the leaf, its last certificate is taken as the CA
    /// that zone tokens pin; a leaf-only chain gives no fingerprint, and zones then need
    /// `--global-ca-file`.
    pub fn from_files(cert_path: &Path, key_path: &Path) -> Result<Self, PkiError> {
        let chain_pem = std::fs::read_to_string(cert_path).map_err(PkiError::io(cert_path))?;
        let key_pem = std::fs::read_to_string(key_path).map_err(PkiError::io(key_path))?;
        Self::from_pem(&chain_pem, PrivateKeyPem::new(key_pem)).map_err(|e| PkiError::BadFile {
            path: PathBuf::from(format!("{} / {}", cert_path.display(), key_path.display())),
            reason: e.to_string(),
        })
    }

    /// A chain (leaf first) and its key, checked to belong together.
    pub fn from_pem(chain_pem: &str, key_pem: PrivateKeyPem) -> Result<Self, PkiError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PkiError::BadPem(format!("certificate chain: {e}")))?;
        if chain.is_empty() {
            return Err(PkiError::BadPem(
                "no CERTIFICATE block in the certificate file".into(),
            ));
        }
        CertifiedKey::from_der(chain.clone(), key_pem.to_der()?, &crypto_provider()).map_err(
            |e| PkiError::BadPem(format!("the private key does not fit the certificate: {e}")),
        )?;
        let ca = if chain.len() > 1 {
            chain.last().cloned()
        } else {
            None
        };
        Ok(KdsTls {
            chain_pem: chain_pem.to_string(),
            key_pem,
            chain,
            ca,
        })
    }

    /// The fingerprint to put into zone tokens, when the chain includes its CA.
    pub fn ca_fingerprint(&self) -> Option<Fingerprint> {
        self.ca.as_ref().map(|c| Fingerprint::of_der(c))
    }

    /// The CA certificate as PEM (what a zone's `--global-ca-file` would hold).
    pub fn ca_cert_pem(&self) -> Option<String> {
        self.ca.as_ref().map(|c| pem_encode("CERTIFICATE", c))
    }

    /// The chain as PEM, leaf first (e.g. for `tonic::transport::Identity::from_pem`).
    pub fn cert_chain_pem(&self) -> &str {
        &self.chain_pem
    }

    pub fn key_pem(&self) -> &PrivateKeyPem {
        &self.key_pem
    }

    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// A rustls server configuration presenting this chain (ALPN `h2`).
    pub fn server_config(&self) -> Result<ServerConfig, PkiError> {
        server_config(self.chain.clone(), self.key_pem.to_der()?)
    }

    /// `Ok` when this chain was issued by `ca`, covers `sans` and stays valid for at
    /// least [`SERVER_RENEW_BEFORE`]; otherwise why not.
    fn still_good(&self, ca: &Ca, sans: &[String], now: OffsetDateTime) -> Result<(), String> {
        if self.ca.as_ref() != Some(ca.cert_der()) {
            return Err("it was not issued by the current KDS CA".into());
        }
        let horizon = now + SERVER_RENEW_BEFORE;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(horizon.unix_timestamp()).unwrap_or(0),
        ));
        verify_chain(ca.cert_der(), &self.chain, sans, at).map_err(|e| {
            format!(
                "it does not verify for [{}] until {horizon}: {e}",
                sans.join(", ")
            )
        })
    }
}

/// The CA in `dir`, created when `ca.crt` is absent. A present certificate without its
/// key is an error rather than a silent new CA, which would break every pinned zone.
fn load_or_create_ca(dir: &Path, now: OffsetDateTime) -> Result<Ca, PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    match read_optional(&cert_path)? {
        Some(cert_pem) => {
            let key_pem = read_optional(&key_path)?.ok_or_else(|| PkiError::BadFile {
                path: key_path.clone(),
                reason: format!(
                    "missing while {CA_CERT_FILE} exists; restore it, or delete {CA_CERT_FILE} \
                     to create a new CA (zones that pin the old one then need new tokens)"
                ),
            })?;
            Ca::from_pem(&cert_pem, PrivateKeyPem::new(key_pem)).map_err(|e| PkiError::BadFile {
                path: cert_path,
                reason: e.to_string(),
            })
        }
        None => {
            let ca = Ca::generate_at(now)?;
            write_atomic(&key_path, ca.key_pem().expose().as_bytes(), PRIVATE)?;
            write_atomic(&cert_path, ca.cert_pem().as_bytes(), PUBLIC)?;
            tracing::info!(
                dir = %dir.display(),
                fingerprint = %ca.fingerprint(),
                "created the KDS CA"
            );
            Ok(ca)
        }
    }
}
