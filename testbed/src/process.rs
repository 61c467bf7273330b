//! Real processes: starts Weft's binaries on free loopback ports, waits for them
//! to be ready, keeps their logs (printed when a test fails) and stops them when
//! dropped.
//!
//! ```no_run
//! let global = weft_testbed::ControlPlane::global(&[]).unwrap();
//! println!("global API at {} with token {}", global.api_url(), global.token());
//! // A zone process joining it over KDS (TLS, a zone token issued by global's API).
//! let zone = weft_testbed::ControlPlane::federated_zone(&global, "zone-1", &[]).unwrap();
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("cannot build the Weft binaries: {0}")]
    Build(String),
    #[error("cannot start {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("{bin} did not print its ready line within {waited:?}; its log:\n{log}")]
    NotReady {
        bin: String,
        waited: Duration,
        log: String,
    },
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0} is not a global: its ready line has no kds= address")]
    NotGlobal(String),
    #[error("cannot issue a zone token: {0}")]
    ZoneToken(String),
    #[error("a control plane refused {what}: {status} {body}")]
    Refused {
        what: String,
        status: reqwest::StatusCode,
        body: String,
    },
}

/// How long a control plane may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the workspace's binaries, built (once per test process)
/// so they are never stale: `cargo build --bins` with the tests' own profile.
pub fn bin_dir() -> Result<PathBuf, TestbedError> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // target/<profile>/deps/<test-binary>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?
            .to_path_buf();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "weft-global",
            "-p",
            "weft-zone",
            "-p",
            "weft-dp",
            "-p",
            "weft-testbed",
            "--bins",
        ]);
        if release {
            cmd.arg("--release");
        }
        // `cargo test` gives the test process the test crate's own variables
        // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR, ...). Build scripts such as
        // ring's rerun when those change, so inherited they would make this build
        // and the next `cargo test` rebuild each other's dependencies every time.
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if is_crate_env(key) {
                cmd.env_remove(key);
            }
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(dir)
    })
    .clone()
    .map_err(TestbedError::Build)
}

/// Whether cargo sets `key` for the crate it compiles or runs (not a setting of
/// cargo itself, like CARGO_HOME or CARGO_TARGET_DIR, which must be kept).
fn is_crate_env(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "OUT_DIR",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    EXACT.contains(&key) || key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_BIN_EXE_")
}

/// A child process that is killed (SIGKILL) when dropped, and whose stderr log
/// is printed if the test is failing at that moment.
pub struct Process {
    pub name: String,
    child: Child,
    log_path: PathBuf,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (e.g. "TERM", "STOP", "CONT") with kill(1).
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill -{signal} {} failed",
                self.pid()
            )))
        }
    }

    /// Waits for the process to exit, up to `timeout`; its exit code if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        print_log_if_failing(&self.name, || self.log());
    }
}

/// When a test is failing (this thread panics), prints the log of the process
/// `name` being dropped, so the failure comes with what the process said.
pub(crate) fn print_log_if_failing(name: &str, log: impl FnOnce() -> String) {
    if std::thread::panicking() {
        eprintln!(
            "----- log of {name} -----\n{}\n----- end of log -----",
            log()
        );
    }
}

/// The addresses a control plane prints once bound, on one stdout line:
/// `weft-global ready api=ADDR kds=ADDR`, `weft-zone ready api=ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    pub api: String,
    /// Global's KDS listener; `None` for a zone.
    pub kds: Option<String>,
}

impl ReadyLine {
    /// The fields of `line`; `None` unless it carries `api=`.
    pub fn parse(line: &str) -> Option<Self> {
        let mut api = None;
        let mut kds = None;
        for word in line.split_whitespace() {
            if let Some(v) = word.strip_prefix("api=") {
                api = Some(v.to_string());
            } else if let Some(v) = word.strip_prefix("kds=") {
                kds = Some(v.to_string());
            }
        }
        Some(ReadyLine { api: api?, kds })
    }
}

/// A running `weft-global` or `weft-zone` with its data dir.
pub struct ControlPlane {
    pub process: Process,
    api: String,
    kds: Option<String>,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl ControlPlane {
    /// `weft-global run` in a fresh temp dir, API and KDS on free loopback ports
    /// (unless `extra` sets `--kds-address`).
    pub fn global(extra: &[&str]) -> Result<Self, TestbedError> {
        Self::start_fresh("weft-global", extra)
    }

    /// `weft-zone run` in a fresh temp dir, API on a free loopback port.
    pub fn zone(extra: &[&str]) -> Result<Self, TestbedError> {
        Self::start_fresh("weft-zone", extra)
    }

    /// `weft-zone run --zone ZONE` federated with `global`: a zone token is issued
    /// through global's API (`POST /tokens/zone`, valid for 1 h), written to
    /// `zone.token` in a fresh temp dir next to the zone's data dir (`data/`), and
    /// the zone dials `grpcs://localhost:<global's KDS port>`, verifying global
    /// against the CA the token pins. `extra` goes last (e.g. `--global-ca-file`).
    pub fn federated_zone(
        global: &ControlPlane,
        zone: &str,
        extra: &[&str],
    ) -> Result<Self, TestbedError> {
        let token = global.issue_zone_token(zone, "1h")?;
        Self::federated_zone_with_token(global, zone, &token, extra)
    }

    /// Like [`ControlPlane::federated_zone`], with a token of the caller's (one
    /// issued for another zone, say).
    pub fn federated_zone_with_token(
        global: &ControlPlane,
        zone: &str,
        token: &str,
        extra: &[&str],
    ) -> Result<Self, TestbedError> {
        let port = global
            .kds_address()
            .ok_or_else(|| TestbedError::NotGlobal(global.process.name.clone()))?
            .port();
        let tmp = temp_dir()?;
        let token_file = tmp.path().join("zone.token");
        std::fs::write(&token_file, token).map_err(|source| TestbedError::Io {
            what: token_file.display().to_string(),
            source,
        })?;
        let token_file = utf8(&token_file)?;
        let global_address = format!("grpcs://localhost:{port}");
        let mut args = vec![
            "--zone",
            zone,
            "--global-address",
            global_address.as_str(),
            "--zone-token-file",
            token_file,
        ];
        args.extend_from_slice(extra);
        let mut cp = Self::start_in("weft-zone", &tmp.path().join("data"), &args)?;
        cp._tmp = Some(tmp);
        Ok(cp)
    }

    fn start_fresh(bin: &str, extra: &[&str]) -> Result<Self, TestbedError> {
        let tmp = temp_dir()?;
        let mut cp = Self::start_in(bin, tmp.path(), extra)?;
        cp._tmp = Some(tmp);
        Ok(cp)
    }

    /// Starts `bin run` on an existing data dir (e.g. after a kill), API on a free
    /// port; a global's KDS too, unless `extra` sets `--kds-address` (to restart a
    /// global where its zones expect it).
    pub fn start_in(bin: &str, data_dir: &Path, extra: &[&str]) -> Result<Self, TestbedError> {
        let path = bin_dir()?.join(bin);
        std::fs::create_dir_all(data_dir).map_err(|source| TestbedError::Io {
            what: data_dir.display().to_string(),
            source,
        })?;
        let log_path = data_dir.join(format!("{bin}-{}.log", unique()));
        let log = std::fs::File::create(&log_path).map_err(|source| TestbedError::Io {
            what: log_path.display().to_string(),
            source,
        })?;
        let mut command = Command::new(&path);
        command
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api-address", "127.0.0.1:0"]);
        // Never the default 0.0.0.0:5685: tests run side by side.
        if bin == "weft-global" && !extra.iter().any(|a| a.starts_with("--kds-address")) {
            command.args(["--kds-address", "127.0.0.1:0"]);
        }
        // Nor the zone's default xDS port 0.0.0.0:5678.
        if bin == "weft-zone" && !extra.iter().any(|a| a.starts_with("--xds-address")) {
            command.args(["--xds-address", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|source| TestbedError::Spawn {
                bin: bin.into(),
                source,
            })?;
        let stdout = child.stdout.take();
        let process = Process {
            name: bin.to_string(),
            child,
            log_path,
        };
        let (tx, rx) = mpsc::channel();
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(ready) = ReadyLine::parse(&line) {
                        let _ = tx.send(ready);
                    }
                }
            });
        }
        let ready = rx
            .recv_timeout(READY_TIMEOUT)
            .map_err(|_| TestbedError::NotReady {
                bin: bin.into(),
                waited: READY_TIMEOUT,
                log: process.log(),
            })?;
        Ok(ControlPlane {
            process,
            api: ready.api,
            kds: ready.kds,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
        })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// Global's KDS listener, from its ready line (`None` for a zone). Dial its
    /// port on `localhost`: the generated certificate names localhost, 127.0.0.1, ::1.
    pub fn kds_address(&self) -> Option<SocketAddr> {
        self.kds.as_deref().and_then(|a| a.parse().ok())
    }

    /// Issues a zone token through this global's API (`POST /tokens/zone` with the
    /// admin token from its data dir). Blocking; callable from async tests too.
    pub fn issue_zone_token(&self, zone: &str, valid_for: &str) -> Result<String, TestbedError> {
        let url = format!("{}/tokens/zone", self.api_url());
        let admin = self.token();
        let body = serde_json::json!({"zone": zone, "validFor": valid_for});
        // A thread of its own: a runtime cannot be started inside a caller's runtime.
        let issue = std::thread::spawn(move || -> Result<String, String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))?;
            rt.block_on(async move {
                let resp = reqwest::Client::new()
                    .post(&url)
                    .bearer_auth(admin)
                    .json(&body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|e| format!("POST {url}: {e}"))?;
                let status = resp.status();
                let text = resp.text().await.map_err(|e| format!("POST {url}: {e}"))?;
                if status.is_success() {
                    Ok(text.trim().to_string())
                } else {
                    Err(format!("POST {url} answered {status}: {text}"))
                }
            })
        });
        issue
            .join()
            .map_err(|_| TestbedError::ZoneToken("the issuing thread panicked".into()))?
            .map_err(TestbedError::ZoneToken)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The admin token the control plane wrote on first start.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// How often this zone has logged that it lost, or could not reach, global.
    pub fn kds_losses(&self) -> usize {
        self.process
            .log()
            .lines()
            .filter(|l| {
                l.contains("KDS: connection to global failed")
                    || l.contains("stream to global ended")
            })
            .count()
    }

    /// Keeps the data dir past this value (for restarts); the caller owns it then.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

fn temp_dir() -> Result<tempfile::TempDir, TestbedError> {
    tempfile::tempdir().map_err(|source| TestbedError::Io {
        what: "temp dir".into(),
        source,
    })
}

fn utf8(path: &Path) -> Result<&str, TestbedError> {
    path.to_str().ok_or_else(|| TestbedError::Io {
        what: path.display().to_string(),
        source: std::io::Error::other("the path is not UTF-8"),
    })
}

fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A ready line yields api= and, for a global, kds=; other lines yield nothing.
    #[test]
    fn ready_line() {
        assert_eq!(
            ReadyLine::parse("weft-global ready api=127.0.0.1:5681 kds=0.0.0.0:5685"),
            Some(ReadyLine {
                api: "127.0.0.1:5681".into(),
                kds: Some("0.0.0.0:5685".into()),
            })
        );
        assert_eq!(
            ReadyLine::parse("weft-zone ready api=127.0.0.1:40001"),
            Some(ReadyLine {
                api: "127.0.0.1:40001".into(),
                kds: None,
            })
        );
        assert_eq!(ReadyLine::parse("weft-global ready kds=0.0.0.0:1"), None);
        assert_eq!(ReadyLine::parse(""), None);
    }

    // The test crate's own cargo variables are dropped; cargo's settings are kept.
    #[test]
    fn crate_env() {
        for key in [
            "CARGO_PKG_NAME",
            "CARGO_MANIFEST_DIR",
            "OUT_DIR",
            "CARGO_BIN_EXE_x",
        ] {
            assert!(is_crate_env(key), "{key}");
        }
        for key in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!is_crate_env(key), "{key}");
        }
    }
}
