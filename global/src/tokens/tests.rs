#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::time::Duration;
use weft_runtime::health::{Health, Reporter, State};
use weft_security::tokens::{PermissionDenied, SCOPE_CP};
use weft_store::fault::FaultyStore;
use weft_store::{MemoryStore, ResourceStore};

fn body(zone: &str) -> ZoneTokenBody {
    ZoneTokenBody {
        zone: zone.into(),
        scope: Vec::new(),
        valid_for: "1h".into(),
    }
}

fn open(dir: &Path) -> Arc<ZoneTokens> {
    ZoneTokens::open(dir, Some(Fingerprint::of_der(b"ca")), Arc::new(SystemClock)).unwrap()
}

/// Waits (up to 5 s) until `tokens` refuses `token` as revoked.
async fn until_revoked(tokens: &ZoneTokens, token: &str) {
    let mut rx = tokens.subscribe_revocations();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Err(TokenError::Unauthenticated(Unauthenticated::Revoked { .. })) =
            tokens.validate(token)
        {
            return;
        }
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("token not revoked within 5 s")
            .unwrap();
    }
}

// An issued token validates for its zone with scope cp and carries the fingerprint;
// another zone gets PERMISSION_DENIED.
#[test]
fn issue_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = open(dir.path());
    let issued = tokens.issue(body("east")).unwrap();
    assert_eq!(issued.kid, 1);
    let v = tokens
        .validate_for_zone(issued.token.expose(), "east")
        .unwrap();
    assert_eq!(v.claims.scope, vec![SCOPE_CP.to_string()]);
    assert_eq!(v.claims.kds_ca_fingerprint, tokens.kds_ca_fingerprint());
    let err = tokens
        .validate_for_zone(issued.token.expose(), "west")
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::PermissionDenied(PermissionDenied::ZoneMismatch { .. })
        ),
        "{err}"
    );
}

// The offline path (what the CLI does) shares keys and fingerprint with the server,
// and a key rotated offline is picked up by the running validator without restart.
#[test]
fn offline_tokens_and_rotation_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = open(dir.path());
    let first = issue_offline(dir.path(), body("east")).unwrap();
    assert_eq!(first.kid, 1);
    assert_eq!(first.claims.kds_ca_fingerprint, tokens.kds_ca_fingerprint());
    tokens
        .validate_for_zone(first.token.expose(), "east")
        .unwrap();

    assert_eq!(rotate_offline(dir.path()).unwrap(), 2);
    let second = issue_offline(dir.path(), body("east")).unwrap();
    assert_eq!(second.kid, 2);
    let v = tokens
        .validate_for_zone(second.token.expose(), "east")
        .unwrap();
    assert_eq!(v.kid, 2);
    tokens
        .validate_for_zone(first.token.expose(), "east")
        .unwrap();
    // The server now signs with the new key too.
    assert_eq!(tokens.issue(body("east")).unwrap().kid, 2);
}

// Reloads for unknown kids are rate-limited: right after one, another unknown kid is
// refused without reading the directory; an explicit reload still works.
#[test]
fn unknown_kid_reload_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = open(dir.path());
    rotate_offline(dir.path()).unwrap();
    let t2 = issue_offline(dir.path(), body("east")).unwrap();
    tokens.validate(t2.token.expose()).unwrap();
    rotate_offline(dir.path()).unwrap();
    let t3 = issue_offline(dir.path(), body("east")).unwrap();
    let err = tokens.validate(t3.token.expose()).unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Unauthenticated(Unauthenticated::UnknownKey { kid: 3, .. })
        ),
        "{err}"
    );
    tokens.reload_keys().unwrap();
    tokens.validate(t3.token.expose()).unwrap();
}

// A revocation set from an older store revision never replaces a newer one;
// subscribers see every applied change.
#[test]
fn revocations_ordered_by_revision() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = open(dir.path());
    let rx = tokens.subscribe_revocations();
    let newer: Revocations = ["a", "b"].into_iter().collect();
    tokens.apply_revocations(5, newer.clone());
    assert!(rx.has_changed().unwrap());
    tokens.apply_revocations(4, ["a"].into_iter().collect());
    assert_eq!(*tokens.revocations(), newer);
    assert_eq!(tokens.validator().revocations(), &newer);
}

// Revoking through the store helper, or writing the GlobalSecret directly, reaches
// the validator via the store watch; a later start loads the list before serving.
#[tokio::test]
async fn store_revocations_followed() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = open(dir.path());
    let store: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    let shutdown = weft_runtime::shutdown::CancellationToken::new();
    revocations::load_into(store.as_ref(), &tokens)
        .await
        .unwrap();
    let task = tokio::spawn(revocations::follow(
        store.clone(),
        tokens.clone(),
        Reporter::detached("revocations"),
        shutdown.clone(),
    ));

    let a = tokens.issue(body("east")).unwrap();
    let r = revocations::revoke(store.as_ref(), &a.claims.registered.jti)
        .await
        .unwrap();
    assert!(r.newly);
    until_revoked(&tokens, a.token.expose()).await;
    let again = revocations::revoke(store.as_ref(), &a.claims.registered.jti)
        .await
        .unwrap();
    assert!(!again.newly);

    // A plain GlobalSecret write (what `PUT /global-secrets/...` does).
    let b = tokens.issue(body("east")).unwrap();
    let list = format!("{},{}", a.claims.registered.jti, b.claims.registered.jti);
    let secret = weft_model::resource::Resource::new(
        &revocations_key().name,
        None,
        weft_model::resource::Spec::GlobalSecret(
            weft_model::resource::secret::SecretSpec::from_bytes(list.as_bytes()),
        ),
    );
    weft_store::put(store.as_ref(), secret, None).await.unwrap();
    until_revoked(&tokens, b.token.expose()).await;

    shutdown.cancel();
    task.await.unwrap();

    let restarted = open(dir.path());
    revocations::load_into(store.as_ref(), &restarted)
        .await
        .unwrap();
    assert!(matches!(
        restarted.validate(b.token.expose()),
        Err(TokenError::Unauthenticated(Unauthenticated::Revoked { .. }))
    ));
}

// While the store cannot be read the last list stays in force and the follower
// reports itself down; once the store answers, revocations written meanwhile apply.
#[tokio::test]
async fn revocations_survive_a_broken_store() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = open(dir.path());
    let inner: Arc<dyn ResourceStore> = Arc::new(MemoryStore::new());
    let faulty = Arc::new(FaultyStore::new(inner.clone()));
    let store: Arc<dyn ResourceStore> = faulty.clone();
    let health = Health::default();
    let reporter = health.reporter("revocations", State::Starting);
    let shutdown = weft_runtime::shutdown::CancellationToken::new();
    let task = tokio::spawn(revocations::follow(
        store.clone(),
        tokens.clone(),
        reporter,
        shutdown.clone(),
    ));
    let a = tokens.issue(body("east")).unwrap();
    revocations::revoke(store.as_ref(), &a.claims.registered.jti)
        .await
        .unwrap();
    until_revoked(&tokens, a.token.expose()).await;

    faulty.set_failing(true);
    faulty.break_watches();
    wait_until(|| {
        health
            .get("revocations")
            .is_some_and(|r| r.state == State::Down)
    })
    .await;
    assert!(
        health
            .blocker()
            .is_some_and(|b| b.contains("injected fault")),
        "{:?}",
        health.blocker()
    );
    // Still revoked while the store is down.
    assert!(tokens.validate(a.token.expose()).is_err());
    // Revoked meanwhile by another writer (the revoke reads the list first).
    let b = tokens.issue(body("east")).unwrap();
    revocations::revoke(inner.as_ref(), &b.claims.registered.jti)
        .await
        .unwrap();
    assert!(tokens.validate(b.token.expose()).is_ok());

    faulty.set_failing(false);
    until_revoked(&tokens, b.token.expose()).await;
    wait_until(|| {
        health
            .get("revocations")
            .is_some_and(|r| r.state == State::Ready)
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
}

/// Polls `cond` every 10 ms for up to 10 s.
async fn wait_until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
