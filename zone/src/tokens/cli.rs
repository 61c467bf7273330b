//! `weft-zone token dataplane|ingress|egress`: offline, from the data dir's key
//! files (works while the zone runs). Usage errors exit 64; the token goes to
//! stdout, the rest to stderr.

use super::{TokensError, issue_offline, issue_zone_proxy_offline};
use crate::config::DEFAULT_DATA_DIR;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_runtime::cli::usage_error;
use weft_runtime::config::ConfigError;
use weft_security::tokens::IssueError;
use weft_security::tokens::dataplane::{DataplaneTokenBody, TagValues};

const BIN: &str = "weft-zone";

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Issue a dataplane token and print it on stdout (offline, from the data dir's keys).
    Dataplane(DataplaneTokenArgs),
    /// Issue the token of this zone's ingress (`weft-dp run --proxy-type ingress`).
    Ingress(ZoneProxyTokenArgs),
    /// Issue the token of this zone's egress (`weft-dp run --proxy-type egress`).
    Egress(ZoneProxyTokenArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ZoneProxyTokenArgs {
    /// The zone's name (as given to `weft-zone run --zone`; `default` when standalone
    /// without one).
    #[arg(long, env = "WEFT_ZONE", value_name = "ZONE", default_value = crate::DEFAULT_ZONE_NAME)]
    pub zone: String,
    /// How long the token is valid, e.g. 24h, 720h, 30d, 1y.
    #[arg(long, env = "WEFT_VALID_FOR", value_name = "DURATION")]
    pub valid_for: String,
    /// The zone's data dir (where `weft-zone run` keeps its keys).
    #[arg(long, env = "WEFT_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DataplaneTokenArgs {
    /// The mesh of the Dataplanes the token admits.
    #[arg(long, env = "WEFT_MESH", value_name = "MESH")]
    pub mesh: String,
    /// Admit only the Dataplane with this name (default: any name in the mesh).
    #[arg(long, env = "WEFT_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// Admit only Dataplanes whose values of tag K are all V (repeat for more values
    /// or tags), e.g. --tag kuma.io/service=backend.
    #[arg(
        long = "tag",
        env = "WEFT_TAG",
        value_name = "K=V",
        value_delimiter = ','
    )]
    pub tags: Vec<String>,
    /// Admit only Dataplanes labelled `kuma.io/workload: W` (the workload a
    /// MeshIdentity names them by).
    #[arg(long, env = "WEFT_WORKLOAD", value_name = "W")]
    pub workload: Option<String>,
    /// How long the token is valid, e.g. 24h, 720h, 30d, 1y.
    #[arg(long, env = "WEFT_VALID_FOR", value_name = "DURATION")]
    pub valid_for: String,
    /// The zone's data dir (where `weft-zone run` keeps its keys).
    #[arg(long, env = "WEFT_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// Runs a `token` subcommand and gives the exit code.
pub fn run(command: TokenCommand) -> ExitCode {
    match command {
        TokenCommand::Dataplane(args) => dataplane(args),
        TokenCommand::Ingress(args) => zone_proxy(args, weft_security::tokens::SCOPE_INGRESS),
        TokenCommand::Egress(args) => zone_proxy(args, weft_security::tokens::SCOPE_EGRESS),
    }
}

fn zone_proxy(args: ZoneProxyTokenArgs, scope: &str) -> ExitCode {
    let body = weft_security::tokens::ZoneTokenBody {
        zone: args.zone.clone(),
        scope: vec![scope.to_string()],
        valid_for: args.valid_for,
    };
    match issue_zone_proxy_offline(&args.data_dir, &args.zone, body) {
        Ok(issued) => {
            println!("{}", issued.token.expose());
            eprintln!(
                "{BIN}: issued a token of scope {scope} for zone {:?} (jti {}, kid {})",
                issued.claims.zone, issued.claims.registered.jti, issued.kid,
            );
            ExitCode::SUCCESS
        }
        Err(TokensError::Issue(IssueError::Invalid { field, reason })) => {
            let flag = if field == "validFor" {
                "valid-for"
            } else {
                field
            };
            usage_error(BIN, &ConfigError::new(flag, reason))
        }
        Err(e) => {
            eprintln!("{BIN}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `k=v` flags → tag constraints (repeated keys collect values).
pub fn parse_tags(flags: &[String]) -> Result<BTreeMap<String, TagValues>, ConfigError> {
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for flag in flags {
        let Some((k, v)) = flag.split_once('=') else {
            return Err(ConfigError::new(
                "tag",
                format!("{flag:?} is not of the form KEY=VALUE, e.g. kuma.io/service=backend"),
            ));
        };
        tags.entry(k.trim().to_string())
            .or_default()
            .push(v.trim().to_string());
    }
    Ok(tags
        .into_iter()
        .map(|(k, v)| (k, TagValues::Many(v)))
        .collect())
}

fn dataplane(args: DataplaneTokenArgs) -> ExitCode {
    let tags = match parse_tags(&args.tags) {
        Ok(t) => t,
        Err(e) => return usage_error(BIN, &e),
    };
    let body = DataplaneTokenBody {
        mesh: args.mesh,
        name: args.name,
        tags,
        workload: args.workload,
        valid_for: args.valid_for,
    };
    match issue_offline(&args.data_dir, body) {
        Ok(issued) => {
            println!("{}", issued.token.expose());
            eprintln!(
                "{BIN}: issued a dataplane token for mesh {:?}{} (jti {}, kid {})",
                issued.claims.mesh,
                issued
                    .claims
                    .name
                    .as_ref()
                    .map(|n| format!(", name {n:?}"))
                    .unwrap_or_default(),
                issued.claims.registered.jti,
                issued.kid,
            );
            ExitCode::SUCCESS
        }
        Err(TokensError::Issue(IssueError::Invalid { field, reason })) => {
            let flag = match field {
                "validFor" => "valid-for",
                "tags" => "tag",
                other => other,
            };
            usage_error(BIN, &ConfigError::new(flag, reason))
        }
        Err(e) => {
            eprintln!("{BIN}: {e}");
            ExitCode::FAILURE
        }
    }
}
