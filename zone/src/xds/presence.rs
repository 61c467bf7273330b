//! Persisted DataplaneInsights: every ADS stream of a sidecar is a subscription
//! (this control plane's instance id, connect and disconnect times) written to
//! the store when it opens and when it ends — not on every ACK. The writes are
//! queued in order and applied in batches (one transaction per batch), so a
//! connect storm costs few fsyncs; KDS reports them to global with the
//! Dataplanes, which is how global tells online from offline proxies of a zone,
//! across its own restarts.
//!
//! A zone that restarts finds its predecessor's subscriptions still open: the
//! first pass closes every open subscription of another instance.

use super::node::ProxyKey;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use weft_model::resource::insight::{DataplaneInsightSpec, DiscoverySubscription, MtlsInsight};
use weft_model::resource::{Resource, ResourceKey, ResourceType, Spec};
use weft_runtime::health::Reporter;
use weft_store::{Page, ResourceStore, StoreError, WriteOp};

/// At most this many events go into one transaction.
const BATCH: usize = 512;

/// A subscription opening or ending.
#[derive(Debug)]
enum Event {
    Opened {
        key: ProxyKey,
        sub: DiscoverySubscription,
    },
    Closed {
        key: ProxyKey,
        id: String,
        at: String,
    },
    /// The proxy got a new workload certificate.
    Certificate { key: ProxyKey, mtls: MtlsInsight },
}

/// The queue of subscription events; cheap to clone.
#[derive(Clone)]
pub struct Presence {
    tx: mpsc::UnboundedSender<Event>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>>,
    instance: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Presence {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let instance = format!(
            "{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        Presence {
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            instance: instance.into(),
            next: Arc::default(),
        }
    }
}

fn now() -> String {
    weft_sync::insight::now().unwrap_or_default()
}

impl Presence {
    /// A stream of sidecar `key` opened; its subscription id.
    pub fn opened(&self, key: &ProxyKey) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n}", self.instance);
        let _ = self.tx.send(Event::Opened {
            key: key.clone(),
            sub: DiscoverySubscription {
                id: id.clone(),
                control_plane_instance_id: self.instance.to_string(),
                connect_time: Some(now()),
                disconnect_time: None,
            },
        });
        id
    }

    /// Subscription `id` of `key` ended.
    pub fn closed(&self, key: &ProxyKey, id: String) {
        let _ = self.tx.send(Event::Closed {
            key: key.clone(),
            id,
            at: now(),
        });
    }

    /// Sidecar `key` holds a new workload certificate.
    pub fn certificate(&self, key: &ProxyKey, mtls: MtlsInsight) {
        let _ = self.tx.send(Event::Certificate {
            key: key.clone(),
            mtls,
        });
    }

    /// Applies events until dropped; restartable (events wait in the queue
    /// while it is down). Starts by closing what another instance left open.
    pub async fn run(&self, store: Arc<dyn ResourceStore>, reporter: Reporter) {
        let mut rx = self.rx.lock().await;
        let mut retry = std::time::Duration::from_millis(100);
        loop {
            match close_stale(store.as_ref(), &self.instance).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(
                            closed = n,
                            "dataplane insights: closed the subscriptions a previous run left open"
                        );
                    }
                    break;
                }
                Err(e) => {
                    reporter.down(format!("cannot read the DataplaneInsights: {e}"));
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        reporter.ready();
        let mut pending: Vec<Event> = Vec::new();
        loop {
            if pending.is_empty() {
                match rx.recv().await {
                    Some(e) => pending.push(e),
                    None => return,
                }
            }
            while pending.len() < BATCH {
                match rx.try_recv() {
                    Ok(e) => pending.push(e),
                    Err(_) => break,
                }
            }
            match apply(store.as_ref(), &pending).await {
                Ok(()) => {
                    pending.clear();
                    reporter.ready();
                }
                // Kept and retried: the events stay in order.
                Err(e) => {
                    tracing::warn!(error = %e, events = pending.len(), "dataplane insights: cannot write; retrying");
                    reporter.degraded(format!("cannot write DataplaneInsights: {e}"));
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Applies `events` in order to the insights they touch, in one transaction.
async fn apply(store: &dyn ResourceStore, events: &[Event]) -> Result<(), StoreError> {
    let mut touched: BTreeMap<ResourceKey, (Option<Resource>, bool)> = BTreeMap::new();
    for e in events {
        let key = match e {
            Event::Opened { key, .. }
            | Event::Closed { key, .. }
            | Event::Certificate { key, .. } => insight_key(key),
        };
        if !touched.contains_key(&key) {
            let current = store.get(&key).await?;
            touched.insert(key.clone(), (current, false));
        }
        let Some((current, changed)) = touched.get_mut(&key) else {
            continue;
        };
        match e {
            Event::Opened { key: proxy, sub } => {
                let res = current.get_or_insert_with(|| new_insight(proxy));
                if let Spec::DataplaneInsight(spec) = &mut res.spec {
                    spec.connected(sub.clone());
                    *changed = true;
                }
            }
            Event::Certificate { key: proxy, mtls } => {
                let res = current.get_or_insert_with(|| new_insight(proxy));
                if let Spec::DataplaneInsight(spec) = &mut res.spec
                    && spec.mtls.as_ref() != Some(mtls)
                {
                    spec.mtls = Some(mtls.clone());
                    *changed = true;
                }
            }
            Event::Closed { id, at, .. } => {
                if let Some(Resource {
                    spec: Spec::DataplaneInsight(spec),
                    ..
                }) = current
                    && spec.disconnected(id, at)
                {
                    *changed = true;
                }
            }
        }
    }
    let mut ops = Vec::new();
    for (key, (res, changed)) in touched {
        if !changed {
            continue;
        }
        let Some(res) = res else { continue };
        // Only while its Dataplane exists: a gone proxy's insight goes with it.
        let dp = ResourceKey::new(ResourceType::Dataplane, key.mesh.as_deref(), &key.name);
        if store.get(&dp).await?.is_some() {
            ops.push(WriteOp::Upsert(res));
        }
    }
    if ops.is_empty() {
        return Ok(());
    }
    match store.transact(ops).await {
        // A mesh deleted meanwhile: nothing to record.
        Err(StoreError::MeshNotFound(_)) => Ok(()),
        other => other.map(drop),
    }
}

fn insight_key(key: &ProxyKey) -> ResourceKey {
    ResourceKey::new(ResourceType::DataplaneInsight, Some(&key.mesh), &key.name)
}

fn new_insight(key: &ProxyKey) -> Resource {
    Resource::new(
        &key.name,
        Some(&key.mesh),
        Spec::DataplaneInsight(DataplaneInsightSpec::default()),
    )
}

/// Closes every open subscription not of `instance`; how many insights changed.
async fn close_stale(store: &dyn ResourceStore, instance: &str) -> Result<usize, StoreError> {
    let at = now();
    let mut ops = Vec::new();
    for mut r in store
        .list(ResourceType::DataplaneInsight, None, Page::all())
        .await?
        .items
    {
        // Those received from global are another zone's business.
        if r.meta
            .labels
            .get(weft_model::resource::tags::ORIGIN)
            .map(String::as_str)
            == Some("global")
        {
            continue;
        }
        if let Spec::DataplaneInsight(spec) = &mut r.spec
            && spec.close_stale(instance, &at)
        {
            ops.push(WriteOp::Upsert(r));
        }
    }
    let n = ops.len();
    if n > 0 {
        store.transact(ops).await?;
    }
    Ok(n)
}

/// Deletes `key`'s insight (with its Dataplane).
pub async fn forget(store: &dyn ResourceStore, key: &ProxyKey) {
    match store.delete(&insight_key(key), None).await {
        Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::MeshNotFound(_)) => {}
        Err(e) => {
            tracing::warn!(proxy = %key, error = %e, "dataplane insights: cannot delete a gone proxy's insight")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use weft_model::resource::parse_resource;
    use weft_store::MemoryStore;

    async fn insight(store: &MemoryStore, name: &str) -> Option<DataplaneInsightSpec> {
        let key = ResourceKey::new(ResourceType::DataplaneInsight, Some("default"), name);
        match store.get(&key).await.unwrap()?.spec {
            Spec::DataplaneInsight(s) => Some(s),
            _ => None,
        }
    }

    // Open and close events land in order, in one batch; a proxy without a
    // Dataplane gets no insight; a new instance closes what the last one left
    // open.
    #[tokio::test]
    async fn subscriptions_are_written_in_order_and_stale_ones_closed() {
        let store = MemoryStore::new();
        let mesh = parse_resource(b"type: Mesh\nname: default\n", false).unwrap();
        let dp = parse_resource(
            b"type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - {port: 8080, tags: {kuma.io/service: web}}\n",
            false,
        )
        .unwrap();
        store
            .transact(vec![WriteOp::Upsert(mesh), WriteOp::Upsert(dp)])
            .await
            .unwrap();
        let p = Presence::default();
        let web = ProxyKey {
            mesh: "default".into(),
            name: "web-1".into(),
        };
        let ghost = ProxyKey {
            mesh: "default".into(),
            name: "ghost".into(),
        };
        let a = p.opened(&web);
        p.closed(&web, a);
        let _b = p.opened(&web);
        let _g = p.opened(&ghost);
        let events: Vec<Event> = {
            let mut rx = p.rx.lock().await;
            std::iter::from_fn(|| rx.try_recv().ok()).collect()
        };
        apply(&store, &events).await.unwrap();
        let i = insight(&store, "web-1").await.unwrap();
        assert_eq!(i.subscriptions.len(), 2);
        assert!(i.subscriptions[0].disconnect_time.is_some());
        assert!(i.is_online());
        assert!(insight(&store, "ghost").await.is_none());
        assert_eq!(close_stale(&store, "another-instance").await.unwrap(), 1);
        assert!(!insight(&store, "web-1").await.unwrap().is_online());
    }
}
