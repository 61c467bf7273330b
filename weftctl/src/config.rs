//! `~/.weftctl/config`: the control planes weftctl knows, in kumactl's shape
//! (`controlPlanes[].coordinates.apiServer{url, authType, authConf}`, `contexts`,
//! `currentContext`), so a kumactl config file reads as one.
//!
//! The file holds tokens: it is written with mode 0600 in a 0700 directory,
//! through a temporary file renamed over the old one (a reader never sees half a
//! file, and a file that was readable by others is replaced by a private one).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What replaces a secret when the configuration is shown.
pub const MASK: &str = "<redacted>";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a weftctl configuration: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the configuration: {0}")]
    Encode(#[source] serde_yaml_ng::Error),
    #[error("HOME is not set: give the configuration file with --config-file or WEFTCTL_CONFIG")]
    NoHome,
    #[error("a control plane named {0:?} is already configured: add --overwrite to replace it")]
    Exists(String),
    #[error("no control plane named {0:?}: `weftctl config control-planes list` shows them")]
    UnknownControlPlane(String),
    #[error(
        "no control plane is configured: add one with `weftctl config control-planes add --name NAME \
         --address http://127.0.0.1:5681 --auth-type=tokens --auth-conf token=$(cat DATA_DIR/admin.token)`"
    )]
    NoControlPlane,
    #[error(
        "the current context {0:?} names no configured control plane: `weftctl config control-planes switch --name NAME`"
    )]
    DanglingContext(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    #[serde(default)]
    pub control_planes: Vec<ControlPlane>,
    #[serde(default)]
    pub contexts: Vec<Context>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_context: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlane {
    pub name: String,
    pub coordinates: Coordinates,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coordinates {
    pub api_server: ApiServer,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServer {
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_conf: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca_cert_file: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_verify: bool,
}

impl ApiServer {
    /// The bearer token (`authType: tokens`, `authConf.token`).
    pub fn token(&self) -> Option<&str> {
        self.auth_conf
            .get("token")
            .map(String::as_str)
            .filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub name: String,
    pub control_plane: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<ContextDefaults>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextDefaults {
    #[serde(default)]
    pub mesh: String,
}

/// The default location, `~/.weftctl/config`.
pub fn default_path() -> Result<PathBuf, ConfigError> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(ConfigError::NoHome)?;
    Ok(PathBuf::from(home).join(".weftctl").join("config"))
}

impl Config {
    /// The file at `path`; an empty configuration when there is none.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }

    /// Writes the file (0600; its directory created 0700), replacing it whole.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = serde_yaml_ng::to_string(self).map_err(ConfigError::Encode)?;
        let err = |p: &Path| {
            let path = p.to_path_buf();
            move |source| ConfigError::Write { path, source }
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err(dir))?;
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into());
        let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ConfigError::Write {
                path: path.into(),
                source: e,
            }
        })
    }

    pub fn control_plane(&self, name: &str) -> Option<&ControlPlane> {
        self.control_planes.iter().find(|c| c.name == name)
    }

    /// The control plane of the current context.
    pub fn current(&self) -> Result<&ControlPlane, ConfigError> {
        if self.current_context.is_empty() {
            return Err(ConfigError::NoControlPlane);
        }
        let cp = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .map(|c| c.control_plane.as_str())
            .unwrap_or(self.current_context.as_str());
        self.control_plane(cp)
            .ok_or_else(|| ConfigError::DanglingContext(self.current_context.clone()))
    }

    /// Adds (or with `overwrite`, replaces) `cp`, with a context of the same name,
    /// and makes it current; refused when the name is taken and not `overwrite`.
    pub fn add(&mut self, cp: ControlPlane, overwrite: bool) -> Result<(), ConfigError> {
        if let Some(existing) = self.control_planes.iter_mut().find(|c| c.name == cp.name) {
            if !overwrite {
                return Err(ConfigError::Exists(cp.name));
            }
            *existing = cp.clone();
        } else {
            self.control_planes.push(cp.clone());
        }
        if !self.contexts.iter().any(|c| c.name == cp.name) {
            self.contexts.push(Context {
                name: cp.name.clone(),
                control_plane: cp.name.clone(),
                defaults: None,
            });
        }
        self.current_context = cp.name;
        Ok(())
    }

    /// Makes the context of control plane `name` current.
    pub fn switch(&mut self, name: &str) -> Result<(), ConfigError> {
        if self.control_plane(name).is_none() {
            return Err(ConfigError::UnknownControlPlane(name.into()));
        }
        let context = self
            .contexts
            .iter()
            .find(|c| c.control_plane == name)
            .map(|c| c.name.clone());
        self.current_context = match context {
            Some(c) => c,
            None => {
                self.contexts.push(Context {
                    name: name.into(),
                    control_plane: name.into(),
                    defaults: None,
                });
                name.into()
            }
        };
        Ok(())
    }

    /// Removes control plane `name` and its contexts; if it was current, the first
    /// remaining one becomes current.
    pub fn remove(&mut self, name: &str) -> Result<(), ConfigError> {
        if self.control_plane(name).is_none() {
            return Err(ConfigError::UnknownControlPlane(name.into()));
        }
        self.control_planes.retain(|c| c.name != name);
        let removed: Vec<String> = self
            .contexts
            .iter()
            .filter(|c| c.control_plane == name)
            .map(|c| c.name.clone())
            .collect();
        self.contexts.retain(|c| c.control_plane != name);
        if removed.contains(&self.current_context) || self.current_context == name {
            self.current_context = self
                .contexts
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default();
        }
        Ok(())
    }

    /// A copy with every `authConf` value masked, for showing.
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        for cp in &mut c.control_planes {
            for v in cp.coordinates.api_server.auth_conf.values_mut() {
                *v = MASK.to_string();
            }
        }
        c
    }

    /// The name of the current control plane, if any.
    pub fn current_name(&self) -> Option<&str> {
        self.current().ok().map(|c| c.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cp(name: &str, url: &str, token: &str) -> ControlPlane {
        ControlPlane {
            name: name.into(),
            coordinates: Coordinates {
                api_server: ApiServer {
                    url: url.into(),
                    auth_type: "tokens".into(),
                    auth_conf: [("token".to_string(), token.to_string())].into(),
                    ..Default::default()
                },
            },
        }
    }

    // A saved configuration reads back equal; the file is 0600 and its new
    // directory 0700, also when it replaces a file readable by others.
    #[test]
    fn round_trip_and_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub").join("config");
        let mut c = Config::default();
        c.add(cp("global", "http://127.0.0.1:5681", "secret-1"), false)
            .unwrap();
        c.add(cp("east", "https://east:5682", "secret-2"), false)
            .unwrap();
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), c);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        c.save(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    // The file has kumactl's shape: controlPlanes[].coordinates.apiServer, contexts,
    // currentContext; a kumactl file (with fields weftctl does not know) reads.
    #[test]
    fn kumactl_shape() {
        let mut c = Config::default();
        c.add(cp("local", "http://localhost:5681", "t"), false)
            .unwrap();
        let text = serde_yaml_ng::to_string(&c).unwrap();
        for needle in [
            "controlPlanes:",
            "coordinates:",
            "apiServer:",
            "url: http://localhost:5681",
            "authType: tokens",
            "authConf:",
            "contexts:",
            "controlPlane: local",
            "currentContext: local",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        let kumactl = "contexts:\n- controlPlane: local\n  defaults:\n    mesh: default\n  name: local\n\
                       controlPlanes:\n- coordinates:\n    apiServer:\n      url: http://localhost:5681\n\
                       \x20     headers: []\n  name: local\ncurrentContext: local\n";
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        std::fs::write(&path, kumactl).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.current().unwrap().coordinates.api_server.url,
            "http://localhost:5681"
        );
    }

    // A missing file is an empty configuration; a broken one names the file.
    #[test]
    fn missing_and_broken_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        assert!(matches!(
            Config::default().current(),
            Err(ConfigError::NoControlPlane)
        ));
        std::fs::write(&path, "controlPlanes: 3\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    // add refuses a taken name unless overwrite; switch and remove keep the current
    // context pointing at a configured control plane.
    #[test]
    fn add_switch_remove() {
        let mut c = Config::default();
        c.add(cp("a", "http://127.0.0.1:1", "x"), false).unwrap();
        c.add(cp("b", "http://127.0.0.1:2", "y"), false).unwrap();
        assert_eq!(c.current_name(), Some("b"));
        assert!(c.add(cp("a", "http://127.0.0.1:3", "z"), false).is_err());
        c.add(cp("a", "http://127.0.0.1:3", "z"), true).unwrap();
        assert_eq!(c.control_planes.len(), 2);
        assert_eq!(
            c.current().unwrap().coordinates.api_server.url,
            "http://127.0.0.1:3"
        );
        c.switch("b").unwrap();
        assert_eq!(c.current_name(), Some("b"));
        assert!(matches!(
            c.switch("nope"),
            Err(ConfigError::UnknownControlPlane(_))
        ));
        c.remove("b").unwrap();
        assert_eq!(c.current_name(), Some("a"));
        c.remove("a").unwrap();
        assert!(c.current().is_err());
        assert!(c.remove("a").is_err());
    }

    // masked() hides every authConf value and nothing else.
    #[test]
    fn masking() {
        let mut c = Config::default();
        c.add(cp("a", "http://127.0.0.1:1", "very-secret"), false)
            .unwrap();
        let text = serde_yaml_ng::to_string(&c.masked()).unwrap();
        assert!(!text.contains("very-secret"), "{text}");
        assert!(
            text.contains(MASK) && text.contains("http://127.0.0.1:1"),
            "{text}"
        );
        // The original is untouched.
        assert_eq!(
            c.current().unwrap().coordinates.api_server.token(),
            Some("very-secret")
        );
    }
}
