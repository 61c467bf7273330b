//! Signed tokens: zone tokens and dataplane tokens.
//!
//! A token is a JWT signed with Ed25519 (`alg: EdDSA`), its header's `kid` the serial of
//! the signing key, its claims the registered `jti` (random), `iat`, `nbf`, `exp` plus
//! the kind's own claims. The pieces:
//!
//! - [`SigningKeys`] (private, on the issuer) / [`VerifyingKeys`] (public, on every
//!   validator): keys by serial; [`SigningKeys::rotate`] adds serial + 1, new tokens use
//!   the newest, older tokens keep validating until their key is removed or they expire.
//! - [`Revocations`]: revoked `jti`s.
//! - [`persist`]: the `GlobalSecret` names and (de)serialization of the above.
//! - [`jwt`]: the kind-independent engine ([`jwt::sign`], [`Validator`], the
//!   [`jwt::TokenClaims`] trait a new kind implements).
//! - [`zone`]: zone tokens ([`issue_zone_token`], [`ZoneTokenValidator`]).
//! - [`dataplane`]: dataplane tokens ([`issue_dataplane_token`],
//!   [`DataplaneTokenValidator`]), checked against the Dataplane a proxy presents.
//! - [`keydir`]: signing keys as files in a data-dir directory (global's zone-token
//!   keys, a zone's dataplane-token keys), shared by a server and its offline CLI.
//!
//! Errors: [`TokenError`] separates [`Unauthenticated`] (gRPC `UNAUTHENTICATED`) from
//! [`PermissionDenied`] (`PERMISSION_DENIED`). Tokens and private keys never appear in
//! `Debug`, `Display` or error messages.

mod clock;
pub mod dataplane;
mod error;
pub mod jwt;
pub mod keydir;
mod keys;
pub mod persist;
mod revocation;
pub mod zone;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dataplane::{
    DATAPLANE_TOKEN, DataplaneClaims, DataplaneTokenBody, DataplaneTokenRequest,
    DataplaneTokenValidator, issue_dataplane_token,
};
pub use error::{IssueError, KeyError, PermissionDenied, TokenError, Unauthenticated};
pub use jwt::{
    CLOCK_SKEW, DEFAULT_VALID_FOR, Registered, Token, Validator, Verified, parse_valid_for,
    strip_bearer,
};
pub use keys::{SigningKey, SigningKeys, VerifyingKey, VerifyingKeys};
pub use persist::SecretNames;
pub use revocation::Revocations;
pub use zone::{
    SCOPE_CP, SCOPE_EGRESS, SCOPE_INGRESS, ZONE_TOKEN, ZoneClaims, ZoneTokenBody, ZoneTokenRequest,
    ZoneTokenValidator, issue_zone_token,
};

/// What kind of token an error is about, with the hints its messages give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKind {
    /// E.g. "zone token".
    pub name: &'static str,
    /// How the token is supposed to be presented.
    pub present_hint: &'static str,
    /// How to get a new one.
    pub reissue_hint: &'static str,
}
