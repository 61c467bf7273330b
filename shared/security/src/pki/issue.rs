//! Generating the KDS CA and the server certificates it signs.
//!
//! **Algorithm: ECDSA P-256 with SHA-256** for both the CA and the server keys. Ed25519
//! would be smaller and faster, but certificates signed with it are still refused by
//! parts of the TLS world a zone may sit behind or be debugged with (older OpenSSL
//! builds, Java and Go TLS clients before recent releases, some proxies and HSM-backed
//! stacks), while P-256 is accepted by every TLS 1.2/1.3 implementation, by Envoy's
//! BoringSSL and by rustls/webpki with ring. The CA's fingerprint is pinned by zones
//! for years, so it pays to pick the algorithm nobody rejects. (JWT signing keys are a
//! different matter and use Ed25519: see `crate::tokens`.)

use super::{Fingerprint, PkiError, PrivateKeyPem, tls};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::time::Duration;
use time::OffsetDateTime;

/// How long a generated CA is valid. Zones pin it through their tokens, so it is long.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How long a generated server certificate is valid; it is reissued on start when
/// less than [`SERVER_RENEW_BEFORE`] remains.
pub const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// A server certificate this close to expiry is replaced on the next start.
pub const SERVER_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// Certificates start this long before "now" to tolerate clock skew between hosts.
const BACKDATE: Duration = Duration::from_secs(3_600);

const CA_COMMON_NAME: &str = "Weft KDS CA";
const ORGANIZATION: &str = "Weft";

/// A certificate authority: its self-signed certificate and private key.
#[derive(Debug, Clone)]
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: PrivateKeyPem,
}

impl Ca {
    /// A fresh self-signed CA, valid for [`CA_VALIDITY`].
    pub fn generate() -> Result<Self, PkiError> {
        Self::generate_at(OffsetDateTime::now_utc())
    }

    pub(crate) fn generate_at(now: OffsetDateTime) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate)?;
        let mut params = ca_params();
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(PkiError::generate)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: PrivateKeyPem::new(key.serialize_pem()),
        })
    }

    /// A CA generated earlier by [`Ca::generate`] (the issuer name is derived from the
    /// fixed parameters used there, so only Weft-generated CAs can be reloaded).
    pub fn from_pem(cert_pem: &str, key_pem: PrivateKeyPem) -> Result<Self, PkiError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::BadPem(format!("CA certificate: {e}")))?;
        KeyPair::from_pem(key_pem.expose())
            .map_err(|_| PkiError::BadPem("CA private key: not a PKCS#8 ECDSA key".into()))?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            cert_der,
            key_pem,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    pub fn key_pem(&self) -> &PrivateKeyPem {
        &self.key_pem
    }

    /// SHA-256 of the CA certificate's DER: what zone tokens carry for pinning.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.cert_der)
    }

    /// A server certificate for `sans` (DNS names and IP addresses), signed by this CA,
    /// valid for [`SERVER_VALIDITY`], with a fresh key.
    pub fn issue_server_cert(&self, sans: &[String]) -> Result<ServerCert, PkiError> {
        self.issue_server_cert_at(sans, OffsetDateTime::now_utc())
    }

    pub(crate) fn issue_server_cert_at(
        &self,
        sans: &[String],
        now: OffsetDateTime,
    ) -> Result<ServerCert, PkiError> {
        check_sans(sans)?;
        let ca_key = KeyPair::from_pem(self.key_pem.expose())
            .map_err(|_| PkiError::BadPem("CA private key: not a PKCS#8 ECDSA key".into()))?;
        let issuer = Issuer::new(ca_params(), ca_key);

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate)?;
        let mut params =
            CertificateParams::new(sans.to_vec()).map_err(|_| PkiError::BadSan(sans.join(", ")))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, ORGANIZATION);
        dn.push(DnType::CommonName, "Weft KDS server");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + SERVER_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(PkiError::generate)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: PrivateKeyPem::new(key.serialize_pem()),
        })
    }
}

/// A server certificate (leaf only) and its private key.
#[derive(Debug, Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: PrivateKeyPem,
}

impl ServerCert {
    /// The chain a server presents: the leaf followed by its CA, so that a zone that
    /// only holds the CA's fingerprint can find the CA in the handshake and pin it.
    pub fn chain_pem(&self, ca: &Ca) -> String {
        format!("{}{}", self.cert_pem, ca.cert_pem())
    }
}

/// The fixed parameters of a Weft CA. [`Issuer`] needs only the subject name, key
/// identifier method and key usages, which are the same for every generated CA, so a CA
/// reloaded from disk can keep issuing without parsing its certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // Positive and without a leading zero octet, as RFC 5280 asks.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// Every SAN must be something a client can ask for: a DNS name or an IP address.
fn check_sans(sans: &[String]) -> Result<(), PkiError> {
    if sans.is_empty() {
        return Err(PkiError::BadSan(
            "no subject alternative names given (expected DNS names or IP addresses)".into(),
        ));
    }
    for san in sans {
        if tls::server_name(san).is_err() {
            return Err(PkiError::BadSan(san.clone()));
        }
    }
    Ok(())
}
