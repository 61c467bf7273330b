//! How the zone stores what global sends: the initial sync staged and committed in
//! ONE transaction (with the sync marker), later changes one transaction per
//! response; resources the store would refuse (orphans: their Mesh is missing) are
//! rejected one by one, before the commit, in their own type's NACK.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::oneshot;
use weft_model::resource::zone::ZoneSpec;
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_store::{Page, ResourceStore, StoreError, WriteOp};
use weft_sync::delta::driver::Apply;
use weft_sync::delta::{BoxError, Rejection, Update, UpdateKind};
use weft_sync::kds;

/// The sync marker: the `Zone` resource named after this zone, in the zone's own
/// store. Written in the transaction that commits each initial sync from global,
/// so it exists exactly when the store holds a complete sync; its modification
/// time is when the last one was committed (decision 0008).
pub fn marker_key(zone: &str) -> ResourceKey {
    ResourceKey::new(ResourceType::Zone, None, zone)
}

fn marker(zone: &str) -> Resource {
    Resource::new(zone, None, Spec::Zone(ZoneSpec::default()))
}

/// When the store last took in a full sync from global, if ever.
pub async fn last_sync(
    store: &dyn ResourceStore,
    zone: &str,
) -> Result<Option<SystemTime>, StoreError> {
    Ok(store.get(&marker_key(zone)).await?.map(|r| {
        r.meta
            .modification_time
            .map_or(SystemTime::UNIX_EPOCH, SystemTime::from)
    }))
}

/// Applies what global sends to the zone's store.
pub struct ZoneApply {
    store: Arc<dyn ResourceStore>,
    zone: String,
    /// The initial sync, held back until every type has arrived; the last
    /// operation on a key wins.
    staged: BTreeMap<ResourceKey, WriteOp>,
    initial_done: bool,
    /// Told once the initial sync is committed.
    committed: Option<oneshot::Sender<()>>,
}

impl ZoneApply {
    pub fn new(
        store: Arc<dyn ResourceStore>,
        zone: String,
        committed: oneshot::Sender<()>,
    ) -> Self {
        ZoneApply {
            store,
            zone,
            staged: BTreeMap::new(),
            initial_done: false,
            committed: Some(committed),
        }
    }

    async fn apply_update(&mut self, update: Update) -> Result<Vec<Rejection>, BoxError> {
        let Some(ty) = ResourceType::from_name(&update.type_url) else {
            return Err(format!("global sent unknown type {:?}", update.type_url).into());
        };
        let mut rejections = Vec::new();
        let mut ops = Vec::new();
        for r in &update.resources {
            match kds::from_delta(ty, r.resource.as_ref()) {
                Ok(res) if kds::delta_name(&res.key()) == r.name => {
                    // This zone's own policies (kuma.io/origin: zone) keep their names.
                    let held = match ty.is_policy() {
                        true => self.store.get(&res.key()).await?,
                        false => None,
                    };
                    match held {
                        Some(own) if !kds::is_from_global(&own) => rejections.push(Rejection::new(
                            &r.name,
                            format!(
                                "the name is held by this zone's own {ty} (kuma.io/origin: zone)"
                            ),
                        )),
                        _ => ops.push(WriteOp::Upsert(res)),
                    }
                }
                Ok(_) => {
                    rejections.push(Rejection::new(&r.name, "name does not match the payload"))
                }
                Err(e) => rejections.push(Rejection::new(&r.name, e.to_string())),
            }
        }
        for name in &update.removed {
            if let Some(key) = kds::key_of(ty, name) {
                ops.push(WriteOp::Delete(key));
            }
        }
        if let UpdateKind::InitialLast { full_state } = &update.kind {
            ops.extend(self.stale_deletes(ty, full_state).await?);
        }
        if self.initial_done {
            rejections.extend(self.commit(order(ops)).await?);
            return Ok(rejections);
        }
        for op in ops {
            self.staged.insert(key(&op), op);
        }
        if update.completes_initial_sync {
            let mut ops = order(std::mem::take(&mut self.staged).into_values().collect());
            ops.push(WriteOp::Upsert(marker(&self.zone)));
            let n = ops.len();
            let started = tokio::time::Instant::now();
            let rejected = self.commit(ops).await?;
            tracing::info!(
                operations = n,
                rejected = rejected.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "KDS: initial sync from global applied in one transaction"
            );
            rejections.extend(rejected);
            self.initial_done = true;
            if let Some(tx) = self.committed.take() {
                let _ = tx.send(());
            }
        }
        Ok(rejections)
    }

    /// Local copies from global that global no longer holds.
    async fn stale_deletes(
        &self,
        ty: ResourceType,
        full_state: &BTreeSet<String>,
    ) -> Result<Vec<WriteOp>, BoxError> {
        let mut ops = Vec::new();
        for res in self.store.list(ty, None, Page::all()).await?.items {
            if kds::is_from_global(&res) && !full_state.contains(&kds::delta_name(&res.key())) {
                ops.push(WriteOp::Delete(res.key()));
            }
        }
        Ok(ops)
    }

    /// One transaction; orphans are taken out first and rejected in their own type.
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<Rejection>, BoxError> {
        let name_of = |op: &WriteOp| kds::delta_name(&key(op));
        Ok(kds::transact_or_reject(self.store.as_ref(), ops, name_of).await?)
    }
}

fn key(op: &WriteOp) -> ResourceKey {
    match op {
        WriteOp::Upsert(r) => r.key(),
        WriteOp::Delete(k) => k.clone(),
    }
}

/// Meshes first, then what lives in them; deletes after upserts, meshes last.
fn order(mut ops: Vec<WriteOp>) -> Vec<WriteOp> {
    ops.sort_by_key(|op| match op {
        WriteOp::Upsert(r) if matches!(r.spec, Spec::Mesh(_)) => 0,
        WriteOp::Upsert(_) => 1,
        WriteOp::Delete(k) if k.ty == ResourceType::Mesh => 3,
        WriteOp::Delete(_) => 2,
    });
    ops
}

impl Apply for ZoneApply {
    fn apply(
        &mut self,
        update: Update,
    ) -> impl Future<Output = Result<Vec<Rejection>, BoxError>> + Send {
        self.apply_update(update)
    }
}

#[cfg(test)]
mod tests;
