//! Real processes: starts Weft's binaries on free loopback ports, waits for them
//! to be ready, keeps their logs (printed when a test fails) and stops them when
//! dropped.
//!
//! ```no_run
//! let global = weft_testbed::ControlPlane::global(&[]).unwrap();
//! println!("global API at {} with token {}", global.api_url(), global.token());
//! ```

use std::io::{BufRead, BufReader};
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
            "--bins",
        ]);
        if release {
            cmd.arg("--release");
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
        if std::thread::panicking() {
            eprintln!(
                "----- log of {} -----\n{}\n----- end of log -----",
                self.name,
                self.log()
            );
        }
    }
}

/// A running `weft-global` or `weft-zone` with its data dir.
pub struct ControlPlane {
    pub process: Process,
    api: String,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl ControlPlane {
    /// `weft-global run` in a fresh temp dir, API on a free loopback port.
    pub fn global(extra: &[&str]) -> Result<Self, TestbedError> {
        Self::start_fresh("weft-global", extra)
    }

    /// `weft-zone run` in a fresh temp dir, API on a free loopback port.
    pub fn zone(extra: &[&str]) -> Result<Self, TestbedError> {
        Self::start_fresh("weft-zone", extra)
    }

    fn start_fresh(bin: &str, extra: &[&str]) -> Result<Self, TestbedError> {
        let tmp = tempfile::tempdir().map_err(|source| TestbedError::Io {
            what: "temp dir".into(),
            source,
        })?;
        let mut cp = Self::start_in(bin, tmp.path(), extra)?;
        cp._tmp = Some(tmp);
        Ok(cp)
    }

    /// Starts `bin run` on an existing data dir (e.g. after a kill), API on a free port.
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
        let mut child = Command::new(&path)
            .arg("run")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api-address", "127.0.0.1:0"])
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
                    if let Some(addr) = line.split("api=").nth(1) {
                        let _ = tx.send(
                            addr.split_whitespace()
                                .next()
                                .unwrap_or_default()
                                .to_string(),
                        );
                    }
                }
            });
        }
        let api = rx
            .recv_timeout(READY_TIMEOUT)
            .map_err(|_| TestbedError::NotReady {
                bin: bin.into(),
                waited: READY_TIMEOUT,
                log: process.log(),
            })?;
        Ok(ControlPlane {
            process,
            api,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
        })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
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

    /// Keeps the data dir past this value (for restarts); the caller owns it then.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}
