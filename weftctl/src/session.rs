//! What every command shares: the global flags, the configuration, a client for
//! the current control plane, the type list, and the output streams.

use crate::cli::{GlobalArgs, Output};
use crate::client::{Client, ClientError, Target};
use crate::config::{Config, ConfigError};
use crate::manifest::ManifestError;
use crate::types::{Types, TypesError};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(Box<ClientError>),
    #[error(transparent)]
    Types(#[from] TypesError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Usage(String),
    #[error("{source_name}: {kind} {name:?} was not applied: {source}")]
    Apply {
        source_name: String,
        kind: String,
        name: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot encode the output: {0}")]
    Encode(String),
    #[error("cannot generate a signing key: {0}")]
    Key(String),
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Client(Box::new(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Output(e)
    }
}

/// Where a command prints: results to `out`, warnings to `err`; `stdin` for
/// `apply -f -`.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn Read,
}

pub struct Session<'a> {
    pub global: GlobalArgs,
    pub io: Io<'a>,
    config_path: Option<PathBuf>,
    pub config: Config,
}

impl<'a> Session<'a> {
    pub fn new(global: GlobalArgs, io: Io<'a>) -> Result<Self, Error> {
        let (config_path, config) = if global.no_config {
            (None, Config::default())
        } else {
            let path = match &global.config_file {
                Some(p) => p.clone(),
                None => crate::config::default_path()?,
            };
            let config = Config::load(&path)?;
            (Some(path), config)
        };
        Ok(Session {
            global,
            io,
            config_path,
            config,
        })
    }

    /// Saves the configuration (refused with `--no-config`).
    pub fn save_config(&self) -> Result<(), Error> {
        let path = self.config_path.as_ref().ok_or_else(|| {
            Error::Usage("--no-config: there is no configuration file to change".into())
        })?;
        self.config.save(path)?;
        Ok(())
    }

    /// Where and how to reach the current control plane: the configuration's
    /// current context, or with `--no-config` WEFTCTL_ADDRESS and WEFTCTL_TOKEN.
    pub fn target(&self) -> Result<Target, Error> {
        if self.global.no_config {
            let url = std::env::var("WEFTCTL_ADDRESS").map_err(|_| {
                Error::Usage(
                    "--no-config: set WEFTCTL_ADDRESS (and WEFTCTL_TOKEN) to the control plane's \
                     API, e.g. WEFTCTL_ADDRESS=http://127.0.0.1:5681"
                        .into(),
                )
            })?;
            return Ok(Target {
                url,
                token: std::env::var("WEFTCTL_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
                ..Default::default()
            });
        }
        let cp = self.config.current()?;
        let api = &cp.coordinates.api_server;
        Ok(Target {
            url: api.url.clone(),
            token: api.token().map(str::to_string),
            ca_cert_file: (!api.ca_cert_file.is_empty()).then(|| PathBuf::from(&api.ca_cert_file)),
            skip_verify: api.skip_verify,
        })
    }

    /// A client for the current control plane; warns once when the token would
    /// cross the network in clear text.
    pub fn client(&mut self) -> Result<Client, Error> {
        let client = Client::new(&self.target()?, self.global.api_timeout)?;
        if client.is_cleartext_remote() {
            writeln!(
                self.io.err,
                "warning: {} is plain http to another host: the token crosses the network \
                 unencrypted (serve the API behind TLS and use https://)",
                client.address()
            )?;
        }
        Ok(client)
    }

    /// The server's resource types (`GET /_resources`).
    pub async fn types(&self, client: &Client) -> Result<Types, Error> {
        Ok(Types::from_value(client.get_json("/_resources").await?)?)
    }

    /// Prints `v` as JSON or YAML (`-o`); `table` is printed for `-o table`.
    pub fn print(&mut self, v: &Value, table: impl FnOnce() -> String) -> Result<(), Error> {
        let text = match self.global.output {
            Output::Table => table(),
            Output::Json => to_json(v)?,
            Output::Yaml => to_yaml(v)?,
        };
        self.io.out.write_all(text.as_bytes())?;
        Ok(())
    }

    pub fn say(&mut self, line: &str) -> Result<(), Error> {
        writeln!(self.io.out, "{line}")?;
        Ok(())
    }

    pub fn warn(&mut self, line: &str) -> Result<(), Error> {
        writeln!(self.io.err, "{line}")?;
        Ok(())
    }
}

pub fn to_json(v: &Value) -> Result<String, Error> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| Error::Encode(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

pub fn to_yaml(v: &Value) -> Result<String, Error> {
    serde_yaml_ng::to_string(v).map_err(|e| Error::Encode(e.to_string()))
}
