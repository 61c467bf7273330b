//! The command line, in kumactl's words: the same command names and flags where
//! kumactl has them, so a Kuma user's muscle memory carries over.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "weftctl",
    version,
    about = "Weft's command-line client (kumactl's commands, for weft-global and weft-zone)",
    long_about = "Weft's command-line client: manage control planes, apply, get, delete and \
                  inspect resources, and generate tokens, over the REST API of weft-global and \
                  weft-zone (docs/weftctl.md)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes (kumactl's root flags).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Path to the configuration file (default ~/.weftctl/config).
    #[arg(long, global = true, env = "WEFTCTL_CONFIG", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Read and write no configuration file: the control plane is taken from
    /// WEFTCTL_ADDRESS (and its token from WEFTCTL_TOKEN).
    #[arg(long, global = true)]
    pub no_config: bool,
    /// How long one API request may take (e.g. 30s, 1m).
    #[arg(long, global = true, default_value = "1m", value_parser = parse_duration, value_name = "DURATION")]
    pub api_timeout: Duration,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The mesh of mesh-scoped resources.
    #[arg(short = 'm', long, global = true, default_value = "default")]
    pub mesh: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Yaml,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("not a duration ({e}): write e.g. 30s or 1m"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the control planes weftctl talks to.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Show resources: `get meshes`, `get meshtimeouts`, `get meshtimeout NAME`.
    Get(GetArgs),
    /// Create or update resources from files, a directory or stdin.
    Apply(ApplyArgs),
    /// Delete a resource: `delete meshtimeout NAME`.
    Delete(DeleteArgs),
    /// Show resources with their runtime state: dataplanes, zones, meshes, services,
    /// a policy type, or one dataplane's config, rules, policies or Envoy state.
    Inspect(InspectArgs),
    /// Generate tokens and signing keys.
    Generate {
        #[command(subcommand)]
        command: GenerateCommand,
    },
    /// Print weftctl's version and, when configured, the control plane's.
    Version,
    /// Print a shell completion script: `source <(weftctl completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Manage the configured control planes.
    #[command(name = "control-planes")]
    ControlPlanes {
        #[command(subcommand)]
        command: ControlPlanesCommand,
    },
    /// Print the configuration (tokens masked).
    View,
}

#[derive(Debug, Subcommand)]
pub enum ControlPlanesCommand {
    /// Add a control plane and switch to it.
    Add(AddArgs),
    /// List the configured control planes.
    List,
    /// Make a configured control plane the active one.
    Switch {
        /// Name of the control plane.
        #[arg(long)]
        name: String,
    },
    /// Remove a control plane from the configuration.
    Remove {
        /// Name of the control plane.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Name to refer to the control plane by.
    #[arg(long)]
    pub name: String,
    /// URL of its API, e.g. http://127.0.0.1:5681 or https://cp.example:5682.
    #[arg(long)]
    pub address: String,
    /// Authentication type: `tokens` (the admin token, sent as a bearer token).
    #[arg(long)]
    pub auth_type: Option<String>,
    /// Authentication settings as key=value, e.g. `token=...`.
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    pub auth_conf: Vec<String>,
    /// PEM file of the CA that signed the API's TLS certificate (https).
    #[arg(long, value_name = "FILE")]
    pub ca_cert_file: Option<PathBuf>,
    /// Do not verify the API's TLS certificate (testing only).
    #[arg(long)]
    pub skip_verify: bool,
    /// Replace a control plane of the same name.
    #[arg(long)]
    pub overwrite: bool,
    /// Do not check that the control plane answers before adding it.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// A type, as its plural (`meshtimeouts`), singular (`meshtimeout`) or short
    /// name (`mt`).
    #[arg(value_name = "TYPE")]
    pub kind: String,
    /// A resource name: show that one resource.
    pub name: Option<String>,
    /// How many to list at most (1–1000).
    #[arg(long)]
    pub size: Option<u32>,
    /// How many to skip.
    #[arg(long)]
    pub offset: Option<u32>,
    /// Only the resources whose name contains this text.
    #[arg(long)]
    pub name_contains: Option<String>,
    /// Only the resources with this label (KEY=VALUE; several: all of them).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A file (YAML, several documents separated by `---`, or JSON), a directory
    /// (every file in it) or `-` for stdin. May be repeated.
    #[arg(short = 'f', long = "file", required = true, value_name = "FILE|DIR|-")]
    pub files: Vec<String>,
    /// Check the resources and print what would be sent; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace `{{ KEY }}` in the files with VALUE.
    #[arg(short = 'v', long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The type (plural, singular or short name).
    #[arg(value_name = "TYPE")]
    pub kind: String,
    /// The resource's name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// `dataplanes`, `dataplane`, `zones`, `meshes`, `services`, or a policy type.
    #[arg(value_name = "WHAT")]
    pub what: String,
    /// A name: the dataplane (or policy) to inspect.
    pub name: Option<String>,
    /// What to show of one dataplane.
    #[arg(long = "type", value_enum, default_value_t = InspectType::Policies)]
    pub inspect_type: InspectType,
    /// `inspect dataplanes`: only those with this tag on an inbound (KEY=VALUE,
    /// VALUE `*` for any; several: all of them).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// `inspect dataplanes`: only gateway dataplanes.
    #[arg(long)]
    pub gateway: bool,
    /// `inspect dataplanes`: only the online ones (`--online=false`: the offline ones).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub online: Option<bool>,
    /// `inspect dataplanes|meshes|<policy type> NAME`: one page of this size
    /// (1–1000) instead of every item.
    #[arg(long)]
    pub size: Option<u32>,
    /// With `--size`: how many to skip.
    #[arg(long)]
    pub offset: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectType {
    /// The proxy-wide policies of the dataplane (`_policies`; served by its zone).
    Policies,
    /// The merged policy rules per inbound and outbound (`_rules`).
    Rules,
    /// The Envoy configuration the control plane generates (`_config`).
    Config,
    /// Envoy's config dump (`/xds`).
    ConfigDump,
    /// Envoy's stats (`/stats`).
    Stats,
    /// Envoy's clusters (`/clusters`).
    Clusters,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// A zone token (on global: `POST /tokens/zone`).
    ZoneToken {
        /// The zone the token is for.
        #[arg(long)]
        zone: String,
        /// What the token admits: `cp` (a zone control plane, the default),
        /// `ingress`, `egress`. May be repeated.
        #[arg(long, value_delimiter = ',')]
        scope: Vec<String>,
        /// How long the token is valid (e.g. 24h, 720h, 30d; default: ten years).
        #[arg(long)]
        valid_for: Option<String>,
    },
    /// A dataplane token (on a zone: `POST /tokens/dataplane`).
    DataplaneToken {
        /// Restrict the token to the Dataplane of this name.
        #[arg(long)]
        name: Option<String>,
        /// Restrict the token to Dataplanes with this tag (KEY=VALUE; repeat a key
        /// for several values).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Restrict the token to Dataplanes labelled `kuma.io/workload: WORKLOAD`.
        #[arg(long)]
        workload: Option<String>,
        /// How long the token is valid (e.g. 24h).
        #[arg(long)]
        valid_for: Option<String>,
        /// `dataplane` (zone ingresses and egresses take zone tokens:
        /// `generate zone-token --scope ingress`).
        #[arg(long, default_value = "dataplane")]
        proxy_type: String,
    },
    /// A new token signing key (Ed25519, PKCS#8 PEM), printed, for a control
    /// plane's key directory (docs/weftctl.md says where it goes).
    SigningKey,
}

/// `KEY=VALUE` → (KEY, VALUE); `what` names the flag in the error.
pub fn key_value(s: &str, what: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{what} {s:?} is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("weftctl").chain(args.iter().copied()))
    }

    // The command line is consistent (clap's own checks).
    #[test]
    fn command_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    // kumactl's spelling of adding a control plane parses into its parts.
    #[test]
    fn control_planes_add() {
        let cli = parse(&[
            "config",
            "control-planes",
            "add",
            "--name",
            "global",
            "--address",
            "http://127.0.0.1:5681",
            "--auth-type=tokens",
            "--auth-conf",
            "token=abc",
            "--overwrite",
        ])
        .unwrap();
        let Command::Config {
            command:
                ConfigCommand::ControlPlanes {
                    command: ControlPlanesCommand::Add(add),
                },
        } = cli.command
        else {
            panic!("not an add: {:?}", cli.command)
        };
        assert_eq!(add.name, "global");
        assert_eq!(add.auth_type.as_deref(), Some("tokens"));
        assert_eq!(add.auth_conf, vec!["token=abc"]);
        assert!(add.overwrite && !add.skip_verify && !add.no_check);
    }

    // Global flags go anywhere; the defaults are kumactl's (mesh default, table, 1m).
    #[test]
    fn global_flags_and_defaults() {
        let cli = parse(&["get", "meshtimeouts"]).unwrap();
        assert_eq!(cli.global.mesh, "default");
        assert_eq!(cli.global.output, Output::Table);
        assert_eq!(cli.global.api_timeout, Duration::from_secs(60));
        let cli = parse(&[
            "get",
            "mt",
            "x",
            "-o",
            "json",
            "--mesh",
            "m2",
            "--api-timeout",
            "5s",
            "--label",
            "a=b",
            "--label",
            "c=d",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Output::Json);
        assert_eq!(cli.global.mesh, "m2");
        assert_eq!(cli.global.api_timeout, Duration::from_secs(5));
        let Command::Get(get) = cli.command else {
            panic!()
        };
        assert_eq!(get.name.as_deref(), Some("x"));
        assert_eq!(get.labels, vec!["a=b", "c=d"]);
        assert!(parse(&["get", "x", "--api-timeout", "soon"]).is_err());
        assert!(parse(&["get", "x", "-o", "xml"]).is_err());
    }

    // apply takes -f several times, -v/--var, --dry-run; -f is required.
    #[test]
    fn apply_args() {
        let cli = parse(&[
            "apply",
            "-f",
            "a.yaml",
            "-f",
            "-",
            "-v",
            "k=v",
            "--var",
            "x=y",
            "--dry-run",
        ])
        .unwrap();
        let Command::Apply(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.files, vec!["a.yaml", "-"]);
        assert_eq!(a.vars, vec!["k=v", "x=y"]);
        assert!(a.dry_run);
        assert!(parse(&["apply"]).is_err());
    }

    // inspect's --type takes kumactl's values; the default is policies.
    #[test]
    fn inspect_types() {
        let cli = parse(&["inspect", "dataplane", "web-1", "--type", "config-dump"]).unwrap();
        let Command::Inspect(i) = cli.command else {
            panic!()
        };
        assert_eq!(i.inspect_type, InspectType::ConfigDump);
        let cli = parse(&["inspect", "dataplanes"]).unwrap();
        let Command::Inspect(i) = cli.command else {
            panic!()
        };
        assert_eq!(i.inspect_type, InspectType::Policies);
        assert!(parse(&["inspect", "dataplane", "x", "--type", "bogus"]).is_err());
    }

    /// The `weftctl ...` command lines of a Markdown page's bash blocks, with
    /// continuations joined, `$(...)` replaced by a word, and redirections,
    /// pipes and comments cut.
    fn documented_commands(markdown: &str) -> Vec<String> {
        let mut commands = Vec::new();
        let mut in_block = false;
        let mut pending = String::new();
        for line in markdown.lines() {
            let t = line.trim();
            if t.starts_with("```") {
                in_block = !in_block && t == "```bash";
                continue;
            }
            if !in_block {
                continue;
            }
            if let Some(head) = t.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            let full = format!("{pending}{t}");
            pending.clear();
            let mut cmd = String::new();
            let mut depth = 0;
            let mut dollar = false;
            for c in full.chars() {
                let after_dollar = std::mem::replace(&mut dollar, c == '$' && depth == 0);
                match c {
                    '$' if depth == 0 => {}
                    '(' if after_dollar || depth > 0 => depth += 1,
                    ')' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            cmd.push('X');
                        }
                    }
                    _ if depth > 0 => {}
                    _ => cmd.push(c),
                }
            }
            let cmd = cmd
                .split(" > ")
                .next()
                .and_then(|c| c.split(" | ").next())
                .and_then(|c| c.split(" #").next())
                .unwrap_or_default()
                .trim()
                .to_string();
            if cmd.starts_with("weftctl ") {
                commands.push(cmd);
            }
        }
        commands
    }

    // Every command line docs/weftctl.md shows parses (the docs keep up with the CLI).
    #[test]
    fn documented_commands_parse() {
        let doc = include_str!("../../docs/weftctl.md");
        let commands = documented_commands(doc);
        assert!(
            commands.len() >= 40,
            "too few commands found: {commands:#?}"
        );
        for c in &commands {
            let words: Vec<&str> = c.split_whitespace().skip(1).collect();
            if let Err(e) = parse(&words) {
                panic!("docs/weftctl.md: `{c}` does not parse:\n{e}");
            }
        }
    }

    // KEY=VALUE parsing names the flag when the text is not a pair.
    #[test]
    fn key_values() {
        assert_eq!(
            key_value("a=b=c", "--var").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(
            key_value("a=", "--var").unwrap(),
            ("a".into(), String::new())
        );
        let err = key_value("novalue", "--var").unwrap_err();
        assert!(err.contains("--var") && err.contains("novalue"), "{err}");
        assert!(key_value("=x", "--tag").is_err());
    }
}
