//! The SHA-256 fingerprint of a certificate, as zone tokens carry it for pinning.

use super::PkiError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// SHA-256 of a certificate's DER encoding. Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// The fingerprint of the first certificate in `pem`.
    pub fn of_pem(pem: &str) -> Result<Self, PkiError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| PkiError::BadPem(format!("certificate: {e}")))?;
        Ok(Self::of_der(&der))
    }

    /// The fingerprints of every certificate in `pem` (a bundle), in order;
    /// blocks that are not certificates are skipped.
    pub fn all_of_pem(pem: &str) -> Vec<Self> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .filter_map(Result::ok)
            .map(|der| Self::of_der(&der))
            .collect()
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Accepts 64 hex digits in either case, optionally prefixed `sha256:` and optionally
/// separated by colons (the form `openssl x509 -fingerprint -sha256` prints).
impl FromStr for Fingerprint {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PkiError::BadFingerprint(s.to_string());
        let t = s.trim();
        let t = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .or_else(|| t.strip_prefix("sha256 Fingerprint="))
            .or_else(|| t.strip_prefix("SHA256 Fingerprint="))
            .unwrap_or(t);
        let digits: String = t.chars().filter(|c| *c != ':').collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits.to_ascii_lowercase(), &mut out).map_err(|_| bad())?;
        Ok(Fingerprint(out))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom("expected 64 hex digits of a SHA-256 digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The fingerprint is lowercase hex SHA-256 of the DER bytes, and parses back from
    // the usual spellings (upper case, colons, a sha256: prefix).
    #[test]
    fn display_and_parse() {
        let fp = Fingerprint::of_der(b"abc");
        let hex = fp.to_string();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex.parse::<Fingerprint>().ok(), Some(fp));
        let colons = hex
            .to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Fingerprint>().ok(), Some(fp));
        assert_eq!(
            format!("sha256:{hex}").parse::<Fingerprint>().ok(),
            Some(fp)
        );
    }

    // Anything but 32 hex-encoded bytes is refused.
    #[test]
    fn rejects_garbage() {
        for s in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(s.parse::<Fingerprint>().is_err(), "{s:?}");
        }
    }
}
