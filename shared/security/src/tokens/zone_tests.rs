//! Zone token issue / validate behaviour, driven by a manual clock (no sleeps).

use super::*;
use crate::tokens::{ManualClock, Revocations, SigningKeys, VerifyingKeys};
use std::sync::Arc;

const T0: u64 = 1_800_000_000;
const DAY: Duration = Duration::from_secs(86_400);

struct Fixture {
    keys: SigningKeys,
    clock: Arc<ManualClock>,
    fp: Fingerprint,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            keys: SigningKeys::generate_initial().unwrap(),
            clock: Arc::new(ManualClock::new(T0)),
            fp: Fingerprint::of_der(b"kds ca"),
        }
    }

    fn issue(&self, zone: &str, valid_for: Duration) -> (Token, ZoneClaims) {
        let mut req = ZoneTokenRequest::cp(zone, valid_for);
        req.kds_ca_fingerprint = Some(self.fp);
        issue_zone_token(&self.keys, self.clock.as_ref(), &req).unwrap()
    }

    fn validator(&self) -> ZoneTokenValidator {
        self.validator_with(Revocations::new())
    }

    fn validator_with(&self, revoked: Revocations) -> ZoneTokenValidator {
        ZoneTokenValidator::new(self.keys.verifying_keys(), revoked, self.clock.clone())
    }
}

fn unauthenticated(r: Result<Verified<ZoneClaims>, TokenError>) -> Unauthenticated {
    match r {
        Err(TokenError::Unauthenticated(e)) => e,
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
}

/// Replaces the middle (claims) part of a JWT.
fn with_claims(token: &str, claims: &serde_json::Value) -> String {
    use base64_url as b64;
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        b64::encode(claims.to_string().as_bytes()),
        parts[2]
    )
}

/// Minimal base64url without padding, for crafting tokens in tests.
mod base64_url {
    pub fn encode(bytes: &[u8]) -> String {
        weft_model::resource::secret::encode_base64(bytes)
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    }
    pub fn decode(text: &str) -> Vec<u8> {
        weft_model::resource::secret::decode_base64(text).unwrap()
    }
}

// An issued token validates for its zone and carries every claim asked for.
#[test]
fn round_trip() {
    let f = Fixture::new();
    let (token, issued) = f.issue("east", DAY);
    let v = f
        .validator()
        .validate_for_zone(token.expose(), "east")
        .unwrap();
    assert_eq!(v.kid, 1);
    assert_eq!(v.claims, issued);
    assert_eq!(v.claims.zone, "east");
    assert_eq!(v.claims.scope, vec!["cp"]);
    assert_eq!(v.claims.kds_ca_fingerprint, Some(f.fp));
    assert_eq!(v.claims.registered.iat, T0);
    assert_eq!(v.claims.registered.nbf, T0 - 5);
    assert_eq!(v.claims.registered.exp, T0 + 86_400);
    // The `Bearer ` form of an authorization value is accepted as is.
    let bearer = format!("Bearer {}", token.expose());
    assert!(f.validator().validate_for_zone(&bearer, "east").is_ok());
}

// The wire format: EdDSA, kid = serial, Kuma's claim names plus the CA fingerprint.
#[test]
fn wire_format() {
    let f = Fixture::new();
    let (token, claims) = f.issue("east", DAY);
    let parts: Vec<&str> = token.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value = serde_json::from_slice(&base64_url::decode(parts[0])).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], "1");
    let body: serde_json::Value = serde_json::from_slice(&base64_url::decode(parts[1])).unwrap();
    assert_eq!(body["Zone"], "east");
    assert_eq!(body["Scope"], serde_json::json!(["cp"]));
    assert_eq!(body["KdsCaFingerprint"], f.fp.to_string());
    assert_eq!(body["jti"], claims.registered.jti.as_str());
    for k in ["iat", "nbf", "exp"] {
        assert!(body[k].is_u64(), "{k}");
    }
    assert_eq!(ZoneClaims::read_unverified(token.expose()).unwrap(), claims);
}

// A token signed by a key of another issuer with the same kid fails the signature check.
#[test]
fn forged_signature() {
    let f = Fixture::new();
    let forger = Fixture::new();
    let (forged, _) = forger.issue("east", DAY);
    let err = unauthenticated(f.validator().validate_for_zone(forged.expose(), "east"));
    assert!(
        matches!(err, Unauthenticated::BadSignature { kid: 1, .. }),
        "{err:?}"
    );
}

// Changing any claim after signing breaks the signature.
#[test]
fn tampered_claims() {
    let f = Fixture::new();
    let (token, claims) = f.issue("east", DAY);
    let mut body = serde_json::to_value(&claims).unwrap();
    body["Zone"] = "west".into();
    let tampered = with_claims(token.expose(), &body);
    let err = unauthenticated(f.validator().validate_for_zone(&tampered, "west"));
    assert!(
        matches!(err, Unauthenticated::BadSignature { .. }),
        "{err:?}"
    );
    body["Zone"] = "east".into();
    body["exp"] = (T0 + 1000 * 86_400).into();
    let tampered = with_claims(token.expose(), &body);
    let err = unauthenticated(f.validator().validate(&tampered));
    assert!(
        matches!(err, Unauthenticated::BadSignature { .. }),
        "{err:?}"
    );
}

// A token is valid until exp (exclusive) and never after, checked against the clock.
#[test]
fn expired() {
    let f = Fixture::new();
    let (token, _) = f.issue("east", DAY);
    let validator = f.validator();
    f.clock.advance(DAY - Duration::from_secs(1));
    let verified = validator.validate_for_zone(token.expose(), "east").unwrap();
    f.clock.advance(Duration::from_secs(1));
    let err = unauthenticated(validator.validate_for_zone(token.expose(), "east"));
    assert!(matches!(err, Unauthenticated::Expired { .. }), "{err:?}");
    assert!(err.to_string().contains("expired at 2027-01-16T"), "{err}");
    // A live connection's claims are rechecked the same way.
    assert!(matches!(
        validator.recheck(&verified),
        Err(Unauthenticated::Expired { .. })
    ));
}

// A token from the future (issuer clock far ahead) is refused with a clock hint.
#[test]
fn not_yet_valid() {
    let f = Fixture::new();
    let (token, _) = f.issue("east", DAY);
    f.clock.set(T0 - 60);
    let err = unauthenticated(f.validator().validate(token.expose()));
    assert!(
        matches!(err, Unauthenticated::NotYetValid { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("clocks"), "{err}");
    // Within the 5 s skew allowance it is accepted.
    f.clock.set(T0 - 5);
    assert!(f.validator().validate(token.expose()).is_ok());
}

// A revoked jti is refused, and recheck catches revocation of a live connection.
#[test]
fn revoked() {
    let f = Fixture::new();
    let (token, claims) = f.issue("east", DAY);
    let (other, _) = f.issue("east", DAY);
    let mut validator = f.validator();
    let live = validator.validate_for_zone(token.expose(), "east").unwrap();
    let mut revoked = Revocations::new();
    revoked.revoke(claims.registered.jti.clone());
    validator.set_revocations(revoked);
    let err = unauthenticated(validator.validate_for_zone(token.expose(), "east"));
    assert!(matches!(err, Unauthenticated::Revoked { .. }), "{err:?}");
    assert!(err.to_string().contains(&claims.registered.jti), "{err}");
    assert!(matches!(
        validator.recheck(&live),
        Err(Unauthenticated::Revoked { .. })
    ));
    assert!(validator.validate_for_zone(other.expose(), "east").is_ok());
}

// A kid the validator does not know is refused with the rotation hint.
#[test]
fn unknown_kid() {
    let mut f = Fixture::new();
    f.keys.rotate().unwrap();
    let (token, _) = f.issue("east", DAY);
    let mut only_first = f.keys.verifying_keys();
    only_first.remove(2);
    let validator = ZoneTokenValidator::new(only_first, Revocations::new(), f.clock.clone());
    let err = unauthenticated(validator.validate(token.expose()));
    assert_eq!(
        err,
        Unauthenticated::UnknownKey {
            kind: ZONE_TOKEN,
            kid: 2
        }
    );
    assert!(err.to_string().contains("rotated"), "{err}");
}

// Rotation: new tokens get the new kid, old tokens keep validating until their key goes.
#[test]
fn rotation() {
    let mut f = Fixture::new();
    let (old, _) = f.issue("east", DAY);
    f.keys.rotate().unwrap();
    let (new, _) = f.issue("east", DAY);
    let validator = f.validator();
    assert_eq!(validator.validate(old.expose()).unwrap().kid, 1);
    let live_old = validator.validate(old.expose()).unwrap();
    assert_eq!(validator.validate(new.expose()).unwrap().kid, 2);

    f.keys.remove(1);
    let validator = f.validator();
    let err = unauthenticated(validator.validate(old.expose()));
    assert!(
        matches!(err, Unauthenticated::UnknownKey { kid: 1, .. }),
        "{err:?}"
    );
    assert!(validator.recheck(&live_old).is_err());
    assert!(validator.validate(new.expose()).is_ok());
}

// A genuine token of zone east presented by zone west is PERMISSION_DENIED, naming both.
#[test]
fn wrong_zone_is_permission_denied() {
    let f = Fixture::new();
    let (token, _) = f.issue("east", DAY);
    match f.validator().validate_for_zone(token.expose(), "west") {
        Err(TokenError::PermissionDenied(e @ PermissionDenied::ZoneMismatch { .. })) => {
            let msg = e.to_string();
            assert!(
                msg.contains("\"east\"") && msg.contains("\"west\""),
                "{msg}"
            );
        }
        other => panic!("expected PERMISSION_DENIED, got {other:?}"),
    }
}

// A KDS connection needs scope cp; an ingress-only token is PERMISSION_DENIED.
#[test]
fn scope_required() {
    let f = Fixture::new();
    let mut req = ZoneTokenRequest::cp("east", DAY);
    req.scope = vec![SCOPE_INGRESS.into()];
    let (token, _) = issue_zone_token(&f.keys, f.clock.as_ref(), &req).unwrap();
    assert!(matches!(
        f.validator().validate_for_zone(token.expose(), "east"),
        Err(TokenError::PermissionDenied(
            PermissionDenied::MissingScope { .. }
        ))
    ));
    assert!(
        f.validator()
            .validate_for_zone_scope(token.expose(), "east", SCOPE_INGRESS)
            .is_ok()
    );
}

// Missing and malformed tokens are UNAUTHENTICATED; messages never echo the input.
#[test]
fn missing_and_malformed() {
    let f = Fixture::new();
    let v = f.validator();
    for missing in ["", "   ", "Bearer "] {
        assert!(matches!(
            unauthenticated(v.validate(missing)),
            Unauthenticated::Missing { .. }
        ));
    }
    let (token, _) = f.issue("east", DAY);
    let t = token.expose();
    let parts: Vec<&str> = t.split('.').collect();
    let hs256 = format!(
        "{}.{}.{}",
        base64_url::encode(br#"{"alg":"HS256","kid":"1","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    let no_kid = format!(
        "{}.{}.{}",
        base64_url::encode(br#"{"alg":"EdDSA","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    let bad_kid = format!(
        "{}.{}.{}",
        base64_url::encode(br#"{"alg":"EdDSA","kid":"one","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    let garbage = "s3cr3t-not-a-jwt".to_string();
    let truncated = t[..t.len() - 10].to_string();
    for bad in [garbage, hs256, no_kid, bad_kid, truncated] {
        let err = unauthenticated(v.validate(&bad));
        assert!(
            matches!(
                err,
                Unauthenticated::Malformed { .. } | Unauthenticated::BadSignature { .. }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            !msg.contains(&bad) && !msg.contains("s3cr3t") && !msg.contains(parts[1]),
            "{msg}"
        );
    }
}

// No error message of any kind contains the token or its parts.
#[test]
fn errors_never_contain_the_token() {
    let f = Fixture::new();
    let (token, claims) = f.issue("east", DAY);
    let mut revoked = Revocations::new();
    revoked.revoke(claims.registered.jti);
    let errors = [
        f.validator_with(revoked)
            .validate(token.expose())
            .unwrap_err(),
        ZoneTokenValidator::new(VerifyingKeys::new(), Revocations::new(), f.clock.clone())
            .validate(token.expose())
            .unwrap_err(),
        f.validator()
            .validate_for_zone(token.expose(), "west")
            .unwrap_err(),
    ];
    for e in errors {
        for shown in [e.to_string(), format!("{e:?}")] {
            for part in token.expose().split('.') {
                assert!(!shown.contains(part), "{shown}");
            }
        }
    }
}

// Issuing refuses bad zone names, unknown scopes, zero validity and an empty key set.
#[test]
fn issue_refusals() {
    let f = Fixture::new();
    let clock = f.clock.as_ref();
    let bad_zone = ZoneTokenRequest::cp("East_1", DAY);
    assert!(matches!(
        issue_zone_token(&f.keys, clock, &bad_zone),
        Err(IssueError::Invalid { field: "zone", .. })
    ));
    let mut bad_scope = ZoneTokenRequest::cp("east", DAY);
    bad_scope.scope = vec!["admin".into()];
    assert!(matches!(
        issue_zone_token(&f.keys, clock, &bad_scope),
        Err(IssueError::Invalid { field: "scope", .. })
    ));
    let zero = ZoneTokenRequest::cp("east", Duration::ZERO);
    assert!(issue_zone_token(&f.keys, clock, &zero).is_err());
    let none = issue_zone_token(
        &SigningKeys::new(),
        clock,
        &ZoneTokenRequest::cp("east", DAY),
    );
    assert!(matches!(none, Err(IssueError::NoSigningKey { .. })));
}

// The POST /tokens/zone body: Kuma's field names, optional scope and validFor.
#[test]
fn api_body() {
    let body: ZoneTokenBody = serde_json::from_str(r#"{"zone":"east","validFor":"720h"}"#).unwrap();
    let req = body.into_request(None).unwrap();
    assert_eq!(req.valid_for, Duration::from_secs(720 * 3600));
    assert!(req.scope.is_empty());
    let f = Fixture::new();
    let (_, claims) = issue_zone_token(&f.keys, f.clock.as_ref(), &req).unwrap();
    assert_eq!(claims.scope, vec![SCOPE_CP]);
    let body: ZoneTokenBody = serde_json::from_str(r#"{"zone":"east"}"#).unwrap();
    assert_eq!(
        body.into_request(None).unwrap().valid_for,
        crate::tokens::DEFAULT_VALID_FOR
    );
    assert!(serde_json::from_str::<ZoneTokenBody>(r#"{"zone":"e","bogus":1}"#).is_err());
    let bad: ZoneTokenBody = serde_json::from_str(r#"{"zone":"e","validFor":"soon"}"#).unwrap();
    assert!(bad.into_request(None).is_err());
}

// Debug of tokens, keys and validators shows no secret.
#[test]
fn debug_redacts() {
    let f = Fixture::new();
    let (token, _) = f.issue("east", DAY);
    let pem = f.keys.newest().unwrap().to_pem();
    let key_line = pem.lines().nth(1).unwrap();
    let shown = format!(
        "{token:?} {token} {:?} {:?} {:?}",
        f.keys,
        f.keys.newest().unwrap(),
        f.validator()
    );
    assert!(
        !shown.contains(token.expose().split('.').nth(2).unwrap()),
        "{shown}"
    );
    assert!(!shown.contains(key_line), "{shown}");
}
