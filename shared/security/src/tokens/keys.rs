//! Ed25519 token signing keys, numbered by serial (the JWT `kid`).
//!
//! Why Ed25519 (JWT `EdDSA`) rather than Kuma's RS256: keys are 32 bytes and generated
//! instantly, signatures are 64 bytes and deterministic (no per-signature randomness
//! that can leak a key), verification is fast, and jsonwebtoken's `rust_crypto` backend
//! supports it, so no second crypto library is needed.
//!
//! Keys are stored as PEM: the private key as PKCS#8 (`PRIVATE KEY`, what
//! `openssl genpkey -algorithm ed25519` writes), the public key as SPKI (`PUBLIC KEY`).

use super::KeyError;
use crate::pki::pem_encode;
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use std::collections::BTreeMap;
use std::fmt;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A private signing key with its serial. `Debug` shows the serial only.
#[derive(Clone)]
pub struct SigningKey {
    serial: u64,
    pkcs8: Vec<u8>,
    public: [u8; 32],
    encoding: EncodingKey,
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(serial: u64) -> Result<Self, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8(serial, doc.as_ref()).map_err(|_| KeyError::Generate)
    }

    /// A key from PKCS#8 DER (v1 or v2).
    pub fn from_pkcs8(serial: u64, der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| KeyError::Decode {
                what: format!("signing key {serial}"),
                reason: "not a PKCS#8 Ed25519 private key",
            })?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(SigningKey {
            serial,
            pkcs8: der.to_vec(),
            public,
            encoding: EncodingKey::from_ed_der(der),
        })
    }

    /// A key from a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn from_pem(serial: u64, pem: &[u8]) -> Result<Self, KeyError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|_| KeyError::Decode {
            what: format!("signing key {serial}"),
            reason: "not a PEM `PRIVATE KEY` block",
        })?;
        Self::from_pkcs8(serial, der.secret_pkcs8_der())
    }

    /// The private key as PKCS#8 PEM, for storage. Handle as a secret.
    pub fn to_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_raw(self.serial, self.public)
    }

    pub(super) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("serial", &self.serial)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.serial == other.serial && self.public == other.public
    }
}

/// A public key that verifies tokens carrying `kid` = its serial.
#[derive(Clone)]
pub struct VerifyingKey {
    serial: u64,
    public: [u8; 32],
    decoding: DecodingKey,
}

impl VerifyingKey {
    /// A key from its 32 raw bytes.
    pub fn from_raw(serial: u64, public: [u8; 32]) -> Self {
        VerifyingKey {
            serial,
            public,
            decoding: DecodingKey::from_ed_der(&public),
        }
    }

    /// A key from a `PUBLIC KEY` (SPKI) PEM block.
    pub fn from_pem(serial: u64, pem: &[u8]) -> Result<Self, KeyError> {
        let bad = |reason| KeyError::Decode {
            what: format!("verifying key {serial}"),
            reason,
        };
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem)
            .map_err(|_| bad("not a PEM `PUBLIC KEY` block"))?;
        let raw = spki
            .as_ref()
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .ok_or_else(|| bad("not an Ed25519 public key"))?;
        let public: [u8; 32] = raw
            .try_into()
            .map_err(|_| bad("not an Ed25519 public key"))?;
        Ok(Self::from_raw(serial, public))
    }

    /// The public key as SPKI PEM.
    pub fn to_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public);
        pem_encode("PUBLIC KEY", &der)
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub(super) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("serial", &self.serial)
            .field("public_key", &hex::encode(self.public))
            .finish()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.serial == other.serial && self.public == other.public
    }
}

/// The signing keys of one token kind. New tokens are signed with the highest serial;
/// a token signed by any key still in the set keeps validating until it expires.
/// Removing a key invalidates every token it signed.
#[derive(Clone, Default, PartialEq)]
pub struct SigningKeys {
    keys: BTreeMap<u64, SigningKey>,
}

impl SigningKeys {
    pub fn new() -> Self {
        SigningKeys::default()
    }

    /// A set holding one fresh key with serial 1 (first start).
    pub fn generate_initial() -> Result<Self, KeyError> {
        let mut keys = SigningKeys::new();
        keys.rotate()?;
        Ok(keys)
    }

    /// Adds a fresh key with serial = highest + 1 (1 for an empty set) and returns it;
    /// from now on new tokens are signed with it. Store it before issuing with it.
    pub fn rotate(&mut self) -> Result<&SigningKey, KeyError> {
        let serial = self
            .keys
            .keys()
            .next_back()
            .map_or(1, |s| s.saturating_add(1));
        let key = SigningKey::generate(serial)?;
        Ok(self.keys.entry(serial).or_insert(key))
    }

    /// Adds or replaces the key with `key.serial()`.
    pub fn insert(&mut self, key: SigningKey) -> Option<SigningKey> {
        self.keys.insert(key.serial(), key)
    }

    /// Removes a key: the tokens it signed stop validating.
    pub fn remove(&mut self, serial: u64) -> Option<SigningKey> {
        self.keys.remove(&serial)
    }

    /// The key new tokens are signed with.
    pub fn newest(&self) -> Option<&SigningKey> {
        self.keys.values().next_back()
    }

    pub fn get(&self, serial: u64) -> Option<&SigningKey> {
        self.keys.get(&serial)
    }

    pub fn serials(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.values()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The public halves, for a validator.
    pub fn verifying_keys(&self) -> VerifyingKeys {
        VerifyingKeys {
            keys: self
                .keys
                .iter()
                .map(|(s, k)| (*s, k.verifying_key()))
                .collect(),
        }
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("serials", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The public keys a validator accepts, by serial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyingKeys {
    keys: BTreeMap<u64, VerifyingKey>,
}

impl VerifyingKeys {
    pub fn new() -> Self {
        VerifyingKeys::default()
    }

    pub fn insert(&mut self, key: VerifyingKey) -> Option<VerifyingKey> {
        self.keys.insert(key.serial(), key)
    }

    pub fn remove(&mut self, serial: u64) -> Option<VerifyingKey> {
        self.keys.remove(&serial)
    }

    pub fn get(&self, serial: u64) -> Option<&VerifyingKey> {
        self.keys.get(&serial)
    }

    pub fn serials(&self) -> impl Iterator<Item = u64> + '_ {
        self.keys.keys().copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<VerifyingKey> for VerifyingKeys {
    fn from_iter<I: IntoIterator<Item = VerifyingKey>>(iter: I) -> Self {
        VerifyingKeys {
            keys: iter.into_iter().map(|k| (k.serial(), k)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keys survive a PEM round trip (private and public) and keep their serial.
    #[test]
    fn pem_round_trip() {
        let key = SigningKey::generate(7).unwrap();
        let back = SigningKey::from_pem(7, key.to_pem().as_bytes()).unwrap();
        assert_eq!(back, key);
        let public = key.verifying_key();
        let back = VerifyingKey::from_pem(7, public.to_pem().as_bytes()).unwrap();
        assert_eq!(back, public);
        assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(public.to_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }

    // Garbage is refused without echoing it.
    #[test]
    fn bad_pem_refused() {
        let err = SigningKey::from_pem(
            1,
            b"-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("QUJD"), "{err}");
        assert!(VerifyingKey::from_pem(1, b"nonsense").is_err());
    }

    // rotate() adds serial + 1 and makes it the newest; the old key stays.
    #[test]
    fn rotation_adds_next_serial() {
        let mut keys = SigningKeys::generate_initial().unwrap();
        assert_eq!(keys.newest().map(SigningKey::serial), Some(1));
        assert_eq!(keys.rotate().unwrap().serial(), 2);
        assert_eq!(keys.serials().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(keys.newest().map(SigningKey::serial), Some(2));
        keys.remove(2);
        assert_eq!(keys.rotate().unwrap().serial(), 2);
    }

    // Debug never shows private key material.
    #[test]
    fn debug_redacts_private_keys() {
        let keys = SigningKeys::generate_initial().unwrap();
        let key = keys.newest().unwrap();
        let pem = key.to_pem();
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        for shown in [format!("{key:?}"), format!("{keys:?}")] {
            assert!(!shown.contains(&body), "{shown}");
            assert!(!shown.contains(&hex::encode(&key.pkcs8)[..20]), "{shown}");
        }
        assert!(format!("{key:?}").contains("<redacted>"));
    }
}
