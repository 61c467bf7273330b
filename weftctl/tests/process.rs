//! weftctl against real `weft-global` and `weft-zone` processes: the docs/api.md
//! walk-through driven with the weftctl binary — a control plane added (config
//! 0600, token masked), the walk-through's policies applied from one
//! multi-document file with `-v` variables, read back in every output, `get -o
//! json` applied back unchanged, an invalid apply naming the server's field
//! paths, `--dry-run` writing nothing, delete; then a signing key from `generate
//! signing-key` installed in global, a zone token from `generate zone-token`
//! (signed by that key) that a zone joins with, `inspect zones`, a Dataplane in
//! the zone seen by `inspect dataplanes` (with its filters) and `inspect
//! services`, its `_policies`, `_rules` and `_config`, a dataplane token; on
//! global `inspect meshes` (MeshInsights), `inspect zones` (ZoneOverview), a
//! policy's dataplanes, and `inspect dataplane` naming the zone to ask.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use weft_testbed::ControlPlane;
use weft_testbed::wait::until;

/// The walk-through's four policies (docs/api.md), one file; `{{ service }}` and
/// `{{ team }}` come from `-v`.
const WALKTHROUGH: &str = r#"
# docs/api.md's walk-through, for weftctl apply
type: MeshTimeout
name: backend-timeouts
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: {{ service }}
      default:
        connectionTimeout: 2s
        idleTimeout: 30m
        http:
          requestTimeout: 5s
---
type: MeshRetry
name: backend-retry
mesh: default
labels:
  team: {{ team }}
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: {{service}}
      default:
        http:
          numRetries: 3
          perTryTimeout: 1s
          backOff:
            baseInterval: 25ms
            maxInterval: 250ms
          retryOn: ["5xx", "Reset"]
---
type: MeshTrafficPermission
name: allow-web
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: {{ service }}
  from:
    - targetRef:
        kind: MeshService
        name: web
      default:
        action: Allow
---
type: MeshHTTPRoute
name: backend-split
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: {{ service }}
      rules:
        - matches:
            - path:
                type: PathPrefix
                value: /api
          default:
            backendRefs:
              - kind: MeshServiceSubset
                name: backend
                tags:
                  version: v1
                weight: 90
              - kind: MeshServiceSubset
                name: backend
                tags:
                  version: v2
                weight: 10
"#;

const BROKEN: &str = "type: MeshRetry\nname: broken\nmesh: default\nspec:\n  targetRef:\n    kind: MeshService\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        http:\n          perTryTimeout: soon\n          backOff:\n            baseInterval: later\n";

/// weftctl with its own config file (and HOME), no inherited WEFTCTL_* settings.
struct Ctl {
    config: PathBuf,
    home: PathBuf,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ctl {
    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weftctl"));
        cmd.args(args)
            .env("WEFTCTL_CONFIG", &self.config)
            .env("HOME", &self.home)
            .env_remove("WEFTCTL_ADDRESS")
            .env_remove("WEFTCTL_TOKEN")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            ok: status.success(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    /// Runs and requires success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.ok, "weftctl {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Runs and requires failure; stderr.
    fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(!r.ok, "weftctl {args:?} should have failed:\n{}", r.stdout);
        r.stderr
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A JWT's header, decoded (base64url without padding).
fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in part.bytes() {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn weftctl_drives_global_and_zone() {
    let global = ControlPlane::global(&[]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctl = Ctl {
        config: tmp.path().join("weftctl").join("config"),
        home: tmp.path().to_path_buf(),
    };

    // No configuration yet: the error says how to add one.
    let err = ctl.fails(&["get", "meshes"]);
    assert!(err.contains("config control-planes add"), "{err}");

    // A wrong token is refused when adding, and nothing is saved.
    let err = ctl.fails(&[
        "config",
        "control-planes",
        "add",
        "--name",
        "bad",
        "--address",
        &global.api_url(),
        "--auth-type=tokens",
        "--auth-conf",
        "token=not-the-token",
    ]);
    assert!(err.contains("rejected the token (401)"), "{err}");
    assert!(!ctl.config.exists());

    // Nothing listening: the error names the address.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let err = ctl.fails(&[
        "config",
        "control-planes",
        "add",
        "--name",
        "dead",
        "--address",
        &dead,
    ]);
    assert!(err.contains(&dead.replace("http://", "")), "{err}");

    // Added: the file is 0600 in a 0700 directory and holds the token, which
    // `config view` and `list` never print.
    let token = global.token();
    let out = ctl.ok(&[
        "config",
        "control-planes",
        "add",
        "--name",
        "global",
        "--address",
        &global.api_url(),
        "--auth-type=tokens",
        "--auth-conf",
        &format!("token={token}"),
    ]);
    assert!(
        out.contains("added Control Plane \"global\" (Weft") && out.contains("global"),
        "{out}"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ctl.config), 0o600);
    assert_eq!(mode(ctl.config.parent().unwrap()), 0o700);
    assert!(
        std::fs::read_to_string(&ctl.config)
            .unwrap()
            .contains(&token)
    );
    for args in [
        &["config", "view"][..],
        &["config", "control-planes", "list"][..],
    ] {
        let out = ctl.ok(args);
        assert!(!out.contains(&token), "{args:?} printed the token:\n{out}");
    }
    assert!(
        ctl.ok(&["config", "control-planes", "list"])
            .contains("*       global")
    );
    assert!(ctl.ok(&["version"]).contains("based on Kuma 2.14.3"));
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            ctl.ok(&["completion", shell]).contains("weftctl"),
            "{shell}"
        );
    }

    // The walk-through, one multi-document file, variables from -v.
    let file = write(tmp.path(), "walkthrough.yaml", WALKTHROUGH);
    let err = ctl.fails(&["apply", "-f", &file]);
    assert!(err.contains("-v service="), "{err}");
    let out = ctl.ok(&[
        "apply",
        "-f",
        &file,
        "-v",
        "service=backend",
        "--var",
        "team=payments",
    ]);
    for line in [
        "MeshTimeout \"backend-timeouts\" created",
        "MeshRetry \"backend-retry\" created",
        "MeshTrafficPermission \"allow-web\" created",
        "MeshHTTPRoute \"backend-split\" created",
    ] {
        assert!(out.contains(line), "{line} missing:\n{out}");
    }

    // get, in the three outputs.
    let table = ctl.ok(&["get", "meshtimeouts"]);
    assert!(table.starts_with("MESH "), "{table}");
    assert!(
        table.contains("TARGETREF KIND") && table.contains("backend-timeouts"),
        "{table}"
    );
    let one = ctl.json(&["get", "meshtimeout", "backend-timeouts"]);
    assert_eq!(
        one["spec"]["to"][0]["default"]["http"]["requestTimeout"],
        "5s"
    );
    assert_eq!(one["spec"]["to"][0]["targetRef"]["name"], "backend");
    let yaml = ctl.ok(&["get", "mhttpr", "backend-split", "-o", "yaml"]);
    let parsed: Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(
        parsed["spec"]["to"][0]["rules"][0]["default"]["backendRefs"][1]["weight"],
        10
    );
    let list = ctl.json(&["get", "meshretries", "--size", "10"]);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "backend-retry")
    );
    assert!(ctl.ok(&["get", "meshes"]).contains("default"));

    // Kuma's filters: name contains, labels.
    let named = ctl.json(&["get", "meshtimeouts", "--name-contains", "backend"]);
    let names: Vec<&str> = named["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["backend-timeouts"]);
    let labelled = ctl.json(&["get", "meshretries", "--label", "team=payments"]);
    assert_eq!(labelled["total"], 1);
    assert_eq!(
        ctl.json(&["get", "meshretries", "--label", "team=other"])["total"],
        0
    );

    // What `get -o json` printed applies back unchanged: updated, same spec and
    // creation time (one resource, and a whole list).
    let before = ctl.json(&["get", "meshhttproute", "backend-split"]);
    let printed = write(
        tmp.path(),
        "route.json",
        &serde_json::to_string_pretty(&before).unwrap(),
    );
    let out = ctl.ok(&["apply", "-f", &printed]);
    assert!(
        out.contains("MeshHTTPRoute \"backend-split\" configured"),
        "{out}"
    );
    let after = ctl.json(&["get", "meshhttproute", "backend-split"]);
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(after["creationTime"], before["creationTime"]);
    let timeouts = ctl.json(&["get", "meshtimeouts"]);
    let printed = write(tmp.path(), "timeouts.json", &timeouts.to_string());
    let out = ctl.ok(&["apply", "-f", &printed]);
    assert_eq!(
        out.matches("configured").count(),
        timeouts["total"].as_u64().unwrap() as usize,
        "{out}"
    );
    assert_eq!(
        ctl.json(&["get", "meshtimeout", "backend-timeouts"])["spec"],
        one["spec"]
    );

    // An invalid resource: every bad field with its path, non-zero exit.
    let broken = write(tmp.path(), "broken.yaml", BROKEN);
    let err = ctl.fails(&["apply", "-f", &broken]);
    for field in [
        "spec.targetRef.name",
        "spec.to[0].default.http.perTryTimeout",
        "spec.to[0].default.http.backOff.baseInterval",
    ] {
        assert!(
            err.contains(&format!("  {field}: ")),
            "no {field} in:\n{err}"
        );
    }

    // --dry-run prints what would be sent and writes nothing (stdin here).
    let dry = "type: MeshRetry\nname: dry-one\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        tcp:\n          maxConnectAttempt: {{ n }}\n";
    let r = ctl.run_with(&["apply", "-f", "-", "--dry-run", "-v", "n=3"], Some(dry));
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stdout.contains("PUT /meshes/default/meshretries/dry-one"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("maxConnectAttempt: 3"), "{}", r.stdout);
    let err = ctl.fails(&["get", "meshretry", "dry-one"]);
    assert!(err.contains("404"), "{err}");

    // A warning from the server is shown.
    let typo = write(
        tmp.path(),
        "typo.yaml",
        "type: MeshTimeout\nname: typo\nmesh: default\nspec:\n  targetRef:\n    kind: Mesh\n  to:\n    - targetRef:\n        kind: Mesh\n      default:\n        idleTimeout: 5s\n        idelTimeout: 5s\n",
    );
    let r = ctl.run(&["apply", "-f", &typo]);
    assert!(
        r.ok && r.stderr.contains("idelTimeout: unknown field"),
        "{}",
        r.stderr
    );

    // delete.
    let out = ctl.ok(&["delete", "meshretry", "backend-retry"]);
    assert!(out.contains("deleted MeshRetry \"backend-retry\""), "{out}");
    ctl.fails(&["get", "meshretry", "backend-retry"]);

    // A signing key from weftctl, installed as global's newest zone-token key:
    // the next zone token is signed with it (kid 2), and a zone joins with it.
    let key = ctl.ok(&["generate", "signing-key"]);
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let key_file = global
        .data_dir()
        .join("zone-token-keys")
        .join("zone-token-signing-key-2.pem");
    std::fs::write(&key_file, &key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let zone_token = ctl.ok(&[
        "generate",
        "zone-token",
        "--zone",
        "east",
        "--valid-for",
        "1h",
    ]);
    let zone_token = zone_token.trim().to_string();
    assert_eq!(jwt_header(&zone_token)["kid"], "2", "{zone_token}");
    let zone = ControlPlane::federated_zone_with_token(&global, "east", &zone_token, &[]).unwrap();
    until(
        Duration::from_secs(20),
        "inspect zones shows east online",
        || async {
            let r = ctl.run(&["inspect", "zones"]);
            r.ok && r
                .stdout
                .lines()
                .any(|l| l.starts_with("east ") && l.contains("Online"))
        },
    )
    .await;
    let zones = ctl.json(&["inspect", "zones"]);
    assert_eq!(zones["total"], 1);

    // The zone as a second control plane; a Dataplane registered there.
    ctl.ok(&[
        "config",
        "control-planes",
        "add",
        "--name",
        "east",
        "--address",
        &zone.api_url(),
        "--auth-type=tokens",
        "--auth-conf",
        &format!("token={}", zone.token()),
    ]);
    let dp = write(
        tmp.path(),
        "dp.yaml",
        "type: Dataplane\nname: web-1\nmesh: default\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 18080\n      servicePort: 8080\n      tags:\n        kuma.io/service: web\n        version: v1\n",
    );
    until(
        Duration::from_secs(20),
        "the zone accepts the Dataplane (mesh synced)",
        || async { ctl.run(&["apply", "-f", &dp]).ok },
    )
    .await;
    let table = ctl.ok(&["inspect", "dataplanes"]);
    assert!(table.starts_with("MESH "), "{table}");
    assert!(table.contains("CERT EXPIRATION"), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("web-1"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("kuma.io/service=web,version=v1") && row.contains("Offline"),
        "{table}"
    );
    // -o json is the server's DataplaneOverview list (Kuma's shape).
    let overview = ctl.json(&["inspect", "dataplanes"]);
    assert_eq!(overview["total"], 1);
    assert_eq!(overview["items"][0]["type"], "DataplaneOverview");
    assert_eq!(overview["items"][0]["name"], "web-1");
    assert_eq!(
        overview["items"][0]["dataplane"]["networking"]["address"],
        "127.0.0.1"
    );
    // The filters go to the server: tags (all of them), online, gateway.
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    for (args, want) in [
        (&["--tag", "kuma.io/service=web"][..], vec!["web-1"]),
        (
            &["--tag", "kuma.io/service=web", "--tag", "version=v2"][..],
            vec![],
        ),
        (&["--tag", "version=*"][..], vec!["web-1"]),
        (&["--online=false"][..], vec!["web-1"]),
        (&["--online"][..], vec![]),
        (&["--gateway"][..], vec![]),
        (&["--size", "1", "--offset", "1"][..], vec![]),
    ] {
        let mut all = vec!["inspect", "dataplanes"];
        all.extend_from_slice(args);
        assert_eq!(names(&ctl.json(&all)), want, "{args:?}");
    }
    let err = ctl.fails(&["inspect", "dataplanes", "--tag", "web"]);
    assert!(err.contains("--tag \"web\": expected KEY=VALUE"), "{err}");
    let services = ctl.ok(&["inspect", "services"]);
    assert!(
        services
            .lines()
            .any(|l| l.contains("web") && l.contains("0/1")),
        "{services}"
    );
    assert!(ctl.ok(&["get", "dataplanes"]).contains("web-1"));
    let rules = ctl.ok(&["inspect", "dataplane", "web-1", "--type", "rules"]);
    let rules: Value = serde_json::from_str(&rules).unwrap();
    assert!(rules["rules"].is_array(), "{rules}");
    let config = ctl.ok(&[
        "inspect",
        "dataplane",
        "web-1",
        "--type",
        "config",
        "-o",
        "yaml",
    ]);
    let config: Value = serde_yaml_ng::from_str(&config).unwrap();
    assert!(config["resources"].is_object(), "{config}");
    // The default, policies: the zone's _policies (Kuma's PoliciesList), as the API has it.
    let r = ctl.run(&["inspect", "dataplane", "web-1"]);
    assert!(r.ok && r.stderr.is_empty(), "{}", r.stderr);
    let policies: Value = serde_json::from_str(&r.stdout).unwrap();
    let (_, api) = weft_testbed::Client::new(zone.api_url(), zone.token())
        .get("/meshes/default/dataplanes/web-1/_policies")
        .await;
    assert_eq!(policies, api);
    assert!(policies["policies"].is_array(), "{policies}");

    // A dataplane token from the zone.
    let dp_token = ctl.ok(&[
        "generate",
        "dataplane-token",
        "--name",
        "web-1",
        "--tag",
        "kuma.io/service=web",
        "--valid-for",
        "1h",
    ]);
    assert_eq!(dp_token.trim().split('.').count(), 3, "{dp_token}");

    // Back to global: a zone's view is read-only there, and switch works.
    ctl.ok(&["config", "control-planes", "switch", "--name", "global"]);
    let g = weft_testbed::Client::new(global.api_url(), global.token());
    // inspect meshes: the MeshInsights (dataplanes online/total, policies).
    until(
        Duration::from_secs(20),
        "global holds the zone's dataplane",
        || async {
            let (_, v) = g.get("/mesh-insights/default").await;
            v["dataplanes"]["total"] == 1
        },
    )
    .await;
    let meshes = ctl.ok(&["inspect", "meshes"]);
    let (_, mi) = g.get("/mesh-insights/default").await;
    let policies: u64 = mi["policies"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["total"].as_u64().unwrap())
        .sum();
    assert!(policies >= 3, "{mi}");
    let row = meshes
        .lines()
        .find(|l| l.starts_with("default "))
        .unwrap_or_else(|| panic!("{meshes}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "0/1", "{meshes}");
    assert_eq!(cells[3], policies.to_string(), "{meshes}");
    assert_eq!(
        ctl.json(&["inspect", "meshes"])["items"][0]["type"],
        "MeshInsight"
    );
    // inspect zones: Kuma's ZoneOverview, the version of the newest subscription.
    let zones = ctl.json(&["inspect", "zones"]);
    let subs = zones["items"][0]["zoneInsight"]["subscriptions"]
        .as_array()
        .unwrap();
    let version = subs.last().unwrap()["version"]["kumaCp"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let table = ctl.ok(&["inspect", "zones"]);
    let east = table.lines().find(|l| l.starts_with("east ")).unwrap();
    assert!(
        east.contains(" Online ") && east.contains(" yes ") && east.contains(&version),
        "{table}"
    );
    assert!(east.trim_end().ends_with("0/1"), "{table}");
    // A policy's dataplanes (_resources/dataplanes): the zone's proxy, under
    // the name global stores it with.
    let (_, affected) = g
        .get("/meshes/default/meshtimeouts/backend-timeouts/_resources/dataplanes")
        .await;
    let stored = affected["items"][0]["name"].as_str().unwrap().to_string();
    let out = ctl.ok(&["inspect", "meshtimeout", "backend-timeouts"]);
    assert!(out.starts_with("TYPE "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Dataplane ") && l.contains(&stored)),
        "{out}"
    );
    assert!(out.trim_end().ends_with("Total: 1"), "{out}");
    let v = ctl.json(&["inspect", "meshtimeout", "backend-timeouts", "--size", "1"]);
    assert_eq!(v, affected);
    let err = ctl.fails(&["inspect", "meshtimeout", "nope"]);
    assert!(err.contains("404"), "{err}");
    // A dataplane's policies on global: the zone that computes them is named.
    for name in ["web-1", stored.as_str()] {
        let err = ctl.fails(&["inspect", "dataplane", name]);
        assert!(
            err.contains("405")
                && err.contains("zone \"east\"")
                && err.contains("config control-planes add"),
            "{err}"
        );
    }
    ctl.ok(&["config", "control-planes", "remove", "--name", "east"]);
    assert!(
        !ctl.ok(&["config", "control-planes", "list"])
            .contains("east")
    );
}
