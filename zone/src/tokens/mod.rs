//! Dataplane tokens on a zone: issuing them (`POST /tokens/dataplane`, `weft-zone
//! token dataplane`) and validating them (`POST /bootstrap`, the xDS stream, through
//! [`crate::admission::Admission`]).
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
    SecretNames, SigningKeys, SystemClock, Token, TokenError, Verified, issue_dataplane_token,
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
}

impl DataplaneTokens {
    /// At zone start: loads the keys (creating key 1 on first start).
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Arc<Self>, TokensError> {
        let key_dir = key_dir(data_dir);
        let keys = key_dir.load_or_create()?;
        let validator =
            DataplaneTokenValidator::new(keys.verifying_keys(), Revocations::new(), clock.clone());
        tracing::info!(
            dir = %key_dir.path().display(),
            kids = ?keys.serials().collect::<Vec<_>>(),
            "dataplane tokens ready"
        );
        Ok(Arc::new(DataplaneTokens {
            key_dir,
            clock,
            state: RwLock::new(State { keys, validator }),
            unknown_key_reload: UnknownKeyReload::default(),
        }))
    }

    /// Issues a token with the newest key on disk.
    pub fn issue(&self, body: DataplaneTokenBody) -> Result<Issued, TokensError> {
        self.reload_keys()?;
        let state = self.read();
        issue_with(&state.keys, self.clock.as_ref(), body)
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
            state.keys = keys;
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}
