//! The KDS server's TLS material: `--kds-tls-cert` / `--kds-tls-key` when the
//! operator gives them, otherwise a CA and server certificate global creates in
//! `<data-dir>/kds-tls/` on first start (see `weft_security::pki::KdsTls`).

use std::path::{Path, PathBuf};
use weft_runtime::config::{ConfigError, FileConfig};
use weft_security::pki::{KDS_TLS_DIR, KdsTls, PkiError, default_sans};

/// The KDS TLS flags of `weft-global run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KdsTlsArgs {
    /// PEM certificate chain the KDS server presents, leaf first; end it with the CA
    /// so zone tokens carry its fingerprint. Generated in <data-dir>/kds-tls when
    /// absent. Needs --kds-tls-key.
    #[arg(long, env = "WEFT_KDS_TLS_CERT", value_name = "FILE")]
    pub kds_tls_cert: Option<PathBuf>,
    /// PEM private key of --kds-tls-cert.
    #[arg(long, env = "WEFT_KDS_TLS_KEY", value_name = "FILE")]
    pub kds_tls_key: Option<PathBuf>,
}

/// The operator's certificate chain and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdsTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl KdsTlsArgs {
    /// Fills the gaps from the config file; both or neither, each readable.
    pub fn resolve(mut self, file: &FileConfig) -> Result<Option<KdsTlsFiles>, ConfigError> {
        file.fill(&mut self.kds_tls_cert, "kds-tls-cert")?;
        file.fill(&mut self.kds_tls_key, "kds-tls-key")?;
        match (self.kds_tls_cert, self.kds_tls_key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(
                "kds-tls-key",
                "is required with --kds-tls-cert (give both, or neither to have global \
                 generate its KDS certificate)",
            )),
            (None, Some(_)) => Err(ConfigError::new(
                "kds-tls-cert",
                "is required with --kds-tls-key (give both, or neither to have global \
                 generate its KDS certificate)",
            )),
            (Some(cert), Some(key)) => {
                readable("kds-tls-cert", &cert)?;
                readable("kds-tls-key", &key)?;
                Ok(Some(KdsTlsFiles { cert, key }))
            }
        }
    }
}

fn readable(flag: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| ConfigError::new(flag, format!("cannot read {}: {e}", path.display())))
}

/// The operator's files when given, otherwise the generated material in
/// `<data_dir>/kds-tls` (created on first start, its server certificate for
/// `localhost`, `127.0.0.1` and `::1`).
pub fn load_kds_tls(files: Option<&KdsTlsFiles>, data_dir: &Path) -> Result<KdsTls, PkiError> {
    match files {
        Some(f) => KdsTls::from_files(&f.cert, &f.key),
        None => KdsTls::load_or_create(&data_dir.join(KDS_TLS_DIR), &default_sans()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(cert: Option<&Path>, key: Option<&Path>) -> KdsTlsArgs {
        KdsTlsArgs {
            kds_tls_cert: cert.map(Path::to_path_buf),
            kds_tls_key: key.map(Path::to_path_buf),
        }
    }

    // Both or neither; the missing or unreadable one is the flag named.
    #[test]
    fn both_or_neither_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "x").unwrap();
        let none = FileConfig::default();
        assert_eq!(args(None, None).resolve(&none).unwrap(), None);
        let err = args(Some(&cert), None).resolve(&none).unwrap_err();
        assert_eq!(err.setting, "--kds-tls-key (WEFT_KDS_TLS_KEY)");
        let err = args(None, Some(&cert)).resolve(&none).unwrap_err();
        assert_eq!(err.setting, "--kds-tls-cert (WEFT_KDS_TLS_CERT)");
        let missing = dir.path().join("absent.pem");
        let err = args(Some(&cert), Some(&missing))
            .resolve(&none)
            .unwrap_err();
        assert_eq!(err.setting, "--kds-tls-key (WEFT_KDS_TLS_KEY)");
        let ok = args(Some(&cert), Some(&cert)).resolve(&none).unwrap();
        assert_eq!(ok.map(|f| f.key), Some(cert));
    }

    // Generated material is created once and has a CA fingerprint for the tokens.
    #[test]
    fn generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_kds_tls(None, dir.path()).unwrap();
        let b = load_kds_tls(None, dir.path()).unwrap();
        assert!(a.ca_fingerprint().is_some());
        assert_eq!(a.ca_fingerprint(), b.ca_fingerprint());
        assert!(dir.path().join("kds-tls/ca.crt").is_file());
    }
}
