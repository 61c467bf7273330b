//! The kind-independent JWT engine: registered claims, signing with the newest key, and
//! validation (signature by `kid`, validity window against an injectable clock,
//! revocation). Zone tokens ([`super::zone`]) and, later, dataplane tokens are thin
//! claim types on top of it.

use super::{
    Clock, IssueError, Revocations, SigningKeys, TokenKind, Unauthenticated, VerifyingKeys,
};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;
use weft_model::resource::duration::parse_duration;

/// `nbf` is set this far before `iat` so a validator whose clock runs slightly behind
/// the issuer's accepts a fresh token (Kuma does the same).
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);
/// The validity of a token issued with an empty `--valid-for` / `validFor` (Kuma: 10y).
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(10 * 365 * 86_400);

/// An encoded token. `Debug` and `Display` never show it; use [`Token::expose`] to send
/// it where it belongs (an HTTP response body, a 0600 file, gRPC metadata).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted, {} bytes>)", self.0.len())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted token>")
    }
}

/// The registered claims every Weft token carries (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// Random id (UUID v4), the handle for revocation.
    pub jti: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

impl Registered {
    /// Claims for a token issued now and valid for `valid_for` (which must be positive).
    pub fn new(clock: &dyn Clock, valid_for: Duration) -> Result<Self, IssueError> {
        if valid_for.is_zero() {
            return Err(IssueError::Invalid {
                field: "validFor",
                reason: "must be greater than zero".into(),
            });
        }
        let now = clock.now();
        let exp =
            now.checked_add(valid_for.as_secs().max(1))
                .ok_or_else(|| IssueError::Invalid {
                    field: "validFor",
                    reason: "is too large".into(),
                })?;
        Ok(Registered {
            jti: new_jti(),
            iat: now,
            nbf: now.saturating_sub(CLOCK_SKEW.as_secs()),
            exp,
        })
    }
}

/// Parses a `--valid-for` / `validFor` value: empty means [`DEFAULT_VALID_FOR`], zero is
/// refused, anything else as [`parse_duration`] reads it (`24h`, `720h`, `30d`, `1y`).
pub fn parse_valid_for(text: &str) -> Result<Duration, IssueError> {
    if text.trim().is_empty() {
        return Ok(DEFAULT_VALID_FOR);
    }
    let d = parse_duration(text).map_err(|e| IssueError::Invalid {
        field: "validFor",
        reason: e.to_string(),
    })?;
    if d.is_zero() {
        return Err(IssueError::Invalid {
            field: "validFor",
            reason: "must be greater than zero".into(),
        });
    }
    Ok(d)
}

/// A claims type: what a token of one kind says besides the registered claims.
pub trait TokenClaims: Serialize + DeserializeOwned {
    const KIND: TokenKind;
    fn registered(&self) -> &Registered;
}

/// Signs `claims` with the newest key of `keys`; the header's `kid` is its serial.
pub fn sign<C: TokenClaims>(keys: &SigningKeys, claims: &C) -> Result<Token, IssueError> {
    let key = keys
        .newest()
        .ok_or(IssueError::NoSigningKey { kind: C::KIND })?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.serial().to_string());
    jsonwebtoken::encode(&header, claims, key.encoding_key())
        .map(Token)
        .map_err(|e| IssueError::Sign {
            kind: C::KIND,
            reason: e.to_string(),
        })
}

/// Claims that passed validation, with the serial of the key that signed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<C> {
    pub kid: u64,
    pub claims: C,
}

/// Validates tokens of one kind `C` against a set of public keys and revocations.
///
/// It is a plain value: rebuild it or call [`Validator::set_keys`] /
/// [`Validator::set_revocations`] when the stored secrets change, and use
/// [`Validator::recheck`] on the claims of live connections to drop those whose token
/// has since been revoked, lost its key or expired.
pub struct Validator<C> {
    keys: VerifyingKeys,
    revocations: Revocations,
    clock: Arc<dyn Clock>,
    _claims: PhantomData<fn() -> C>,
}

impl<C> Clone for Validator<C> {
    fn clone(&self) -> Self {
        Validator {
            keys: self.keys.clone(),
            revocations: self.revocations.clone(),
            clock: self.clock.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for Validator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("keys", &self.keys.serials().collect::<Vec<_>>())
            .field("revoked", &self.revocations.len())
            .finish()
    }
}

impl<C: TokenClaims> Validator<C> {
    pub fn new(keys: VerifyingKeys, revocations: Revocations, clock: Arc<dyn Clock>) -> Self {
        Validator {
            keys,
            revocations,
            clock,
            _claims: PhantomData,
        }
    }

    pub fn keys(&self) -> &VerifyingKeys {
        &self.keys
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    pub fn set_keys(&mut self, keys: VerifyingKeys) {
        self.keys = keys;
    }

    pub fn set_revocations(&mut self, revocations: Revocations) {
        self.revocations = revocations;
    }

    /// Validates a presented token: the raw JWT or `Bearer <jwt>` (an `authorization`
    /// header or metadata value as is; an empty value counts as missing).
    pub fn verify(&self, presented: &str) -> Result<Verified<C>, Unauthenticated> {
        let kind = C::KIND;
        let malformed = |reason| Unauthenticated::Malformed { kind, reason };
        let token = strip_bearer(presented);
        if token.is_empty() {
            return Err(Unauthenticated::Missing { kind });
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| malformed("it is not a JWT (three base64url parts, a JSON header)"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(malformed("it is not signed with EdDSA"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| malformed("its header has no kid"))?;
        let kid: u64 = kid
            .parse()
            .map_err(|_| malformed("its kid is not a signing-key serial"))?;
        let key = self
            .keys
            .get(kid)
            .ok_or(Unauthenticated::UnknownKey { kind, kid })?;

        // Time is checked below against the injected clock, not by jsonwebtoken.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<C>(token, key.decoding_key(), &validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidEddsaKey
                | ErrorKind::InvalidKeyFormat => Unauthenticated::BadSignature { kind, kid },
                ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                    malformed("a part is not valid base64url")
                }
                ErrorKind::Json(_) => malformed("its claims do not have the expected fields"),
                _ => malformed("it could not be decoded"),
            },
        )?;
        let verified = Verified {
            kid,
            claims: data.claims,
        };
        self.check_live(verified.claims.registered())?;
        Ok(verified)
    }

    /// Checks again claims that were valid when a connection was accepted: the signing
    /// key must still exist, the token must not be revoked, expired or not yet valid.
    pub fn recheck(&self, verified: &Verified<C>) -> Result<(), Unauthenticated> {
        if self.keys.get(verified.kid).is_none() {
            return Err(Unauthenticated::UnknownKey {
                kind: C::KIND,
                kid: verified.kid,
            });
        }
        self.check_live(verified.claims.registered())
    }

    fn check_live(&self, reg: &Registered) -> Result<(), Unauthenticated> {
        let kind = C::KIND;
        let now = self.clock.now();
        if reg.exp <= now {
            return Err(Unauthenticated::Expired {
                kind,
                jti: reg.jti.clone(),
                expired_at: rfc3339(reg.exp),
            });
        }
        if reg.nbf > now {
            return Err(Unauthenticated::NotYetValid {
                kind,
                jti: reg.jti.clone(),
                not_before: rfc3339(reg.nbf),
            });
        }
        if self.revocations.is_revoked(&reg.jti) {
            return Err(Unauthenticated::Revoked {
                kind,
                jti: reg.jti.clone(),
            });
        }
        Ok(())
    }
}

/// The claims of a token **without verifying anything**. Only for a holder reading its
/// own token (e.g. a zone taking the KDS CA fingerprint to pin); never for authorizing.
pub fn read_unverified<C: TokenClaims>(presented: &str) -> Result<C, Unauthenticated> {
    let token = strip_bearer(presented);
    if token.is_empty() {
        return Err(Unauthenticated::Missing { kind: C::KIND });
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<C>(token).map_err(|_| {
        Unauthenticated::Malformed {
            kind: C::KIND,
            reason: "its claims could not be read",
        }
    })
}

/// The token in an `authorization` value: trimmed, with an optional `Bearer ` prefix
/// (any case) removed. Kuma's proxies send the bare token, Weft zones `Bearer <token>`.
pub fn strip_bearer(value: &str) -> &str {
    let v = value.trim();
    match (v.get(..6), v.get(6..)) {
        (Some(scheme), Some(rest))
            if scheme.eq_ignore_ascii_case("bearer")
                && (rest.is_empty() || rest.starts_with(char::is_whitespace)) =>
        {
            rest.trim_start()
        }
        _ => v,
    }
}

/// A random UUID v4.
fn new_jti() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// RFC 3339 of a Unix time (a claim's `exp`, `iat`...), for logs and messages.
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} (Unix time)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `Bearer ` is optional and case-insensitive; surrounding space is ignored.
    #[test]
    fn bearer_prefix() {
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("  bearer   abc "), "abc");
        assert_eq!(strip_bearer("abc"), "abc");
        assert_eq!(strip_bearer("Bearer"), "");
        assert_eq!(strip_bearer("Bearerabc"), "Bearerabc");
        assert_eq!(strip_bearer("bearer\tabc"), "abc");
        assert_eq!(strip_bearer("é"), "é");
        assert_eq!(strip_bearer(""), "");
    }

    // Empty validFor means ten years, zero and garbage are refused, units parse.
    #[test]
    fn valid_for() {
        assert_eq!(parse_valid_for("").unwrap(), DEFAULT_VALID_FOR);
        assert_eq!(parse_valid_for("24h").unwrap(), Duration::from_secs(86_400));
        assert!(parse_valid_for("0").is_err());
        assert!(parse_valid_for("-1h").is_err());
        assert!(parse_valid_for("soon").is_err());
    }

    // jtis are distinct UUID v4 strings.
    #[test]
    fn jti_shape() {
        let a = new_jti();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, new_jti());
    }

    // Token never shows itself through Debug or Display.
    #[test]
    fn token_redacted() {
        let t = Token::new("eyJhbGciOi.secret.sig");
        assert!(!format!("{t:?}").contains("secret"));
        assert!(!format!("{t}").contains("secret"));
        assert_eq!(t.expose(), "eyJhbGciOi.secret.sig");
    }
}
