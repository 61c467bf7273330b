//! `weft-zone run` settings: flags, `WEFT_*` env vars and an optional YAML file.

use clap::Parser;
use weft_shared::config::{CommonArgs, CommonConfig, ConfigError};
use weft_shared::resource::{Path, ValidationErrors, validate};

pub const DEFAULT_DATA_DIR: &str = "./weft-zone-data";
pub const DEFAULT_API_ADDRESS: &str = "127.0.0.1:5691";

/// Flags of `weft-zone run`.
#[derive(Debug, Clone, Default, Parser)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Name of this zone (shown by `GET /`; required to join a global).
    #[arg(long, env = "WEFT_ZONE", value_name = "NAME")]
    pub zone: Option<String>,
}

/// The checked configuration of a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    pub common: CommonConfig,
    pub zone: Option<String>,
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
        Ok(ZoneConfig {
            common,
            zone: self.zone,
        })
    }
}

impl ZoneConfig {
    /// A standalone zone on free loopback ports with its data in `data_dir`.
    pub fn for_test(data_dir: &std::path::Path) -> Self {
        ZoneConfig {
            common: CommonConfig::for_test(data_dir),
            zone: None,
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
}
