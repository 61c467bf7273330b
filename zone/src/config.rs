//! `weft-zone run` settings: flags, `WEFT_*` env vars and an optional YAML file.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use weft_model::resource::{Path, ValidationErrors, validate};
use weft_runtime::config::{CommonArgs, CommonConfig, ConfigError, socket_addr};
use weft_security::pki::ServerTrust;
use weft_security::tokens::ZoneClaims;

pub const DEFAULT_DATA_DIR: &str = "./weft-zone-data";
pub const DEFAULT_API_ADDRESS: &str = "127.0.0.1:5691";
pub const DEFAULT_XDS_ADDRESS: &str = "0.0.0.0:5678";
/// How long a Dataplane stays after its last xDS stream closed (a restarting proxy
/// reconnects within it and keeps its endpoints).
pub const DEFAULT_DATAPLANE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Flags of `weft-zone run`.
#[derive(Debug, Clone, Default, Parser)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Name of this zone (shown by `GET /`; required to join a global).
    #[arg(long, env = "WEFT_ZONE", value_name = "NAME")]
    pub zone: Option<String>,
    /// Global's KDS address, `grpcs://HOST:PORT`; absent: a standalone zone.
    #[arg(long, env = "WEFT_GLOBAL_ADDRESS", value_name = "URL")]
    pub global_address: Option<String>,
    /// File holding the zone token issued by global (`weft-global token zone`).
    #[arg(long, env = "WEFT_ZONE_TOKEN_FILE", value_name = "FILE")]
    pub zone_token_file: Option<PathBuf>,
    /// CA certificate (PEM) to verify global with; default: the CA pinned in the token.
    #[arg(long, env = "WEFT_GLOBAL_CA_FILE", value_name = "FILE")]
    pub global_ca_file: Option<PathBuf>,
    /// Where Envoy proxies connect for ADS (TLS, gRPC), IP:PORT.
    #[arg(long, env = "WEFT_XDS_ADDRESS", value_name = "ADDR")]
    pub xds_address: Option<String>,
    /// How long a proxy's Dataplane is kept after its last xDS stream closed, e.g. 30s.
    #[arg(long, env = "WEFT_DATAPLANE_GRACE_PERIOD", value_name = "DURATION")]
    pub dataplane_grace_period: Option<String>,
}

/// The xDS server's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct XdsSettings {
    pub address: SocketAddr,
    /// Dataplanes are deleted this long after their last stream closed.
    pub dataplane_grace: std::time::Duration,
}

/// How a federated zone reaches and trusts global.
#[derive(Clone, PartialEq)]
pub struct Federation {
    /// `grpcs://host:port`.
    pub global: String,
    /// The zone token (never logged).
    pub token: Arc<str>,
    pub trust: Arc<ServerTrust>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("global", &self.global)
            .field("token", &"<redacted>")
            .field("trust", &self.trust)
            .finish()
    }
}

impl ZoneConfig {
    /// What `GET /config` shows: every setting, the zone token never.
    pub fn to_display(&self) -> serde_json::Value {
        let mut v = self.common.to_display("zone");
        v["multizone"] = serde_json::json!({
            "zone": {
                "name": self.zone,
                "globalAddress": self.federation.as_ref().map(|f| f.global.clone()),
            }
        });
        v["xds"] = serde_json::json!({
            "address": self.xds.address.to_string(),
            "dataplaneGracePeriod": humantime::format_duration(self.xds.dataplane_grace).to_string(),
        });
        v
    }
}

/// The checked configuration of a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    pub common: CommonConfig,
    pub zone: Option<String>,
    /// Set when the zone joins a global.
    pub federation: Option<Federation>,
    pub xds: XdsSettings,
}

impl RunArgs {
    /// Applies the config file and defaults, and checks every setting.
    pub fn resolve(mut self, cmd: &clap::Command) -> Result<ZoneConfig, ConfigError> {
        let (common, file) = self
            .common
            .resolve(cmd, DEFAULT_DATA_DIR, DEFAULT_API_ADDRESS)?;
        file.fill(&mut self.zone, "zone")?;
        if let Some(zone) = &self.zone {
            let mut errs = ValidationErrors::new();
            validate::check_name(&Path::root(), zone, &mut errs);
            if !errs.is_empty() {
                return Err(ConfigError::new("zone", errs.to_string()));
            }
        }
        file.fill(&mut self.global_address, "global-address")?;
        file.fill(&mut self.zone_token_file, "zone-token-file")?;
        file.fill(&mut self.global_ca_file, "global-ca-file")?;
        file.fill(&mut self.xds_address, "xds-address")?;
        file.fill(&mut self.dataplane_grace_period, "dataplane-grace-period")?;
        let xds = XdsSettings {
            address: socket_addr(
                "xds-address",
                self.xds_address.as_deref().unwrap_or(DEFAULT_XDS_ADDRESS),
            )?,
            dataplane_grace: match &self.dataplane_grace_period {
                None => DEFAULT_DATAPLANE_GRACE,
                Some(d) => humantime::parse_duration(d).map_err(|e| {
                    ConfigError::new(
                        "dataplane-grace-period",
                        format!("{d:?} is not a duration like 30s or 2m: {e}"),
                    )
                })?,
            },
        };
        let federation = match self.global_address {
            None => None,
            Some(global) => {
                if self.zone.is_none() {
                    return Err(ConfigError::new(
                        "zone",
                        "a zone that joins a global (--global-address) needs a name",
                    ));
                }
                Some(federation(
                    global,
                    self.zone_token_file,
                    self.global_ca_file,
                )?)
            }
        };
        Ok(ZoneConfig {
            common,
            zone: self.zone,
            federation,
            xds,
        })
    }
}

/// Checks the address, reads the token and settles how global is verified.
fn federation(
    global: String,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
) -> Result<Federation, ConfigError> {
    let uri: tonic::transport::Uri = global.parse().map_err(|_| {
        ConfigError::new(
            "global-address",
            format!("{global:?} is not a URL like grpcs://global.example:5685"),
        )
    })?;
    match uri.scheme_str() {
        Some("grpcs") => {}
        Some("grpc") => {
            return Err(ConfigError::new(
                "global-address",
                "plaintext KDS is not supported: use grpcs:// (global serves TLS by default)",
            ));
        }
        _ => {
            return Err(ConfigError::new(
                "global-address",
                format!("{global:?} must start with grpcs://"),
            ));
        }
    }
    if uri.host().is_none() {
        return Err(ConfigError::new(
            "global-address",
            format!("{global:?} has no host"),
        ));
    }
    let token_file = token_file.ok_or_else(|| {
        ConfigError::new(
            "zone-token-file",
            "required with --global-address (weft-global token zone)",
        )
    })?;
    let token = std::fs::read_to_string(&token_file).map_err(|e| {
        ConfigError::new(
            "zone-token-file",
            format!("cannot read {}: {e}", token_file.display()),
        )
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(ConfigError::new(
            "zone-token-file",
            format!("{} is empty", token_file.display()),
        ));
    }
    let trust = match ca_file {
        Some(path) => ServerTrust::from_ca_file(&path)
            .map_err(|e| ConfigError::new("global-ca-file", e.to_string()))?,
        None => {
            let claims = ZoneClaims::read_unverified(token).map_err(|e| {
                ConfigError::new("zone-token-file", format!("not a zone token: {e}"))
            })?;
            let pin = claims.kds_ca_fingerprint.ok_or_else(|| {
                ConfigError::new(
                    "global-ca-file",
                    "the zone token pins no CA fingerprint: give global's CA with --global-ca-file",
                )
            })?;
            ServerTrust::Pinned(pin)
        }
    };
    Ok(Federation {
        global,
        token: Arc::from(token),
        trust: Arc::new(trust),
    })
}

impl AsRef<CommonConfig> for ZoneConfig {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

impl ZoneConfig {
    /// A standalone zone on free loopback ports with its data in `data_dir`.
    pub fn for_test(data_dir: &std::path::Path) -> Self {
        ZoneConfig {
            common: CommonConfig::for_test(data_dir),
            zone: None,
            federation: None,
            xds: XdsSettings {
                address: SocketAddr::from(([127, 0, 0, 1], 0)),
                dataplane_grace: DEFAULT_DATAPLANE_GRACE,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    // An invalid zone name is refused naming --zone.
    #[test]
    fn bad_zone_name() {
        let args = RunArgs::parse_from(["run", "--zone", "Zone_1"]);
        let err = args.resolve(&RunArgs::command()).unwrap_err();
        assert_eq!(err.setting, "--zone (WEFT_ZONE)");
    }

    // The xDS address defaults to 0.0.0.0:5678; a bad one or a bad grace period is named.
    #[test]
    fn xds_settings() {
        let ok = RunArgs::parse_from(["run"])
            .resolve(&RunArgs::command())
            .unwrap();
        assert_eq!(ok.xds.address.to_string(), DEFAULT_XDS_ADDRESS);
        assert_eq!(ok.xds.dataplane_grace, DEFAULT_DATAPLANE_GRACE);
        let err = RunArgs::parse_from(["run", "--xds-address", "nope"])
            .resolve(&RunArgs::command())
            .unwrap_err();
        assert_eq!(err.setting, "--xds-address (WEFT_XDS_ADDRESS)");
        let err = RunArgs::parse_from(["run", "--dataplane-grace-period", "soon"])
            .resolve(&RunArgs::command())
            .unwrap_err();
        assert_eq!(
            err.setting,
            "--dataplane-grace-period (WEFT_DATAPLANE_GRACE_PERIOD)"
        );
    }
}
