//! Per-proxy snapshots, kept current from the zone store.
//!
//! An in-memory index of every mesh's resources follows the store's watch. A change
//! marks its mesh dirty; a burst of changes (within [`CacheConfig::coalesce`]) is
//! handled once: the mesh's [`MeshView`] is rebuilt and every connected proxy of that
//! mesh — and only of that mesh — is regenerated. A proxy's new snapshot is published
//! on its watch channel only when it differs; the stream's sender then sends only the
//! resources whose versions changed. A failed generation is logged and the proxy keeps
//! its last good snapshot.
//!
//! Zone proxies (ingress, egress) serve every mesh: they are regenerated after
//! every batch of mesh rebuilds, from every mesh's view. A change of a
//! ZoneIngress or ZoneEgress marks every mesh dirty (a remote ingress is an
//! endpoint of the services it offers).
//!
//! Lifecycle: [`Cache::connect`] registers a stream of a proxy and returns a guard;
//! when the last guard of a proxy drops, its Dataplane is deleted from the store after
//! [`CacheConfig::grace`], unless the proxy reconnected meanwhile.

use super::generate::{self, GenerateError, MeshView};
use super::identity::Identities;
use super::insight::Insights;
use super::intern::Interner;
use super::metrics::{Generated, XdsMetrics};
use super::node::{Proxy, ProxyKey, ZONE_INGRESS};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use weft_model::resource::{Resource, ResourceKey, ResourceType};
use weft_runtime::health::{self, Reporter};
use weft_runtime::shutdown::CancellationToken;
use weft_store::reflector::{Event, Reflector};
use weft_store::{ResourceStore, StoreError};
use weft_sync::delta::Snapshot;

/// Builds one proxy's configuration (normally [`generate::generate`]; tests inject
/// their own).
pub type Generator =
    Arc<dyn Fn(&MeshView, &Resource) -> Result<Snapshot, GenerateError> + Send + Sync>;

/// The real generator.
pub fn default_generator() -> Generator {
    Arc::new(generate::generate)
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Changes arriving within this of the first are handled together.
    pub coalesce: Duration,
    /// A Dataplane is deleted this long after its proxy's last stream closed.
    pub grace: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            coalesce: Duration::from_millis(5),
            grace: crate::config::DEFAULT_DATAPLANE_GRACE,
        }
    }
}

/// Counters for benchmarks and logs.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Mesh rebuilds (one per coalesced burst per mesh).
    pub rebuilds: AtomicU64,
    /// Per-proxy generations and their total time.
    pub generations: AtomicU64,
    pub generation_nanos: AtomicU64,
    /// MeshView builds' total time.
    pub view_nanos: AtomicU64,
    /// Snapshots published (generations whose result differed from the last).
    pub published: AtomicU64,
}

/// A proxy whose certificate could not be issued is tried again after this.
const RETRY_ISSUANCE: Duration = Duration::from_secs(5);

/// Below this many proxies per core, generation stays on one thread.
const MIN_PROXIES_PER_THREAD: usize = 32;

/// A proxy's snapshot channel, and which mesh view its snapshot came from.
struct Publisher {
    tx: watch::Sender<Option<Snapshot>>,
    /// The sequence number of the view the published snapshot was generated from.
    /// A connect and a rebuild generate concurrently, outside the state lock, so
    /// the one from the older view may finish last: it must not overwrite the
    /// newer (read and written under the watch's lock, in `send_if_modified`).
    view_seq: AtomicU64,
}

type SnapshotTx = Arc<Publisher>;

struct ProxyEntry {
    tx: SnapshotTx,
    /// The Dataplane the proxy presented (used until the store has it).
    presented: Arc<Resource>,
    streams: usize,
    /// Bumped on every connect, so a grace timer knows it is outdated.
    epoch: u64,
}

#[derive(Default)]
struct State {
    meshes: HashMap<String, Arc<Resource>>,
    /// mesh → key → resource, for every mesh-scoped type.
    resources: HashMap<String, BTreeMap<ResourceKey, Arc<Resource>>>,
    /// Every ZoneIngress and ZoneEgress the zone holds (its own and, from global,
    /// the other zones' ingresses).
    zone_proxies: BTreeMap<ResourceKey, Arc<Resource>>,
    /// mesh → (sequence number, view); numbers grow with every rebuild.
    views: HashMap<String, (u64, Arc<MeshView>)>,
    last_view_seq: u64,
    proxies: HashMap<ProxyKey, ProxyEntry>,
}

/// Per mesh: type maps shared between proxies' snapshots.
type Interners = HashMap<String, Interner>;

struct Inner {
    store: Arc<dyn ResourceStore>,
    generator: Generator,
    config: CacheConfig,
    metrics: XdsMetrics,
    stats: CacheStats,
    insights: Insights,
    /// Subscriptions to persist (DataplaneInsights).
    presence: super::presence::Presence,
    identities: Identities,
    /// This zone's MeshIdentity CAs (set once the zone runs them).
    zone_cas: std::sync::OnceLock<Arc<crate::identity::ZoneCas>>,
    state: Mutex<State>,
    interners: Mutex<Interners>,
    dirty: mpsc::UnboundedSender<String>,
    /// The rebuilder's end of `dirty`; held by whichever run of it is current.
    dirty_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
}

/// The snapshot cache; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl Cache {
    /// An empty cache over `store`. It fills once [`Cache::follow`] runs, and
    /// proxies get configuration once [`Cache::rebuild_loop`] runs: run both as
    /// (restartable) components.
    pub fn new(
        store: Arc<dyn ResourceStore>,
        generator: Generator,
        config: CacheConfig,
        metrics: XdsMetrics,
    ) -> Cache {
        let (dirty, dirty_rx) = mpsc::unbounded_channel();
        Cache {
            inner: Arc::new(Inner {
                store,
                generator,
                config,
                metrics,
                stats: CacheStats::default(),
                insights: Insights::default(),
                presence: Default::default(),
                identities: Identities::default(),
                zone_cas: std::sync::OnceLock::new(),
                state: Mutex::new(State::default()),
                interners: Mutex::new(Interners::default()),
                dirty,
                dirty_rx: tokio::sync::Mutex::new(dirty_rx),
            }),
        }
    }

    /// Lists the store, then follows it, rebuilds and persists subscriptions
    /// until `shutdown`, in tasks of its own (for tests and benchmarks; the zone
    /// runs [`Cache::follow`], [`Cache::rebuild_loop`] and the presence writer
    /// under its supervisor).
    pub async fn start(
        store: Arc<dyn ResourceStore>,
        generator: Generator,
        config: CacheConfig,
        metrics: XdsMetrics,
        shutdown: CancellationToken,
    ) -> Result<Cache, StoreError> {
        let cache = Cache::new(store.clone(), generator, config, metrics);
        let mut reflector = Reflector::new(store, ResourceType::ALL.to_vec());
        match reflector.next().await {
            Event::Broken { error, .. } => return Err(error),
            first => cache.handle(first, None),
        }
        let follower = cache.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = follower.follow_with(reflector, None) => {}
                () = stop.cancelled() => {}
            }
        });
        let rebuilder = cache.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = rebuilder.rebuild_loop() => {}
                () = stop.cancelled() => {}
            }
        });
        // The proxies' subscriptions, persisted, as the zone does.
        let (writer, store) = (cache.clone(), cache.inner.store.clone());
        tokio::spawn(async move {
            let reporter = weft_runtime::health::Health::default()
                .reporter("dataplane insights", health::State::Starting);
            tokio::select! {
                () = writer.presence().run(store, reporter) => {}
                () = shutdown.cancelled() => {}
            }
        });
        Ok(cache)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn interners(&self) -> MutexGuard<'_, Interners> {
        self.inner
            .interners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The insights of this cache's proxies (forgotten with their Dataplanes).
    pub fn insights(&self) -> &Insights {
        &self.inner.insights
    }

    /// The persisted side of the insights (run [`super::presence::Presence::run`]).
    pub fn presence(&self) -> &super::presence::Presence {
        &self.inner.presence
    }

    pub fn stats(&self) -> &CacheStats {
        &self.inner.stats
    }

    /// Registers one stream of `proxy`; its snapshots arrive on the receiver. The
    /// proxy is generated at once when its mesh's view is built.
    pub fn connect(&self, proxy: &Proxy) -> (watch::Receiver<Option<Snapshot>>, ConnectionGuard) {
        let key = proxy.key();
        let mut state = self.lock();
        let entry = state
            .proxies
            .entry(key.clone())
            .or_insert_with(|| ProxyEntry {
                tx: Arc::new(Publisher {
                    tx: watch::channel(None).0,
                    view_seq: AtomicU64::new(0),
                }),
                presented: Arc::new(proxy.dataplane.clone()),
                streams: 0,
                epoch: 0,
            });
        entry.presented = Arc::new(proxy.dataplane.clone());
        entry.streams += 1;
        entry.epoch += 1;
        if entry.streams == 1 {
            self.inner.metrics.connected_proxies.inc();
        }
        let tx = entry.tx.clone();
        let rx = tx.tx.subscribe();
        if key.is_zone_proxy() {
            drop(state);
            // An egress's first configuration issues certificates: not on the
            // async workers.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let (cache, key) = (self.clone(), key.clone());
                    rt.spawn_blocking(move || cache.generate_zone_proxies(Some(&key)));
                }
                Err(_) => self.generate_zone_proxies(Some(&key)),
            }
            return (
                rx,
                ConnectionGuard {
                    cache: self.clone(),
                    key,
                    subscription: None,
                },
            );
        }
        let subscription = Some(self.inner.presence.opened(&key));
        match state.views.get(&key.mesh).cloned() {
            Some((seq, view)) => {
                let dp = dataplane_of(&state, &key);
                drop(state);
                if let Some(dp) = dp {
                    match tokio::runtime::Handle::try_current() {
                        // Issuing a certificate generates a key: not on the async
                        // workers.
                        Ok(rt) if view.mtls.is_some() => {
                            let (cache, key, tx) = (self.clone(), key.clone(), tx.clone());
                            rt.spawn_blocking(move || {
                                cache.generate_one(&view, seq, &key, &dp, &tx)
                            });
                        }
                        _ => self.generate_one(&view, seq, &key, &dp, &tx),
                    }
                }
            }
            None => {
                drop(state);
                let _ = self.inner.dirty.send(key.mesh.clone());
            }
        }
        (
            rx,
            ConnectionGuard {
                cache: self.clone(),
                key,
                subscription,
            },
        )
    }

    /// Follows the store until the future is dropped: a full list replaces the
    /// index (every mesh rebuilt), changes mark their meshes dirty. While the store
    /// fails, proxies keep their configuration, `reporter` says why, and the cache
    /// relists once the store answers. Restartable: a new run starts with a list.
    pub async fn follow(&self, reporter: Reporter) {
        let reflector = Reflector::new(self.inner.store.clone(), ResourceType::ALL.to_vec());
        self.follow_with(reflector, Some(reporter)).await
    }

    async fn follow_with(&self, mut reflector: Reflector, reporter: Option<Reporter>) {
        loop {
            let event = reflector.next().await;
            self.handle(event, reporter.as_ref());
        }
    }

    fn handle(&self, event: Event, reporter: Option<&Reporter>) {
        match event {
            Event::Init { resources, .. } => {
                self.replace_all(resources);
                if let Some(r) = reporter {
                    if r.state() == health::State::Down {
                        tracing::info!("xDS cache: the store answers again; relisted");
                    }
                    r.ready();
                }
            }
            Event::Changes(changes) => {
                for c in changes {
                    for mesh in self.apply(&c.key, c.resource) {
                        let _ = self.inner.dirty.send(mesh);
                    }
                }
            }
            Event::Broken { error, retry_in } => {
                tracing::warn!(%error, ?retry_in, "xDS cache: cannot read the store; proxies keep their last configuration");
                if let Some(r) = reporter {
                    r.down(format!(
                        "cannot read the store: {error}; proxies keep their last configuration; retrying in {retry_in:?}"
                    ));
                }
            }
        }
    }

    /// Replaces the whole index with a full list and marks every mesh dirty.
    fn replace_all(&self, listed: Vec<Resource>) {
        let mut meshes = HashMap::new();
        let mut resources: HashMap<String, BTreeMap<ResourceKey, Arc<Resource>>> = HashMap::new();
        let mut zone_proxies = BTreeMap::new();
        for r in listed {
            if r.resource_type() == ResourceType::Mesh {
                meshes.insert(r.meta.name.clone(), Arc::new(r));
            } else if is_zone_proxy_type(r.resource_type()) {
                zone_proxies.insert(r.key(), Arc::new(r));
            } else if r.resource_type() == ResourceType::DataplaneInsight {
                // Configuration reads none: no rebuild on a connect.
            } else if let Some(mesh) = r.meta.mesh.clone() {
                resources
                    .entry(mesh)
                    .or_default()
                    .insert(r.key(), Arc::new(r));
            }
        }
        let dirty: BTreeSet<String> = {
            let mut state = self.lock();
            state.meshes = meshes;
            state.resources = resources;
            state.zone_proxies = zone_proxies;
            state
                .meshes
                .keys()
                .chain(state.views.keys())
                .cloned()
                .chain([ZONE_INGRESS.to_string()])
                .collect()
        };
        for mesh in dirty {
            let _ = self.inner.dirty.send(mesh);
        }
    }

    /// Applies one change to the index; returns the meshes it touched (every
    /// mesh for a zone proxy, and [`ZONE_INGRESS`] to regenerate zone proxies).
    fn apply(&self, key: &ResourceKey, resource: Option<Resource>) -> Vec<String> {
        let mut state = self.lock();
        if key.ty == ResourceType::Mesh {
            match resource {
                Some(r) => {
                    state.meshes.insert(key.name.clone(), Arc::new(r));
                }
                None => {
                    state.meshes.remove(&key.name);
                    state.resources.remove(&key.name);
                }
            }
            return vec![key.name.clone()];
        }
        if is_zone_proxy_type(key.ty) {
            let new = resource.map(Arc::new);
            let old = match &new {
                Some(r) => state.zone_proxies.insert(key.clone(), r.clone()),
                None => state.zone_proxies.remove(key),
            };
            // This zone's own ingress is nobody's endpoint (its available
            // services change with every Dataplane): only the zone proxies read
            // it. Another zone's ingress, or an egress, changes the sidecars.
            let own_ingress = key.ty == ResourceType::ZoneIngress
                && [&old, &new]
                    .into_iter()
                    .flatten()
                    .all(|r| !super::server::is_from_global(r));
            let mut dirty: Vec<String> = if own_ingress {
                Vec::new()
            } else {
                state.meshes.keys().cloned().collect()
            };
            dirty.push(ZONE_INGRESS.to_string());
            return dirty;
        }
        let Some(mesh) = key.mesh.clone() else {
            return Vec::new();
        };
        // Written on every connect and disconnect; configuration reads none.
        if key.ty == ResourceType::DataplaneInsight {
            return Vec::new();
        }
        let of_mesh = state.resources.entry(mesh.clone()).or_default();
        match resource {
            Some(r) => {
                of_mesh.insert(key.clone(), Arc::new(r));
            }
            None => {
                of_mesh.remove(key);
            }
        }
        vec![mesh]
    }

    /// Rebuilds dirty meshes until the future is dropped. Restartable: a new run
    /// first rebuilds every mesh, since marks taken by the last run may be lost.
    pub async fn rebuild_loop(&self) {
        let mut dirty = self.inner.dirty_rx.lock().await;
        let every: Vec<String> = self.lock().meshes.keys().cloned().collect();
        for mesh in every {
            let _ = self.inner.dirty.send(mesh);
        }
        // Under a stream of changes (proxies connecting by the hundred) rebuilds
        // are spaced by their own duration, so they take at most half the time.
        let mut earliest = tokio::time::Instant::now();
        loop {
            let renewal = self.inner.identities.next_renewal();
            let first = tokio::select! {
                m = dirty.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
                () = sleep_until_renewal(renewal.as_ref().map(|r| r.0)) => {
                    // Certificates due: regenerate their meshes, which reissues them.
                    for mesh in renewal.map(|r| r.1).unwrap_or_default() {
                        let _ = self.inner.dirty.send(mesh);
                    }
                    continue;
                }
            };
            let mut meshes = BTreeSet::from([first]);
            // Let the rest of a burst arrive, then take it all at once.
            let wait = tokio::time::Instant::now() + self.inner.config.coalesce;
            tokio::time::sleep_until(wait.max(earliest)).await;
            while let Ok(m) = dirty.try_recv() {
                meshes.insert(m);
            }
            let started = tokio::time::Instant::now();
            let cache = self.clone();
            // Generation is CPU work: keep it off the async workers.
            let done = tokio::task::spawn_blocking(move || {
                for mesh in meshes.iter().filter(|m| m.as_str() != ZONE_INGRESS) {
                    cache.rebuild(mesh);
                }
                // Zone proxies read every mesh: after any rebuild.
                cache.generate_zone_proxies(None);
            })
            .await;
            if done.is_err() {
                tracing::error!(
                    "xDS cache: a rebuild panicked; proxies keep their last configuration"
                );
            }
            let now = tokio::time::Instant::now();
            earliest = now + (now - started);
        }
    }

    /// Rebuilds `mesh`'s view and regenerates its connected proxies.
    fn rebuild(&self, mesh: &str) {
        let started = Instant::now();
        let (seq, view, proxies) = {
            let mut state = self.lock();
            let Some(mesh_res) = state.meshes.get(mesh).cloned() else {
                state.views.remove(mesh);
                // Zone proxies generated before this must not win over the
                // regeneration without the mesh.
                state.last_view_seq += 1;
                self.interners().remove(mesh);
                self.inner.identities.forget_mesh(mesh);
                tracing::debug!(%mesh, "xDS cache: mesh gone; its proxies keep their last configuration");
                return;
            };
            let resources: Vec<Arc<Resource>> = state
                .resources
                .get(mesh)
                .into_iter()
                .flat_map(|m| m.values())
                .chain(state.zone_proxies.values())
                .cloned()
                .collect();
            let zone = self
                .inner
                .zone_cas
                .get()
                .map_or(crate::DEFAULT_ZONE_NAME, |c| c.zone());
            let view = Arc::new(MeshView::new_in_zone(mesh_res, resources, zone));
            state.last_view_seq += 1;
            let seq = state.last_view_seq;
            state.views.insert(mesh.to_string(), (seq, view.clone()));
            let proxies: Vec<(ProxyKey, Arc<Resource>, SnapshotTx)> = state
                .proxies
                .iter()
                .filter(|(k, _)| k.mesh == mesh)
                .filter_map(|(k, e)| {
                    dataplane_of(&state, k).map(|dp| (k.clone(), dp, e.tx.clone()))
                })
                .collect();
            (seq, view, proxies)
        };
        match &view.mtls {
            Some(tls) => {
                let connected = self.connected(mesh);
                let domains = self.trust_domains(&view);
                let cas = self
                    .inner
                    .zone_cas
                    .get()
                    .map(|c| c.of_mesh(mesh))
                    .unwrap_or_default();
                let rotating = cas.iter().any(|(_, c)| c.retiring.is_some());
                let ids = &self.inner.identities;
                ids.plan(tls, &connected, &domains, rotating);
                // A MeshIdentity CA rotation is over once every proxy of the
                // identity holds a certificate from the new CA.
                for (name, ca) in cas.iter().filter(|(_, c)| c.retiring.is_some()) {
                    if ids.all_hold(&connected, &format!("MeshIdentity/{name}"), &ca.fingerprint)
                        && let Some(zone_cas) = self.inner.zone_cas.get()
                    {
                        zone_cas.rotation_done(mesh, name);
                    }
                }
            }
            // mTLS off: no certificate to keep or renew.
            // mTLS just turned off: certificates of the mesh go (once; a mesh
            // that never had mTLS costs nothing here).
            None => {
                if self.inner.identities.forget_mesh(mesh) {
                    self.inner.insights.clear_certificates(mesh);
                }
            }
        }
        self.interners()
            .entry(mesh.to_string())
            .or_default()
            .rotate();
        let stats = &self.inner.stats;
        stats.rebuilds.fetch_add(1, Ordering::Relaxed);
        add_nanos(&stats.view_nanos, started.elapsed());
        self.generate_all(&view, seq, &proxies);
        tracing::debug!(%mesh, proxies = proxies.len(), elapsed_ms = started.elapsed().as_millis() as u64, "xDS cache: mesh regenerated");
    }

    /// Generates `proxies` over the machine's cores (one thread per core for big
    /// meshes; this runs on a blocking thread already).
    fn generate_all(
        &self,
        view: &MeshView,
        seq: u64,
        proxies: &[(ProxyKey, Arc<Resource>, SnapshotTx)],
    ) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cores.min(proxies.len() / MIN_PROXIES_PER_THREAD).max(1);
        if workers == 1 {
            for (key, dp, tx) in proxies {
                self.generate_one(view, seq, key, dp, tx);
            }
            return;
        }
        let chunk = proxies.len().div_ceil(workers);
        std::thread::scope(|scope| {
            for part in proxies.chunks(chunk) {
                scope.spawn(move || {
                    for (key, dp, tx) in part {
                        self.generate_one(view, seq, key, dp, tx);
                    }
                });
            }
        });
    }

    /// Generates one proxy from `view` (number `seq`) and publishes the result
    /// unless it is unchanged, or a snapshot from a newer view is already out.
    fn generate_one(
        &self,
        view: &MeshView,
        seq: u64,
        key: &ProxyKey,
        dp: &Resource,
        tx: &SnapshotTx,
    ) {
        let started = Instant::now();
        let result = (self.inner.generator)(view, dp).map(|mut snapshot| {
            if let Some(tls) = &view.mtls {
                self.add_secrets(view, tls, key, dp, &mut snapshot);
            }
            snapshot
        });
        let took = started.elapsed();
        let (stats, metrics) = (&self.inner.stats, &self.inner.metrics);
        stats.generations.fetch_add(1, Ordering::Relaxed);
        add_nanos(&stats.generation_nanos, took);
        match result {
            Ok(snapshot) => {
                let snapshot = self
                    .interners()
                    .entry(key.mesh.clone())
                    .or_default()
                    .intern(&snapshot);
                let generated = self.publish(key, seq, tx, snapshot);
                metrics.generated("dataplane", took, Some(generated));
            }
            Err(e) => {
                metrics.generated("dataplane", took, None);
                tracing::warn!(proxy = %key, error = %e, "xDS: generation failed; the proxy keeps its last configuration");
            }
        }
    }

    /// Regenerates the connected zone proxies (only `only` when given) from every
    /// mesh's current view.
    fn generate_zone_proxies(&self, only: Option<&ProxyKey>) {
        let (seq, views, proxies) = {
            let state = self.lock();
            let proxies: Vec<(ProxyKey, Arc<Resource>, SnapshotTx)> = state
                .proxies
                .iter()
                .filter(|(k, _)| k.is_zone_proxy() && only.is_none_or(|o| o == *k))
                .filter_map(|(k, e)| dataplane_of(&state, k).map(|r| (k.clone(), r, e.tx.clone())))
                .collect();
            if proxies.is_empty() {
                return;
            }
            let mut views: Vec<Arc<MeshView>> =
                state.views.values().map(|(_, v)| v.clone()).collect();
            views.sort_by(|a, b| a.mesh.meta.name.cmp(&b.mesh.meta.name));
            (state.last_view_seq, views, proxies)
        };
        for (key, resource, tx) in proxies {
            let started = Instant::now();
            let result = match resource.resource_type() {
                ResourceType::ZoneIngress => generate::ingress::generate(&views, &resource),
                _ => generate::egress::generate(&views, &resource).map(|mut snap| {
                    self.add_egress_secrets(&views, &key, &resource, &mut snap);
                    snap
                }),
            };
            let took = started.elapsed();
            self.inner.stats.generations.fetch_add(1, Ordering::Relaxed);
            let proxy_type = match resource.resource_type() {
                ResourceType::ZoneIngress => "ingress",
                _ => "egress",
            };
            match result {
                Ok(snapshot) => {
                    let generated = self.publish(&key, seq, &tx, snapshot);
                    self.inner
                        .metrics
                        .generated(proxy_type, took, Some(generated));
                }
                Err(e) => {
                    self.inner.metrics.generated(proxy_type, took, None);
                    tracing::warn!(proxy = %key, error = %e, "xDS: generation failed; the proxy keeps its last configuration");
                }
            }
        }
    }

    /// Publishes `snapshot` (from view number `seq`) to `key`'s streams unless it
    /// is unchanged or a snapshot from a newer view is already out; says which.
    /// A published snapshot is stamped with its time (for `xds_delivery`).
    fn publish(
        &self,
        key: &ProxyKey,
        seq: u64,
        tx: &SnapshotTx,
        mut snapshot: Snapshot,
    ) -> Generated {
        let mut outdated = false;
        let changed = tx.tx.send_if_modified(|cur| {
            if seq < tx.view_seq.load(Ordering::Relaxed) {
                outdated = true;
                return false;
            }
            tx.view_seq.store(seq, Ordering::Relaxed);
            if cur.as_ref().is_some_and(|c| same_snapshot(c, &snapshot)) {
                false
            } else {
                self.inner.metrics.published(&snapshot);
                snapshot.stamp(tokio::time::Instant::now());
                *cur = Some(snapshot);
                true
            }
        });
        if outdated {
            tracing::debug!(proxy = %key, "xDS cache: dropped a generation from an older mesh view");
        }
        if changed {
            self.inner.stats.published.fetch_add(1, Ordering::Relaxed);
            Generated::Changed
        } else {
            Generated::Same
        }
    }

    /// Adds the mesh's SDS secrets to `key`'s snapshot: the trusted CAs, and the
    /// proxy's certificate (issued or renewed when due). Without a usable CA the
    /// certificate is missing and the proxy's mTLS traffic fails closed.
    fn add_secrets(
        &self,
        view: &MeshView,
        tls: &generate::mtls::MeshTls,
        key: &ProxyKey,
        dp: &Resource,
        snapshot: &mut Snapshot,
    ) {
        let ids = &self.inner.identities;
        let selected = view.identity.select(dp);
        if !tls.mesh_mtls && selected.is_none() {
            // Neither Mesh mTLS nor a MeshIdentity: plaintext, no certificate to
            // keep or renew.
            ids.remove(key);
            return;
        }
        let plan = ids.current_plan(&key.mesh).unwrap_or_else(|| {
            ids.plan(
                tls,
                &self.connected(&key.mesh),
                &self.trust_domains(view),
                false,
            )
        });
        let mut secrets = weft_sync::delta::TypeResources::new();
        secrets.insert_hashed(tls.ca_secret_name(), plan.ca_secret.clone());
        let issued = match &selected {
            Some(sel) => match self
                .inner
                .zone_cas
                .get()
                .and_then(|c| c.get(&key.mesh, &sel.name))
            {
                Some(ca) => ids.identity_secret(key, tls, sel, &ca, &plan),
                None => Err(format!(
                    "MeshIdentity {:?}: this zone has no CA for it yet",
                    sel.name
                )),
            },
            None => ids.secret(key, dp, tls, &plan),
        };
        match issued {
            Ok(identity) => {
                secrets.insert_hashed(tls.identity_secret_name(), identity);
                if let Some(info) = self.inner.identities.info(key) {
                    let persisted = info.to_persisted();
                    if self.inner.insights.set_certificate(key, info) {
                        self.inner.presence.certificate(key, persisted);
                    }
                }
            }
            Err(e) => {
                // Retried on the next change, or after a pause (not in a loop).
                ids.defer(key, RETRY_ISSUANCE);
                self.inner.metrics.generation_failed();
                tracing::warn!(proxy = %key, error = %e, "xDS: no workload certificate for the proxy; its mTLS traffic fails until this is fixed");
            }
        }
        snapshot.set_type(generate::mtls::SECRET_TYPE, secrets);
    }

    /// Adds to egress `key`'s snapshot, for each mesh it serves, the mesh's
    /// trusted CAs and the egress's certificate (`spiffe://<mesh>/zone-egress`),
    /// issued and renewed like a sidecar's under the key `<mesh>/~zone-egress/<name>`.
    fn add_egress_secrets(
        &self,
        views: &[Arc<MeshView>],
        key: &ProxyKey,
        egress: &Resource,
        snapshot: &mut Snapshot,
    ) {
        let ids = &self.inner.identities;
        let mut secrets = weft_sync::delta::TypeResources::new();
        // Certificates for meshes it no longer serves go (no renewal for them).
        let owner = egress_owner(key);
        let served: BTreeSet<&str> = generate::egress::served(views)
            .map(|v| v.mesh.meta.name.as_str())
            .collect();
        ids.remove_where(|k| k.name == owner && !served.contains(k.mesh.as_str()));
        for view in generate::egress::served(views) {
            let Some(tls) = &view.mtls else { continue };
            let mesh = &view.mesh.meta.name;
            let plan = ids.current_plan(mesh).unwrap_or_else(|| {
                ids.plan(tls, &self.connected(mesh), &self.trust_domains(view), false)
            });
            secrets.insert_hashed(tls.ca_secret_name(), plan.ca_secret.clone());
            let per_mesh = ProxyKey {
                mesh: mesh.clone(),
                name: owner.clone(),
            };
            match ids.secret(&per_mesh, egress, tls, &plan) {
                Ok(identity) => secrets.insert_hashed(tls.identity_secret_name(), identity),
                Err(e) => {
                    ids.defer(&per_mesh, RETRY_ISSUANCE);
                    self.inner.metrics.generation_failed();
                    tracing::warn!(proxy = %key, %mesh, error = %e, "xDS: no certificate for the zone egress; its external traffic fails until this is fixed");
                }
            }
        }
        snapshot.set_type(generate::mtls::SECRET_TYPE, secrets);
    }

    /// Where meshes to regenerate are sent (a change the store does not show,
    /// such as a CA appearing in this zone).
    pub fn dirty_sender(&self) -> mpsc::UnboundedSender<String> {
        self.inner.dirty.clone()
    }

    /// The zone's MeshIdentity CAs, for issuing identity certificates.
    pub fn set_zone_cas(&self, cas: Arc<crate::identity::ZoneCas>) {
        let _ = self.inner.zone_cas.set(cas);
    }

    /// The trust domains `view`'s proxies trust beside the Mesh's CAs: its
    /// MeshTrusts and this zone's own MeshIdentity CAs.
    fn trust_domains(&self, view: &MeshView) -> BTreeMap<String, String> {
        let mesh = &view.mesh.meta.name;
        let mut domains = view.identity.trusts.clone();
        // The mesh's own domain is the Mesh CA's, never a MeshTrust's; this zone's
        // domains are its own CAs' (a MeshTrust cannot add to them).
        domains.remove(mesh);
        if let Some(cas) = self.inner.zone_cas.get() {
            for (td, pem) in cas.domains(mesh) {
                domains.insert(td, pem);
            }
        }
        domains
    }

    /// The proxies of `mesh` a CA rotation waits for: every proxy the cache
    /// knows, connected or within its grace period (an Envoy whose stream is down
    /// still holds, and presents, what it was sent).
    fn connected(&self, mesh: &str) -> Vec<ProxyKey> {
        self.lock()
            .proxies
            .keys()
            .filter(|k| k.mesh == mesh)
            .cloned()
            .collect()
    }

    /// `key` has ACKed these secrets (name → version): a CA rotation of its mesh
    /// may move on.
    pub fn secrets_acked(&self, key: &ProxyKey, held: &BTreeMap<String, String>) {
        if self.inner.identities.acked(key, held) {
            let _ = self.inner.dirty.send(key.mesh.clone());
        }
    }

    /// A mesh's mTLS as the zone runs it: the trusted CAs and SPIFFE trust
    /// domains, the issuing one, and
    /// each connected proxy's certificate and trust (`None`: mTLS off or the mesh
    /// unknown).
    pub fn mesh_trust(&self, mesh: &str) -> Option<serde_json::Value> {
        let view = self.lock().views.get(mesh).map(|(_, v)| v.clone())?;
        let tls = view.mtls.as_ref()?;
        let plan = self.inner.identities.current_plan(mesh)?;
        let name = |f: &weft_security::pki::Fingerprint| {
            tls.backend_of(f)
                .map_or_else(|| f.to_string(), |b| b.backend.clone())
        };
        let mut connected = self.connected(mesh);
        connected.sort_by(|a, b| a.name.cmp(&b.name));
        Some(serde_json::json!({
            "mesh": mesh,
            "enabledBackend": tls.backend,
            "mode": tls.mode,
            "trusted": plan.bundle.iter().map(name).collect::<Vec<_>>(),
            "issuingBackend": plan.issuer.as_ref().ok().map(|(f, _)| name(f)),
            "rotating": plan.rotating,
            "trustDomains": plan.trust_domains,
            "proxies": self.inner.identities.mesh_state(tls, &connected),
        }))
    }

    /// What the proxy's insight shows of its certificate.
    pub fn certificate(&self, key: &ProxyKey) -> Option<super::identity::CertInfo> {
        self.inner.identities.info(key)
    }

    /// One stream of `key` closed.
    fn disconnected(&self, key: &ProxyKey) {
        let epoch = {
            let mut state = self.lock();
            let Some(entry) = state.proxies.get_mut(key) else {
                return;
            };
            entry.streams = entry.streams.saturating_sub(1);
            if entry.streams > 0 {
                return;
            }
            self.inner.metrics.connected_proxies.dec();
            entry.epoch
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.clone();
        let key = key.clone();
        rt.spawn(async move {
            tokio::time::sleep(cache.inner.config.grace).await;
            cache.expire(&key, epoch).await;
        });
    }

    /// Deletes `key`'s Dataplane when no stream reconnected since `epoch`.
    async fn expire(&self, key: &ProxyKey, epoch: u64) {
        {
            let mut state = self.lock();
            match state.proxies.get(key) {
                Some(e) if e.streams == 0 && e.epoch == epoch => {
                    state.proxies.remove(key);
                    self.inner.insights.remove(key);
                    self.inner.identities.remove(key);
                    let owner = egress_owner(key);
                    self.inner.identities.remove_where(|k| k.name == owner);
                }
                _ => return,
            }
        }
        let rkey = key.resource_key();
        if !key.is_zone_proxy() {
            super::presence::forget(self.inner.store.as_ref(), key).await;
        }
        match self.inner.store.delete(&rkey, None).await {
            Ok(_) => {
                tracing::info!(proxy = %key, "xDS: proxy gone for the grace period; Dataplane deleted")
            }
            Err(StoreError::NotFound(_)) | Err(StoreError::MeshNotFound(_)) => {}
            Err(e) => {
                tracing::warn!(proxy = %key, error = %e, "xDS: cannot delete the Dataplane of a gone proxy")
            }
        }
        // A proxy that reconnected while the delete ran gets its Dataplane back.
        let back = self.lock().proxies.get(key).map(|e| e.presented.clone());
        if let Some(dp) = back
            && let Err(e) = upsert_dataplane(self.inner.store.as_ref(), &dp).await
        {
            tracing::warn!(proxy = %key, error = %e, "xDS: cannot restore the Dataplane of a reconnected proxy");
        }
    }
}

async fn sleep_until_renewal(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The Dataplane (or zone proxy) to generate `key` from: the stored one, else
/// the presented one.
fn dataplane_of(state: &State, key: &ProxyKey) -> Option<Arc<Resource>> {
    let rkey = key.resource_key();
    let stored = if key.is_zone_proxy() {
        state.zone_proxies.get(&rkey)
    } else {
        state.resources.get(&key.mesh).and_then(|m| m.get(&rkey))
    };
    stored
        .cloned()
        .or_else(|| state.proxies.get(key).map(|e| e.presented.clone()))
}

/// The name under which zone egress `key` holds its per-mesh certificates.
fn egress_owner(key: &ProxyKey) -> String {
    format!("{}/{}", key.mesh, key.name)
}

fn is_zone_proxy_type(ty: ResourceType) -> bool {
    matches!(ty, ResourceType::ZoneIngress | ResourceType::ZoneEgress)
}

/// Equal type URLs, each type the same shared map or the same names and versions
/// (versions are content hashes), without comparing payloads.
fn same_snapshot(a: &Snapshot, b: &Snapshot) -> bool {
    a.type_urls().eq(b.type_urls())
        && a.type_urls().all(|t| match (a.get(t), b.get(t)) {
            (Some(x), Some(y)) => {
                std::ptr::eq(x, y)
                    || (x.len() == y.len()
                        && x.iter()
                            .zip(y.iter())
                            .all(|((nx, ex), (ny, ey))| nx == ny && ex.version == ey.version))
            }
            _ => false,
        })
}

fn add_nanos(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Stores the Dataplane (or ZoneIngress, ZoneEgress) a proxy presented, unless
/// the store already has it as is. A ZoneIngress keeps the available services
/// the zone computed for it (the proxy's file has none).
pub async fn upsert_dataplane(
    store: &dyn ResourceStore,
    dataplane: &Resource,
) -> Result<(), StoreError> {
    let existing = store.get(&dataplane.key()).await?;
    upsert_over(store, dataplane, existing).await
}

/// [`upsert_dataplane`] when the caller has already read what is stored
/// (`existing`).
pub async fn upsert_over(
    store: &dyn ResourceStore,
    dataplane: &Resource,
    existing: Option<Resource>,
) -> Result<(), StoreError> {
    let mut presented = dataplane.clone();
    if let Some(existing) = existing {
        if let (
            weft_model::resource::Spec::ZoneIngress(stored),
            weft_model::resource::Spec::ZoneIngress(new),
        ) = (&existing.spec, &mut presented.spec)
            && new.available_services.is_empty()
        {
            new.available_services = stored.available_services.clone();
        }
        if existing.spec == presented.spec && existing.meta.labels == presented.meta.labels {
            return Ok(());
        }
    }
    weft_store::put(store, presented, None).await?;
    Ok(())
}

/// Held by a stream; dropping it marks the stream closed.
pub struct ConnectionGuard {
    cache: Cache,
    key: ProxyKey,
    /// The stream's DataplaneInsight subscription (sidecars only).
    subscription: Option<String>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(id) = self.subscription.take() {
            self.cache.inner.presence.closed(&self.key, id);
        }
        self.cache.disconnected(&self.key);
    }
}

#[cfg(test)]
mod tests;
