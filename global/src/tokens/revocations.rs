//! Revoked zone-token ids in the store: the GlobalSecret `zone-token-revocations`,
//! Kuma's comma-separated list. The store is the one source of truth: the API's
//! revoke writes it, an operator may PUT it like any GlobalSecret, and a task follows
//! the store's watch and applies every version of it to [`ZoneTokens`] (the store
//! revision orders them, so an older list never replaces a newer one).
//! A store that fails keeps the last list in force (dropping it would un-revoke
//! every token) and is reported on `/ready`.

use super::ZoneTokens;
use std::sync::Arc;
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_runtime::health::Reporter;
use weft_runtime::shutdown::CancellationToken;
use weft_security::tokens::{KeyError, Revocations, SecretNames};
use weft_store::reflector::{Event, Reflector};
use weft_store::{ResourceStore, StoreError};

/// How often a read-modify-write of the list retries when others write it meanwhile.
const REVOKE_ATTEMPTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the GlobalSecret {name} cannot be read: {source}; fix it with a PUT of \
         /global-secrets/{name} (data: base64 of the comma-separated revoked ids)"
    )]
    Corrupt {
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("the revocation list kept changing under concurrent writes; try again")]
    Contended,
}

/// The store key of the zone-token revocation list.
pub fn revocations_key() -> ResourceKey {
    ResourceKey::new(
        ResourceType::GlobalSecret,
        None,
        SecretNames::zone().revocations(),
    )
}

/// The set a stored list holds (absent: none).
fn decode(resource: Option<&Resource>) -> Result<Revocations, RevocationError> {
    match resource.map(|r| &r.spec) {
        None => Ok(Revocations::new()),
        Some(Spec::GlobalSecret(secret)) => {
            Revocations::from_secret(secret).map_err(|source| RevocationError::Corrupt {
                name: revocations_key().name,
                source,
            })
        }
        Some(_) => Err(RevocationError::Store(StoreError::Corrupt(
            "the revocation list is not a GlobalSecret".into(),
        ))),
    }
}

/// The stored set and the store revision it is current at.
pub async fn load(store: &dyn ResourceStore) -> Result<(u64, Revocations), RevocationError> {
    let revision = store.revision().await?;
    let stored = store.get(&revocations_key()).await?;
    Ok((revision, decode(stored.as_ref())?))
}

/// The outcome of [`revoke`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The store revision of the list that holds the id.
    pub revision: u64,
    /// `false` when the id was already revoked.
    pub newly: bool,
    pub set: Revocations,
}

/// Adds `jti` to the stored list (read, add, write with the version read; retried
/// when another writer got in between). Durable when it returns.
pub async fn revoke(store: &dyn ResourceStore, jti: &str) -> Result<Revoked, RevocationError> {
    let key = revocations_key();
    for _ in 0..REVOKE_ATTEMPTS {
        let current = store.get(&key).await?;
        let mut set = decode(current.as_ref())?;
        let version = current.as_ref().map(|r| r.meta.version);
        if !set.revoke(jti) {
            return Ok(Revoked {
                revision: version.unwrap_or(0),
                newly: false,
                set,
            });
        }
        let resource = Resource::new(&key.name, None, Spec::GlobalSecret(set.to_secret()));
        let written = match version {
            Some(v) => store.update(resource, Some(v)).await,
            None => store.create(resource).await,
        };
        match written {
            Ok(stored) => {
                return Ok(Revoked {
                    revision: stored.meta.version,
                    newly: true,
                    set,
                });
            }
            Err(
                StoreError::Conflict { .. }
                | StoreError::AlreadyExists(_)
                | StoreError::NotFound(_),
            ) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RevocationError::Contended)
}

/// Loads the stored list into `tokens`: before the server serves, so no revoked
/// token is ever accepted after a restart.
pub async fn load_into(
    store: &dyn ResourceStore,
    tokens: &ZoneTokens,
) -> Result<(), RevocationError> {
    let (revision, set) = load(store).await?;
    if !set.is_empty() {
        tracing::info!(revoked = set.len(), "loaded the zone-token revocation list");
    }
    tokens.apply_revocations(revision, set);
    Ok(())
}

/// Applies every version of the list to `tokens` until `shutdown`, through a store
/// [`Reflector`]: a broken store is reported (`reporter` down, the last list kept)
/// and read again once it answers. A run that ends early can simply run again.
pub async fn follow(
    store: Arc<dyn ResourceStore>,
    tokens: Arc<ZoneTokens>,
    reporter: Reporter,
    shutdown: CancellationToken,
) {
    let key = revocations_key();
    let mut reflector = Reflector::new(store, vec![ResourceType::GlobalSecret]);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = reflector.next() => e,
        };
        match event {
            Event::Init {
                revision,
                resources,
            } => {
                match resources.iter().find(|r| r.key() == key) {
                    Some(stored) => apply(&tokens, revision, Some(stored)),
                    // No list, and none was in force: nothing to say.
                    None if tokens.revocations().is_empty() => {
                        tokens.apply_revocations(revision, Revocations::new())
                    }
                    None => apply(&tokens, revision, None),
                }
                reporter.ready();
            }
            Event::Changes(changes) => {
                for change in changes.iter().filter(|c| c.key == key) {
                    apply(&tokens, change.revision, change.resource.as_ref());
                }
            }
            Event::Broken { error, retry_in } => {
                tracing::warn!(%error, ?retry_in, "cannot read the store for zone-token revocations; the last list stays in force");
                reporter.down(format!(
                    "cannot read the zone-token revocation list: {error}; retrying in {retry_in:?}"
                ));
            }
        }
    }
}

fn apply(tokens: &ZoneTokens, revision: u64, resource: Option<&Resource>) {
    match decode(resource) {
        Ok(set) => {
            if resource.is_none() {
                tracing::warn!(
                    "the zone-token revocation list was deleted: every zone token revoked so far \
                     is accepted again"
                );
            } else {
                tracing::info!(
                    revoked = set.len(),
                    revision,
                    "zone-token revocation list changed"
                );
            }
            tokens.apply_revocations(revision, set);
        }
        // Keep the last good list: dropping it would un-revoke every token.
        Err(e) => tracing::error!(error = %e, "ignoring an unreadable zone-token revocation list"),
    }
}
