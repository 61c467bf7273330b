//! Why a token was refused, split by the status it maps to at the gRPC / HTTP boundary:
//! [`Unauthenticated`] (the token does not prove anything) and [`PermissionDenied`]
//! (it proves an identity that may not do this). No message ever contains the token.

use super::TokenKind;

/// A token failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Map to gRPC `UNAUTHENTICATED` / HTTP 401.
    #[error(transparent)]
    Unauthenticated(#[from] Unauthenticated),
    /// Map to gRPC `PERMISSION_DENIED` / HTTP 403.
    #[error(transparent)]
    PermissionDenied(#[from] PermissionDenied),
}

/// The token does not authenticate anybody.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("no {} was presented; {}", .kind.name, .kind.present_hint)]
    Missing { kind: TokenKind },
    #[error("the {} is malformed: {reason}; {}", .kind.name, .kind.reissue_hint)]
    Malformed {
        kind: TokenKind,
        reason: &'static str,
    },
    #[error(
        "the {}'s signature does not verify with signing key {kid}: it was not issued by this \
         control plane or it was altered; {}",
        .kind.name, .kind.reissue_hint
    )]
    BadSignature { kind: TokenKind, kid: u64 },
    #[error(
        "there is no {} signing key with kid {kid}; if the signing key was rotated and \
         removed, {}",
        .kind.name, .kind.reissue_hint
    )]
    UnknownKey { kind: TokenKind, kid: u64 },
    #[error("the {} (id {jti}) expired at {expired_at}; {}", .kind.name, .kind.reissue_hint)]
    Expired {
        kind: TokenKind,
        jti: String,
        expired_at: String,
    },
    #[error(
        "the {} (id {jti}) is not valid before {not_before}; check that the clocks of the \
         issuing and the validating hosts agree",
        .kind.name
    )]
    NotYetValid {
        kind: TokenKind,
        jti: String,
        not_before: String,
    },
    #[error("the {} (id {jti}) is revoked; {}", .kind.name, .kind.reissue_hint)]
    Revoked { kind: TokenKind, jti: String },
}

/// The token is genuine but does not allow what is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionDenied {
    #[error(
        "the zone token was issued for zone {token_zone:?} but is presented by zone {zone:?}; \
         give zone {zone:?} a token generated with `weft-global token zone --zone {zone}`"
    )]
    ZoneMismatch { token_zone: String, zone: String },
    #[error(
        "the {}'s scope [{}] does not include {required:?}; generate a token with scope \
         {required:?}",
        .kind.name, .scope.join(", ")
    )]
    MissingScope {
        kind: TokenKind,
        required: String,
        scope: Vec<String>,
    },
    #[error(
        "the dataplane token was issued for mesh {token_mesh:?} but the Dataplane is in mesh \
         {mesh:?}; generate a token with `weft-zone token dataplane --mesh {mesh}`"
    )]
    MeshMismatch { token_mesh: String, mesh: String },
    #[error(
        "the dataplane token was issued for the Dataplane named {token_name:?} but this one is \
         named {name:?}; generate a token with `--name {name}` (or without --name)"
    )]
    NameMismatch { token_name: String, name: String },
    #[error(
        "the dataplane token allows tag {tag:?} only with the values [{}], but the Dataplane \
         has [{}]; generate a token with `--tag {tag}=<value>` for each of its values",
        .allowed.join(", "), .actual.join(", ")
    )]
    TagMismatch {
        tag: String,
        allowed: Vec<String>,
        actual: Vec<String>,
    },
    #[error(
        "the dataplane token was issued for workload {token_workload:?} but the Dataplane's \
         kuma.io/workload label is {workload:?}; generate a token with `--workload <its workload>`"
    )]
    WorkloadMismatch {
        token_workload: String,
        workload: Option<String>,
    },
}

/// A token could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    #[error(
        "there is no {} signing key yet; it is created when the control plane first starts",
        .kind.name
    )]
    NoSigningKey { kind: TokenKind },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("could not sign the {}: {reason}", .kind.name)]
    Sign { kind: TokenKind, reason: String },
}

impl IssueError {
    /// The request field refused and why, when the request itself was invalid.
    pub fn invalid_field(&self) -> Option<(&'static str, &str)> {
        match self {
            IssueError::Invalid { field, reason } => Some((field, reason)),
            _ => None,
        }
    }
}

/// A signing or verifying key could not be created, decoded or encoded. Never contains
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate an Ed25519 key")]
    Generate,
    #[error("{what}: {reason}")]
    Decode { what: String, reason: &'static str },
}
