//! Holds Weft's REST answers against Kuma 2.14's OpenAPI spec.
//!
//! ```sh
//! cargo run -p weft-testbed --example kuma_openapi -- <kuma checkout> [--verbose]
//! ```
//!
//! Reads `<kuma checkout>/docs/generated/openapi.yaml` at run time (nothing of
//! Kuma is copied into Weft), starts an in-process global and a federated zone
//! populated as `weft_testbed::populated` describes (mesh with mTLS, one
//! policy of each type, connected and disconnected dataplanes, a zone ingress
//! and egress), calls every Weft endpoint that has a Kuma OpenAPI path and
//! checks each JSON answer against the response schema the spec gives for its
//! status. Prints a Markdown table (path, control plane, status, schema,
//! result: OK or the first violations with their JSON paths), then the spec's
//! paths Weft does not serve. `--verbose` prints every violation. Exits 1 when
//! an answer does not conform.

use serde_json::Value;
use std::process::ExitCode;
use weft_testbed::openapi::OpenApi;
use weft_testbed::populated::{self, POLICIES, ZONE};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cp {
    Global,
    Zone,
}

impl Cp {
    fn as_str(self) -> &'static str {
        match self {
            Cp::Global => "global",
            Cp::Zone => "zone",
        }
    }
}

/// One call: the spec's path template, where it goes and the concrete URL.
struct Probe {
    template: &'static str,
    method: &'static str,
    cp: Cp,
    url: String,
    body: Option<String>,
}

fn get(template: &'static str, cp: Cp, url: impl Into<String>) -> Probe {
    Probe {
        template,
        method: "GET",
        cp,
        url: url.into(),
        body: None,
    }
}

/// Kuma OpenAPI paths Weft does not serve, and why (docs/api.md#kuma-routes).
const NOT_SERVED: &[(&str, &str)] = &[
    (
        "/meshes/{mesh}/dataplanes/{name}/_layout",
        "Kuma's networking layout view; not built",
    ),
    (
        "/meshes/{mesh}/dataplanes/{name}/_outbounds/{kri}/_routes",
        "per-route inspect; not built",
    ),
    (
        "/meshes/{mesh}/dataplanes/{name}/_outbounds/{outbound-kri}/_routes/{route-kri}/_policies",
        "per-route inspect; not built",
    ),
    (
        "/meshes/{mesh}/{serviceType}/{serviceName}/_hostnames",
        "no HostnameGenerator",
    ),
    ("/meshes/{mesh}/meshgateways", "no gateways"),
    ("/meshes/{mesh}/meshgateways/{name}", "no gateways"),
    ("/hostnamegenerators", "no HostnameGenerator"),
    ("/hostnamegenerators/{name}", "no HostnameGenerator"),
    (
        "/meshes/{mesh}/meshmultizoneservices",
        "no MeshMultiZoneService",
    ),
    (
        "/meshes/{mesh}/meshmultizoneservices/{name}",
        "no MeshMultiZoneService",
    ),
    (
        "/meshes/{mesh}/meshopentelemetrybackends",
        "no MeshOpenTelemetryBackend",
    ),
    (
        "/meshes/{mesh}/meshopentelemetrybackends/{name}",
        "no MeshOpenTelemetryBackend",
    ),
    ("/meshes/{mesh}/meshzoneaddresses", "no MeshZoneAddress"),
    (
        "/meshes/{mesh}/meshzoneaddresses/{name}",
        "no MeshZoneAddress",
    ),
    ("/meshes/{mesh}/workloads", "no Workload"),
    ("/meshes/{mesh}/workloads/{name}", "no Workload"),
];

/// A policy template path for `plural` (the spec writes one path per type).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The name global stores zone proxy `display` under (a hashed name).
async fn global_name(api: &weft_testbed::Client, list: &str, display: &str) -> String {
    let (_, body) = api.get(list).await;
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["labels"]["kuma.io/display-name"] == display || i["name"] == display)
        .and_then(|i| i["name"].as_str())
        .unwrap_or(display)
        .to_string()
}

async fn probes(p: &populated::Populated) -> Vec<Probe> {
    use Cp::{Global as G, Zone as Z};
    let g = &p.global.api;
    let web_g = global_name(g, "/meshes/default/dataplanes", "web-1").await;
    let zi_g = global_name(g, "/zoneingresses", "zi-1").await;
    let ze_g = global_name(g, "/zoneegresses", "ze-1").await;
    let (_, secrets) = g.get("/meshes/default/secrets").await;
    let ca_secret = secrets["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .find(|n| n.contains("ca-builtin-key"))
        .unwrap_or("default.ca-builtin-key-ca-1")
        .to_string();
    let mut out = vec![
        get("/", G, "/"),
        get("/", Z, "/"),
        get("/_resources", G, "/_resources"),
        get("/_resources", Z, "/_resources"),
        get("/global-insight", G, "/global-insight"),
        get("/meshes", G, "/meshes"),
        get("/meshes/{name}", G, "/meshes/default"),
        get("/meshes/{name}", Z, "/meshes/default"),
    ];
    for (plural, name, _) in POLICIES {
        out.push(get(
            leak(format!("/meshes/{{mesh}}/{plural}")),
            G,
            format!("/meshes/default/{plural}"),
        ));
        out.push(get(
            leak(format!("/meshes/{{mesh}}/{plural}/{{name}}")),
            G,
            format!("/meshes/default/{plural}/{name}"),
        ));
        out.push(get(
            "/meshes/{mesh}/{policyType}/{policyName}/_resources/dataplanes",
            G,
            format!("/meshes/default/{plural}/{name}/_resources/dataplanes"),
        ));
    }
    out.push(get(
        "/meshes/{mesh}/{policyType}/{policyName}/_resources/dataplanes",
        Z,
        "/meshes/default/meshtrafficpermissions/allow-backend/_resources/dataplanes",
    ));
    out.push(get(
        "/meshes/{mesh}/meshservices/{name}/_dataplanes",
        Z,
        "/meshes/default/meshservices/backend/_dataplanes",
    ));
    for cp in [G, Z] {
        out.push(get("/_kri/{kri}", cp, "/_kri/kri_mt_default___timeouts_"));
        out.push(get(
            "/_kri/{kri}",
            cp,
            format!("/_kri/kri_msvc_default_{}__backend_", populated::ZONE),
        ));
    }
    for (cp, web) in [(G, web_g.as_str()), (Z, "web-1")] {
        out.push(get(
            "/meshes/{mesh}/dataplanes",
            cp,
            "/meshes/default/dataplanes",
        ));
        out.push(get(
            "/meshes/{mesh}/dataplanes/{name}",
            cp,
            format!("/meshes/default/dataplanes/{web}"),
        ));
        out.push(get(
            "/meshes/{mesh}/dataplanes/_overview",
            cp,
            "/meshes/default/dataplanes/_overview",
        ));
        out.push(get(
            "/meshes/{mesh}/dataplanes/{name}/_overview",
            cp,
            format!("/meshes/default/dataplanes/{web}/_overview"),
        ));
    }
    for (cp, zi, ze) in [(G, zi_g.as_str(), ze_g.as_str()), (Z, "zi-1", "ze-1")] {
        out.push(get("/zoneingresses", cp, "/zoneingresses"));
        out.push(get(
            "/zoneingresses/{name}",
            cp,
            format!("/zoneingresses/{zi}"),
        ));
        out.push(get("/zoneegresses", cp, "/zoneegresses"));
        out.push(get(
            "/zoneegresses/{name}",
            cp,
            format!("/zoneegresses/{ze}"),
        ));
    }
    out.extend([
        get("/meshes/{mesh}/secrets", G, "/meshes/default/secrets"),
        get("/meshes/{mesh}/secrets/{name}", G, "/meshes/default/secrets/app-password"),
        get("/meshes/{mesh}/secrets/{name}", G, format!("/meshes/default/secrets/{ca_secret}")),
        get("/meshes/{mesh}/meshexternalservices", G, "/meshes/default/meshexternalservices"),
        get(
            "/meshes/{mesh}/meshexternalservices/{name}",
            G,
            "/meshes/default/meshexternalservices/httpbin",
        ),

        get(
            "/meshes/{mesh}/{resourceType}/{resourceName}/_rules",
            Z,
            "/meshes/default/dataplanes/web-1/_rules",
        ),
        get("/meshes/{mesh}/dataplanes/{name}/_config", Z, "/meshes/default/dataplanes/web-1/_config"),
        get(
            "/meshes/{mesh}/dataplanes/{name}/_policies",
            Z,
            "/meshes/default/dataplanes/backend-1/_policies",
        ),
        get(
            "/meshes/{mesh}/dataplanes/{name}/_inbounds/{inbound-kri}/_policies",
            Z,
            format!("/meshes/default/dataplanes/backend-1/_inbounds/kri_dp_default_{ZONE}__backend-1_8081/_policies"),
        ),
        get(
            "/meshes/{mesh}/dataplanes/{name}/_outbounds/{kri}/_policies",
            Z,
            format!("/meshes/default/dataplanes/web-1/_outbounds/kri_msvc_default_{ZONE}__backend_10001/_policies"),
        ),
    ]);
    // Lists of the remaining types, and the first item of each where there is one.
    for (cp, mesh, plural) in [
        (G, "other", "meshidentities"),
        (G, "other", "meshtrusts"),
        (Z, "other", "meshtrusts"),
        (Z, "default", "meshservices"),
        (G, "default", "meshservices"),
    ] {
        let api = if cp == G { &p.global.api } else { &p.zone.api };
        let list = format!("/meshes/{mesh}/{plural}");
        out.push(get(
            leak(format!("/meshes/{{mesh}}/{plural}")),
            cp,
            list.clone(),
        ));
        let (_, body) = api.get(&list).await;
        if let Some(name) = body["items"][0]["name"].as_str() {
            out.push(get(
                leak(format!("/meshes/{{mesh}}/{plural}/{{name}}")),
                cp,
                format!("{list}/{name}"),
            ));
        }
    }
    // A write and a delete answer (on global, where policies are written).
    let probe = POLICIES[1].2.replace("name: timeouts", "name: probe");
    out.push(Probe {
        template: "/meshes/{mesh}/meshtimeouts/{name}",
        method: "PUT",
        cp: G,
        url: "/meshes/default/meshtimeouts/probe".into(),
        body: Some(probe),
    });
    out.push(Probe {
        template: "/meshes/{mesh}/meshtimeouts/{name}",
        method: "DELETE",
        cp: G,
        url: "/meshes/default/meshtimeouts/probe".into(),
        body: None,
    });
    out
}

/// The first few violations of one answer, or `OK`.
fn verdict(violations: &[weft_testbed::openapi::Violation], verbose: bool) -> String {
    if violations.is_empty() {
        return "OK".into();
    }
    let shown = if verbose { violations.len() } else { 3 };
    let mut s: Vec<String> = violations
        .iter()
        .take(shown)
        .map(|v| format!("`{}`", v.to_string().replace('|', "\\|")))
        .collect();
    if violations.len() > shown {
        s.push(format!("(+{} more)", violations.len() - shown));
    }
    s.join("; ")
}

async fn run(kuma: &str, verbose: bool) -> Result<bool, String> {
    let file = format!("{kuma}/docs/generated/openapi.yaml");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
    let root: Value = serde_yaml_ng::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let spec = OpenApi::new(root);
    let populated = populated::start().await?;
    let probes = probes(&populated).await;
    println!("| path | on | method, status | schema | result |");
    println!("|---|---|---|---|---|");
    let (mut ok, mut bad) = (0, 0);
    let mut probed = std::collections::BTreeSet::new();
    for p in &probes {
        probed.insert(p.template);
        let api = match p.cp {
            Cp::Global => &populated.global.api,
            Cp::Zone => &populated.zone.api,
        };
        let method: reqwest::Method = p.method.parse().map_err(|e| format!("{e}"))?;
        let mut req = api.request(method, &p.url);
        if let Some(b) = &p.body {
            req = req
                .header("content-type", "application/yaml")
                .body(b.clone());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{} {}: {e}", p.method, p.url))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let (schema, result) = match serde_json::from_str::<Value>(&text) {
            Err(e) => ("-".to_string(), format!("not JSON: {e}")),
            Ok(body) => match spec.response_schema(p.template, p.method, status) {
                None => (
                    "-".to_string(),
                    format!(
                        "the spec lists no {status} answer for {} {}",
                        p.method, p.template
                    ),
                ),
                Some((name, schema)) => (name, verdict(&spec.check(&schema, &body), verbose)),
            },
        };
        if result == "OK" {
            ok += 1;
        } else {
            bad += 1;
        }
        println!(
            "| `{}` | {} | {} {status} | {schema} | {result} |",
            p.url,
            p.cp.as_str(),
            p.method
        );
    }
    println!("\n{ok} answers conform, {bad} do not ({} calls).", ok + bad);
    let unlisted: Vec<&str> = probes
        .iter()
        .map(|p| p.template)
        .filter(|t| !spec.paths().iter().any(|s| s == t))
        .collect();
    if !unlisted.is_empty() {
        println!("Probed paths the spec does not list: {unlisted:?}");
    }
    println!("\nSpec paths not called (Weft does not serve them):\n");
    for path in spec.paths() {
        if probed.contains(path.as_str()) {
            continue;
        }
        let why = NOT_SERVED
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, w)| *w)
            .unwrap_or("NOT CALLED: add a probe");
        println!("- `{path}`: {why}");
    }
    populated.stop().await;
    Ok(bad == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    let Some(kuma) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: kuma_openapi <kuma checkout (v2.14.3)> [--verbose]");
        return ExitCode::from(64);
    };
    // Errors the control planes log (a 500's cause) go to stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::ERROR)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(kuma, verbose)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kuma_openapi: {e}");
            ExitCode::FAILURE
        }
    }
}
