//! Small filesystem helpers: private directories and atomic writes.

use super::PkiError;
use std::path::Path;

/// Creates `dir` (and parents) when missing; a directory created here is 0700.
pub(super) fn ensure_private_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(PkiError::io(dir))
}

/// Writes `bytes` to `path` atomically with `mode` ([`crate::files::write_replace`]).
pub(super) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    crate::files::write_replace(path, bytes, mode).map_err(PkiError::io(path))
}

/// The file's content, or `None` when it does not exist.
pub(super) fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An atomic write replaces the content, applies the mode and leaves no temp file.
    #[test]
    fn atomic_write_with_mode() -> Result<(), PkiError> {
        let dir = tempfile::tempdir().map_err(PkiError::io("tempdir"))?;
        let path = dir.path().join("k.pem");
        write_atomic(&path, b"one", 0o600)?;
        write_atomic(&path, b"two", 0o600)?;
        assert_eq!(read_optional(&path)?.as_deref(), Some("two"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(PkiError::io(&path))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .map_err(PkiError::io(dir.path()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(read_optional(&dir.path().join("absent"))?, None);
        Ok(())
    }
}
