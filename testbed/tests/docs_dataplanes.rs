//! docs/dataplanes.md's walk-through works as written: every `sh` block, in order,
//! against a real standalone `weft-zone`, with the real `weft-zone`, `weft-dp`,
//! `weft-echo` binaries on `PATH` and Envoy: tokens from the API and the CLI, a
//! bootstrap and a refused one, weft-dp + Envoy serving a request, SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weft_testbed::ControlPlane;
use weft_testbed::docs::sh_blocks;
use weft_testbed::process::bin_dir;

/// The walk-through's process group: killed when the test ends, so a failed step
/// leaves no weft-dp, Envoy or echo app behind.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

// The documented tokens, bootstrap, refusal and proxy run succeed as the page says.
#[test]
fn dataplanes_walkthrough_runs_as_written() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/dataplanes.md"
    ))
    .unwrap();
    let script = sh_blocks(&doc);
    for step in [
        "/tokens/dataplane",
        "token dataplane",
        "/bootstrap",
        "weft-dp run",
    ] {
        assert!(script.contains(step), "walk-through lost {step}:\n{script}");
    }
    let zone = ControlPlane::zone(&[]).unwrap();
    let bins = bin_dir().unwrap();
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("ZONE", zone.api_url())
        .env("ZONE_DATA", zone.data_dir())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(i32::try_from(child.id()).unwrap());
    // Bounded: the script's own waits add up to well under this.
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "walk-through still running after 120 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "walk-through failed:\n{stdout}\n{stderr}\n--- dp.log\n{}\n--- zone\n{}",
        logs("dp.log"),
        zone.process.log()
    );
    // Both ways of issuing a token give a token.
    for file in ["backend-1.token", "backend-1-cli.token"] {
        assert_eq!(
            logs(file).trim().split('.').count(),
            3,
            "{file} is not a JWT"
        );
    }
    assert!(stdout.contains("default.backend-1"), "node.id: {stdout}");
    assert!(
        stdout.contains("issued for") && stdout.contains("\n403\n"),
        "the other name is refused with 403 and the reason: {stdout}"
    );
    assert!(stdout.contains("LIVE"), "Envoy ready: {stdout}");
    assert!(
        stdout.contains("\"instance\":\"backend-1\""),
        "through Envoy to the app: {stdout}"
    );
    assert!(
        logs("dp.log").contains("forwarding the signal to Envoy"),
        "SIGTERM forwarded:\n{}",
        logs("dp.log")
    );
}
