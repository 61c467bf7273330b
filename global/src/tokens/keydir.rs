//! Zone-token signing keys as files in `<data-dir>/zone-token-keys/`, so that the
//! running server and the offline CLI (which cannot open the sled store while the
//! server holds its lock) read and write the same keys. Decision 0004 says why.
//!
//! | file | content |
//! |---|---|
//! | `zone-token-signing-key-<serial>.pem` (0600) | PKCS#8 PEM Ed25519 private key |
//! | `kds-ca-fingerprint` (0644) | the KDS CA fingerprint the server puts into tokens; empty when it has none |
//!
//! The key files themselves are handled by the shared
//! [`weft_security::tokens::keydir::KeyDir`] (also used by zones for dataplane-token
//! keys): 0700 directory, keys never rewritten, concurrent rotations safe.

use super::TokensError;
use std::path::{Path, PathBuf};
use weft_security::pki::Fingerprint;
use weft_security::tokens::keydir::{self, KeyDirError};
use weft_security::tokens::{SecretNames, SigningKeys};

/// The key directory under the data dir.
pub const KEY_DIR: &str = "zone-token-keys";
/// The file recording the KDS CA fingerprint of the last server start.
pub const FINGERPRINT_FILE: &str = "kds-ca-fingerprint";

/// The zone-token key directory of one data dir: the shared
/// [`weft_security::tokens::keydir::KeyDir`] plus the KDS CA fingerprint file.
#[derive(Debug, Clone)]
pub struct KeyDir {
    inner: keydir::KeyDir,
}

impl KeyDir {
    /// `<data_dir>/zone-token-keys` (nothing is touched until a method is called).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        KeyDir {
            inner: keydir::KeyDir::new(
                data_dir.join(KEY_DIR),
                SecretNames::zone(),
                "zone-token",
                "start `weft-global run`",
            ),
        }
    }

    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// The file of the key with `serial`.
    pub fn key_path(&self, serial: u64) -> PathBuf {
        self.inner.key_path(serial)
    }

    /// Every key in the directory (none when it does not exist yet). Other files are
    /// ignored; a key file that does not decode is an error naming it.
    pub fn load(&self) -> Result<SigningKeys, TokensError> {
        Ok(self.inner.load()?)
    }

    /// The keys, or an error saying the data dir was never initialized (the CLI must
    /// not mint keys the server would never see, e.g. under a mistyped `--data-dir`).
    pub fn load_existing(&self) -> Result<SigningKeys, TokensError> {
        Ok(self.inner.load_existing()?)
    }

    /// The error [`Self::load_existing`] gives for an empty directory.
    pub fn no_keys(&self) -> KeyDirError {
        self.inner.no_keys()
    }

    /// The keys, creating the directory and key serial 1 when there are none (the
    /// server's first start).
    pub fn load_or_create(&self) -> Result<SigningKeys, TokensError> {
        Ok(self.inner.load_or_create()?)
    }

    /// Adds a key with the next serial; new tokens are signed with it, tokens signed
    /// by older keys keep validating. Refuses an uninitialized directory. Returns the
    /// new serial.
    pub fn rotate(&self) -> Result<u64, TokensError> {
        Ok(self.inner.rotate()?)
    }

    /// Records the fingerprint the server puts into tokens, for the offline CLI.
    pub fn write_fingerprint(&self, fingerprint: Option<Fingerprint>) -> Result<(), TokensError> {
        self.inner.ensure_dir()?;
        let path = self.path().join(FINGERPRINT_FILE);
        let text = fingerprint.map(|f| format!("{f}\n")).unwrap_or_default();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        weft_security::files::write_replace(&path, text.as_bytes(), 0o644)
            .map_err(|e| KeyDirError::io(&path)(e).into())
    }

    /// The fingerprint the server recorded at its last start (`None`: it has none).
    pub fn read_fingerprint(&self) -> Result<Option<Fingerprint>, TokensError> {
        let path = self.path().join(FINGERPRINT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TokensError::NoFingerprint { path });
            }
            Err(e) => return Err(KeyDirError::io(&path)(e).into()),
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim()
            .parse()
            .map(Some)
            .map_err(
                |e: weft_security::pki::PkiError| TokensError::BadFingerprint {
                    path,
                    reason: e.to_string(),
                },
            )
    }
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

    // The CLI refuses a data dir without keys rather than minting keys nobody validates.
    #[test]
    fn uninitialized_dir_refused() {
        let data = tempfile::tempdir().unwrap();
        let kd = KeyDir::in_data_dir(data.path());
        let err = kd.rotate().unwrap_err();
        assert!(
            matches!(err, TokensError::KeyDir(KeyDirError::NoKeys { .. })),
            "{err}"
        );
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
