//! Zone tokens: what a zone control plane presents to global's KDS server (scope `cp`),
//! and later what zone ingresses / egresses present to their zone (`ingress`, `egress`).
//!
//! Claims follow Kuma's zone token (`Zone`, `Scope` with those capitalized keys, plus
//! `jti`, `iat`, `nbf`, `exp`) and add `KdsCaFingerprint`: the SHA-256 of global's KDS
//! CA certificate, so a zone that holds only its token can pin the server it dials.

use super::jwt::{self, Registered, TokenClaims, Validator, Verified};
use super::{
    Clock, IssueError, PermissionDenied, SigningKeys, Token, TokenError, TokenKind, Unauthenticated,
};
use crate::pki::Fingerprint;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use weft_model::resource::validate::{Path, ValidationErrors, check_name};

/// A zone control plane talking to global over KDS.
pub const SCOPE_CP: &str = "cp";
/// A zone ingress talking to its zone control plane.
pub const SCOPE_INGRESS: &str = "ingress";
/// A zone egress talking to its zone control plane.
pub const SCOPE_EGRESS: &str = "egress";
/// Every scope a zone token may carry.
pub const SCOPES: [&str; 3] = [SCOPE_CP, SCOPE_INGRESS, SCOPE_EGRESS];

pub const ZONE_TOKEN: TokenKind = TokenKind {
    name: "zone token",
    present_hint: "the zone sends it as gRPC metadata `authorization: Bearer <token>`, read \
                   from --zone-token-file",
    reissue_hint: "generate a new one on global with `weft-global token zone --zone NAME` or \
                   `POST /tokens/zone`",
};

/// The claims of a zone token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneClaims {
    #[serde(rename = "Zone")]
    pub zone: String,
    #[serde(rename = "Scope", default)]
    pub scope: Vec<String>,
    #[serde(
        rename = "KdsCaFingerprint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kds_ca_fingerprint: Option<Fingerprint>,
    #[serde(flatten)]
    pub registered: Registered,
}

impl TokenClaims for ZoneClaims {
    const KIND: TokenKind = ZONE_TOKEN;
    fn registered(&self) -> &Registered {
        &self.registered
    }
}

impl ZoneClaims {
    /// Reads a token's claims **without verifying it** — for a zone taking the KDS CA
    /// fingerprint out of its own token. Never use the result to authorize anything.
    pub fn read_unverified(token: &str) -> Result<Self, Unauthenticated> {
        jwt::read_unverified(token)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }
}

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneTokenRequest {
    pub zone: String,
    /// Empty means `["cp"]`.
    pub scope: Vec<String>,
    pub valid_for: Duration,
    /// The KDS CA fingerprint to embed (from [`crate::pki::KdsTls::ca_fingerprint`]).
    pub kds_ca_fingerprint: Option<Fingerprint>,
}

impl ZoneTokenRequest {
    /// A `cp` token for `zone`.
    pub fn cp(zone: impl Into<String>, valid_for: Duration) -> Self {
        ZoneTokenRequest {
            zone: zone.into(),
            scope: vec![SCOPE_CP.to_string()],
            valid_for,
            kds_ca_fingerprint: None,
        }
    }
}

/// The JSON body of `POST /tokens/zone` (Kuma's shape): `{"zone": "east", "scope":
/// ["cp"], "validFor": "720h"}`; `scope` and `validFor` are optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneTokenBody {
    pub zone: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub valid_for: String,
}

impl ZoneTokenBody {
    /// The request to issue, with global's KDS CA fingerprint.
    pub fn into_request(
        self,
        kds_ca_fingerprint: Option<Fingerprint>,
    ) -> Result<ZoneTokenRequest, IssueError> {
        Ok(ZoneTokenRequest {
            valid_for: jwt::parse_valid_for(&self.valid_for)?,
            zone: self.zone,
            scope: self.scope,
            kds_ca_fingerprint,
        })
    }
}

/// Issues a zone token signed with the newest key; returns it with its claims (log the
/// `jti`, never the token).
pub fn issue_zone_token(
    keys: &SigningKeys,
    clock: &dyn Clock,
    req: &ZoneTokenRequest,
) -> Result<(Token, ZoneClaims), IssueError> {
    let mut errs = ValidationErrors::new();
    check_name(&Path::root().field("zone"), &req.zone, &mut errs);
    if !errs.is_empty() {
        return Err(IssueError::Invalid {
            field: "zone",
            reason: errs.to_string(),
        });
    }
    let mut scope: Vec<String> = Vec::new();
    for s in &req.scope {
        if !SCOPES.contains(&s.as_str()) {
            return Err(IssueError::Invalid {
                field: "scope",
                reason: format!("unknown scope {s:?}; expected one of {}", SCOPES.join(", ")),
            });
        }
        if !scope.contains(s) {
            scope.push(s.clone());
        }
    }
    if scope.is_empty() {
        scope.push(SCOPE_CP.to_string());
    }
    let claims = ZoneClaims {
        zone: req.zone.clone(),
        scope,
        kds_ca_fingerprint: req.kds_ca_fingerprint,
        registered: Registered::new(clock, req.valid_for)?,
    };
    let token = jwt::sign(keys, &claims)?;
    Ok((token, claims))
}

/// Validates zone tokens.
pub type ZoneTokenValidator = Validator<ZoneClaims>;

impl Validator<ZoneClaims> {
    /// Any genuine, live zone token (no zone or scope requirement).
    pub fn validate(&self, token: &str) -> Result<Verified<ZoneClaims>, TokenError> {
        Ok(self.verify(token)?)
    }

    /// A zone control plane's KDS credentials: a genuine, live token with scope `cp`
    /// issued for `zone` (the name the zone declares, e.g. its gRPC `client-id`).
    pub fn validate_for_zone(
        &self,
        token: &str,
        zone: &str,
    ) -> Result<Verified<ZoneClaims>, TokenError> {
        self.validate_for_zone_scope(token, zone, SCOPE_CP)
    }

    /// Like [`Self::validate_for_zone`] for another scope (`ingress`, `egress`).
    pub fn validate_for_zone_scope(
        &self,
        token: &str,
        zone: &str,
        scope: &str,
    ) -> Result<Verified<ZoneClaims>, TokenError> {
        let verified = self.verify(token)?;
        if verified.claims.zone != zone {
            return Err(PermissionDenied::ZoneMismatch {
                token_zone: verified.claims.zone,
                zone: zone.to_string(),
            }
            .into());
        }
        if !verified.claims.has_scope(scope) {
            return Err(PermissionDenied::MissingScope {
                kind: ZONE_TOKEN,
                required: scope.to_string(),
                scope: verified.claims.scope,
            }
            .into());
        }
        Ok(verified)
    }
}

#[cfg(test)]
#[path = "zone_tests.rs"]
mod tests;
