//! `generate zone-token|dataplane-token|signing-key`, `version`, `completion`.

use crate::cli::{Cli, GenerateCommand, Output, key_value};
use crate::client::Body;
use crate::session::{Error, Session, to_json, to_yaml};
use hyper::Method;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub async fn run(s: &mut Session<'_>, command: GenerateCommand) -> Result<(), Error> {
    match command {
        GenerateCommand::ZoneToken {
            zone,
            scope,
            valid_for,
        } => {
            let mut body = Map::new();
            body.insert("zone".into(), json!(zone));
            if !scope.is_empty() {
                body.insert("scope".into(), json!(scope));
            }
            if let Some(v) = valid_for {
                body.insert("validFor".into(), json!(v));
            }
            issue(s, "/tokens/zone", Value::Object(body)).await
        }
        GenerateCommand::DataplaneToken {
            name,
            tags,
            workload,
            valid_for,
            proxy_type,
        } => {
            let body = dataplane_token_body(
                &s.global.mesh,
                name,
                &tags,
                workload,
                valid_for,
                &proxy_type,
            )?;
            issue(s, "/tokens/dataplane", body).await
        }
        GenerateCommand::SigningKey => {
            let key = weft_security::tokens::SigningKey::generate(1)
                .map_err(|e| Error::Key(e.to_string()))?;
            let pem = key.to_pem();
            s.io.out.write_all(pem.as_bytes())?;
            if !pem.ends_with('\n') {
                s.io.out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}

/// The body of `POST /tokens/dataplane`: `{mesh, name, tags, workload, validFor}`.
pub fn dataplane_token_body(
    mesh: &str,
    name: Option<String>,
    tags: &[String],
    workload: Option<String>,
    valid_for: Option<String>,
    proxy_type: &str,
) -> Result<Value, Error> {
    match proxy_type {
        "dataplane" | "" => {}
        "ingress" | "egress" => {
            return Err(Error::Usage(format!(
                "a zone {proxy_type} is admitted with a zone token: `weftctl generate zone-token \
                 --zone ZONE --scope {proxy_type}` (on the zone, ZONE is its own name)"
            )));
        }
        other => {
            return Err(Error::Usage(format!(
                "--proxy-type {other:?}: use dataplane (ingresses and egresses take zone tokens)"
            )));
        }
    }
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tags {
        let (k, v) = key_value(t, "--tag").map_err(Error::Usage)?;
        by_key.entry(k).or_default().push(v);
    }
    let tags: Map<String, Value> = by_key
        .into_iter()
        .map(|(k, mut v)| {
            let value = if v.len() == 1 {
                json!(v.remove(0))
            } else {
                json!(v)
            };
            (k, value)
        })
        .collect();
    let mut body = Map::new();
    body.insert("mesh".into(), json!(mesh));
    if let Some(n) = name {
        body.insert("name".into(), json!(n));
    }
    if !tags.is_empty() {
        body.insert("tags".into(), Value::Object(tags));
    }
    if let Some(w) = workload {
        body.insert("workload".into(), json!(w));
    }
    if let Some(v) = valid_for {
        body.insert("validFor".into(), json!(v));
    }
    Ok(Value::Object(body))
}

async fn issue(s: &mut Session<'_>, path: &str, body: Value) -> Result<(), Error> {
    let client = s.client()?;
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::Encode(e.to_string()))?;
    let answer = client
        .send_ok(
            Method::POST,
            path,
            Some(Body {
                bytes,
                content_type: "application/json",
            }),
        )
        .await?;
    let token = answer.text();
    s.say(token.trim())
}

pub async fn version(s: &mut Session<'_>) -> Result<(), Error> {
    let client_version = env!("CARGO_PKG_VERSION");
    let configured = s.global.no_config && std::env::var_os("WEFTCTL_ADDRESS").is_some()
        || (!s.global.no_config && s.config.current().is_ok());
    let mut server = Value::Null;
    let mut server_line = None;
    if configured {
        let client = s.client()?;
        match client.get_json("/").await {
            Ok(v) => {
                server_line = Some(format!(
                    "Control plane: {}{}",
                    client.address(),
                    super::config::describe(&v)
                ));
                server = v;
            }
            Err(e) => s.warn(&format!("warning: {e}"))?,
        }
    }
    let v = json!({
        "client": {"product": "weftctl", "version": client_version, "basedOnKuma": "2.14.3"},
        "server": server,
    });
    match s.global.output {
        Output::Json => {
            let t = to_json(&v)?;
            s.io.out.write_all(t.as_bytes())?;
        }
        Output::Yaml => {
            let t = to_yaml(&v)?;
            s.io.out.write_all(t.as_bytes())?;
        }
        Output::Table => {
            s.say(&format!(
                "Client: weftctl {client_version} (kumactl's commands, Kuma 2.14.3)"
            ))?;
            if let Some(line) = server_line {
                s.say(&line)?;
            }
        }
    }
    Ok(())
}

pub fn completion(s: &mut Session<'_>, shell: clap_complete::Shell) -> Result<(), Error> {
    use clap::CommandFactory;
    // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "weftctl", &mut script);
    s.io.out.write_all(&script)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The dataplane token body is the server's shape; a repeated tag key gives a
    // list; ingress and egress are pointed at zone tokens.
    #[test]
    fn dataplane_token_bodies() {
        let b = dataplane_token_body(
            "default",
            Some("web-1".into()),
            &[
                "kuma.io/service=web".into(),
                "version=v1".into(),
                "version=v2".into(),
            ],
            None,
            Some("24h".into()),
            "dataplane",
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"mesh": "default", "name": "web-1", "validFor": "24h",
                   "tags": {"kuma.io/service": "web", "version": ["v1", "v2"]}})
        );
        let b = dataplane_token_body("m", None, &[], Some("w".into()), None, "dataplane").unwrap();
        assert_eq!(b, json!({"mesh": "m", "workload": "w"}));
        let err = dataplane_token_body("m", None, &[], None, None, "ingress")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("generate zone-token") && err.contains("--scope ingress"),
            "{err}"
        );
        assert!(dataplane_token_body("m", None, &[], None, None, "gateway").is_err());
        assert!(dataplane_token_body("m", None, &["bad".into()], None, None, "dataplane").is_err());
    }
}
