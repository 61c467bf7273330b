//! A mesh of real processes: a standalone zone, echo apps, and per app `weft-dp` with
//! its Envoy, on loopback. Each app gets its own 127.x.y.z address and free ports;
//! readiness is Envoy's admin `/ready` = LIVE with the proxy's listeners present.
//! Every process's log is kept and printed when a test fails; dropping the harness
//! (or an [`App`]) kills the process groups, so no Envoy outlives a test.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_testbed::TestbedError> {
//! use weft_testbed::mesh::{AppSpec, MeshHarness};
//! let mut mesh = MeshHarness::start().await?;
//! mesh.start_app(AppSpec::http("backend", "backend-1")).await?;
//! let client = mesh.start_app(AppSpec::http("client", "client-1").outbound("backend")).await?;
//! let url = client.outbound_url("backend", "/");
//! # Ok(()) }
//! ```

pub mod envoy_admin;
pub mod traffic;

pub use envoy_admin::EnvoyAdmin;
pub use traffic::{Tally, request_loop};

use crate::process::{ControlPlane, TestbedError, bin_dir};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a proxy may take to become ready (bootstrap, xDS, listeners).
pub const PROXY_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(50);

/// How [`AppSpec::outbound_mes`] marks a MeshExternalService outbound.
const MES_PREFIX: &str = "mes:";

/// Which token a proxy presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenChoice {
    /// A token issued by the zone for this Dataplane's mesh and name.
    Issue,
    /// No token at all.
    Missing,
    /// This exact text.
    Given(String),
}

/// An app to run: an echo server with a sidecar.
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub mesh: String,
    pub service: String,
    /// Also the Dataplane's name.
    pub instance: String,
    /// `kuma.io/protocol` of the inbound: `http` or `tcp` (the echo app follows).
    pub protocol: String,
    /// Services this app consumes (one outbound listener each).
    pub outbounds: Vec<String>,
    /// `delta` or `sotw`.
    pub xds_api: String,
    pub token: TokenChoice,
    /// Extra `weft-echo` flags (e.g. `--fail-rate 0.5`).
    pub echo_args: Vec<String>,
    /// Extra inbound tags.
    pub tags: BTreeMap<String, String>,
    /// The Dataplane's labels.
    pub labels: BTreeMap<String, String>,
}

impl AppSpec {
    /// An HTTP service instance in mesh `default`, delta xDS, a token issued for it.
    pub fn http(service: &str, instance: &str) -> Self {
        AppSpec {
            mesh: "default".into(),
            service: service.into(),
            instance: instance.into(),
            protocol: "http".into(),
            outbounds: Vec::new(),
            xds_api: "delta".into(),
            token: TokenChoice::Issue,
            echo_args: Vec::new(),
            tags: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }

    /// A TCP service instance (the echo app in `--tcp` mode).
    pub fn tcp(service: &str, instance: &str) -> Self {
        AppSpec {
            protocol: "tcp".into(),
            ..Self::http(service, instance)
        }
    }

    pub fn outbound(mut self, service: &str) -> Self {
        self.outbounds.push(service.into());
        self
    }

    /// An outbound to MeshExternalService `name` (`backendRef`); its URL is
    /// `outbound_url("mes:<name>", ...)`.
    pub fn outbound_mes(mut self, name: &str) -> Self {
        self.outbounds.push(format!("{MES_PREFIX}{name}"));
        self
    }

    pub fn sotw(mut self) -> Self {
        self.xds_api = "sotw".into();
        self
    }

    pub fn token(mut self, token: TokenChoice) -> Self {
        self.token = token;
        self
    }

    pub fn echo_arg(mut self, arg: &str) -> Self {
        self.echo_args.push(arg.into());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// A process in its own process group, killed (the whole group) on drop; its stdout
/// and stderr go to one log file.
pub struct GroupProcess {
    pub name: String,
    child: Child,
    log_path: PathBuf,
}

impl GroupProcess {
    /// Spawns `cmd` in a new process group, logging to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Self, TestbedError> {
        use std::os::unix::process::CommandExt;
        let log_path = log_dir.join(format!("{name}.log"));
        let io = |source| TestbedError::Io {
            what: log_path.display().to_string(),
            source,
        };
        let log = std::fs::File::create(&log_path).map_err(io)?;
        let err = log.try_clone().map_err(io)?;
        let child = cmd
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .map_err(|source| TestbedError::Spawn {
                bin: name.into(),
                source,
            })?;
        Ok(GroupProcess {
            name: name.into(),
            child,
            log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The exit status if the process has exited.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits (polling) up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            tokio::time::sleep(POLL).await;
        }
        None
    }

    /// Sends `signal` to the process only (not its group).
    pub fn signal(&self, signal: rustix::process::Signal) -> std::io::Result<()> {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32)
            .ok_or_else(|| std::io::Error::other("pid 0"))?;
        rustix::process::kill_process(pid, signal).map_err(std::io::Error::from)
    }

    /// SIGKILL to the whole group, then reap.
    pub fn kill(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.pid() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GroupProcess {
    fn drop(&mut self) {
        self.kill();
        crate::process::print_log_if_failing(&self.name, || self.log());
    }
}

/// A running app: its echo server and its sidecar (`weft-dp` + Envoy).
pub struct App {
    pub spec: AppSpec,
    pub ip: Ipv4Addr,
    /// Where the echo app listens.
    pub app_port: u16,
    /// Envoy's inbound listener port (on `ip`).
    pub inbound_port: u16,
    /// Outbound listener port per consumed service (on `ip`).
    pub outbound_ports: BTreeMap<String, u16>,
    pub admin: EnvoyAdmin,
    // Dropped first: the proxy goes before its app.
    pub dp: GroupProcess,
    pub echo: GroupProcess,
    pub dataplane_yaml: String,
}

impl App {
    /// `http://ip:port<path>` of this app's outbound listener for `service`.
    pub fn outbound_url(&self, service: &str, path: &str) -> String {
        let port = self
            .outbound_ports
            .get(service)
            .copied()
            .unwrap_or_default();
        format!("http://{}:{port}{path}", self.ip)
    }

    pub fn outbound_address(&self, service: &str) -> SocketAddr {
        let port = self
            .outbound_ports
            .get(service)
            .copied()
            .unwrap_or_default();
        SocketAddr::from((self.ip, port))
    }

    /// Waits (up to 10 s) until this app's Envoy holds exactly `n` healthy hosts
    /// of `cluster`: the endpoints arrived before traffic starts.
    pub async fn until_healthy_hosts(&self, cluster: &str, n: usize) {
        let what = format!("{n} healthy {cluster} endpoint(s)");
        crate::wait::until(Duration::from_secs(10), &what, || async {
            self.admin
                .cluster_hosts(cluster)
                .await
                .is_ok_and(|h| h.values().filter(|f| *f == "healthy").count() == n)
        })
        .await;
    }

    /// The listener names Envoy must have before the proxy counts as ready.
    pub fn expected_listeners(&self) -> Vec<String> {
        let mut names = vec![format!("inbound:{}:{}", self.ip, self.inbound_port)];
        for port in self.outbound_ports.values() {
            names.push(format!("outbound:{}:{port}", self.ip));
        }
        names
    }

    /// Polls until Envoy is LIVE with its listeners, or fails with weft-dp's log.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let expected = self.expected_listeners();
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(status) = self.dp.try_exit() {
                return Err(not_ready(&self.dp, format!("weft-dp exited with {status}")));
            }
            match self.admin.readiness(&expected).await {
                Ok(()) => return Ok(()),
                Err(why) => last = why,
            }
            tokio::time::sleep(POLL).await;
        }
        Err(not_ready(
            &self.dp,
            format!("not ready within {timeout:?}: {last}"),
        ))
    }
}

fn not_ready(dp: &GroupProcess, why: String) -> TestbedError {
    TestbedError::NotReady {
        bin: format!("{} ({why})", dp.name),
        waited: PROXY_READY_TIMEOUT,
        log: dp.log(),
    }
}

/// A zone ingress or egress: `weft-dp --proxy-type ingress|egress` and its
/// Envoy, listening on `ip:port` (an ingress advertises that address too).
pub struct ZoneProxy {
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub admin: EnvoyAdmin,
    pub dp: GroupProcess,
}

impl ZoneProxy {
    /// Waits until the proxy's Envoy is LIVE (it has listeners only once there
    /// is something to serve).
    pub async fn wait_live(&mut self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(status) = self.dp.try_exit() {
                return Err(not_ready(&self.dp, format!("weft-dp exited with {status}")));
            }
            match self.admin.server_state().await {
                Ok(s) if s == "LIVE" => return Ok(()),
                Ok(s) => last = s,
                Err(e) => last = e,
            }
            tokio::time::sleep(POLL).await;
        }
        Err(not_ready(
            &self.dp,
            format!("not live within {timeout:?}: {last}"),
        ))
    }
}

/// A standalone zone with apps and their sidecars.
pub struct MeshHarness {
    // Apps and ingresses go before the zone.
    pub apps: Vec<App>,
    pub ingresses: Vec<ZoneProxy>,
    pub egresses: Vec<ZoneProxy>,
    pub zone: ControlPlane,
    /// The zone name the echo apps report (`--zone`), if any.
    zone_name: Option<String>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl MeshHarness {
    /// Starts a standalone zone (API and xDS on free loopback ports, mesh `default`).
    pub async fn start() -> Result<Self, TestbedError> {
        Self::start_with(&[]).await
    }

    /// Like [`Self::start`] with extra `weft-zone run` flags.
    pub async fn start_with(extra: &[&str]) -> Result<Self, TestbedError> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let zone = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = extra.iter().map(String::as_str).collect();
            ControlPlane::zone(&args)
        })
        .await
        .map_err(|e| TestbedError::Build(format!("the zone start task failed: {e}")))??;
        Self::on_zone(zone, None)
    }

    /// Runs apps against a zone started elsewhere (e.g. a federated one from
    /// [`ControlPlane::federated_zone`]); `zone_name` is what the echo apps report.
    /// The caller makes sure the apps' mesh exists there.
    pub fn on_zone(zone: ControlPlane, zone_name: Option<&str>) -> Result<Self, TestbedError> {
        let dir = tempfile::tempdir().map_err(|source| TestbedError::Io {
            what: "temp dir".into(),
            source,
        })?;
        Ok(MeshHarness {
            apps: Vec::new(),
            ingresses: Vec::new(),
            egresses: Vec::new(),
            zone,
            zone_name: zone_name.map(str::to_string),
            dir,
            http: reqwest::Client::new(),
        })
    }

    /// The zone's REST client (admin token).
    pub fn api(&self) -> crate::Client {
        crate::Client::new(self.zone.api_url(), self.zone.token())
    }

    /// `POST /tokens/dataplane` with the admin token; `body` as the API takes it.
    pub async fn issue_token(&self, body: serde_json::Value) -> Result<String, TestbedError> {
        let url = format!("{}/tokens/dataplane", self.zone.api_url());
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.zone.token())
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| TestbedError::ZoneToken(format!("POST {url}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| TestbedError::ZoneToken(format!("POST {url}: {e}")))?;
        if !status.is_success() {
            return Err(TestbedError::ZoneToken(format!(
                "POST {url} answered {status}: {text}"
            )));
        }
        Ok(text.trim().to_string())
    }

    /// `POST /tokens/zone` with the admin token: a token of `scope` (`ingress`,
    /// `egress`) for this zone's own proxies.
    pub async fn issue_zone_proxy_token(&self, scope: &str) -> Result<String, TestbedError> {
        let zone = self.zone_name.as_deref().unwrap_or("default");
        let url = format!("{}/tokens/zone", self.zone.api_url());
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.zone.token())
            .json(&serde_json::json!({"zone": zone, "scope": [scope], "validFor": "1h"}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| TestbedError::ZoneToken(format!("POST {url}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| TestbedError::ZoneToken(format!("POST {url}: {e}")))?;
        if !status.is_success() {
            return Err(TestbedError::ZoneToken(format!(
                "POST {url} answered {status}: {text}"
            )));
        }
        Ok(text.trim().to_string())
    }

    /// Starts this zone's ingress `name` on its own loopback address (advertised
    /// as is) and waits until its Envoy is LIVE; it joins `ingresses`.
    pub async fn start_ingress(&mut self, name: &str) -> Result<&ZoneProxy, TestbedError> {
        let proxy = self.spawn_zone_proxy("ingress", name).await?;
        self.ingresses.push(proxy);
        self.ingresses
            .last()
            .ok_or_else(|| TestbedError::Build("no ingress".into()))
    }

    /// Starts this zone's egress `name` on its own loopback address and waits
    /// until its Envoy is LIVE; it joins `egresses`.
    pub async fn start_egress(&mut self, name: &str) -> Result<&ZoneProxy, TestbedError> {
        let proxy = self.spawn_zone_proxy("egress", name).await?;
        self.egresses.push(proxy);
        self.egresses
            .last()
            .ok_or_else(|| TestbedError::Build("no egress".into()))
    }

    async fn spawn_zone_proxy(&self, kind: &str, name: &str) -> Result<ZoneProxy, TestbedError> {
        let ip = next_ip();
        let port = free_port(ip)?;
        let admin_port = free_port(Ipv4Addr::LOCALHOST)?;
        let yaml = if kind == "ingress" {
            format!(
                "type: ZoneIngress\nname: {name}\nnetworking:\n  address: {ip}\n  port: {port}\n  advertisedAddress: {ip}\n  advertisedPort: {port}\n  admin:\n    port: {admin_port}\n"
            )
        } else {
            format!(
                "type: ZoneEgress\nname: {name}\nnetworking:\n  address: {ip}\n  port: {port}\n  admin:\n    port: {admin_port}\n"
            )
        };
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).map_err(|source| TestbedError::Io {
            what: dir.display().to_string(),
            source,
        })?;
        let token = self.issue_zone_proxy_token(kind).await?;
        let (file, token_file) = (
            dir.join(format!("{kind}.yaml")),
            dir.join(format!("{kind}.token")),
        );
        for (path, text) in [(&file, yaml.as_str()), (&token_file, token.as_str())] {
            std::fs::write(path, text).map_err(|source| TestbedError::Io {
                what: path.display().to_string(),
                source,
            })?;
        }
        let mut dp = Command::new(bin_dir()?.join("weft-dp"));
        dp.arg("run")
            .args(["--proxy-type", kind])
            .args(["--cp-address", &self.zone.api_url()])
            .arg("--dataplane-file")
            .arg(&file)
            .arg("--dataplane-token-file")
            .arg(&token_file)
            .args(["--envoy-log-level", "info", "--bootstrap-timeout", "30s"]);
        let dp = GroupProcess::spawn(&format!("weft-dp {name}"), dp, &dir)?;
        let mut proxy = ZoneProxy {
            name: name.to_string(),
            ip,
            port,
            admin: EnvoyAdmin::new(admin_port),
            dp,
        };
        proxy.wait_live(PROXY_READY_TIMEOUT).await?;
        Ok(proxy)
    }

    /// Starts an app and its sidecar and waits until the proxy is ready.
    pub async fn start_app(&mut self, spec: AppSpec) -> Result<&App, TestbedError> {
        let started = Instant::now();
        let mut app = self.spawn_app(spec).await?;
        app.wait_ready(PROXY_READY_TIMEOUT).await?;
        eprintln!(
            "mesh: {} ({} xDS) ready in {:?}",
            app.spec.instance,
            app.spec.xds_api,
            started.elapsed()
        );
        self.apps.push(app);
        self.apps
            .last()
            .ok_or_else(|| TestbedError::Build("no app".into()))
    }

    /// The smallest mesh with traffic: `backend-1` (service `backend`, delta xDS)
    /// and `client-1` (service `client`, calling `backend`; SotW xDS when
    /// `client_sotw`), ready once the client's Envoy holds the backend endpoint.
    /// Get the client with `app("client-1")`.
    pub async fn start_backend_and_client(
        &mut self,
        client_sotw: bool,
    ) -> Result<(), TestbedError> {
        self.start_app(AppSpec::http("backend", "backend-1"))
            .await?;
        let client = AppSpec::http("client", "client-1").outbound("backend");
        let client = if client_sotw { client.sotw() } else { client };
        self.start_app(client)
            .await?
            .until_healthy_hosts("backend", 1)
            .await;
        Ok(())
    }

    /// Starts an app and its sidecar without waiting (e.g. a proxy expected to be
    /// refused); the caller owns it.
    pub async fn spawn_app(&self, spec: AppSpec) -> Result<App, TestbedError> {
        let ip = next_ip();
        let app_port = free_port(ip)?;
        let inbound_port = free_port(ip)?;
        let admin_port = free_port(Ipv4Addr::LOCALHOST)?;
        let mut outbound_ports = BTreeMap::new();
        for service in &spec.outbounds {
            outbound_ports.insert(service.clone(), free_port(ip)?);
        }
        let dataplane_yaml = dataplane_yaml(
            &spec,
            ip,
            app_port,
            inbound_port,
            admin_port,
            &outbound_ports,
        );
        let app_dir = self.dir.path().join(&spec.instance);
        std::fs::create_dir_all(&app_dir).map_err(|source| TestbedError::Io {
            what: app_dir.display().to_string(),
            source,
        })?;
        let write = |name: &str, text: &str| -> Result<PathBuf, TestbedError> {
            let path = app_dir.join(name);
            std::fs::write(&path, text).map_err(|source| TestbedError::Io {
                what: path.display().to_string(),
                source,
            })?;
            Ok(path)
        };
        let dp_file = write("dataplane.yaml", &dataplane_yaml)?;
        let token = match &spec.token {
            TokenChoice::Issue => {
                let mut body = serde_json::json!({
                    "mesh": spec.mesh, "name": spec.instance, "validFor": "1h"
                });
                // A workload label is pinned by the token, as a MeshIdentity needs.
                if let Some(w) = spec.labels.get("kuma.io/workload") {
                    body["workload"] = serde_json::json!(w);
                }
                Some(self.issue_token(body).await?)
            }
            TokenChoice::Missing => None,
            TokenChoice::Given(t) => Some(t.clone()),
        };
        let bins = bin_dir()?;
        let mut echo = Command::new(bins.join("weft-echo"));
        echo.arg("--address")
            .arg(SocketAddr::from((ip, app_port)).to_string())
            .args(["--service", &spec.service, "--instance", &spec.instance])
            .args(&spec.echo_args);
        if spec.protocol == "tcp" {
            echo.arg("--tcp");
        }
        if let Some(zone) = &self.zone_name {
            echo.args(["--zone", zone]);
        }
        let echo = GroupProcess::spawn(&format!("weft-echo {}", spec.instance), echo, &app_dir)?;
        let mut dp = Command::new(bins.join("weft-dp"));
        dp.arg("run")
            .args(["--cp-address", &self.zone.api_url()])
            .arg("--dataplane-file")
            .arg(&dp_file)
            .args(["--xds-api", &spec.xds_api])
            .args(["--envoy-log-level", "info", "--bootstrap-timeout", "30s"]);
        if let Some(token) = &token {
            dp.arg("--dataplane-token-file")
                .arg(write("dataplane.token", token)?);
        }
        let dp = GroupProcess::spawn(&format!("weft-dp {}", spec.instance), dp, &app_dir)?;
        Ok(App {
            spec,
            ip,
            app_port,
            inbound_port,
            outbound_ports,
            admin: EnvoyAdmin::new(admin_port),
            dp,
            echo,
            dataplane_yaml,
        })
    }

    /// The app named `instance`.
    pub fn app(&self, instance: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.spec.instance == instance)
    }

    /// Every started proxy's update rejections (`*.update_rejected` > 0), by app.
    pub async fn rejected_updates(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for app in &self.apps {
            let rejected = app.admin.rejected_updates().await;
            if !rejected.is_empty() {
                out.insert(app.spec.instance.clone(), rejected);
            }
        }
        out
    }

    /// Keeps the logs of every process (for a test that wants to look at them).
    pub fn log_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MeshHarness {
    fn drop(&mut self) {
        // Stop the proxies before the zone, so nothing reconnects in between.
        self.apps.clear();
        self.ingresses.clear();
        self.egresses.clear();
    }
}

/// The Dataplane of an app (Kuma universal format).
fn dataplane_yaml(
    spec: &AppSpec,
    ip: Ipv4Addr,
    app_port: u16,
    inbound_port: u16,
    admin_port: u16,
    outbounds: &BTreeMap<String, u16>,
) -> String {
    let mut tags = format!(
        "        kuma.io/service: {}\n        kuma.io/protocol: {}\n",
        spec.service, spec.protocol
    );
    for (k, v) in &spec.tags {
        tags.push_str(&format!("        {k}: {v}\n"));
    }
    let mut labels = String::new();
    if !spec.labels.is_empty() {
        labels.push_str("labels:\n");
        for (k, v) in &spec.labels {
            labels.push_str(&format!("  {k}: {v}\n"));
        }
    }
    let mut yaml = format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\n{labels}networking:\n  address: {ip}\n  admin:\n    port: {admin_port}\n  inbound:\n    - port: {inbound_port}\n      servicePort: {app_port}\n      tags:\n{tags}",
        mesh = spec.mesh,
        name = spec.instance,
    );
    if !outbounds.is_empty() {
        yaml.push_str("  outbound:\n");
        for (service, port) in outbounds {
            match service.strip_prefix(MES_PREFIX) {
                Some(mes) => yaml.push_str(&format!(
                    "    - address: {ip}\n      port: {port}\n      backendRef:\n        kind: MeshExternalService\n        name: {mes}\n"
                )),
                None => yaml.push_str(&format!(
                    "    - address: {ip}\n      port: {port}\n      tags:\n        kuma.io/service: {service}\n"
                )),
            }
        }
    }
    yaml
}

/// A loopback address no other app of this test process uses: 127.0.1.1, 127.0.1.2...
fn next_ip() -> Ipv4Addr {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // 127.0.1.1 .. 127.0.1.254, 127.0.2.1 ...: plenty for one test process.
    let (hi, lo) = (1 + n / 254, 1 + n % 254);
    Ipv4Addr::from(0x7f00_0000u32 | ((hi << 8) & 0x00ff_ff00) | lo)
}

/// A port free on `ip` right now, never one this process handed out before: the
/// kernel may give a just-released port to the next `bind(0)`, and two apps
/// spawned at once (the startup-race tests run side by side) would then race for
/// it — one Envoy fails to bind its admin port and the test reads the other's.
fn free_port(ip: Ipv4Addr) -> Result<u16, TestbedError> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..64 {
        let port = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|source| TestbedError::Io {
                what: format!("a free port on {ip}"),
                source,
            })?;
        let mut given = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if given.insert(port) {
            return Ok(port);
        }
    }
    Err(TestbedError::Io {
        what: format!("a port on {ip} not handed out before"),
        source: std::io::Error::other("64 tries gave ports already in use by this test process"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Addresses are distinct loopback addresses, never .0 or .255 in the last byte.
    #[test]
    fn ips_are_distinct_loopback() {
        let ips: Vec<Ipv4Addr> = (0..600).map(|_| next_ip()).collect();
        let set: std::collections::BTreeSet<_> = ips.iter().collect();
        assert_eq!(set.len(), ips.len());
        for ip in ips {
            assert!(ip.is_loopback(), "{ip}");
            assert!(ip.octets()[3] != 0 && ip.octets()[3] != 255, "{ip}");
        }
    }

    // The generated Dataplane is valid and carries the ports and outbounds.
    #[test]
    fn dataplane_is_valid() {
        let spec = AppSpec::http("client", "client-1").outbound("backend");
        let outs = BTreeMap::from([("backend".to_string(), 4000u16)]);
        let yaml = dataplane_yaml(&spec, Ipv4Addr::new(127, 0, 1, 1), 3000, 3001, 3002, &outs);
        let dp = weft_model::resource::parse_resource(yaml.as_bytes(), false).unwrap();
        assert_eq!(dp.meta.name, "client-1");
        assert!(yaml.contains("port: 4000"), "{yaml}");
    }
}
