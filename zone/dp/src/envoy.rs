//! Finding the Envoy binary, and running it: the bootstrap in a private temp dir,
//! signals forwarded, its exit status returned.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How long Envoy may take to exit after a forwarded signal before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EnvoyError {
    #[error("cannot write the bootstrap to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start Envoy ({}): {source}", bin.display())]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot wait for Envoy: {0}")]
    Wait(std::io::Error),
    #[error("cannot listen for signals: {0}")]
    Signal(std::io::Error),
}

/// The Envoy binary: `flag` (`--envoy-bin` / `$WEFT_ENVOY_BIN`), else the project's
/// `.venv/bin/envoy` found walking up from this executable's directory and from the
/// working directory, else `envoy` on `PATH`. The error lists where it looked.
pub fn find_envoy(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("{} does not exist or is not a file", p.display()))
        };
    }
    let mut looked = Vec::new();
    let starts = [
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
        std::env::current_dir().ok(),
    ];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            let candidate = dir.join(".venv/bin/envoy");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        looked.push(format!("{}/**/.venv/bin/envoy", start.display()));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("envoy");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    looked.push("envoy on PATH".into());
    Err(format!(
        "no Envoy binary found (looked in {}); install it with scripts/setup.sh or pass \
         --envoy-bin / WEFT_ENVOY_BIN",
        looked.join(", ")
    ))
}

/// A private directory (0700) holding the bootstrap (0600) and the access-log
/// socket, removed on drop.
pub struct BootstrapDir {
    dir: PathBuf,
}

impl BootstrapDir {
    /// Creates the dir and writes the bootstrap into it.
    pub fn create(tag: &str, bootstrap: &[u8]) -> Result<(Self, PathBuf), EnvoyError> {
        let guard = Self::new(tag)?;
        let file = guard.write_bootstrap(bootstrap)?;
        Ok((guard, file))
    }

    /// Creates the empty dir (`weft-dp-<tag>-<random>`; the tag is shortened so a
    /// socket path inside stays within the unix limit).
    pub fn new(tag: &str) -> Result<Self, EnvoyError> {
        let mut rnd = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut rnd);
        let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(24)
            .collect();
        let dir = std::env::temp_dir().join(format!("weft-dp-{tag}-{suffix}"));
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EnvoyError::Write { path, source }
        };
        let mut builder = std::fs::DirBuilder::new();
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(werr(&dir))?;
        Ok(BootstrapDir { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `bootstrap.json` (0600); its path.
    pub fn write_bootstrap(&self, bootstrap: &[u8]) -> Result<PathBuf, EnvoyError> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EnvoyError::Write { path, source }
        };
        let file = self.dir.join("bootstrap.json");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        opts.open(&file)
            .and_then(|mut f| f.write_all(bootstrap))
            .map_err(werr(&file))?;
        Ok(file)
    }
}

impl Drop for BootstrapDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How Envoy runs.
#[derive(Debug, Clone)]
pub struct EnvoyRun {
    pub bin: PathBuf,
    pub bootstrap: PathBuf,
    pub log_level: String,
    pub drain_time: Duration,
}

impl EnvoyRun {
    /// Envoy's arguments: a dynamic base id so several proxies share a host, a short
    /// drain.
    pub fn args(&self) -> Vec<String> {
        let drain = self.drain_time.as_secs().max(1);
        vec![
            "-c".into(),
            self.bootstrap.display().to_string(),
            "--use-dynamic-base-id".into(),
            "--drain-time-s".into(),
            drain.to_string(),
            "--parent-shutdown-time-s".into(),
            (drain + 1).to_string(),
            "-l".into(),
            self.log_level.clone(),
        ]
    }
}

/// Starts Envoy (stdout/stderr inherited). On SIGINT / SIGTERM it runs `leave`
/// (the proxy leaves the mesh), lets Envoy serve for `drain_time` more — the
/// other proxies stop sending to it meanwhile — then forwards the signal, and
/// returns Envoy's exit status once it has exited (killed if it ignores the
/// signal for [`EXIT_GRACE`]).
pub async fn run(
    run: &EnvoyRun,
    leave: impl std::future::Future<Output = ()>,
) -> Result<ExitStatus, EnvoyError> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(EnvoyError::Signal)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(EnvoyError::Signal)?;
    let mut child = tokio::process::Command::new(&run.bin)
        .args(run.args())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| EnvoyError::Spawn {
            bin: run.bin.clone(),
            source,
        })?;
    let pid = child.id();
    tracing::info!(pid, bin = %run.bin.display(), "started Envoy");
    let forwarded = tokio::select! {
        status = child.wait() => return status.map_err(EnvoyError::Wait),
        _ = interrupt.recv() => rustix::process::Signal::INT,
        _ = terminate.recv() => rustix::process::Signal::TERM,
    };
    // A second signal skips the drain.
    tokio::select! {
        status = child.wait() => return status.map_err(EnvoyError::Wait),
        () = async {
            leave.await;
            tracing::info!(drain = ?run.drain_time, "draining before stopping Envoy");
            tokio::time::sleep(run.drain_time).await;
        } => {}
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!(signal = ?forwarded, "forwarding the signal to Envoy");
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
        && let Err(e) = rustix::process::kill_process(pid, forwarded)
    {
        tracing::warn!(error = %e, "cannot signal Envoy; killing it");
        let _ = child.start_kill();
    }
    match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
        Ok(status) => status.map_err(EnvoyError::Wait),
        Err(_) => {
            tracing::warn!(grace = ?EXIT_GRACE, "Envoy did not exit; killing it");
            let _ = child.start_kill();
            child.wait().await.map_err(EnvoyError::Wait)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The bootstrap dir and file are private and removed on drop.
    #[test]
    fn bootstrap_dir_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let (guard, file) = BootstrapDir::create("t", b"{}").unwrap();
        let dir = file.parent().unwrap().to_path_buf();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(guard);
        assert!(!dir.exists());
    }

    // An explicit binary must exist; the error says which.
    #[test]
    fn explicit_envoy_must_exist() {
        let e = find_envoy(Some(Path::new("/nonexistent/envoy"))).unwrap_err();
        assert!(e.contains("/nonexistent/envoy"), "{e}");
    }
}
