//! Token signing keys as files in a directory of the data dir, so that a running server
//! and its offline CLI (which cannot open the sled store while the server holds its
//! lock) read and write the same keys. Global keeps zone-token keys in
//! `<data-dir>/zone-token-keys/`, a zone its dataplane-token keys in
//! `<data-dir>/dataplane-token-keys/` (decision 0004).
//!
//! | file | content |
//! |---|---|
//! | `<signing-key-prefix><serial>.pem` (0600) | PKCS#8 PEM Ed25519 private key |
//!
//! The directory is 0700. A key file is never rewritten: a new key is written to a
//! temporary file, synced, then hard-linked to its final name, which fails if that
//! serial already exists — so two processes rotating at once get two serials, never
//! one overwriting the other, and a reader never sees half a key.

use super::{KeyError, SecretNames, SigningKey, SigningKeys, TokenError, Unauthenticated};
use crate::files::write_new;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const KEY_SUFFIX: &str = ".pem";
/// How many serials a rotation tries when other processes rotate at the same time.
const ROTATE_ATTEMPTS: usize = 16;

/// The least time between two key reloads triggered by tokens naming an unknown key
/// (a stream of forged kids costs one directory read per interval).
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Why a key directory could not be read or written. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyDirError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}; restore the file from a backup, or remove it (tokens it signed stop working)", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error(
        "there is no {what} signing key in {}: {init_hint} on this data dir once (it creates \
         the keys), or check --data-dir",
        dir.display()
    )]
    NoKeys {
        dir: PathBuf,
        what: &'static str,
        init_hint: &'static str,
    },
}

impl KeyDirError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| KeyDirError::Io { path, source }
    }
}

/// One kind's key directory.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
    names: SecretNames,
    /// E.g. "zone-token", for messages and logs.
    what: &'static str,
    /// What creates the keys, e.g. "start `weft-global run`".
    init_hint: &'static str,
}

impl KeyDir {
    /// The directory `dir` holding keys named by `names` (nothing is touched until a
    /// method is called).
    pub fn new(
        dir: PathBuf,
        names: SecretNames,
        what: &'static str,
        init_hint: &'static str,
    ) -> Self {
        KeyDir {
            dir,
            names,
            what,
            init_hint,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of the key with `serial`.
    pub fn key_path(&self, serial: u64) -> PathBuf {
        self.dir
            .join(format!("{}{KEY_SUFFIX}", self.names.signing_key(serial)))
    }

    /// Every key in the directory (none when it does not exist yet). Other files are
    /// ignored; a key file that does not decode is an error naming it.
    pub fn load(&self) -> Result<SigningKeys, KeyDirError> {
        let mut keys = SigningKeys::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(KeyDirError::io(&self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(KeyDirError::io(&self.dir))?;
            let name = entry.file_name();
            let Some(serial) = name
                .to_str()
                .and_then(|n| n.strip_suffix(KEY_SUFFIX))
                .and_then(|stem| self.names.signing_key_serial(stem))
            else {
                continue;
            };
            let path = entry.path();
            self.warn_if_exposed(&path);
            let pem = std::fs::read(&path).map_err(KeyDirError::io(&path))?;
            let key = SigningKey::from_pem(serial, &pem)
                .map_err(|source| KeyDirError::BadKey { path, source })?;
            keys.insert(key);
        }
        Ok(keys)
    }

    /// The keys, or an error saying the data dir was never initialized (a CLI must not
    /// mint keys the server would never see, e.g. under a mistyped `--data-dir`).
    pub fn load_existing(&self) -> Result<SigningKeys, KeyDirError> {
        let keys = self.load()?;
        if keys.is_empty() {
            return Err(self.no_keys());
        }
        Ok(keys)
    }

    /// The error [`Self::load_existing`] gives for an empty directory.
    pub fn no_keys(&self) -> KeyDirError {
        KeyDirError::NoKeys {
            dir: self.dir.clone(),
            what: self.what,
            init_hint: self.init_hint,
        }
    }

    /// The keys, creating the directory and key serial 1 when there are none (the
    /// server's first start).
    pub fn load_or_create(&self) -> Result<SigningKeys, KeyDirError> {
        self.ensure_dir()?;
        let keys = self.load()?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        let serial = self.add_key()?;
        tracing::info!(dir = %self.dir.display(), kid = serial, what = self.what, "created a token signing key");
        self.load()
    }

    /// Adds a key with the next serial; new tokens are signed with it, tokens signed
    /// by older keys keep validating. Refuses an uninitialized directory. Returns the
    /// new serial.
    pub fn rotate(&self) -> Result<u64, KeyDirError> {
        self.load_existing()?;
        self.add_key()
    }

    /// Writes a key with serial = highest on disk + 1, retrying with the next one
    /// when another process took that serial first.
    fn add_key(&self) -> Result<u64, KeyDirError> {
        for _ in 0..ROTATE_ATTEMPTS {
            let mut keys = self.load()?;
            let key = keys.rotate().map_err(|source| KeyDirError::BadKey {
                path: self.dir.clone(),
                source,
            })?;
            let serial = key.serial();
            let path = self.key_path(serial);
            match write_new(&path, key.to_pem().as_bytes(), 0o600) {
                Ok(()) => return Ok(serial),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(KeyDirError::io(&path)(e)),
            }
        }
        Err(KeyDirError::io(&self.dir)(std::io::Error::other(
            "other processes kept taking the next key serial; try again",
        )))
    }

    /// Creates the directory 0700, or tightens an existing one that others can read.
    pub fn ensure_dir(&self) -> Result<(), KeyDirError> {
        if self.dir.is_dir() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::metadata(&self.dir).map_err(KeyDirError::io(&self.dir))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(dir = %self.dir.display(), "a token key directory was readable by others; setting it to 0700");
                    std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                        .map_err(KeyDirError::io(&self.dir))?;
                }
            }
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&self.dir)
            .map_err(KeyDirError::io(&self.dir))
    }

    fn warn_if_exposed(&self, path: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                tracing::warn!(file = %path.display(), what = self.what, "a token signing key is readable by others; chmod 600 it");
            }
        }
        #[cfg(not(unix))]
        let _ = path;
    }
}

/// A running server's reloads of its key directory when a token names a key it does
/// not hold (one the offline CLI just added), so a rotated key works without a
/// restart: at most one per [`KEY_RELOAD_INTERVAL`].
#[derive(Debug, Default)]
pub struct UnknownKeyReload {
    last: Mutex<Option<Instant>>,
}

impl UnknownKeyReload {
    /// Runs `check`; when it fails only because the token names an unknown key,
    /// runs `reload` (unless one ran less than [`KEY_RELOAD_INTERVAL`] ago) and
    /// `check` again. A failed reload is logged and the first answer stands.
    /// `what` names the keys in logs, e.g. "zone-token".
    pub fn check<T, E: std::fmt::Display>(
        &self,
        what: &str,
        check: impl Fn() -> Result<T, TokenError>,
        reload: impl FnOnce() -> Result<(), E>,
    ) -> Result<T, TokenError> {
        let first = check();
        let Err(TokenError::Unauthenticated(Unauthenticated::UnknownKey { kid, .. })) = &first
        else {
            return first;
        };
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < KEY_RELOAD_INTERVAL) {
                return first;
            }
            *last = Some(Instant::now());
        }
        tracing::debug!(
            kid,
            "a token names an unknown key; reloading the {what} key directory"
        );
        if let Err(e) = reload() {
            tracing::error!(error = %e, "cannot reload the {what} signing keys");
            return first;
        }
        check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn key_dir(data: &Path) -> KeyDir {
        KeyDir::new(
            data.join("test-keys"),
            SecretNames::new("test-key-", "test-public-key-", "test-revocations"),
            "test-token",
            "start `weft-test run`",
        )
    }

    // First start creates a 0700 dir with key 1 (0600); later loads return the same key.
    #[test]
    fn created_once_with_private_modes() {
        let data = tempfile::tempdir().unwrap();
        let kd = key_dir(data.path());
        assert!(kd.load().unwrap().is_empty());
        let keys = kd.load_or_create().unwrap();
        assert_eq!(keys.serials().collect::<Vec<_>>(), vec![1]);
        assert_eq!(kd.load_or_create().unwrap(), keys);
        assert_eq!(mode(kd.path()), 0o700);
        assert_eq!(mode(&kd.key_path(1)), 0o600);
        assert!(kd.key_path(1).ends_with("test-keys/test-key-1.pem"));
    }

    // Concurrent rotations never overwrite each other: every one gets its own serial.
    #[test]
    fn concurrent_rotations_get_distinct_serials() {
        let data = tempfile::tempdir().unwrap();
        let kd = key_dir(data.path());
        kd.load_or_create().unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let kd = kd.clone();
                std::thread::spawn(move || kd.rotate().unwrap())
            })
            .collect();
        let mut serials: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        serials.sort_unstable();
        assert_eq!(serials, vec![2, 3, 4, 5]);
    }

    // An uninitialized dir is refused with the hint that names what creates the keys.
    #[test]
    fn uninitialized_dir_refused() {
        let data = tempfile::tempdir().unwrap();
        let kd = key_dir(data.path());
        let err = kd.rotate().unwrap_err().to_string();
        assert!(err.contains("weft-test run"), "{err}");
        assert!(err.contains("test-token"), "{err}");
        assert!(!kd.path().exists());
    }
}
