//! Configuration plumbing shared by the binaries: every flag has a `WEFT_*` env
//! var and may also come from a YAML file (`--config`), whose keys are the flag
//! names. Precedence: flag, then env var, then file, then default.
//!
//! Bad settings are reported as a [`ConfigError`] naming the setting; binaries
//! exit with [`EXIT_USAGE`] (64, `EX_USAGE`).

use clap::ValueEnum;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Exit code for invalid configuration or usage (sysexits `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The flag (and env var) name, e.g. `--api-address (WEFT_API_ADDRESS)`.
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(flag: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            setting: format!("--{flag} ({})", env_name(flag)),
            reason: reason.into(),
        }
    }
}

/// `api-address` → `WEFT_API_ADDRESS`.
pub fn env_name(flag: &str) -> String {
    format!("WEFT_{}", flag.replace('-', "_").to_uppercase())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings read from a YAML config file, keyed by flag name.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    values: Map<String, Value>,
}

impl FileConfig {
    /// Reads `path`, refusing keys that are not long flags of `cmd`.
    pub fn load(path: &Path, cmd: &clap::Command) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("config", format!("cannot read {}: {e}", path.display()))
        })?;
        let value: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
            ConfigError::new(
                "config",
                format!("{} is not valid YAML: {e}", path.display()),
            )
        })?;
        let values = match value {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => {
                return Err(ConfigError::new(
                    "config",
                    format!("{} must be a map of flag names to values", path.display()),
                ));
            }
        };
        let known: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
        for key in values.keys() {
            if key == "config" || !known.contains(&key.as_str()) {
                return Err(ConfigError::new(
                    "config",
                    format!(
                        "{}: unknown setting {key:?}; known: {}",
                        path.display(),
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(FileConfig { values })
    }

    /// Fills `slot` from the file when the flag and env var left it empty.
    pub fn fill<T: DeserializeOwned>(
        &self,
        slot: &mut Option<T>,
        flag: &str,
    ) -> Result<(), ConfigError> {
        if slot.is_some() {
            return Ok(());
        }
        if let Some(v) = self.values.get(flag) {
            let parsed = serde_json::from_value(v.clone())
                .map_err(|e| ConfigError::new(flag, format!("in the config file: {e}")))?;
            *slot = Some(parsed);
        }
        Ok(())
    }
}

/// Parses `host:port` (IP literal); port 0 picks a free port.
pub fn socket_addr(flag: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            flag,
            format!("{value:?} is not an address of the form IP:PORT, e.g. 127.0.0.1:5681"),
        )
    })
}

/// Largest request body the REST API reads unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings every control plane has.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    pub data_dir: PathBuf,
    pub api_address: SocketAddr,
    pub api_max_body_bytes: usize,
    /// Create the `default` mesh on first start (as Kuma does).
    pub default_mesh: bool,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl CommonConfig {
    /// What `GET /config` shows of these settings, for a control plane in `mode`
    /// (Kuma's key names where it has them).
    pub fn to_display(&self, mode: &str) -> serde_json::Value {
        serde_json::json!({
            "mode": mode,
            "environment": "universal",
            "store": { "type": "sled", "dataDir": self.data_dir.display().to_string() },
            "apiServer": {
                "http": { "address": self.api_address.to_string() },
                "maxBodyBytes": self.api_max_body_bytes,
                "auth": { "type": "tokens" },
            },
            "defaults": { "skipMeshCreation": !self.default_mesh },
            "logging": {
                "format": format!("{:?}", self.log_format).to_lowercase(),
                "level": self.log_level,
            },
        })
    }

    /// For tests: a data dir, the API on a free loopback port, defaults otherwise.
    pub fn for_test(data_dir: &Path) -> Self {
        CommonConfig {
            data_dir: data_dir.to_path_buf(),
            api_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            default_mesh: true,
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

/// The flags every `run` command shares, as clap reads them (all optional so the
/// config file can fill the gaps).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// YAML file with settings keyed by flag name (flags and env vars win over it).
    #[arg(long, env = "WEFT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the store, the admin token and generated certificates live.
    #[arg(long, env = "WEFT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the REST API (IP:PORT; port 0 picks a free one).
    #[arg(long, env = "WEFT_API_ADDRESS", value_name = "ADDR")]
    pub api_address: Option<String>,
    /// Largest request body the API accepts, in bytes.
    #[arg(long, env = "WEFT_API_MAX_BODY_BYTES", value_name = "BYTES")]
    pub api_max_body_bytes: Option<usize>,
    /// Do not create the `default` mesh on first start.
    #[arg(long, env = "WEFT_SKIP_DEFAULT_MESH", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub skip_default_mesh: Option<bool>,
    /// Log format.
    #[arg(long, env = "WEFT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `weft_zone=debug,info`.
    #[arg(long, env = "WEFT_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl CommonArgs {
    /// Loads the config file (if any) for `cmd`, fills the gaps and checks everything.
    pub fn resolve(
        mut self,
        cmd: &clap::Command,
        default_data_dir: &str,
        default_api: &str,
    ) -> Result<(CommonConfig, FileConfig), ConfigError> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p, cmd)?,
            None => FileConfig::default(),
        };
        file.fill(&mut self.data_dir, "data-dir")?;
        file.fill(&mut self.api_address, "api-address")?;
        file.fill(&mut self.api_max_body_bytes, "api-max-body-bytes")?;
        file.fill(&mut self.skip_default_mesh, "skip-default-mesh")?;
        file.fill(&mut self.log_format, "log-format")?;
        file.fill(&mut self.log_level, "log-level")?;
        let data_dir = self
            .data_dir
            .unwrap_or_else(|| PathBuf::from(default_data_dir));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data-dir", "must not be empty"));
        }
        let api_address = socket_addr(
            "api-address",
            self.api_address.as_deref().unwrap_or(default_api),
        )?;
        let api_max_body_bytes = self.api_max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if api_max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "api-max-body-bytes",
                "must be at least 1024",
            ));
        }
        let log_level = self.log_level.unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(ConfigError::new(
                "log-level",
                format!("{log_level:?} is not a valid log filter"),
            ));
        }
        Ok((
            CommonConfig {
                data_dir,
                api_address,
                api_max_body_bytes,
                default_mesh: !self.skip_default_mesh.unwrap_or(false),
                log_format: self.log_format.unwrap_or_default(),
                log_level,
            },
            file,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    // A bad address is reported with the flag and env var it came from.
    #[test]
    fn names_the_bad_setting() {
        let cli = Cli::parse_from(["x", "--api-address", "nope"]);
        let err = cli
            .common
            .resolve(&Cli::command(), "d", "127.0.0.1:1")
            .unwrap_err();
        assert_eq!(err.setting, "--api-address (WEFT_API_ADDRESS)");
    }

    // File values fill gaps; flags win over the file; unknown file keys are refused.
    #[test]
    fn file_precedence_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(
            &f,
            "api-address: 127.0.0.1:7000\nlog-format: json\nskip-default-mesh: true\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["x", "--config", f.to_str().unwrap(), "--log-format", "text"]);
        let (c, _) = cli
            .common
            .resolve(&Cli::command(), "d", "127.0.0.1:1")
            .unwrap();
        assert_eq!(c.api_address.port(), 7000);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(!c.default_mesh);
        std::fs::write(&f, "api-adress: 127.0.0.1:7000\n").unwrap();
        let cli = Cli::parse_from(["x", "--config", f.to_str().unwrap()]);
        let err = cli
            .common
            .resolve(&Cli::command(), "d", "127.0.0.1:1")
            .unwrap_err();
        assert!(
            err.reason.contains("unknown setting \"api-adress\""),
            "{err}"
        );
    }
}
