//! `weft-global run` settings: flags, `WEFT_*` env vars and an optional YAML file.

use clap::Parser;
use weft_shared::config::{CommonArgs, CommonConfig, ConfigError};

pub const DEFAULT_DATA_DIR: &str = "./weft-global-data";
pub const DEFAULT_API_ADDRESS: &str = "127.0.0.1:5681";

/// Flags of `weft-global run`.
#[derive(Debug, Clone, Default, Parser)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The checked configuration of a global.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    pub common: CommonConfig,
}

impl RunArgs {
    /// Applies the config file and defaults, and checks every setting.
    pub fn resolve(self, cmd: &clap::Command) -> Result<GlobalConfig, ConfigError> {
        let (common, _file) = self
            .common
            .resolve(cmd, DEFAULT_DATA_DIR, DEFAULT_API_ADDRESS)?;
        Ok(GlobalConfig { common })
    }
}

impl GlobalConfig {
    /// A global on free loopback ports with its data in `data_dir`.
    pub fn for_test(data_dir: &std::path::Path) -> Self {
        GlobalConfig {
            common: CommonConfig::for_test(data_dir),
        }
    }
}
