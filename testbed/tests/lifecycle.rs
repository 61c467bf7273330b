//! The binaries' lifecycle as a user sees it: bad settings exit 64 naming the
//! setting, a config file works, and SIGTERM drains and exits 0 within 5 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;
use weft_testbed::ControlPlane;
use weft_testbed::process::bin_dir;

fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(bin_dir().unwrap().join(bin))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// An invalid flag value, env var or config file exits 64 and names the setting.
#[test]
fn bad_settings_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, err) = run(
        "weft-global",
        &["run", "--data-dir", d, "--api-address", "localhost"],
        &[],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--api-address (WEFT_API_ADDRESS)"), "{err}");
    let (code, err) = run(
        "weft-zone",
        &["run", "--data-dir", d],
        &[("WEFT_ZONE", "Not_Valid")],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--zone (WEFT_ZONE)"), "{err}");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "api-adress: 127.0.0.1:0\n").unwrap();
    let (code, err) = run(
        "weft-global",
        &["run", "--config", cfg.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("unknown setting \"api-adress\""), "{err}");
    let (code, _) = run("weft-global", &["run", "--no-such-flag"], &[]);
    assert_eq!(code, 64);
    let (code, _) = run("weft-global", &["--help"], &[]);
    assert_eq!(code, 0);
}

// Settings from a config file are used (here: no default mesh, JSON logs).
#[test]
fn config_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("global.yaml");
    std::fs::write(&cfg, "skip-default-mesh: true\nlog-format: json\n").unwrap();
    let cp = ControlPlane::start_in(
        "weft-global",
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = weft_testbed::Client::new(cp.api_url(), cp.token());
    let (status, _) = rt.block_on(api.get("/meshes/default"));
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let first_log_line = cp
        .process
        .log()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        serde_json::from_str::<serde_json::Value>(&first_log_line).is_ok(),
        "not JSON: {first_log_line}"
    );
}

// SIGTERM stops both binaries cleanly (exit 0) well within the 5 s drain deadline.
#[test]
fn sigterm_drains_and_exits_zero() {
    for bin in ["weft-global", "weft-zone"] {
        let mut cp = if bin == "weft-global" {
            ControlPlane::global(&[])
        } else {
            ControlPlane::zone(&[])
        }
        .unwrap();
        cp.process.signal("TERM").unwrap();
        let status = cp
            .process
            .wait_exit(Duration::from_secs(5))
            .expect("still running 5 s after SIGTERM");
        assert!(
            status.success(),
            "{bin} exited with {status}:\n{}",
            cp.process.log()
        );
        assert!(cp.process.log().contains("stopped"), "{}", cp.process.log());
    }
}
