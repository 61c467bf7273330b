//! Dataplane tokens on a zone: issuing them (`POST /tokens/dataplane`, `weft-zone
//! token dataplane`) and validating them (`POST /bootstrap`, the xDS stream, through
//! [`crate::admission::Admission`]).
//!
//! The same keys sign the tokens of this zone's own ingresses and egresses: zone
//! tokens (Kuma's claims `Zone`, `Scope`) of scope `ingress` or `egress` for this
//! zone (`POST /tokens/zone`, `weft-zone token ingress|egress`). A zone token
//! lacks a dataplane token's `Type` and a dataplane token lacks a zone token's
//! `Zone`, so neither passes for the other; tokens of scope `cp` stay global's
//! (docs/decisions/0011-cross-zone.md).
//!
//! The signing keys are files in `<data-dir>/dataplane-token-keys/`
//! ([`weft_security::tokens::keydir`]), so the offline CLI and the running zone share
//! them; a key added by the CLI is picked up by the server when a token names it.

pub mod api;
pub mod cli;

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use weft_model::resource::Resource;
use weft_security::tokens::keydir::{KeyDir, KeyDirError, UnknownKeyReload};
use weft_security::tokens::{
    Clock, DataplaneClaims, DataplaneTokenBody, DataplaneTokenValidator, IssueError, Revocations,
    SecretNames, SigningKeys, SystemClock, Token, TokenError, Verified, ZoneClaims, ZoneTokenBody,
    ZoneTokenValidator, issue_dataplane_token, issue_zone_token,
};

/// The key directory under the data dir.
pub const KEY_DIR: &str = "dataplane-token-keys";

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error(transparent)]
    KeyDir(#[from] KeyDirError),
    #[error(transparent)]
    Issue(#[from] IssueError),
}

/// `<data_dir>/dataplane-token-keys`.
pub fn key_dir(data_dir: &Path) -> KeyDir {
    KeyDir::new(
        data_dir.join(KEY_DIR),
        SecretNames::new(
            "dataplane-token-signing-key-",
            "dataplane-token-signing-public-key-",
            "dataplane-token-revocations",
        ),
        "dataplane-token",
        "start `weft-zone run`",
    )
}

/// A token just issued, with what may be logged about it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Send it to the caller, never log it.
    pub token: Token,
    pub claims: DataplaneClaims,
    pub kid: u64,
}

impl Issued {
    /// Logs the issuance (mesh, name, tags, jti, kid, expiry; never the token).
    pub fn log(&self, via: &'static str) {
        tracing::info!(
            mesh = %self.claims.mesh,
            name = self.claims.name.as_deref().unwrap_or("*"),
            tags = ?self.claims.tags,
            jti = %self.claims.registered.jti,
            kid = self.kid,
            exp = self.claims.registered.exp,
            via,
            "issued a dataplane token"
        );
    }
}

/// Issues a token for `body` with the newest of `keys`.
pub fn issue_with(
    keys: &SigningKeys,
    clock: &dyn Clock,
    body: DataplaneTokenBody,
) -> Result<Issued, TokensError> {
    let req = body.into_request()?;
    let (token, claims) = issue_dataplane_token(keys, clock, &req)?;
    let kid = keys.newest().map_or(0, |k| k.serial());
    Ok(Issued { token, claims, kid })
}

/// A zone-proxy token just issued.
#[derive(Debug, Clone)]
pub struct IssuedZoneProxy {
    /// Send it to the caller, never log it.
    pub token: Token,
    pub claims: ZoneClaims,
    pub kid: u64,
}

impl IssuedZoneProxy {
    /// Logs the issuance (zone, scope, jti, kid, expiry; never the token).
    pub fn log(&self, via: &'static str) {
        tracing::info!(
            zone = %self.claims.zone,
            scope = ?self.claims.scope,
            jti = %self.claims.registered.jti,
            kid = self.kid,
            exp = self.claims.registered.exp,
            via,
            "issued a zone-proxy token"
        );
    }
}

/// Issues a token for this zone's (`zone`) ingresses or egresses with the
/// newest of `keys`. The body must name this zone and scopes `ingress` and/or
/// `egress` only.
pub fn issue_zone_proxy_with(
    keys: &SigningKeys,
    clock: &dyn Clock,
    zone: &str,
    body: ZoneTokenBody,
) -> Result<IssuedZoneProxy, TokensError> {
    use weft_security::tokens::zone::{SCOPE_EGRESS, SCOPE_INGRESS};
    if body.zone != zone {
        return Err(IssueError::Invalid {
            field: "zone",
            reason: format!(
                "this zone is {zone:?}: it issues tokens for its own ingresses and egresses only"
            ),
        }
        .into());
    }
    if body.scope.is_empty() {
        return Err(IssueError::Invalid {
            field: "scope",
            reason: "is required: [\"ingress\"] or [\"egress\"] (a zone's control plane \
                     gets its token of scope cp from global)"
                .into(),
        }
        .into());
    }
    if let Some(s) = body
        .scope
        .iter()
        .find(|s| *s != SCOPE_INGRESS && *s != SCOPE_EGRESS)
    {
        return Err(IssueError::Invalid {
            field: "scope",
            reason: format!(
                "{s:?} cannot be issued by a zone: only \"ingress\" and \"egress\" (tokens of \
                 scope cp come from global)"
            ),
        }
        .into());
    }
    let req = body.into_request(None)?;
    let (token, claims) = issue_zone_token(keys, clock, &req)?;
    let kid = keys.newest().map_or(0, |k| k.serial());
    Ok(IssuedZoneProxy { token, claims, kid })
}

/// What `weft-zone token ingress|egress` does: issues from the data dir's keys.
pub fn issue_zone_proxy_offline(
    data_dir: &Path,
    zone: &str,
    body: ZoneTokenBody,
) -> Result<IssuedZoneProxy, TokensError> {
    match issue_zone_proxy_with(&SigningKeys::new(), &SystemClock, zone, body.clone()) {
        Err(TokensError::Issue(IssueError::NoSigningKey { .. })) | Ok(_) => {}
        Err(e) => return Err(e),
    }
    let keys = key_dir(data_dir).load_existing()?;
    issue_zone_proxy_with(&keys, &SystemClock, zone, body)
}

/// What `weft-zone token dataplane` does: issues from the data dir's keys, without
/// the store, so it works while the zone runs. The request is checked before the
/// data dir, so a bad flag is reported as such.
pub fn issue_offline(data_dir: &Path, body: DataplaneTokenBody) -> Result<Issued, TokensError> {
    match issue_with(&SigningKeys::new(), &SystemClock, body.clone()) {
        Err(TokensError::Issue(IssueError::NoSigningKey { .. })) | Ok(_) => {}
        Err(e) => return Err(e),
    }
    let keys = key_dir(data_dir).load_existing()?;
    issue_with(&keys, &SystemClock, body)
}

/// The running zone's dataplane tokens: issue and validate.
#[derive(Debug)]
pub struct DataplaneTokens {
    key_dir: KeyDir,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Reloads when a token names an unknown kid (rate-limited).
    unknown_key_reload: UnknownKeyReload,
}

#[derive(Debug)]
struct State {
    keys: SigningKeys,
    validator: DataplaneTokenValidator,
    /// Zone-proxy tokens, under the same keys.
    zone_validator: ZoneTokenValidator,
}

impl DataplaneTokens {
    /// At zone start: loads the keys (creating key 1 on first start).
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, TokensError> {
        let key_dir = key_dir(data_dir);
        let keys = key_dir.load_or_create()?;
        let validator =
            DataplaneTokenValidator::new(keys.verifying_keys(), Revocations::new(), clock.clone());
        let zone_validator =
            ZoneTokenValidator::new(keys.verifying_keys(), Revocations::new(), clock.clone());
        tracing::info!(
            dir = %key_dir.path().display(),
            kids = ?keys.serials().collect::<Vec<_>>(),
            "dataplane tokens ready"
        );
        Ok(Arc::new(DataplaneTokens {
            key_dir,
            clock,
            state: RwLock::new(State {
                keys,
                validator,
                zone_validator,
            }),
            unknown_key_reload: UnknownKeyReload::default(),
        }))
    }

    /// Issues a token with the newest key on disk.
    pub fn issue(&self, body: DataplaneTokenBody) -> Result<Issued, TokensError> {
        self.reload_keys()?;
        let state = self.read();
        issue_with(&state.keys, self.clock.as_ref(), body)
    }

    /// Issues a token for an ingress or egress of zone `zone` (this one).
    pub fn issue_zone_proxy(
        &self,
        zone: &str,
        body: ZoneTokenBody,
    ) -> Result<IssuedZoneProxy, TokensError> {
        self.reload_keys()?;
        let state = self.read();
        issue_zone_proxy_with(&state.keys, self.clock.as_ref(), zone, body)
    }

    /// A genuine, live zone token of `scope` for zone `zone`, signed by this zone.
    pub fn validate_zone_proxy(
        &self,
        presented: &str,
        zone: &str,
        scope: &str,
    ) -> Result<Verified<ZoneClaims>, TokenError> {
        self.unknown_key_reload.check(
            "dataplane-token",
            || {
                self.read()
                    .zone_validator
                    .validate_for_zone_scope(presented, zone, scope)
            },
            || self.reload_keys(),
        )
    }

    /// A genuine, live dataplane token admitting `dataplane`.
    pub fn validate_for_dataplane(
        &self,
        presented: &str,
        dataplane: &Resource,
    ) -> Result<Verified<DataplaneClaims>, TokenError> {
        self.unknown_key_reload.check(
            "dataplane-token",
            || {
                self.read()
                    .validator
                    .validate_for_dataplane(presented, dataplane)
            },
            || self.reload_keys(),
        )
    }

    /// Reads the key directory again and swaps in what is there.
    pub fn reload_keys(&self) -> Result<(), TokensError> {
        let keys = self.key_dir.load()?;
        if keys.is_empty() {
            return Err(self.key_dir.no_keys().into());
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.keys != keys {
            tracing::info!(kids = ?keys.serials().collect::<Vec<_>>(), "reloaded the dataplane-token signing keys");
            state.validator.set_keys(keys.verifying_keys());
            state.zone_validator.set_keys(keys.verifying_keys());
            state.keys = keys;
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}
