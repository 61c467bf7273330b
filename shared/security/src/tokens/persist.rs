//! Storing keys and revocations as `GlobalSecret`s (Kuma's names and formats).
//!
//! The resource store is the caller's: these functions only convert between the token
//! types and [`SecretSpec`]s and name them. Zone-token secrets are:
//!
//! | name | content |
//! |---|---|
//! | `zone-token-signing-key-<serial>` | PKCS#8 PEM private key (global only) |
//! | `zone-token-signing-public-key-<serial>` | SPKI PEM public key (safe to send to zones) |
//! | `zone-token-revocations` | revoked `jti`s, comma-separated |

use super::{KeyError, Revocations, SigningKey, SigningKeys, VerifyingKey, VerifyingKeys};
use weft_model::resource::secret::SecretSpec;

pub const ZONE_TOKEN_SIGNING_KEY_PREFIX: &str = "zone-token-signing-key-";
pub const ZONE_TOKEN_SIGNING_PUBLIC_KEY_PREFIX: &str = "zone-token-signing-public-key-";
pub const ZONE_TOKEN_REVOCATIONS: &str = "zone-token-revocations";

/// The secret names of one token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNames {
    signing_key_prefix: String,
    public_key_prefix: String,
    revocations: String,
}

impl SecretNames {
    /// Names for another token kind (e.g. dataplane tokens, per mesh).
    pub fn new(
        signing_key_prefix: impl Into<String>,
        public_key_prefix: impl Into<String>,
        revocations: impl Into<String>,
    ) -> Self {
        SecretNames {
            signing_key_prefix: signing_key_prefix.into(),
            public_key_prefix: public_key_prefix.into(),
            revocations: revocations.into(),
        }
    }

    /// `zone-token-signing-key-<N>`, `zone-token-signing-public-key-<N>`,
    /// `zone-token-revocations`.
    pub fn zone() -> Self {
        Self::new(
            ZONE_TOKEN_SIGNING_KEY_PREFIX,
            ZONE_TOKEN_SIGNING_PUBLIC_KEY_PREFIX,
            ZONE_TOKEN_REVOCATIONS,
        )
    }

    pub fn signing_key(&self, serial: u64) -> String {
        format!("{}{serial}", self.signing_key_prefix)
    }

    pub fn public_key(&self, serial: u64) -> String {
        format!("{}{serial}", self.public_key_prefix)
    }

    pub fn revocations(&self) -> &str {
        &self.revocations
    }

    /// The serial in a signing-key secret name, `None` for any other name.
    pub fn signing_key_serial(&self, name: &str) -> Option<u64> {
        name.strip_prefix(&self.signing_key_prefix)
            .and_then(parse_serial)
    }

    /// The serial in a public-key secret name, `None` for any other name.
    pub fn public_key_serial(&self, name: &str) -> Option<u64> {
        name.strip_prefix(&self.public_key_prefix)
            .and_then(parse_serial)
    }
}

/// Canonical decimal only, so that each serial has exactly one secret name.
fn parse_serial(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

fn pem_of(spec: &SecretSpec, what: impl Fn() -> String) -> Result<Vec<u8>, KeyError> {
    spec.bytes().map_err(|_| KeyError::Decode {
        what: what(),
        reason: "the secret's data is not valid base64",
    })
}

impl SigningKey {
    pub fn to_secret(&self) -> SecretSpec {
        SecretSpec::from_bytes(self.to_pem().as_bytes())
    }

    pub fn from_secret(serial: u64, spec: &SecretSpec) -> Result<Self, KeyError> {
        Self::from_pem(serial, &pem_of(spec, || format!("signing key {serial}"))?)
    }
}

impl VerifyingKey {
    pub fn to_secret(&self) -> SecretSpec {
        SecretSpec::from_bytes(self.to_pem().as_bytes())
    }

    pub fn from_secret(serial: u64, spec: &SecretSpec) -> Result<Self, KeyError> {
        Self::from_pem(serial, &pem_of(spec, || format!("verifying key {serial}"))?)
    }
}

impl Revocations {
    pub fn to_secret(&self) -> SecretSpec {
        SecretSpec::from_bytes(self.to_text().as_bytes())
    }

    pub fn from_secret(spec: &SecretSpec) -> Result<Self, KeyError> {
        let bytes = pem_of(spec, || "revocations".to_string())?;
        Ok(Revocations::from_text(&String::from_utf8_lossy(&bytes)))
    }
}

impl SigningKeys {
    /// The signing keys among `secrets` (name, spec); other names are ignored.
    pub fn from_secrets<'a>(
        names: &SecretNames,
        secrets: impl IntoIterator<Item = (&'a str, &'a SecretSpec)>,
    ) -> Result<Self, KeyError> {
        let mut keys = SigningKeys::new();
        for (name, spec) in secrets {
            if let Some(serial) = names.signing_key_serial(name) {
                keys.insert(SigningKey::from_secret(serial, spec)?);
            }
        }
        Ok(keys)
    }

    /// Every key as `(name, spec)`: the private keys, then their public halves.
    pub fn to_secrets(&self, names: &SecretNames) -> Vec<(String, SecretSpec)> {
        let private = self
            .iter()
            .map(|k| (names.signing_key(k.serial()), k.to_secret()));
        let public = self
            .iter()
            .map(|k| (names.public_key(k.serial()), k.verifying_key().to_secret()));
        private.chain(public).collect()
    }
}

impl VerifyingKeys {
    /// The public keys among `secrets`: public-key secrets, and the public halves of
    /// signing-key secrets (so global can validate from its private keys alone).
    pub fn from_secrets<'a>(
        names: &SecretNames,
        secrets: impl IntoIterator<Item = (&'a str, &'a SecretSpec)>,
    ) -> Result<Self, KeyError> {
        let mut keys = VerifyingKeys::new();
        for (name, spec) in secrets {
            if let Some(serial) = names.public_key_serial(name) {
                keys.insert(VerifyingKey::from_secret(serial, spec)?);
            } else if let Some(serial) = names.signing_key_serial(name) {
                keys.insert(SigningKey::from_secret(serial, spec)?.verifying_key());
            }
        }
        Ok(keys)
    }

    pub fn to_secrets(&self, names: &SecretNames) -> Vec<(String, SecretSpec)> {
        self.iter()
            .map(|k| (names.public_key(k.serial()), k.to_secret()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Names carry the serial and parse back; unrelated or non-canonical names do not.
    #[test]
    fn names() {
        let n = SecretNames::zone();
        assert_eq!(n.signing_key(3), "zone-token-signing-key-3");
        assert_eq!(n.public_key(3), "zone-token-signing-public-key-3");
        assert_eq!(n.revocations(), "zone-token-revocations");
        assert_eq!(n.signing_key_serial("zone-token-signing-key-12"), Some(12));
        assert_eq!(
            n.signing_key_serial("zone-token-signing-public-key-1"),
            None
        );
        assert_eq!(
            n.public_key_serial("zone-token-signing-public-key-1"),
            Some(1)
        );
        for bad in [
            "zone-token-signing-key-",
            "zone-token-signing-key-01",
            "zone-token-signing-key-+1",
            "mesh-ca",
        ] {
            assert_eq!(n.signing_key_serial(bad), None, "{bad}");
        }
    }

    // Keys and revocations survive a trip through GlobalSecret specs, which validate.
    #[test]
    fn secrets_round_trip() {
        use weft_model::resource::validate::{Path, Validate, ValidationErrors};
        let names = SecretNames::zone();
        let mut keys = SigningKeys::generate_initial().unwrap();
        keys.rotate().unwrap();
        let stored = keys.to_secrets(&names);
        assert_eq!(stored.len(), 4);
        for (_, spec) in &stored {
            let mut errs = ValidationErrors::new();
            spec.validate(&Path::root(), &mut errs);
            assert!(errs.is_empty(), "{errs}");
        }
        let mut with_noise = stored.clone();
        with_noise.push(("other".into(), SecretSpec::from_bytes(b"x")));
        let pairs = || with_noise.iter().map(|(n, s)| (n.as_str(), s));
        assert_eq!(SigningKeys::from_secrets(&names, pairs()).unwrap(), keys);
        assert_eq!(
            VerifyingKeys::from_secrets(&names, pairs()).unwrap(),
            keys.verifying_keys()
        );
        // Zones get only the public keys and still build the same validator keys.
        let public = keys.verifying_keys().to_secrets(&names);
        assert_eq!(
            VerifyingKeys::from_secrets(&names, public.iter().map(|(n, s)| (n.as_str(), s)))
                .unwrap(),
            keys.verifying_keys()
        );

        let revoked: Revocations = ["a", "b"].into_iter().collect();
        let spec = revoked.to_secret();
        assert_eq!(spec.bytes().unwrap(), b"a,b");
        assert_eq!(Revocations::from_secret(&spec).unwrap(), revoked);
    }

    // A corrupt key secret is an error naming the key, without its content.
    #[test]
    fn corrupt_secret() {
        let names = SecretNames::zone();
        let spec = SecretSpec::from_bytes(b"not a pem");
        let err =
            SigningKeys::from_secrets(&names, [("zone-token-signing-key-2", &spec)]).unwrap_err();
        assert!(err.to_string().contains("signing key 2"), "{err}");
        assert!(!err.to_string().contains("not a pem"), "{err}");
    }
}
