//! `weft-global run` settings: flags, `WEFT_*` env vars and an optional YAML file.

use crate::tls::{KdsTlsArgs, KdsTlsFiles};
use clap::Parser;
use std::net::SocketAddr;
use weft_runtime::config::{CommonArgs, CommonConfig, ConfigError, socket_addr};

pub const DEFAULT_DATA_DIR: &str = "./weft-global-data";
pub const DEFAULT_API_ADDRESS: &str = "127.0.0.1:5681";
pub const DEFAULT_KDS_ADDRESS: &str = "0.0.0.0:5685";

/// Flags of `weft-global run`.
#[derive(Debug, Clone, Default, Parser)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub kds_tls: KdsTlsArgs,
    /// Address zones dial for KDS (IP:PORT; port 0 picks a free one).
    #[arg(long, env = "WEFT_KDS_ADDRESS", value_name = "ADDR")]
    pub kds_address: Option<String>,
    /// Delete a zone (and everything it reported) once it has been offline this
    /// long, e.g. 72h; `0s` keeps offline zones forever.
    #[arg(long, env = "WEFT_ZONE_CLEANUP_AFTER", value_name = "DURATION")]
    pub zone_cleanup_after: Option<String>,
}

/// How long an offline zone is kept by default (Kuma keeps offline data-plane
/// proxies 72 hours).
pub const DEFAULT_ZONE_CLEANUP_AFTER: std::time::Duration =
    std::time::Duration::from_secs(72 * 3600);

/// The checked configuration of a global.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    pub common: CommonConfig,
    /// `--kds-tls-cert` / `--kds-tls-key`; `None`: generated in the data dir.
    pub kds_tls: Option<KdsTlsFiles>,
    pub kds_address: SocketAddr,
    /// Offline zones are deleted after this long; `None`: never.
    pub zone_cleanup_after: Option<std::time::Duration>,
}

impl RunArgs {
    /// Applies the config file and defaults, and checks every setting.
    pub fn resolve(mut self, cmd: &clap::Command) -> Result<GlobalConfig, ConfigError> {
        let (common, file) = self
            .common
            .resolve(cmd, DEFAULT_DATA_DIR, DEFAULT_API_ADDRESS)?;
        let kds_tls = self.kds_tls.resolve(&file)?;
        file.fill(&mut self.kds_address, "kds-address")?;
        let kds_address = socket_addr(
            "kds-address",
            self.kds_address.as_deref().unwrap_or(DEFAULT_KDS_ADDRESS),
        )?;
        file.fill(&mut self.zone_cleanup_after, "zone-cleanup-after")?;
        let zone_cleanup_after = match &self.zone_cleanup_after {
            None => Some(DEFAULT_ZONE_CLEANUP_AFTER),
            Some(d) => {
                let d = humantime::parse_duration(d).map_err(|e| {
                    ConfigError::new(
                        "zone-cleanup-after",
                        format!("{d:?} is not a duration like 72h or 30m (0s: never): {e}"),
                    )
                })?;
                (!d.is_zero()).then_some(d)
            }
        };
        Ok(GlobalConfig {
            common,
            kds_tls,
            kds_address,
            zone_cleanup_after,
        })
    }
}

impl AsRef<CommonConfig> for GlobalConfig {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

impl GlobalConfig {
    /// What `GET /config` shows: every setting, key files by path only.
    pub fn to_display(&self) -> serde_json::Value {
        let mut v = self.common.to_display("global");
        v["multizone"] = serde_json::json!({
            "global": {
                "kds": {
                    "grpcAddress": self.kds_address.to_string(),
                    "tlsCertFile": self.kds_tls.as_ref().map(|t| t.cert.display().to_string()),
                    "tlsKeyFile": self.kds_tls.as_ref().map(|t| t.key.display().to_string()),
                },
                "zoneCleanupAfter": self.zone_cleanup_after.map(|d| humantime::format_duration(d).to_string()),
            }
        });
        v
    }

    /// A global on free loopback ports with its data in `data_dir`.
    pub fn for_test(data_dir: &std::path::Path) -> Self {
        GlobalConfig {
            common: CommonConfig::for_test(data_dir),
            kds_tls: None,
            kds_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            zone_cleanup_after: Some(DEFAULT_ZONE_CLEANUP_AFTER),
        }
    }
}
