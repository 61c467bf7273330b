//! docs/kds.md's recipe for a global reachable from other hosts works as written:
//! its `sh` block makes a CA and a server certificate with OpenSSL, global serves
//! KDS with them (`--kds-tls-cert` / `--kds-tls-key`), and zones sync both ways
//! the page describes: with the CA pinned by the token, and with `--global-ca-file`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use std::process::Command;
use std::time::{Duration, Instant};
use weft_testbed::ControlPlane;
use weft_testbed::docs::sh_blocks;

fn ready_within(zone: &ControlPlane, within: Duration) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = Instant::now() + within;
    rt.block_on(async {
        while Instant::now() < deadline {
            let url = format!("{}/ready", zone.api_url());
            if reqwest::get(url).await.map(|r| r.status()).ok() == Some(StatusCode::OK) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    })
}

// The certificate recipe gives a chain global accepts and zones verify, pinned or by CA file.
#[test]
fn other_host_certificate_recipe_works() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed; docs/kds.md's recipe needs it");
        return;
    }
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/kds.md")).unwrap();
    let script = sh_blocks(&doc);
    assert!(script.contains("openssl x509"), "recipe lost:\n{script}");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        // The names the testbed's zones dial.
        .env("SANS", "DNS:localhost,IP:127.0.0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "recipe failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let global = ControlPlane::global(&[
        "--kds-tls-cert",
        &file("kds-chain.pem"),
        "--kds-tls-key",
        &file("kds.key"),
    ])
    .unwrap();
    let pinned = ControlPlane::federated_zone(&global, "east", &[]).unwrap();
    let ca_file =
        ControlPlane::federated_zone(&global, "west", &["--global-ca-file", &file("kds-ca.crt")])
            .unwrap();
    assert!(
        ready_within(&pinned, Duration::from_secs(10)),
        "pinned zone not ready:\n{}",
        pinned.process.log()
    );
    assert!(
        ready_within(&ca_file, Duration::from_secs(10)),
        "--global-ca-file zone not ready:\n{}",
        ca_file.process.log()
    );
}
