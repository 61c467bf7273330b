//! The lifecycle of zones, as in Kuma:
//!
//! - A Zone with `enabled: false` is refused: its KDS streams end at once with
//!   `FAILED_PRECONDITION` and new ones are refused until it is enabled again.
//! - A connected zone cannot be deleted (the API answers 400; shut the zone
//!   down first).
//! - When a Zone is deleted — through the API, or by [`cleanup`] once it has
//!   been offline longer than `--zone-cleanup-after` — everything it reported
//!   goes with it (Dataplanes and their insights, ingresses, egresses,
//!   MeshTrusts, MeshServices, its own policies), as does its ZoneInsight, so
//!   other zones stop sending traffic to its ingresses.

use crate::insights::ZoneInsights;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use weft_model::resource::{ResourceKey, ResourceType, Spec};
use weft_runtime::health::Reporter;
use weft_runtime::shutdown::CancellationToken;
use weft_store::reflector::{Event, Reflector};
use weft_store::{Page, ResourceStore, StoreError, WriteOp};
use weft_sync::kds::zone_names;

/// The zones refused because their Zone says `enabled: false`; cheap to clone.
#[derive(Clone)]
pub struct Disabled {
    tx: Arc<watch::Sender<BTreeSet<String>>>,
}

impl Default for Disabled {
    fn default() -> Self {
        Disabled {
            tx: Arc::new(watch::channel(BTreeSet::new()).0),
        }
    }
}

impl Disabled {
    pub fn contains(&self, zone: &str) -> bool {
        self.tx.borrow().contains(zone)
    }

    /// Resolves once `zone` is disabled (at once if it is).
    pub async fn until_disabled(&self, zone: &str) {
        let mut rx = self.tx.subscribe();
        if rx.wait_for(|set| set.contains(zone)).await.is_err() {
            // The follower is gone (shutdown): never resolve.
            std::future::pending::<()>().await;
        }
    }

    fn set(&self, zone: &str, disabled: bool) {
        self.tx.send_if_modified(|set| {
            if disabled {
                set.insert(zone.to_string())
            } else {
                set.remove(zone)
            }
        });
    }
}

/// The message a refused zone gets (and its operator reads in `/ready`).
pub fn disabled_message(zone: &str) -> String {
    format!(
        "zone {zone:?} is disabled on global (its Zone has enabled: false); \
         set enabled: true on global to let it connect"
    )
}

/// Follows the Zone resources: keeps [`Disabled`] current and, when a Zone is
/// deleted, deletes what that zone reported.
pub async fn follow(
    store: Arc<dyn ResourceStore>,
    disabled: Disabled,
    reporter: Reporter,
    shutdown: CancellationToken,
) {
    let mut reflector = Reflector::new(store.clone(), vec![ResourceType::Zone]);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = reflector.next() => e,
        };
        match event {
            Event::Init { resources, .. } => {
                let now: BTreeSet<String> = resources
                    .iter()
                    .filter(|r| matches!(&r.spec, Spec::Zone(z) if !z.is_enabled()))
                    .map(|r| r.meta.name.clone())
                    .collect();
                disabled.tx.send_replace(now);
                reporter.ready();
            }
            Event::Changes(changes) => {
                for c in changes {
                    match &c.resource {
                        Some(r) => {
                            let off = matches!(&r.spec, Spec::Zone(z) if !z.is_enabled());
                            if off && !disabled.contains(&c.key.name) {
                                tracing::info!(zone = %c.key.name, "zone disabled: its KDS streams end");
                            }
                            disabled.set(&c.key.name, off);
                        }
                        None => {
                            disabled.set(&c.key.name, false);
                            match forget(store.as_ref(), &c.key.name).await {
                                Ok(n) => {
                                    tracing::info!(zone = %c.key.name, deleted = n, "zone deleted with what it reported")
                                }
                                Err(e) => {
                                    tracing::warn!(zone = %c.key.name, error = %e, "cannot delete what a deleted zone reported");
                                    reporter.degraded(format!(
                                        "cannot delete what deleted zone {:?} reported: {e}",
                                        c.key.name
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            Event::Broken { error, retry_in } => {
                reporter.down(format!(
                    "cannot read the Zones: {error}; retrying in {retry_in:?}"
                ));
            }
        }
    }
}

/// Deletes everything zone `zone` reported and its ZoneInsight; how many
/// resources went.
pub async fn forget(store: &dyn ResourceStore, zone: &str) -> Result<usize, StoreError> {
    let mut ops = Vec::new();
    for ty in weft_sync::kds::zone_to_global_types() {
        for r in store.list(ty, None, Page::all()).await?.items {
            if zone_names::zone_of(&r) == Some(zone) {
                ops.push(WriteOp::Delete(r.key()));
            }
        }
    }
    let insight = ResourceKey::new(ResourceType::ZoneInsight, None, zone);
    if store.get(&insight).await?.is_some() {
        ops.push(WriteOp::Delete(insight));
    }
    let n = ops.len();
    if n > 0 {
        store.transact(ops).await?;
    }
    Ok(n)
}

/// Deletes the Zones offline longer than `after` (their reported resources
/// follow, see [`follow`]). Checks every `after / 10`, at most once a minute.
pub async fn cleanup(
    store: Arc<dyn ResourceStore>,
    insights: ZoneInsights,
    after: Duration,
    reporter: Reporter,
    shutdown: CancellationToken,
) {
    let every = (after / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
    reporter.ready();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match cleanup_once(store.as_ref(), &insights, after).await {
            Ok(gone) => {
                for zone in gone {
                    tracing::info!(%zone, offline_for_more_than = ?after, "offline zone deleted");
                }
                reporter.ready();
            }
            Err(e) => reporter.degraded(format!("cannot clean up offline zones: {e}")),
        }
    }
}

async fn cleanup_once(
    store: &dyn ResourceStore,
    insights: &ZoneInsights,
    after: Duration,
) -> Result<Vec<String>, StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let mut gone = Vec::new();
    for r in store
        .list(ResourceType::ZoneInsight, None, Page::all())
        .await?
        .items
    {
        let zone = &r.meta.name;
        let Spec::ZoneInsight(spec) = &r.spec else {
            continue;
        };
        if insights.is_connected(zone) {
            continue;
        }
        let Some(since) = spec.offline_since().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }) else {
            continue;
        };
        if (now - since).unsigned_abs() < after {
            continue;
        }
        let key = ResourceKey::new(ResourceType::Zone, None, zone);
        match store.delete(&key, None).await {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        // A Zone deleted earlier (or never stored) leaves its insight: forget
        // it here too.
        forget(store, zone).await?;
        gone.push(zone.clone());
    }
    Ok(gone)
}
