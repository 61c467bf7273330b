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
}

/// The checked configuration of a global.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    pub common: CommonConfig,
    /// `--kds-tls-cert` / `--kds-tls-key`; `None`: generated in the data dir.
    pub kds_tls: Option<KdsTlsFiles>,
    pub kds_address: SocketAddr,
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
        Ok(GlobalConfig {
            common,
            kds_tls,
            kds_address,
        })
    }
}

impl AsRef<CommonConfig> for GlobalConfig {
    fn as_ref(&self) -> &CommonConfig {
        &self.common
    }
}

impl GlobalConfig {
    /// A global on free loopback ports with its data in `data_dir`.
    pub fn for_test(data_dir: &std::path::Path) -> Self {
        GlobalConfig {
            common: CommonConfig::for_test(data_dir),
            kds_tls: None,
            kds_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}
