//! Whole control planes in this test process, on free loopback ports, each in
//! its own temp data dir (or a given one, for restarts).

use crate::client::Client;
use std::path::Path;
use weft_runtime::shutdown::CancellationToken;

/// What stopping a control plane needs, whichever kind it is.
enum Handle {
    Global(weft_global::Bound),
    Zone(weft_zone::Bound),
}

pub struct Running {
    pub api: Client,
    pub store: std::sync::Arc<dyn weft_store::ResourceStore>,
    handle: Option<Handle>,
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl Running {
    /// A control plane just built, its API reached with its admin token.
    fn started(handle: Handle, shutdown: CancellationToken) -> Self {
        let (api_address, token, store) = match &handle {
            Handle::Global(b) => (b.api_address, &b.token, b.store.clone()),
            Handle::Zone(b) => (b.api_address, &b.token, b.store.clone()),
        };
        let api = Client::new(format!("http://{api_address}"), token.expose());
        Running {
            api,
            store,
            handle: Some(handle),
            shutdown,
            _dir: None,
        }
    }

    /// Waits for whatever control plane is still held to stop.
    async fn wait_for_handle(&mut self) -> Result<(), weft_runtime::supervise::ComponentError> {
        match self.handle.take() {
            Some(Handle::Global(b)) => b.wait().await,
            Some(Handle::Zone(b)) => b.wait().await,
            None => Ok(()),
        }
    }

    /// The global's handles (zone tokens, KDS TLS, ...); `None` for a zone.
    pub fn global(&self) -> Option<&weft_global::Bound> {
        match &self.handle {
            Some(Handle::Global(b)) => Some(b),
            _ => None,
        }
    }

    /// The zone's handles (xDS endpoint, insights, ...); `None` for a global.
    pub fn zone(&self) -> Option<&weft_zone::Bound> {
        match &self.handle {
            Some(Handle::Zone(b)) => Some(b),
            _ => None,
        }
    }

    /// Aborts components as a crash would.
    pub fn control(&self) -> weft_runtime::supervise::Control {
        match &self.handle {
            Some(Handle::Global(b)) => b.control.clone(),
            Some(Handle::Zone(b)) => b.control.clone(),
            None => weft_runtime::supervise::Control::default(),
        }
    }

    /// Waits for the control plane to stop by itself (no shutdown is sent): what
    /// its process would exit with.
    pub async fn wait(mut self) -> Result<(), weft_runtime::supervise::ComponentError> {
        self.wait_for_handle().await
    }

    /// Cancels and waits for a clean stop (the store is closed afterwards).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Err(e) = self.wait_for_handle().await {
            panic!("control plane stopped with an error: {e}");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A global in a fresh temp dir.
pub async fn global() -> Running {
    let dir = fresh_dir();
    let mut g = global_in(dir.path()).await;
    g._dir = Some(dir);
    g
}

/// A global on an existing data dir.
pub async fn global_in(dir: &Path) -> Running {
    global_from(weft_global::GlobalConfig::for_test(dir), None).await
}

/// A global in a fresh temp dir whose components use the store through `layer`.
pub async fn global_with(layer: weft_api::server::StoreLayer) -> Running {
    let dir = fresh_dir();
    let mut g = global_from(weft_global::GlobalConfig::for_test(dir.path()), Some(layer)).await;
    g._dir = Some(dir);
    g
}

/// A global on an existing data dir, its test config changed by `tune` first
/// (e.g. a short `zone_cleanup_after`).
pub async fn global_configured(
    dir: &Path,
    tune: impl FnOnce(&mut weft_global::GlobalConfig),
) -> Running {
    let mut config = weft_global::GlobalConfig::for_test(dir);
    tune(&mut config);
    global_from(config, None).await
}

/// With `layer`, one attempt; without, a restart on a used data dir waits up to
/// [`LOCK_WAIT`] for the store lock.
async fn global_from(
    config: weft_global::GlobalConfig,
    layer: Option<weft_api::server::StoreLayer>,
) -> Running {
    let shutdown = CancellationToken::new();
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let retry = layer.is_none();
    let mut layer = layer;
    loop {
        let this = layer.take().unwrap_or_else(weft_api::server::no_layer);
        match weft_global::build_with(config.clone(), this, shutdown.clone()).await {
            Ok(b) => return Running::started(Handle::Global(b), shutdown),
            Err(e) if retry && still_locked(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("global failed to start: {e}"),
        }
    }
}

/// How long a restart on the same data dir waits for the previous instance's
/// store lock: in a test process, the tasks of the stopped control plane's last
/// connections may still hold the store for a moment after it stopped (a real
/// process releases it when it exits).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn still_locked(e: &weft_api::server::ServerError) -> bool {
    e.to_string().contains("could not acquire lock")
}

/// A standalone zone named `zone` in a fresh temp dir.
pub async fn zone(zone: Option<&str>) -> Running {
    zone_with(zone, weft_api::server::no_layer()).await
}

/// A standalone zone whose components use the store through `layer`.
pub async fn zone_with(zone: Option<&str>, layer: weft_api::server::StoreLayer) -> Running {
    let dir = fresh_dir();
    let mut config = weft_zone::ZoneConfig::for_test(dir.path());
    config.zone = zone.map(str::to_string);
    let mut z = zone_from(config, Some(layer)).await;
    z._dir = Some(dir);
    z
}

/// A zone built from `config`, its components using the store through `layer`.
/// With `layer`, one attempt; without, a restart on a used data dir waits up to
/// [`LOCK_WAIT`] for the store lock.
async fn zone_from(
    config: weft_zone::ZoneConfig,
    layer: Option<weft_api::server::StoreLayer>,
) -> Running {
    let shutdown = CancellationToken::new();
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let retry = layer.is_none();
    let mut layer = layer;
    loop {
        let this = layer.take().unwrap_or_else(weft_api::server::no_layer);
        match weft_zone::build_with(config.clone(), this, shutdown.clone()).await {
            Ok(b) => return Running::started(Handle::Zone(b), shutdown),
            Err(e) if retry && still_locked(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("zone failed to start: {e}"),
        }
    }
}

fn fresh_dir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temp dir: {e}"),
    }
}

/// Issues a zone token through global's API and builds what a zone needs to dial
/// global's KDS: its address, the token, and the CA the token pins.
pub async fn kds_client_config(global: &Running, zone: &str) -> weft_zone::kds::KdsClientConfig {
    let Some(bound) = global.global() else {
        panic!("kds_client_config needs a global");
    };
    let resp = global
        .api
        .request(reqwest::Method::POST, "/tokens/zone")
        .json(&serde_json::json!({"zone": zone, "validFor": "1h"}))
        .send()
        .await;
    let token = match resp {
        Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
        Ok(r) => panic!("POST /tokens/zone answered {}", r.status()),
        Err(e) => panic!("POST /tokens/zone failed: {e}"),
    };
    let pin = weft_security::tokens::ZoneClaims::read_unverified(token.trim())
        .ok()
        .and_then(|c| c.kds_ca_fingerprint);
    let Some(pin) = pin else {
        panic!("the zone token pins no KDS CA");
    };
    let global_url = format!("grpcs://localhost:{}", bound.kds_address.port());
    weft_zone::kds::KdsClientConfig {
        zone: zone.to_string(),
        global: match global_url.parse() {
            Ok(u) => u,
            Err(e) => panic!("{global_url}: {e}"),
        },
        token: token.trim().into(),
        trust: std::sync::Arc::new(weft_security::pki::ServerTrust::Pinned(pin)),
    }
}

/// A zone named `zone` in a fresh temp dir, federated with `global`.
pub async fn federated_zone(global: &Running, zone: &str) -> Running {
    let dir = fresh_dir();
    let mut z = federated_zone_in(global, zone, dir.path()).await;
    z._dir = Some(dir);
    z
}

/// A zone named `zone` on an existing data dir (e.g. a restart), federated with `global`.
pub async fn federated_zone_in(global: &Running, zone: &str, dir: &Path) -> Running {
    let client = kds_client_config(global, zone).await;
    federated_zone_with(client, dir).await
}

/// A zone dialing global with exactly `client` (e.g. a bad or expired token),
/// on an existing data dir.
pub async fn federated_zone_with(client: weft_zone::kds::KdsClientConfig, dir: &Path) -> Running {
    let mut config = weft_zone::ZoneConfig::for_test(dir);
    config.zone = Some(client.zone.clone());
    config.federation = Some(weft_zone::config::Federation {
        global: client.global.to_string(),
        token: client.token.clone(),
        trust: client.trust.clone(),
    });
    zone_from(config, None).await
}
