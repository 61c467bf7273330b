//! `weft-dp run` settings: flags, each with a `WEFT_*` env var (DESIGN §8).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use weft_model::proxy::XdsApi;
use weft_model::resource::duration::parse_duration;
use weft_model::resource::{Resource, parse_document};
use weft_runtime::config::{ConfigError, FileConfig, LogFormat};

pub const DEFAULT_CP_ADDRESS: &str = "http://127.0.0.1:5691";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    /// A Dataplane's sidecar.
    #[default]
    Sidecar,
    /// A zone ingress (a ZoneIngress; token of scope `ingress` from the zone).
    Ingress,
    /// A zone egress (a ZoneEgress; token of scope `egress` from the zone).
    Egress,
}

impl ProxyType {
    /// The name the zone's `POST /bootstrap` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Sidecar => "sidecar",
            ProxyType::Ingress => "ingress",
            ProxyType::Egress => "egress",
        }
    }

    /// The resource type the proxy presents.
    pub fn resource_type(self) -> &'static str {
        match self {
            ProxyType::Sidecar => "Dataplane",
            ProxyType::Ingress => "ZoneIngress",
            ProxyType::Egress => "ZoneEgress",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdsApiArg {
    /// Incremental xDS (`DELTA_GRPC`).
    #[default]
    Delta,
    /// State of the world (`GRPC`).
    Sotw,
}

/// Flags of `weft-dp run`. Precedence: flag, env var, the `--config` YAML file
/// (keys are the flag names), default.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// YAML file with settings keyed by flag name (flags and env vars win over it).
    #[arg(long, env = "WEFT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The zone control plane's API [default: http://127.0.0.1:5691].
    #[arg(long, env = "WEFT_CP_ADDRESS", value_name = "URL")]
    pub cp_address: Option<String>,
    /// The Dataplane resource (Kuma universal format, YAML or JSON).
    #[arg(long, env = "WEFT_DATAPLANE_FILE", value_name = "FILE")]
    pub dataplane_file: Option<PathBuf>,
    /// The Dataplane resource inline (instead of --dataplane-file).
    #[arg(long, env = "WEFT_DATAPLANE", value_name = "YAML")]
    pub dataplane: Option<String>,
    /// File holding the dataplane token (`weft-zone token dataplane`).
    #[arg(long, env = "WEFT_DATAPLANE_TOKEN_FILE", value_name = "FILE")]
    pub dataplane_token_file: Option<PathBuf>,
    /// What this proxy is; only sidecar is supported so far [default: sidecar].
    #[arg(long, env = "WEFT_PROXY_TYPE", value_enum)]
    pub proxy_type: Option<ProxyType>,
    /// The Envoy binary; default: the project's .venv/bin/envoy, then `envoy` on PATH.
    #[arg(long, env = "WEFT_ENVOY_BIN", value_name = "FILE")]
    pub envoy_bin: Option<PathBuf>,
    /// The ADS flavour Envoy uses [default: delta].
    #[arg(long, env = "WEFT_XDS_API", value_enum)]
    pub xds_api: Option<XdsApiArg>,
    /// Envoy's admin port on 127.0.0.1 (sets networking.admin.port; default 9901).
    #[arg(long, env = "WEFT_ADMIN_PORT", value_name = "PORT")]
    pub admin_port: Option<u16>,
    /// Envoy's log level: trace, debug, info, warning, error, critical, off [default: info].
    #[arg(long, env = "WEFT_ENVOY_LOG_LEVEL", value_name = "LEVEL")]
    pub envoy_log_level: Option<String>,
    /// How long to keep asking a zone that is not reachable or not ready yet [default: 60s].
    #[arg(long, env = "WEFT_BOOTSTRAP_TIMEOUT", value_name = "DURATION")]
    pub bootstrap_timeout: Option<String>,
    /// Envoy's drain time on shutdown, whole seconds [default: 1s].
    #[arg(long, env = "WEFT_DRAIN_TIME", value_name = "DURATION")]
    pub drain_time: Option<String>,
    /// weft-dp's own log filter [default: info].
    #[arg(long, env = "WEFT_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// weft-dp's own log format [default: text].
    #[arg(long, env = "WEFT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Checked settings of `weft-dp run`.
#[derive(Clone)]
pub struct DpConfig {
    /// `host:port` of the zone API (plain HTTP).
    pub cp_authority: String,
    pub cp_url: String,
    /// The Dataplane as a JSON value (universal format).
    pub dataplane: Value,
    pub proxy_type: ProxyType,
    pub mesh: String,
    pub name: String,
    /// The token (never logged).
    pub token: Option<String>,
    pub envoy_bin: PathBuf,
    pub xds_api: XdsApi,
    pub admin_port: u16,
    pub envoy_log_level: String,
    pub bootstrap_timeout: Duration,
    pub drain_time: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
}

impl std::fmt::Debug for DpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpConfig")
            .field("cp_url", &self.cp_url)
            .field("dataplane", &format!("{}.{}", self.mesh, self.name))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("envoy_bin", &self.envoy_bin)
            .field("xds_api", &self.xds_api)
            .field("admin_port", &self.admin_port)
            .field("envoy_log_level", &self.envoy_log_level)
            .field("bootstrap_timeout", &self.bootstrap_timeout)
            .finish()
    }
}

impl RunArgs {
    /// Applies the config file and defaults, reads the Dataplane and the token, finds
    /// Envoy, checks every setting. `cmd` is the `run` command (for the file's keys).
    pub fn resolve(mut self, cmd: &clap::Command) -> Result<DpConfig, ConfigError> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p, cmd)?,
            None => FileConfig::default(),
        };
        file.fill(&mut self.cp_address, "cp-address")?;
        file.fill(&mut self.dataplane_file, "dataplane-file")?;
        file.fill(&mut self.dataplane, "dataplane")?;
        file.fill(&mut self.dataplane_token_file, "dataplane-token-file")?;
        file.fill(&mut self.proxy_type, "proxy-type")?;
        file.fill(&mut self.envoy_bin, "envoy-bin")?;
        file.fill(&mut self.xds_api, "xds-api")?;
        file.fill(&mut self.admin_port, "admin-port")?;
        file.fill(&mut self.envoy_log_level, "envoy-log-level")?;
        file.fill(&mut self.bootstrap_timeout, "bootstrap-timeout")?;
        file.fill(&mut self.drain_time, "drain-time")?;
        file.fill(&mut self.log_level, "log-level")?;
        file.fill(&mut self.log_format, "log-format")?;
        let proxy_type = self.proxy_type.unwrap_or_default();
        let cp_address = self.cp_address.as_deref().unwrap_or(DEFAULT_CP_ADDRESS);
        let (cp_url, cp_authority) = parse_cp_address(cp_address)?;
        let source = if self.dataplane.is_some() {
            "dataplane"
        } else {
            "dataplane-file"
        };
        let mut dataplane = read_dataplane(self.dataplane_file.as_deref(), self.dataplane)?;
        let admin_port = set_admin_port(&mut dataplane, self.admin_port, source)?;
        let resource = Resource::from_value(dataplane.clone())
            .and_then(|r| r.validate().map(|()| r))
            .map_err(|e| {
                ConfigError::new(
                    source,
                    format!("the {} is not valid: {e}", proxy_type.resource_type()),
                )
            })?;
        if resource.resource_type().name() != proxy_type.resource_type() {
            return Err(ConfigError::new(
                source,
                format!(
                    "expected a resource of type {} for --proxy-type {}, got {}",
                    proxy_type.resource_type(),
                    proxy_type.as_str(),
                    resource.resource_type().name()
                ),
            ));
        }
        let token = match &self.dataplane_token_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "dataplane-token-file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let t = text.trim().to_string();
                if t.is_empty() {
                    return Err(ConfigError::new(
                        "dataplane-token-file",
                        format!("{} is empty", path.display()),
                    ));
                }
                Some(t)
            }
        };
        let envoy_bin = super::envoy::find_envoy(self.envoy_bin.as_deref())
            .map_err(|e| ConfigError::new("envoy-bin", e))?;
        let duration = |flag: &str, text: &str| {
            parse_duration(text).map_err(|e| ConfigError::new(flag, e.to_string()))
        };
        Ok(DpConfig {
            cp_url,
            cp_authority,
            proxy_type,
            mesh: resource.meta.mesh.clone().unwrap_or_default(),
            name: resource.meta.name.clone(),
            dataplane,
            token,
            envoy_bin,
            xds_api: match self.xds_api.unwrap_or_default() {
                XdsApiArg::Delta => XdsApi::Delta,
                XdsApiArg::Sotw => XdsApi::Sotw,
            },
            admin_port,
            envoy_log_level: self.envoy_log_level.unwrap_or_else(|| "info".into()),
            bootstrap_timeout: duration(
                "bootstrap-timeout",
                self.bootstrap_timeout.as_deref().unwrap_or("60s"),
            )?,
            drain_time: duration("drain-time", self.drain_time.as_deref().unwrap_or("1s"))?,
            log_level: self.log_level.unwrap_or_else(|| "info".into()),
            log_format: self.log_format.unwrap_or_default(),
        })
    }
}

/// `http://host:port` → (the URL without a trailing slash, `host:port`).
fn parse_cp_address(text: &str) -> Result<(String, String), ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            "cp-address",
            format!("{text:?} {why}; expected a URL like {DEFAULT_CP_ADDRESS}"),
        )
    };
    let rest = if let Some(r) = text.strip_prefix("http://") {
        r
    } else if text.starts_with("https://") {
        return Err(bad("uses https, which the zone API does not serve yet"));
    } else {
        return Err(bad("is not an http:// URL"));
    };
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad("must be scheme://host:port with no path"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((format!("http://{authority}"), authority))
}

fn read_dataplane(file: Option<&Path>, inline: Option<String>) -> Result<Value, ConfigError> {
    let (flag, text) = match (file, inline) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "dataplane",
                "give either --dataplane-file or --dataplane, not both",
            ));
        }
        (None, None) => {
            return Err(ConfigError::new(
                "dataplane-file",
                "is required: the proxy's Dataplane resource (YAML or JSON), or --dataplane inline",
            ));
        }
        (Some(path), None) => (
            "dataplane-file",
            std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "dataplane-file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
        ),
        (None, Some(text)) => ("dataplane", text),
    };
    let value = parse_document(text.as_bytes(), false)
        .map_err(|e| ConfigError::new(flag, e.to_string()))?;
    if !value.is_object() {
        return Err(ConfigError::new(
            flag,
            "must be a Dataplane resource (a map)",
        ));
    }
    Ok(value)
}

/// Applies `--admin-port` to `networking.admin.port`; returns the effective port.
fn set_admin_port(
    dataplane: &mut Value,
    flag: Option<u16>,
    source: &str,
) -> Result<u16, ConfigError> {
    let current = dataplane
        .pointer("/networking/admin/port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    let Some(port) = flag else {
        return Ok(current.unwrap_or(weft_model::proxy::DEFAULT_ADMIN_PORT));
    };
    let networking = dataplane.as_object_mut().map(|o| {
        o.entry("networking")
            .or_insert_with(|| Value::Object(Default::default()))
    });
    let Some(Value::Object(networking)) = networking else {
        return Err(ConfigError::new(source, "networking must be a map"));
    };
    networking.insert("admin".into(), serde_json::json!({ "port": port }));
    Ok(port)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    // The config file fills gaps, flags win over it, unknown keys are refused.
    #[test]
    fn config_file_precedence() {
        use clap::{CommandFactory, Parser};
        let dir = tempfile::tempdir().unwrap();
        let dp = dir.path().join("dp.yaml");
        std::fs::write(
            &dp,
            "type: Dataplane\nmesh: default\nname: a\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 1\n      tags:\n        kuma.io/service: a\n",
        )
        .unwrap();
        let exe = std::env::current_exe().unwrap();
        let cfg = dir.path().join("dp-config.yaml");
        std::fs::write(
            &cfg,
            format!(
                "dataplane-file: {}\nenvoy-bin: {}\nxds-api: sotw\nadmin-port: 9300\n",
                dp.display(),
                exe.display()
            ),
        )
        .unwrap();
        let cfg_arg = cfg.display().to_string();
        let cli = Cli::parse_from(["x", "--config", &cfg_arg, "--admin-port", "9400"]);
        let c = cli.run.resolve(&Cli::command()).unwrap();
        assert_eq!(c.xds_api, XdsApi::Sotw);
        assert_eq!(c.admin_port, 9400);
        assert_eq!(c.dataplane["networking"]["admin"]["port"], 9400);
        assert_eq!(c.cp_url, "http://127.0.0.1:5691");
        assert_eq!(c.name, "a");
        std::fs::write(&cfg, "cp-adress: x\n").unwrap();
        let cli = Cli::parse_from(["x", "--config", &cfg_arg]);
        let e = cli.run.resolve(&Cli::command()).unwrap_err();
        assert!(e.reason.contains("unknown setting \"cp-adress\""), "{e}");
    }

    // The CP URL must be plain http://host[:port]; the port defaults to 80.
    #[test]
    fn cp_address() {
        assert_eq!(
            parse_cp_address("http://127.0.0.1:5691/").unwrap(),
            ("http://127.0.0.1:5691".into(), "127.0.0.1:5691".into())
        );
        assert_eq!(parse_cp_address("http://zone").unwrap().1, "zone:80");
        assert!(parse_cp_address("https://zone:1").is_err());
        assert!(parse_cp_address("zone:1").is_err());
        assert!(parse_cp_address("http://zone:1/api").is_err());
    }

    // --admin-port overrides networking.admin.port; otherwise the file's or 9901.
    #[test]
    fn admin_port() {
        let mut dp = serde_json::json!({"networking": {"admin": {"port": 9100}}});
        assert_eq!(set_admin_port(&mut dp, None, "dataplane").unwrap(), 9100);
        assert_eq!(
            set_admin_port(&mut dp, Some(9200), "dataplane").unwrap(),
            9200
        );
        assert_eq!(dp["networking"]["admin"]["port"], 9200);
        let mut none = serde_json::json!({"networking": {}});
        assert_eq!(set_admin_port(&mut none, None, "dataplane").unwrap(), 9901);
    }

    // Exactly one Dataplane source; YAML and JSON both read.
    #[test]
    fn dataplane_sources() {
        assert!(read_dataplane(None, None).is_err());
        assert!(read_dataplane(Some(Path::new("x")), Some("y".into())).is_err());
        let v = read_dataplane(None, Some("type: Dataplane\nname: a\n".into())).unwrap();
        assert_eq!(v["name"], "a");
        let v = read_dataplane(None, Some(r#"{"type":"Dataplane","name":"b"}"#.into())).unwrap();
        assert_eq!(v["name"], "b");
        let e = read_dataplane(None, Some("- a\n".into())).unwrap_err();
        assert!(e.setting.contains("--dataplane "), "{e}");
    }
}
