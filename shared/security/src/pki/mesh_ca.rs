//! A Mesh's `mtls.backends[]` turned into a usable [`MeshCa`]: a builtin backend's
//! CA lives in two Secrets of the mesh (Kuma's `<mesh>.ca-builtin-cert-<backend>`
//! and `<mesh>.ca-builtin-key-<backend>`), created once where the Mesh is owned
//! ([`builtin_ca_secrets`]); a provided backend's comes from its `conf.cert` and
//! `conf.key` data sources ([`backend_ca`]).

use super::workload::MeshCa;
use super::{PkiError, PrivateKeyPem};
use weft_model::resource::mesh::{
    CaBackend, CaBackendType, builtin_ca_cert_secret, builtin_ca_key_secret,
};
use weft_model::resource::secret::{DataSource, SecretSpec, decode_base64};
use weft_model::resource::{Resource, Spec};

/// Why a backend's CA is not usable; `field` is relative to the backend
/// (`conf.cert`, `conf.key`), for an API error at `mtls.backends[i].<field>`.
#[derive(Debug, thiserror::Error)]
pub enum BackendCaError {
    #[error("{field}: secret {name:?} does not exist in mesh {mesh:?}")]
    MissingSecret {
        field: &'static str,
        mesh: String,
        name: String,
    },
    #[error("{field}: cannot read {path:?}: {source}")]
    File {
        field: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: {reason}")]
    Unreadable { field: &'static str, reason: String },
    #[error("{field}: {source}")]
    Invalid {
        field: &'static str,
        #[source]
        source: PkiError,
    },
}

impl BackendCaError {
    /// The field of the backend the error is about (`conf.cert`, `conf.key`).
    pub fn field(&self) -> &'static str {
        match self {
            BackendCaError::MissingSecret { field, .. }
            | BackendCaError::File { field, .. }
            | BackendCaError::Unreadable { field, .. }
            | BackendCaError::Invalid { field, .. } => field,
        }
    }
}

/// The CA of `backend` in `mesh`; `secret(name)` reads a Secret of the mesh (its
/// decoded bytes), `None` when it does not exist.
pub fn backend_ca(
    mesh: &str,
    backend: &CaBackend,
    secret: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<MeshCa, BackendCaError> {
    let (cert, key) = match backend.backend_type {
        Some(CaBackendType::Provided) => {
            let conf = backend.conf.as_ref();
            let cert = resolve(
                mesh,
                "conf.cert",
                conf.and_then(|c| c.cert.as_ref()),
                &secret,
            )?;
            let key = resolve(mesh, "conf.key", conf.and_then(|c| c.key.as_ref()), &secret)?;
            (cert, key)
        }
        // Builtin (the default when validation let an unset type through).
        _ => {
            let read = |field, name: String| {
                secret(&name).ok_or_else(|| BackendCaError::MissingSecret {
                    field,
                    mesh: mesh.to_string(),
                    name,
                })
            };
            (
                read("conf.cert", builtin_ca_cert_secret(mesh, &backend.name))?,
                read("conf.key", builtin_ca_key_secret(mesh, &backend.name))?,
            )
        }
    };
    let text = |field, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| BackendCaError::Unreadable {
            field,
            reason: "is not PEM text".into(),
        })
    };
    let cert = text("conf.cert", cert)?;
    let key = PrivateKeyPem::new(text("conf.key", key)?);
    MeshCa::from_pem(&cert, key).map_err(|source| BackendCaError::Invalid {
        field: "conf",
        source,
    })
}

fn resolve(
    mesh: &str,
    field: &'static str,
    source: Option<&DataSource>,
    secret: &impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, BackendCaError> {
    let Some(source) = source else {
        return Err(BackendCaError::Unreadable {
            field,
            reason: "has to be defined".into(),
        });
    };
    if let Some(name) = &source.secret {
        return secret(name).ok_or_else(|| BackendCaError::MissingSecret {
            field,
            mesh: mesh.to_string(),
            name: name.clone(),
        });
    }
    if let Some(path) = &source.file {
        return std::fs::read(path).map_err(|e| BackendCaError::File {
            field,
            path: path.clone(),
            source: e,
        });
    }
    if let Some(inline) = &source.inline {
        return decode_base64(inline).map_err(|e| BackendCaError::Unreadable {
            field,
            reason: format!("inline is not valid base64: {e}"),
        });
    }
    if let Some(s) = &source.inline_string {
        return Ok(s.clone().into_bytes());
    }
    Err(BackendCaError::Unreadable {
        field,
        reason: "data source has to be chosen".into(),
    })
}

/// A fresh CA for builtin `backend` of `mesh`, as the two Secrets that hold it
/// (certificate, then key). CPU work: run it off the async runtime.
pub fn builtin_ca_secrets(
    mesh: &str,
    backend: &CaBackend,
) -> Result<(MeshCa, [Resource; 2]), PkiError> {
    let ca = MeshCa::generate(mesh, backend.ca_cert_lifetime())?;
    let secret = |name: String, bytes: &[u8]| {
        Resource::new(
            &name,
            Some(mesh),
            Spec::Secret(SecretSpec::from_bytes(bytes)),
        )
    };
    let cert = secret(
        builtin_ca_cert_secret(mesh, &backend.name),
        ca.cert_pem().as_bytes(),
    );
    let key = secret(
        builtin_ca_key_secret(mesh, &backend.name),
        ca.key_pem().expose().as_bytes(),
    );
    Ok((ca, [cert, key]))
}

/// The CA kept in `dir` (`ca.crt`, `ca.key`, the key 0600 in a 0700 directory),
/// created there (subject `CN=<name>`) when either file is missing. Blocking IO
/// and key generation: run it off the async runtime.
pub fn load_or_create_in(
    dir: &std::path::Path,
    name: &str,
    validity: std::time::Duration,
) -> Result<MeshCa, PkiError> {
    let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read_to_string(&cert_path).map_err(PkiError::io(&cert_path))?;
        let key = std::fs::read_to_string(&key_path).map_err(PkiError::io(&key_path))?;
        return MeshCa::from_pem(&cert, PrivateKeyPem::new(key));
    }
    std::fs::create_dir_all(dir).map_err(PkiError::io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(PkiError::io(dir))?;
    }
    let ca = MeshCa::generate(name, validity)?;
    crate::files::write_replace(&key_path, ca.key_pem().expose().as_bytes(), 0o600)
        .map_err(PkiError::io(&key_path))?;
    crate::files::write_replace(&cert_path, ca.cert_pem().as_bytes(), 0o644)
        .map_err(PkiError::io(&cert_path))?;
    Ok(ca)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;
    use weft_model::resource::mesh::CaConf;

    fn secrets_of(resources: &[Resource]) -> HashMap<String, Vec<u8>> {
        resources
            .iter()
            .map(|r| match &r.spec {
                Spec::Secret(s) => (r.meta.name.clone(), s.bytes().unwrap()),
                _ => panic!("not a secret"),
            })
            .collect()
    }

    fn builtin(name: &str) -> CaBackend {
        CaBackend {
            name: name.into(),
            backend_type: Some(CaBackendType::Builtin),
            ..CaBackend::default()
        }
    }

    // A generated builtin CA is stored under Kuma's names and reads back as the
    // same CA; without its Secrets the backend names the missing one.
    #[test]
    fn builtin_ca_round_trips_through_its_secrets() {
        let (ca, secrets) = builtin_ca_secrets("default", &builtin("ca-1")).unwrap();
        assert_eq!(secrets[0].meta.name, "default.ca-builtin-cert-ca-1");
        assert_eq!(secrets[1].meta.name, "default.ca-builtin-key-ca-1");
        assert_eq!(secrets[0].meta.mesh.as_deref(), Some("default"));
        let store = secrets_of(&secrets);
        let again = backend_ca("default", &builtin("ca-1"), |n| store.get(n).cloned()).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        let err = backend_ca("default", &builtin("ca-2"), |n| store.get(n).cloned()).unwrap_err();
        assert!(
            err.to_string().contains("default.ca-builtin-cert-ca-2"),
            "{err}"
        );
    }

    // A CA kept in a directory is created once, with a private key only its
    // owner can read, and reads back as the same CA.
    #[test]
    fn ca_in_a_directory_is_stable_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("default").join("identity");
        let year = std::time::Duration::from_secs(365 * 86_400);
        let first = load_or_create_in(&dir, "default.east.mesh.local", year).unwrap();
        let again = load_or_create_in(&dir, "default.east.mesh.local", year).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    // A provided CA reads its cert and key from Secrets or inline sources; a key
    // that is not the certificate's is refused at `conf`, a missing Secret at its
    // field.
    #[test]
    fn provided_ca_from_data_sources() {
        let ca = MeshCa::generate("default", std::time::Duration::from_secs(3600)).unwrap();
        let provided = |cert: DataSource, key: DataSource| CaBackend {
            name: "mine".into(),
            backend_type: Some(CaBackendType::Provided),
            conf: Some(CaConf {
                cert: Some(cert),
                key: Some(key),
                ..CaConf::default()
            }),
            ..CaBackend::default()
        };
        let by_secret = |n: &str| DataSource {
            secret: Some(n.into()),
            ..DataSource::default()
        };
        let store = HashMap::from([
            ("c".to_string(), ca.cert_pem().as_bytes().to_vec()),
            ("k".to_string(), ca.key_pem().expose().as_bytes().to_vec()),
        ]);
        let got = backend_ca("default", &provided(by_secret("c"), by_secret("k")), |n| {
            store.get(n).cloned()
        })
        .unwrap();
        assert_eq!(got.fingerprint(), ca.fingerprint());
        let inline = DataSource {
            inline_string: Some(ca.cert_pem().into()),
            ..DataSource::default()
        };
        let got = backend_ca("default", &provided(inline, by_secret("k")), |n| {
            store.get(n).cloned()
        })
        .unwrap();
        assert_eq!(got.fingerprint(), ca.fingerprint());
        let err = backend_ca(
            "default",
            &provided(by_secret("c"), by_secret("nope")),
            |n| store.get(n).cloned(),
        )
        .unwrap_err();
        assert_eq!(err.field(), "conf.key");
        let other = MeshCa::generate("default", std::time::Duration::from_secs(3600)).unwrap();
        let foreign = DataSource {
            inline_string: Some(other.key_pem().expose().into()),
            ..DataSource::default()
        };
        let err = backend_ca("default", &provided(by_secret("c"), foreign), |n| {
            store.get(n).cloned()
        })
        .unwrap_err();
        assert_eq!(err.field(), "conf");
        assert!(err.to_string().contains("does not belong"), "{err}");
    }
}
