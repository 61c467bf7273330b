//! Workload identities: a mesh CA (generated, or provided as PEM) and the short-lived
//! certificates it issues to proxies.
//!
//! A workload certificate carries the proxy's SPIFFE id as a URI SAN
//! (`spiffe://<mesh>/<service>` for Kuma's Mesh mTLS) and, as Kuma's do, one
//! `kuma://<tag>/<value>` URI SAN per tag value, so RBAC can match on tags. It is
//! good for both ends of a connection (client and server auth). Keys are ECDSA
//! P-256 (see [`super::issue`] for why). Key generation is CPU work: callers on an
//! async runtime run [`MeshCa::issue`] on the blocking pool.

use super::{Fingerprint, PkiError, PrivateKeyPem};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Certificates start this long before "now" to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(300);

/// Who a workload certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    /// `spiffe://<trust domain>/<path>`.
    pub spiffe_id: String,
    /// Further URI SANs (Kuma's `kuma://<tag>/<value>`).
    pub uris: Vec<String>,
}

impl WorkloadIdentity {
    /// Kuma's Mesh mTLS identity of a proxy of `service` in `mesh`: the SPIFFE id
    /// `spiffe://<mesh>/<service>` and one `kuma://<tag>/<value>` per tag value.
    pub fn mesh_service(
        mesh: &str,
        service: &str,
        tags: &BTreeMap<String, Vec<String>>,
    ) -> Result<Self, PkiError> {
        for (what, part) in [("mesh", mesh), ("service", service)] {
            if part.is_empty() || !part.chars().all(uri_safe) {
                return Err(PkiError::BadSan(format!(
                    "{what} {part:?} cannot be part of a SPIFFE id (letters, digits and -._~ only)"
                )));
            }
        }
        let mut uris = Vec::new();
        for (tag, values) in tags {
            for value in values {
                uris.push(weft_model::resource::tags::kuma_uri(tag, value));
            }
        }
        Ok(WorkloadIdentity {
            spiffe_id: format!("spiffe://{mesh}/{service}"),
            uris,
        })
    }
}

/// Characters a SPIFFE path segment or tag may hold without escaping.
fn uri_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// A mesh's certificate authority.
#[derive(Debug, Clone)]
pub struct MeshCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: PrivateKeyPem,
    /// The parsed certificate and key, ready to sign (parsed once: a quarter of
    /// an issuance's cost otherwise).
    issuer: Arc<Issuer<'static, KeyPair>>,
}

impl MeshCa {
    /// A fresh self-signed CA for `mesh` (subject `CN=<mesh>`, O=Weft), valid for
    /// `validity`.
    pub fn generate(mesh: &str, validity: Duration) -> Result<Self, PkiError> {
        let now = OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Weft");
        dn.push(DnType::CommonName, mesh);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + validity;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(PkiError::generate)?;
        let key_pem = PrivateKeyPem::new(key.serialize_pem());
        let issuer = Issuer::from_ca_cert_der(cert.der(), key)
            .map_err(|e| PkiError::BadPem(format!("CA certificate: {e}")))?;
        Ok(MeshCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem,
            issuer: Arc::new(issuer),
        })
    }

    /// A CA from its certificate and PKCS#8 key (a provided CA, or one generated
    /// earlier and stored). The key must belong to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: PrivateKeyPem) -> Result<Self, PkiError> {
        // The certificate text is shipped to every proxy and published: a key in
        // it (one `cat key crt` file for both) must never travel with it.
        if cert_pem.contains("PRIVATE KEY") {
            return Err(PkiError::BadPem(
                "CA certificate: the certificate source holds a private key; give the certificate alone".into(),
            ));
        }
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::BadPem(format!("CA certificate: {e}")))?;
        let key = KeyPair::from_pem(key_pem.expose()).map_err(|_| {
            PkiError::BadPem(
                "CA private key: not a PKCS#8 ECDSA (P-256, P-384), Ed25519 or RSA key".into(),
            )
        })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| PkiError::BadPem(format!("CA certificate: {e}")))?;
        let ca = MeshCa {
            // Only the first certificate, re-encoded: nothing else of the source
            // (further roots, comments) becomes trusted by accident.
            cert_pem: super::pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            key_pem,
            issuer: Arc::new(issuer),
        };
        // Parses both, and checks they match, by issuing once.
        let probe = WorkloadIdentity {
            spiffe_id: "spiffe://probe/probe".into(),
            uris: vec![],
        };
        let leaf = ca.issue(&probe, Duration::from_secs(60))?;
        if !super::verify::signed_by(&leaf.cert_der, &ca.cert_der) {
            return Err(PkiError::BadPem(
                "the CA private key does not belong to the CA certificate".into(),
            ));
        }
        Ok(ca)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA's private key (never for API output or logs).
    pub fn key_pem(&self) -> &PrivateKeyPem {
        &self.key_pem
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.cert_der)
    }

    /// A certificate for `identity`, with a fresh key, valid for `validity`.
    pub fn issue(
        &self,
        identity: &WorkloadIdentity,
        validity: Duration,
    ) -> Result<WorkloadCert, PkiError> {
        let now = OffsetDateTime::now_utc();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate)?;
        let mut params = CertificateParams::default();
        let mut sans = vec![uri_san(&identity.spiffe_id)?];
        for uri in &identity.uris {
            sans.push(uri_san(uri)?);
        }
        params.subject_alt_names = sans;
        params.distinguished_name = DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + validity;
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::generate)?;
        Ok(WorkloadCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: PrivateKeyPem::new(key.serialize_pem()),
            serial: hex::encode(serial.as_ref()),
            not_after: now + validity,
        })
    }
}

/// A proxy's certificate (leaf only), its key, and what an insight shows of it.
#[derive(Debug, Clone)]
pub struct WorkloadCert {
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_pem: PrivateKeyPem,
    /// Hex serial number.
    pub serial: String,
    pub not_after: OffsetDateTime,
}

fn uri_san(uri: &str) -> Result<SanType, PkiError> {
    uri.to_string()
        .try_into()
        .map(SanType::URI)
        .map_err(|_| PkiError::BadSan(format!("{uri:?} is not a valid URI SAN")))
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // Positive and without a leading zero octet, as RFC 5280 asks.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn contains(der: &[u8], needle: &str) -> bool {
        der.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    fn backend() -> WorkloadIdentity {
        let tags = BTreeMap::from([
            ("kuma.io/service".to_string(), vec!["backend".to_string()]),
            ("version".to_string(), vec!["v1".to_string()]),
        ]);
        WorkloadIdentity::mesh_service("default", "backend", &tags).unwrap()
    }

    // A workload certificate names its SPIFFE id and tags, chains to its mesh CA and
    // expires when asked.
    #[test]
    fn issues_spiffe_certificates_that_chain_to_the_ca() {
        let ca = MeshCa::generate("default", Duration::from_secs(86_400)).unwrap();
        let cert = ca.issue(&backend(), Duration::from_secs(120)).unwrap();
        assert!(contains(&cert.cert_der, "spiffe://default/backend"));
        assert!(contains(&cert.cert_der, "kuma://version/v1"));
        assert!(contains(&cert.cert_der, "kuma://kuma.io/service/backend"));
        // A value outside URI characters is encoded, as RBAC encodes it.
        let tags = BTreeMap::from([("version".to_string(), vec!["v1:canary".to_string()])]);
        let id = WorkloadIdentity::mesh_service("default", "backend", &tags).unwrap();
        assert_eq!(id.uris, ["kuma://version/v1%3Acanary"]);
        assert!(super::super::verify::signed_by(
            &cert.cert_der,
            ca.cert_der()
        ));
        let left = cert.not_after - OffsetDateTime::now_utc();
        assert!(left <= time::Duration::seconds(120) && left > time::Duration::seconds(100));
        assert_eq!(cert.serial.len(), 32);
        // A different CA did not sign it.
        let other = MeshCa::generate("other", Duration::from_secs(86_400)).unwrap();
        assert!(!super::super::verify::signed_by(
            &cert.cert_der,
            other.cert_der()
        ));
    }

    // A CA reloaded from its PEM keeps issuing under the same name; a key that is
    // not the certificate's is refused with a reason.
    #[test]
    fn reloads_from_pem_and_refuses_a_foreign_key() {
        let ca = MeshCa::generate("default", Duration::from_secs(86_400)).unwrap();
        let again = MeshCa::from_pem(ca.cert_pem(), ca.key_pem().clone()).unwrap();
        let cert = again.issue(&backend(), Duration::from_secs(60)).unwrap();
        assert!(super::super::verify::signed_by(
            &cert.cert_der,
            ca.cert_der()
        ));
        let other = MeshCa::generate("default", Duration::from_secs(86_400)).unwrap();
        let err = MeshCa::from_pem(ca.cert_pem(), other.key_pem().clone()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = MeshCa::from_pem("not pem", ca.key_pem().clone()).unwrap_err();
        assert!(err.to_string().contains("CA certificate"), "{err}");
        // A certificate source holding the key too is refused: the text travels.
        let both = format!("{}{}", ca.key_pem().expose(), ca.cert_pem());
        let err = MeshCa::from_pem(&both, ca.key_pem().clone()).unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        assert_eq!(again.cert_pem(), ca.cert_pem());
    }

    // Names that cannot be part of a SPIFFE id are refused, naming the part.
    #[test]
    fn refuses_names_a_spiffe_id_cannot_hold() {
        let err = WorkloadIdentity::mesh_service("default", "a b", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("service \"a b\""), "{err}");
        let err = WorkloadIdentity::mesh_service("", "web", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("mesh \"\""), "{err}");
    }
}
