//! docs/api.md's walk-through works as written: every `sh` block, in order,
//! against a real `weft-global`, with curl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use weft_testbed::ControlPlane;
use weft_testbed::docs::sh_blocks;

// The documented curl calls succeed, and the invalid example names every bad field.
#[test]
fn api_walkthrough_runs_as_written() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let script = sh_blocks(&doc);
    assert!(
        script.matches("curl").count() >= 8,
        "walk-through lost its curl calls:\n{script}"
    );
    let global = ControlPlane::global(&[]).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("WEFT", global.api_url())
        .env("TOKEN", global.token())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "walk-through failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"product\":\"Weft\""), "{stdout}");
    assert!(
        stdout.contains("requestTimeout: 5s") || stdout.contains("\"requestTimeout\":\"5s\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"alreadyRevoked\":false"),
        "zone token revocation: {stdout}"
    );
    assert!(
        stdout.contains("\"name\":\"zone-token-revocations\""),
        "{stdout}"
    );
    for field in [
        "spec.targetRef.name",
        "spec.to[0].default.http.perTryTimeout",
        "spec.to[0].default.http.backOff.baseInterval",
    ] {
        assert!(
            stdout.contains(&format!("\"field\":\"{field}\"")),
            "no violation for {field}:\n{stdout}"
        );
    }
}
