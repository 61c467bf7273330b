//! Zone tokens on global: `POST /tokens/zone` and `/tokens/zone/revoke` in-process,
//! checked against the validator the KDS server uses; the offline CLI path against a
//! running global's data dir; and `weft-global token ...` as a real process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use weft_global::ZoneTokens;
use weft_security::tokens::{PermissionDenied, TokenError, Unauthenticated, ZoneTokenBody};
use weft_testbed::client::invalid_fields as fields;
use weft_testbed::process::bin_dir;
use weft_testbed::{Client, ControlPlane, inprocess};

async fn post(api: &Client, path: &str, body: &Value) -> (StatusCode, String) {
    let r = api
        .request(Method::POST, path)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn issue(api: &Client, zone: &str) -> String {
    let (s, token) = post(
        api,
        "/tokens/zone",
        &json!({"zone": zone, "validFor": "24h"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{token}");
    token
}

/// The JSON of a JWT part (0: header, 1: claims).
fn jwt_part(token: &str, part: usize) -> Value {
    let seg = token.trim().split('.').nth(part).unwrap();
    let bytes = weft_model::resource::secret::decode_base64(seg).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Waits (up to 5 s) until the validator refuses `token` as revoked.
async fn until_revoked(tokens: &ZoneTokens, token: &str) {
    let mut changes = tokens.subscribe_revocations();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Err(TokenError::Unauthenticated(Unauthenticated::Revoked { .. })) =
            tokens.validate_for_zone(token, "east")
        {
            return;
        }
        tokio::time::timeout_at(deadline, changes.changed())
            .await
            .expect("the token was not refused as revoked within 5 s")
            .unwrap();
    }
}

// POST /tokens/zone answers a JWT (text/plain, no-store) that the KDS validator accepts
// for that zone, refuses for another (PERMISSION_DENIED); it needs the admin token.
#[tokio::test]
async fn issued_token_validates_for_its_zone_only() {
    let g = inprocess::global().await;
    let r = g
        .api
        .request(Method::POST, "/tokens/zone")
        .json(&json!({"zone": "east", "scope": ["cp"], "validFor": "24h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let token = r.text().await.unwrap();
    assert_eq!(token.split('.').count(), 3, "{token}");

    let bound = g.global().unwrap();
    let v = bound.zone_tokens.validate_for_zone(&token, "east").unwrap();
    assert_eq!(v.claims.zone, "east");
    assert_eq!(v.kid, 1);
    assert_eq!(
        v.claims.kds_ca_fingerprint,
        bound.kds_tls.ca_fingerprint(),
        "the token must pin the KDS CA"
    );
    assert!(v.claims.registered.exp - v.claims.registered.iat == 86_400);
    let err = bound
        .zone_tokens
        .validate_for_zone(&format!("Bearer {token}"), "west")
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::PermissionDenied(PermissionDenied::ZoneMismatch { .. })
        ),
        "{err}"
    );

    let r = g
        .api
        .http()
        .post(g.api.url("/tokens/zone"))
        .json(&json!({"zone": "east"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    g.stop().await;
}

// Bad bodies are 400 in the std-errors shape, naming the offending field.
#[tokio::test]
async fn bad_bodies_name_the_field() {
    let g = inprocess::global().await;
    let cases = [
        (json!({"zone": "Not_Valid", "validFor": "1h"}), "zone"),
        (json!({"validFor": "1h"}), "zone"),
        (json!({"zone": 7}), "zone"),
        (json!({"zone": "east", "scope": ["admin"]}), "scope"),
        (json!({"zone": "east", "scope": "cp"}), "scope"),
        (json!({"zone": "east", "validFor": "soon"}), "validFor"),
        (json!({"zone": "east", "validFor": "0s"}), "validFor"),
        (json!({"zone": "east", "validFor": "-1h"}), "validFor"),
        (json!({"zone": "east", "valid_for": "1h"}), "valid_for"),
    ];
    for (body, field) in cases {
        let (s, text) = post(&g.api, "/tokens/zone", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {text}");
        let err: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(err["type"], "/std-errors");
        assert_eq!(fields(&err), vec![field.to_string()], "{body}: {text}");
    }
    for raw in ["", "not json", "[1]"] {
        let r = g
            .api
            .request(Method::POST, "/tokens/zone")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{raw:?}");
    }
    g.stop().await;
}

// Revoking by jti, by token, or by a plain PUT of the GlobalSecret makes the
// validator refuse the token (subscribers are told); it survives a restart.
#[tokio::test]
async fn revocation_reaches_the_validator_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let g = inprocess::global_in(dir.path()).await;
    let tokens = g.global().unwrap().zone_tokens.clone();
    let (a, b, c) = (
        issue(&g.api, "east").await,
        issue(&g.api, "east").await,
        issue(&g.api, "east").await,
    );
    let jti = |t: &str| jwt_part(t, 1)["jti"].as_str().unwrap().to_string();
    let mut changes = tokens.subscribe_revocations();

    let (s, text) = post(&g.api, "/tokens/zone/revoke", &json!({"jti": jti(&a)})).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer, json!({"jti": jti(&a), "alreadyRevoked": false}));
    until_revoked(&tokens, &a).await;
    assert!(changes.has_changed().unwrap());
    assert!(changes.borrow_and_update().is_revoked(&jti(&a)));
    tokens.validate_for_zone(&b, "east").unwrap();

    let (s, text) = post(&g.api, "/tokens/zone/revoke", &json!({"token": b})).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    until_revoked(&tokens, &b).await;
    let (_, text) = post(&g.api, "/tokens/zone/revoke", &json!({"jti": jti(&a)})).await;
    assert!(text.contains("\"alreadyRevoked\":true"), "{text}");

    // An operator's PUT of the GlobalSecret, in Kuma's comma-separated format.
    let list = format!("{},{},{}", jti(&a), jti(&b), jti(&c));
    let data = weft_model::resource::secret::encode_base64(list.as_bytes());
    let (s, body) = g
        .api
        .put(
            "/global-secrets/zone-token-revocations",
            &format!("type: GlobalSecret\nname: zone-token-revocations\ndata: {data}\n"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    until_revoked(&tokens, &c).await;

    drop(tokens);
    g.stop().await;
    let g = inprocess::global_in(dir.path()).await;
    let tokens = &g.global().unwrap().zone_tokens;
    for t in [&a, &b, &c] {
        assert!(
            matches!(
                tokens.validate_for_zone(t, "east"),
                Err(TokenError::Unauthenticated(Unauthenticated::Revoked { .. }))
            ),
            "a revoked token is accepted after a restart"
        );
    }
    let d = issue(&g.api, "east").await;
    tokens.validate_for_zone(&d, "east").unwrap();
    g.stop().await;
}

// Revocation bodies: exactly one of jti / token, a jti that fits the list format.
#[tokio::test]
async fn bad_revocations_name_the_field() {
    let g = inprocess::global().await;
    let cases = [
        (json!({}), "jti"),
        (json!({"jti": "a", "token": "b"}), "jti"),
        (json!({"jti": "a,b"}), "jti"),
        (json!({"jti": ""}), "jti"),
        (json!({"token": "not-a-jwt"}), "token"),
        (json!({"id": "x"}), "id"),
    ];
    for (body, field) in cases {
        let (s, text) = post(&g.api, "/tokens/zone/revoke", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {text}");
        let err: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(fields(&err), vec![field.to_string()], "{body}: {text}");
    }
    let (s, _) = g.api.get("/global-secrets/zone-token-revocations").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing may have been recorded");
    g.stop().await;
}

// The CLI's library path on the data dir of a RUNNING global: its tokens validate
// there, and a key it rotates is used by the server without a restart.
#[tokio::test]
async fn offline_issue_and_rotation_reach_the_running_global() {
    let dir = tempfile::tempdir().unwrap();
    let g = inprocess::global_in(dir.path()).await;
    let tokens = &g.global().unwrap().zone_tokens;
    let body = || ZoneTokenBody {
        zone: "east".into(),
        scope: vec!["cp".into()],
        valid_for: "1h".into(),
    };
    let first = weft_global::tokens::issue_offline(dir.path(), body()).unwrap();
    assert_eq!(first.kid, 1);
    let v = tokens
        .validate_for_zone(first.token.expose(), "east")
        .unwrap();
    assert_eq!(
        v.claims.kds_ca_fingerprint,
        g.global().unwrap().kds_tls.ca_fingerprint()
    );

    assert_eq!(weft_global::tokens::rotate_offline(dir.path()).unwrap(), 2);
    let second = weft_global::tokens::issue_offline(dir.path(), body()).unwrap();
    assert_eq!(second.kid, 2);
    assert_eq!(
        tokens
            .validate_for_zone(second.token.expose(), "east")
            .unwrap()
            .kid,
        2
    );
    tokens
        .validate_for_zone(first.token.expose(), "east")
        .unwrap();
    let from_api = issue(&g.api, "east").await;
    assert_eq!(jwt_part(&from_api, 0)["kid"], "2");
    g.stop().await;
}

fn global_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin_dir().unwrap().join("weft-global"))
        .args(args)
        .env_remove("WEFT_ZONE")
        .env_remove("WEFT_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// `weft-global token zone` works while global runs (sled holds the store) and prints
// a JWT signed by the current key; `rotate-signing-key` moves new tokens, from the
// CLI and from the running server's API, to kid 2.
#[tokio::test]
async fn cli_issues_and_rotates_while_global_runs() {
    let global = ControlPlane::global(&[]).unwrap();
    let d = global.data_dir().to_str().unwrap().to_string();
    let zone = |d: &str| {
        global_cli(&[
            "token",
            "zone",
            "--zone",
            "east",
            "--valid-for",
            "24h",
            "--data-dir",
            d,
        ])
    };
    let (code, out, err) = zone(&d);
    assert_eq!(code, 0, "{err}");
    let token = out.trim();
    assert_eq!(out.lines().count(), 1, "only the token on stdout: {out}");
    assert_eq!(jwt_part(token, 0)["kid"], "1");
    assert_eq!(jwt_part(token, 0)["alg"], "EdDSA");
    let claims = jwt_part(token, 1);
    assert_eq!(claims["Zone"], "east");
    assert_eq!(claims["Scope"], json!(["cp"]));
    let tls = global.data_dir().join("kds-tls");
    let kds =
        weft_security::pki::KdsTls::from_files(&tls.join("server.crt"), &tls.join("server.key"))
            .unwrap();
    assert_eq!(
        claims["KdsCaFingerprint"],
        kds.ca_fingerprint().unwrap().to_string(),
        "the token must pin the running server's KDS CA"
    );
    assert!(!err.contains(token), "the token must not be logged");

    let (code, out, err) = global_cli(&["token", "rotate-signing-key", "--data-dir", &d]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("key 2"), "{out}");
    let (code, out, err) = zone(&d);
    assert_eq!(code, 0, "{err}");
    assert_eq!(jwt_part(out.trim(), 0)["kid"], "2");

    let api = Client::new(global.api_url(), global.token());
    let from_api = issue(&api, "east").await;
    assert_eq!(jwt_part(&from_api, 0)["kid"], "2");
    assert!(
        !global.process.log().contains(from_api.trim()),
        "the server must not log tokens"
    );
}

// Usage errors exit 64 naming the flag; a data dir global never ran on is refused.
#[test]
fn cli_and_flag_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = global_cli(&["token", "zone", "--zone", "east", "--data-dir", d]);
    assert_eq!(code, 64, "--valid-for is required: {err}");
    let (code, _, err) = global_cli(&[
        "token",
        "zone",
        "--zone",
        "Bad_Name",
        "--valid-for",
        "1h",
        "--data-dir",
        d,
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--zone (WEFT_ZONE)"), "{err}");
    let (code, _, err) = global_cli(&[
        "token",
        "zone",
        "--zone",
        "east",
        "--valid-for",
        "soon",
        "--data-dir",
        d,
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--valid-for (WEFT_VALID_FOR)"), "{err}");
    let (code, out, err) = global_cli(&[
        "token",
        "zone",
        "--zone",
        "east",
        "--valid-for",
        "1h",
        "--data-dir",
        d,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("weft-global run"), "{err}");
    let (code, _, err) = global_cli(&["token", "rotate-signing-key", "--data-dir", d]);
    assert_eq!(code, 1, "{err}");
    assert!(!dir.path().join("zone-token-keys").exists());

    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "x").unwrap();
    let cert = cert.to_str().unwrap();
    let (code, _, err) = global_cli(&["run", "--data-dir", d, "--kds-tls-cert", cert]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--kds-tls-key (WEFT_KDS_TLS_KEY)"), "{err}");
    let (code, _, err) = global_cli(&[
        "run",
        "--data-dir",
        d,
        "--kds-tls-cert",
        "/nonexistent/cert.pem",
        "--kds-tls-key",
        cert,
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--kds-tls-cert (WEFT_KDS_TLS_CERT)"), "{err}");
}
