//! `weft-global token zone` and `weft-global token rotate-signing-key`: offline, from
//! the data dir's key files (no store, no server needed; they work while it runs).
//! Usage errors exit 64; the token goes to stdout, everything else to stderr.

use super::{TokensError, issue_offline, rotate_offline};
use crate::config::DEFAULT_DATA_DIR;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_runtime::cli::usage_error;
use weft_runtime::config::ConfigError;
use weft_security::tokens::jwt::rfc3339;
use weft_security::tokens::{IssueError, ZoneTokenBody};

const BIN: &str = "weft-global";

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Issue a zone token and print it on stdout (offline, from the data dir's keys).
    Zone(ZoneTokenArgs),
    /// Add a zone-token signing key: new tokens are signed with it, tokens signed by
    /// older keys keep working. A running global picks it up without a restart.
    RotateSigningKey(DataDirArg),
}

#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// The global's data dir (where `weft-global run` keeps its keys).
    #[arg(long, env = "WEFT_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ZoneTokenArgs {
    /// The zone the token is for (the name its control plane runs with).
    #[arg(long, env = "WEFT_ZONE", value_name = "NAME")]
    pub zone: String,
    /// What the token allows: cp (a zone control plane, the default), ingress, egress.
    /// Repeat the flag or separate with commas.
    #[arg(long, env = "WEFT_SCOPE", value_name = "SCOPE", value_delimiter = ',')]
    pub scope: Vec<String>,
    /// How long the token is valid, e.g. 24h, 720h, 30d, 1y.
    #[arg(long, env = "WEFT_VALID_FOR", value_name = "DURATION")]
    pub valid_for: String,
    #[command(flatten)]
    pub dir: DataDirArg,
}

/// Runs a `token` subcommand and gives the exit code.
pub fn run(command: TokenCommand) -> ExitCode {
    match command {
        TokenCommand::Zone(args) => zone(args),
        TokenCommand::RotateSigningKey(args) => match rotate_offline(&args.data_dir) {
            Ok(kid) => {
                println!(
                    "created zone-token signing key {kid} in {}: new tokens are signed with it; \
                     tokens signed by older keys keep working",
                    args.data_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
    }
}

fn zone(args: ZoneTokenArgs) -> ExitCode {
    let body = ZoneTokenBody {
        zone: args.zone,
        scope: args.scope,
        valid_for: args.valid_for,
    };
    match issue_offline(&args.dir.data_dir, body) {
        Ok(issued) => {
            println!("{}", issued.token.expose());
            eprintln!(
                "{BIN}: issued a zone token for zone {:?} (jti {}, kid {}, scope {}, expires {})",
                issued.claims.zone,
                issued.claims.registered.jti,
                issued.kid,
                issued.claims.scope.join(","),
                rfc3339(issued.claims.registered.exp),
            );
            ExitCode::SUCCESS
        }
        Err(TokensError::Issue(IssueError::Invalid { field, reason })) => {
            let flag = match field {
                "validFor" => "valid-for",
                other => other,
            };
            usage_error(BIN, &ConfigError::new(flag, reason))
        }
        Err(e) => failed(&e),
    }
}

fn failed(e: &TokensError) -> ExitCode {
    eprintln!("{BIN}: {e}");
    ExitCode::FAILURE
}
