//! Zone-token signing keys as files in `<data-dir>/zone-token-keys/`, so that the
//! running server and the offline CLI (which cannot open the sled store while the
//! server holds its lock) read and write the same keys. Decision 0004 says why.
//!
//! | file | content |
//! |---|---|
//! | `zone-token-signing-key-<serial>.pem` (0600) | PKCS#8 PEM Ed25519 private key |
//! | `kds-ca-fingerprint` (0644) | the KDS CA fingerprint the server puts into tokens; empty when it has none |
//!
//! The directory is 0700. A key file is never rewritten: a new key is written to a
//! temporary file, synced, then hard-linked to its final name, which fails if that
//! serial already exists — so two processes rotating at once get two serials, never
//! one overwriting the other, and a reader never sees half a key.

use super::TokensError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use weft_shared::pki::Fingerprint;
use weft_shared::tokens::{SecretNames, SigningKey, SigningKeys};

/// The key directory under the data dir.
pub const KEY_DIR: &str = "zone-token-keys";
/// The file recording the KDS CA fingerprint of the last server start.
pub const FINGERPRINT_FILE: &str = "kds-ca-fingerprint";
const KEY_SUFFIX: &str = ".pem";
/// How many serials a rotation tries when other processes rotate at the same time.
const ROTATE_ATTEMPTS: usize = 16;

/// The zone-token key directory of one data dir.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
    names: SecretNames,
}

impl KeyDir {
    /// `<data_dir>/zone-token-keys` (nothing is touched until a method is called).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        KeyDir {
            dir: data_dir.join(KEY_DIR),
            names: SecretNames::zone(),
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
    pub fn load(&self) -> Result<SigningKeys, TokensError> {
        let mut keys = SigningKeys::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(TokensError::io(&self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(TokensError::io(&self.dir))?;
            let name = entry.file_name();
            let Some(serial) = name
                .to_str()
                .and_then(|n| n.strip_suffix(KEY_SUFFIX))
                .and_then(|stem| self.names.signing_key_serial(stem))
            else {
                continue;
            };
            let path = entry.path();
            warn_if_exposed(&path, 0o077);
            let pem = std::fs::read(&path).map_err(TokensError::io(&path))?;
            let key = SigningKey::from_pem(serial, &pem)
                .map_err(|source| TokensError::BadKey { path, source })?;
            keys.insert(key);
        }
        Ok(keys)
    }

    /// The keys, or an error saying the data dir was never initialized (the CLI must
    /// not mint keys the server would never see, e.g. under a mistyped `--data-dir`).
    pub fn load_existing(&self) -> Result<SigningKeys, TokensError> {
        let keys = self.load()?;
        if keys.is_empty() {
            return Err(TokensError::NoKeys {
                dir: self.dir.clone(),
            });
        }
        Ok(keys)
    }

    /// The keys, creating the directory and key serial 1 when there are none (the
    /// server's first start).
    pub fn load_or_create(&self) -> Result<SigningKeys, TokensError> {
        self.ensure_dir()?;
        let keys = self.load()?;
        if !keys.is_empty() {
            return Ok(keys);
        }
        let serial = self.add_key()?;
        tracing::info!(dir = %self.dir.display(), kid = serial, "created the zone-token signing key");
        self.load()
    }

    /// Adds a key with the next serial; new tokens are signed with it, tokens signed
    /// by older keys keep validating. Refuses an uninitialized directory. Returns the
    /// new serial.
    pub fn rotate(&self) -> Result<u64, TokensError> {
        self.load_existing()?;
        self.add_key()
    }

    /// Writes a key with serial = highest on disk + 1, retrying with the next one
    /// when another process took that serial first.
    fn add_key(&self) -> Result<u64, TokensError> {
        for _ in 0..ROTATE_ATTEMPTS {
            let mut keys = self.load()?;
            let key = keys.rotate().map_err(|source| TokensError::BadKey {
                path: self.dir.clone(),
                source,
            })?;
            let serial = key.serial();
            let path = self.key_path(serial);
            match write_new(&path, key.to_pem().as_bytes(), 0o600) {
                Ok(()) => return Ok(serial),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(TokensError::io(&path)(e)),
            }
        }
        Err(TokensError::io(&self.dir)(std::io::Error::other(
            "other processes kept taking the next key serial; try again",
        )))
    }

    /// Records the fingerprint the server puts into tokens, for the offline CLI.
    pub fn write_fingerprint(&self, fingerprint: Option<Fingerprint>) -> Result<(), TokensError> {
        self.ensure_dir()?;
        let path = self.dir.join(FINGERPRINT_FILE);
        let text = fingerprint.map(|f| format!("{f}\n")).unwrap_or_default();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        write_replace(&path, text.as_bytes(), 0o644).map_err(TokensError::io(&path))
    }

    /// The fingerprint the server recorded at its last start (`None`: it has none).
    pub fn read_fingerprint(&self) -> Result<Option<Fingerprint>, TokensError> {
        let path = self.dir.join(FINGERPRINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TokensError::NoFingerprint { path });
            }
            Err(e) => return Err(TokensError::io(&path)(e)),
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim()
            .parse()
            .map(Some)
            .map_err(
                |e: weft_shared::pki::PkiError| TokensError::BadFingerprint {
                    path,
                    reason: e.to_string(),
                },
            )
    }

    /// Creates the directory 0700, or tightens an existing one that others can read.
    fn ensure_dir(&self) -> Result<(), TokensError> {
        if self.dir.is_dir() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::metadata(&self.dir).map_err(TokensError::io(&self.dir))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(dir = %self.dir.display(), "the zone-token key directory was readable by others; setting it to 0700");
                    std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                        .map_err(TokensError::io(&self.dir))?;
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
            .map_err(TokensError::io(&self.dir))
    }
}

fn warn_if_exposed(path: &Path, mask: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & mask != 0) {
            tracing::warn!(file = %path.display(), "a zone-token signing key is readable by others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mask);
}

/// Writes `bytes` to a synced temporary file beside `path` and returns its path.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Creates `path` with `bytes` atomically; `AlreadyExists` when it exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = write_temp(path, bytes, mode)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    sync_parent(path)
}

/// Replaces `path` with `bytes` atomically.
fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = write_temp(path, bytes, mode)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    // First start creates a 0700 dir with key 1 (0600); later loads return the same key.
    #[test]
    fn created_once_with_private_modes() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
        assert!(kd.load().unwrap().is_empty());
        let keys = kd.load_or_create().unwrap();
        assert_eq!(keys.serials().collect::<Vec<_>>(), vec![1]);
        assert_eq!(kd.load_or_create().unwrap(), keys);
        assert_eq!(mode(kd.path()), 0o700);
        assert_eq!(mode(&kd.key_path(1)), 0o600);
        assert!(
            kd.key_path(1)
                .ends_with("zone-token-keys/zone-token-signing-key-1.pem")
        );
    }

    // Rotation adds serial + 1, keeps the old key and leaves no temporary files.
    #[test]
    fn rotate_adds_next_serial() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
        kd.load_or_create().unwrap();
        assert_eq!(kd.rotate().unwrap(), 2);
        assert_eq!(kd.rotate().unwrap(), 3);
        let keys = kd.load().unwrap();
        assert_eq!(keys.serials().collect::<Vec<_>>(), vec![1, 2, 3]);
        let names: Vec<String> = std::fs::read_dir(kd.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    // Concurrent rotations never overwrite each other: every one gets its own serial.
    #[test]
    fn concurrent_rotations_get_distinct_serials() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
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

    // The CLI refuses a data dir without keys rather than minting keys nobody validates.
    #[test]
    fn uninitialized_dir_refused() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
        let err = kd.rotate().unwrap_err();
        assert!(matches!(err, TokensError::NoKeys { .. }), "{err}");
        assert!(err.to_string().contains("weft-global run"), "{err}");
        assert!(!kd.path().exists());
    }

    // A corrupt key file is an error naming the file, not echoing its content.
    #[test]
    fn corrupt_key_named() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
        kd.load_or_create().unwrap();
        std::fs::write(kd.key_path(2), "garbage-key-material").unwrap();
        std::fs::write(kd.path().join("README"), "ignored").unwrap();
        let err = kd.load().unwrap_err().to_string();
        assert!(err.contains("zone-token-signing-key-2.pem"), "{err}");
        assert!(!err.contains("garbage-key-material"), "{err}");
    }

    // The fingerprint round-trips; "none" is an empty file; a missing file is an error.
    #[test]
    fn fingerprint_file() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
        assert!(matches!(
            kd.read_fingerprint(),
            Err(TokensError::NoFingerprint { .. })
        ));
        let fp = Fingerprint::of_der(b"ca");
        kd.write_fingerprint(Some(fp)).unwrap();
        assert_eq!(kd.read_fingerprint().unwrap(), Some(fp));
        kd.write_fingerprint(None).unwrap();
        assert_eq!(kd.read_fingerprint().unwrap(), None);
    }
}
