//! Zone tokens on global: issuing them (`POST /tokens/zone`, `weft-global token
//! zone`), validating them (the KDS server), and revoking them.
//!
//! - [`keydir`]: the signing keys, as files in `<data-dir>/zone-token-keys/` that the
//!   server and the offline CLI share (decision 0004).
//! - [`ZoneTokens`]: the running server's handle: issue, validate (reloading the key
//!   directory, rate-limited, when a token names a key it does not know, so a key
//!   rotated by the CLI works without a restart), and the revocation set.
//! - [`revocations`]: the revoked `jti`s live in the store as the GlobalSecret
//!   `zone-token-revocations` (Kuma's comma-separated format); a task follows the
//!   store's watch and keeps the validator in step, and
//!   [`ZoneTokens::subscribe_revocations`] tells the KDS server at once.
//! - [`api`]: the REST routes. [`cli`]: `weft-global token ...`.

pub mod api;
pub mod cli;
pub mod keydir;
pub mod revocations;

pub use keydir::KeyDir;
pub use revocations::revocations_key;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::watch;
use weft_security::pki::Fingerprint;
use weft_security::tokens::jwt::rfc3339;
use weft_security::tokens::keydir::{KeyDirError, UnknownKeyReload};
use weft_security::tokens::{
    Clock, IssueError, Revocations, SigningKeys, SystemClock, Token, TokenError, Unauthenticated,
    Verified, ZoneClaims, ZoneTokenBody, ZoneTokenValidator, issue_zone_token,
};

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error(transparent)]
    KeyDir(#[from] KeyDirError),
    #[error(
        "{} is missing: start `weft-global run` on this data dir once (it records the KDS CA \
         fingerprint that tokens carry)",
        path.display()
    )]
    NoFingerprint { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    BadFingerprint { path: PathBuf, reason: String },
    #[error(transparent)]
    Issue(#[from] IssueError),
}

/// A token just issued, with what may be logged about it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The token itself: send it to the caller, never log it.
    pub token: Token,
    pub claims: ZoneClaims,
    /// The serial of the key that signed it.
    pub kid: u64,
}

impl Issued {
    /// Logs the issuance (zone, jti, kid, scope, expiry; never the token).
    pub fn log(&self, via: &'static str) {
        tracing::info!(
            zone = %self.claims.zone,
            jti = %self.claims.registered.jti,
            kid = self.kid,
            scope = %self.claims.scope.join(","),
            expires = %rfc3339(self.claims.registered.exp),
            via,
            "issued a zone token"
        );
    }
}

/// Issues a zone token for `body` with the newest of `keys`.
pub fn issue_with(
    keys: &SigningKeys,
    kds_ca_fingerprint: Option<Fingerprint>,
    clock: &dyn Clock,
    body: ZoneTokenBody,
) -> Result<Issued, TokensError> {
    let req = body.into_request(kds_ca_fingerprint)?;
    let (token, claims) = issue_zone_token(keys, clock, &req)?;
    let kid = keys.newest().map_or(0, |k| k.serial());
    Ok(Issued { token, claims, kid })
}

/// What `weft-global token zone` does: issues a token from the keys and the recorded
/// KDS CA fingerprint in `data_dir`, without the store, so it works while the server
/// runs.
pub fn issue_offline(data_dir: &Path, body: ZoneTokenBody) -> Result<Issued, TokensError> {
    check_body(&body)?;
    let dir = KeyDir::in_data_dir(data_dir);
    let keys = dir.load_existing()?;
    let fingerprint = dir.read_fingerprint()?;
    issue_with(&keys, fingerprint, &SystemClock, body)
}

/// Checks a request without signing anything, so a bad zone, scope or validity is
/// reported before any problem with the data dir: issuing with no key validates the
/// request completely and then stops for want of a key.
fn check_body(body: &ZoneTokenBody) -> Result<(), TokensError> {
    match issue_with(&SigningKeys::new(), None, &SystemClock, body.clone()) {
        Err(TokensError::Issue(IssueError::NoSigningKey { .. })) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What `weft-global token rotate-signing-key` does: adds a key; returns its serial.
pub fn rotate_offline(data_dir: &Path) -> Result<u64, TokensError> {
    KeyDir::in_data_dir(data_dir).rotate()
}

/// The running server's zone tokens. Cheap to share (`Arc`); every method is sync and
/// fast (the rare key reload reads a small directory).
#[derive(Debug)]
pub struct ZoneTokens {
    key_dir: KeyDir,
    kds_ca_fingerprint: Option<Fingerprint>,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Reloads when a token names an unknown kid (rate-limited).
    unknown_key_reload: UnknownKeyReload,
    revoked: watch::Sender<Arc<Revocations>>,
}

#[derive(Debug)]
struct State {
    keys: SigningKeys,
    validator: ZoneTokenValidator,
    /// The store revision the revocation set was read at.
    revocations_revision: u64,
}

impl ZoneTokens {
    /// At server start: loads the keys in `<data_dir>/zone-token-keys` (creating key 1
    /// on first start) and records `kds_ca_fingerprint` there for the CLI. Revocations
    /// start empty; [`revocations::load_into`] loads them before the server serves.
    pub fn open(
        data_dir: &Path,
        kds_ca_fingerprint: Option<Fingerprint>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, TokensError> {
        let key_dir = KeyDir::in_data_dir(data_dir);
        key_dir.write_fingerprint(kds_ca_fingerprint)?;
        let keys = key_dir.load_or_create()?;
        let validator =
            ZoneTokenValidator::new(keys.verifying_keys(), Revocations::new(), clock.clone());
        let (revoked, _) = watch::channel(Arc::new(Revocations::new()));
        tracing::info!(
            dir = %key_dir.path().display(),
            kids = ?keys.serials().collect::<Vec<_>>(),
            kds_ca_fingerprint = %kds_ca_fingerprint.map_or("none".into(), |f| f.to_string()),
            "zone tokens ready"
        );
        Ok(Arc::new(ZoneTokens {
            key_dir,
            kds_ca_fingerprint,
            clock,
            state: RwLock::new(State {
                keys,
                validator,
                revocations_revision: 0,
            }),
            unknown_key_reload: UnknownKeyReload::default(),
            revoked,
        }))
    }

    /// The fingerprint every issued token carries.
    pub fn kds_ca_fingerprint(&self) -> Option<Fingerprint> {
        self.kds_ca_fingerprint
    }

    pub fn key_dir(&self) -> &KeyDir {
        &self.key_dir
    }

    /// A snapshot of the current validator (keys and revocations as of now).
    pub fn validator(&self) -> ZoneTokenValidator {
        self.read().validator.clone()
    }

    /// Any genuine, live zone token.
    pub fn validate(&self, presented: &str) -> Result<Verified<ZoneClaims>, TokenError> {
        self.with_reload(|v| v.validate(presented))
    }

    /// What the KDS server checks on every RPC: a genuine, live token with scope `cp`
    /// for `zone`. `UNAUTHENTICATED` / `PERMISSION_DENIED` as [`TokenError`] says.
    pub fn validate_for_zone(
        &self,
        presented: &str,
        zone: &str,
    ) -> Result<Verified<ZoneClaims>, TokenError> {
        self.with_reload(|v| v.validate_for_zone(presented, zone))
    }

    /// Like [`Self::validate_for_zone`] for another scope.
    pub fn validate_for_zone_scope(
        &self,
        presented: &str,
        zone: &str,
        scope: &str,
    ) -> Result<Verified<ZoneClaims>, TokenError> {
        self.with_reload(|v| v.validate_for_zone_scope(presented, zone, scope))
    }

    /// Checks again the claims a live stream was accepted with (revoked, expired or
    /// key removed since?). Call it whenever [`Self::subscribe_revocations`] fires.
    pub fn recheck(&self, verified: &Verified<ZoneClaims>) -> Result<(), Unauthenticated> {
        self.read().validator.recheck(verified)
    }

    /// The current revoked `jti`s; the receiver wakes on every change (a revocation
    /// through the API, or any write of the `zone-token-revocations` GlobalSecret).
    pub fn subscribe_revocations(&self) -> watch::Receiver<Arc<Revocations>> {
        self.revoked.subscribe()
    }

    pub fn revocations(&self) -> Arc<Revocations> {
        self.revoked.borrow().clone()
    }

    /// Replaces the revocation set with the one the store held at `revision` (the
    /// store revision that wrote it); an older revision than the last applied is
    /// ignored, so a slow writer cannot bring back a smaller set. The validator is
    /// updated first, then subscribers are told.
    pub fn apply_revocations(&self, revision: u64, revocations: Revocations) {
        let mut state = self.write();
        if revision < state.revocations_revision {
            return;
        }
        state.revocations_revision = revision;
        if state.validator.revocations() == &revocations {
            return;
        }
        state.validator.set_revocations(revocations.clone());
        self.revoked.send_replace(Arc::new(revocations));
    }

    /// Issues a token with the newest key on disk (reloaded first, so a key rotated by
    /// the CLI is used at once).
    pub fn issue(&self, body: ZoneTokenBody) -> Result<Issued, TokensError> {
        self.reload_keys()?;
        let state = self.read();
        issue_with(
            &state.keys,
            self.kds_ca_fingerprint,
            self.clock.as_ref(),
            body,
        )
    }

    /// Reads the key directory again and swaps in what is there (added keys validate
    /// from now on, removed ones stop). A directory that fails to load changes nothing.
    pub fn reload_keys(&self) -> Result<(), TokensError> {
        let keys = self.key_dir.load()?;
        if keys.is_empty() {
            return Err(self.key_dir.no_keys().into());
        }
        let mut state = self.write();
        if state.keys != keys {
            tracing::info!(
                kids = ?keys.serials().collect::<Vec<_>>(),
                "reloaded the zone-token signing keys"
            );
            state.validator.set_keys(keys.verifying_keys());
            state.keys = keys;
        }
        Ok(())
    }

    /// Runs `check`; when it fails only because the token's key is unknown, reloads the
    /// key directory (rate-limited, see [`UnknownKeyReload`]) and runs it again.
    fn with_reload<T>(
        &self,
        check: impl Fn(&ZoneTokenValidator) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        self.unknown_key_reload.check(
            "zone-token",
            || check(&self.read().validator),
            || self.reload_keys(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
