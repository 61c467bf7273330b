//! `config control-planes add|list|switch|remove` and `config view`.

use crate::cli::{AddArgs, ConfigCommand, ControlPlanesCommand, Output, key_value};
use crate::client::{Client, Target};
use crate::config::{ApiServer, ControlPlane, Coordinates};
use crate::session::{Error, Session, to_json, to_yaml};
use crate::table;
use serde_json::Value;
use std::collections::BTreeMap;

pub async fn run(s: &mut Session<'_>, command: ConfigCommand) -> Result<(), Error> {
    match command {
        ConfigCommand::View => view(s),
        ConfigCommand::ControlPlanes { command } => match command {
            ControlPlanesCommand::Add(args) => add(s, args).await,
            ControlPlanesCommand::List => list(s),
            ControlPlanesCommand::Switch { name } => {
                s.config.switch(&name)?;
                s.save_config()?;
                s.say(&format!("switched active Control Plane to {name:?}"))
            }
            ControlPlanesCommand::Remove { name } => {
                s.config.remove(&name)?;
                s.save_config()?;
                s.say(&format!("removed Control Plane {name:?}"))
            }
        },
    }
}

fn view(s: &mut Session<'_>) -> Result<(), Error> {
    let masked = s.config.masked();
    let v = serde_json::to_value(&masked).map_err(|e| Error::Encode(e.to_string()))?;
    let text = match s.global.output {
        Output::Json => to_json(&v)?,
        _ => to_yaml(&v)?,
    };
    s.io.out.write_all(text.as_bytes())?;
    Ok(())
}

fn list(s: &mut Session<'_>) -> Result<(), Error> {
    let current = s.config.current_name().map(str::to_string);
    let rows: Vec<Vec<String>> = s
        .config
        .control_planes
        .iter()
        .map(|cp| {
            let api = &cp.coordinates.api_server;
            vec![
                if current.as_deref() == Some(cp.name.as_str()) {
                    "*"
                } else {
                    ""
                }
                .to_string(),
                cp.name.clone(),
                api.url.clone(),
                if api.auth_type.is_empty() {
                    "-".into()
                } else {
                    api.auth_type.clone()
                },
            ]
        })
        .collect();
    let masked = serde_json::to_value(s.config.masked().control_planes)
        .map_err(|e| Error::Encode(e.to_string()))?;
    s.print(&masked, || {
        table::render(&["ACTIVE", "NAME", "ADDRESS", "AUTH"], &rows)
    })
}

async fn add(s: &mut Session<'_>, args: AddArgs) -> Result<(), Error> {
    if args.name.trim().is_empty() {
        return Err(Error::Usage("--name must not be empty".into()));
    }
    let mut auth_conf = BTreeMap::new();
    for kv in &args.auth_conf {
        let (k, v) = key_value(kv, "--auth-conf").map_err(Error::Usage)?;
        auth_conf.insert(k, v);
    }
    let auth_type = match (args.auth_type.as_deref(), auth_conf.is_empty()) {
        (Some("tokens"), _) | (None, false) => "tokens".to_string(),
        (None, true) => String::new(),
        (Some(other), _) => {
            return Err(Error::Usage(format!(
                "--auth-type {other:?} is not supported: use --auth-type=tokens --auth-conf token=TOKEN"
            )));
        }
    };
    if auth_type == "tokens" && !auth_conf.contains_key("token") {
        return Err(Error::Usage(
            "--auth-type=tokens needs --auth-conf token=TOKEN (the admin token, DATA_DIR/admin.token)"
                .into(),
        ));
    }
    if let Some(f) = args.ca_cert_file.as_ref().filter(|f| !f.is_file()) {
        return Err(Error::Usage(format!(
            "--ca-cert-file {}: no such file",
            f.display()
        )));
    }
    let api = ApiServer {
        url: args.address.trim_end_matches('/').to_string(),
        auth_type,
        auth_conf,
        ca_cert_file: args
            .ca_cert_file
            .as_ref()
            .map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .unwrap_or_default(),
        skip_verify: args.skip_verify,
    };
    let target = Target {
        url: api.url.clone(),
        token: api.token().map(str::to_string),
        ca_cert_file: args.ca_cert_file.clone(),
        skip_verify: args.skip_verify,
    };
    // Parses the URL and the TLS settings even when not checking.
    let client = Client::new(&target, s.global.api_timeout)?;
    if client.is_cleartext_remote() {
        s.warn(&format!(
            "warning: {} is plain http to another host: the token will cross the network unencrypted",
            client.address()
        ))?;
    }
    let mut about = String::new();
    if !args.no_check {
        let index = client.get_json("/").await?;
        about = describe(&index);
        if target.token.is_some() {
            // The token is checked too: an authenticated call must not answer 401.
            client.get_json("/_resources").await?;
        }
    }
    s.config.add(
        ControlPlane {
            name: args.name.clone(),
            coordinates: Coordinates { api_server: api },
        },
        args.overwrite,
    )?;
    s.save_config()?;
    let name = &args.name;
    s.say(&format!("added Control Plane {name:?}{about}"))?;
    s.say(&format!("switched active Control Plane to {name:?}"))
}

/// ` (Weft 0.1.0, global, based on Kuma 2.14.3)` from `GET /`.
pub fn describe(index: &Value) -> String {
    let f = |k: &str| index.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut parts = Vec::new();
    let product = format!("{} {}", f("product"), f("version"));
    if !product.trim().is_empty() {
        parts.push(product.trim().to_string());
    }
    if !f("mode").is_empty() {
        let zone = f("zone");
        parts.push(if zone.is_empty() {
            f("mode").to_string()
        } else {
            format!("{} {zone}", f("mode"))
        });
    }
    if !f("basedOnKuma").is_empty() {
        parts.push(format!("based on Kuma {}", f("basedOnKuma")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GET / reads as product, version, mode (and zone), Kuma base.
    #[test]
    fn describes_the_index() {
        let v = serde_json::json!({"product": "Weft", "version": "0.1.0", "mode": "zone",
            "zone": "east", "basedOnKuma": "2.14.3"});
        assert_eq!(
            describe(&v),
            " (Weft 0.1.0, zone east, based on Kuma 2.14.3)"
        );
        let v = serde_json::json!({"product": "Kuma", "version": "2.14.3", "mode": "global"});
        assert_eq!(describe(&v), " (Kuma 2.14.3, global)");
        assert_eq!(describe(&serde_json::json!({})), "");
    }
}
