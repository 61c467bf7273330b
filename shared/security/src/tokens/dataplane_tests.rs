//! Dataplane token issue / admit behaviour, driven by a manual clock (no sleeps).

use super::*;
use crate::tokens::{
    ManualClock, Revocations, Unauthenticated, ZoneTokenRequest, ZoneTokenValidator,
    issue_zone_token,
};
use std::sync::Arc;
use weft_model::resource::parse_resource;

const T0: u64 = 1_800_000_000;
const DAY: Duration = Duration::from_secs(86_400);

fn dataplane(mesh: &str, name: &str, services: &[&str]) -> Resource {
    let inbounds: Vec<String> = services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "    - port: {}\n      tags:\n        kuma.io/service: {s}\n",
                8000 + i
            )
        })
        .collect();
    let yaml = format!(
        "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n{}",
        inbounds.concat()
    );
    parse_resource(yaml.as_bytes(), false).unwrap()
}

struct Fixture {
    keys: SigningKeys,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            keys: SigningKeys::generate_initial().unwrap(),
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    fn issue(&self, body: serde_json::Value) -> Token {
        let body: DataplaneTokenBody = serde_json::from_value(body).unwrap();
        issue_dataplane_token(
            &self.keys,
            self.clock.as_ref(),
            &body.into_request().unwrap(),
        )
        .unwrap()
        .0
    }

    fn validator(&self) -> DataplaneTokenValidator {
        DataplaneTokenValidator::new(
            self.keys.verifying_keys(),
            Revocations::new(),
            self.clock.clone(),
        )
    }
}

fn denied(r: Result<Verified<DataplaneClaims>, TokenError>) -> PermissionDenied {
    match r {
        Err(TokenError::PermissionDenied(e)) => e,
        other => panic!("expected PERMISSION_DENIED, got {other:?}"),
    }
}

// A token for a mesh admits any Dataplane of that mesh, and only of that mesh.
#[test]
fn mesh_token_admits_its_mesh_only() {
    let f = Fixture::new();
    let token = f.issue(serde_json::json!({"mesh": "default", "validFor": "1h"}));
    let v = f.validator();
    let ok = v
        .validate_for_dataplane(token.expose(), &dataplane("default", "web-1", &["web"]))
        .unwrap();
    assert_eq!(ok.claims.token_type, TYPE_DATAPLANE);
    assert_eq!(ok.claims.registered.exp, T0 + 3600);
    let e =
        denied(v.validate_for_dataplane(token.expose(), &dataplane("other", "web-1", &["web"])));
    assert!(e.to_string().contains("mesh \"default\""), "{e}");
    assert!(e.to_string().contains("--mesh other"), "{e}");
}

// A named token admits only the Dataplane with that name.
#[test]
fn name_constraint() {
    let f = Fixture::new();
    let token = f.issue(serde_json::json!({"mesh": "default", "name": "web-1"}));
    let v = f.validator();
    v.validate_for_dataplane(token.expose(), &dataplane("default", "web-1", &["web"]))
        .unwrap();
    let e =
        denied(v.validate_for_dataplane(token.expose(), &dataplane("default", "web-2", &["web"])));
    assert!(matches!(e, PermissionDenied::NameMismatch { .. }), "{e}");
    assert!(e.to_string().contains("\"web-2\""), "{e}");
}

// Every value of a constrained tag must be allowed; a missing tag is refused too.
#[test]
fn tag_constraint() {
    let f = Fixture::new();
    let token = f.issue(serde_json::json!({"mesh": "default", "tags": {"kuma.io/service": "web"}}));
    let v = f.validator();
    v.validate_for_dataplane(token.expose(), &dataplane("default", "a", &["web"]))
        .unwrap();
    let e = denied(
        v.validate_for_dataplane(token.expose(), &dataplane("default", "a", &["web", "db"])),
    );
    assert!(e.to_string().contains("[db, web]"), "{e}");
    let many =
        f.issue(serde_json::json!({"mesh": "default", "tags": {"kuma.io/service": ["web", "db"]}}));
    v.validate_for_dataplane(many.expose(), &dataplane("default", "a", &["web", "db"]))
        .unwrap();
    let zone_tag =
        f.issue(serde_json::json!({"mesh": "default", "tags": {"kuma.io/zone": "east"}}));
    let e =
        denied(v.validate_for_dataplane(zone_tag.expose(), &dataplane("default", "a", &["web"])));
    assert!(matches!(e, PermissionDenied::TagMismatch { .. }), "{e}");
}

// A workload claim pins the Dataplane's `kuma.io/workload` label (what a
// MeshIdentity's SPIFFE id reads): another value, or none, is refused.
#[test]
fn workload_constraint() {
    let f = Fixture::new();
    let token = f.issue(serde_json::json!({"mesh": "default", "workload": "web"}));
    let v = f.validator();
    let labelled = |w: Option<&str>| {
        let mut dp = dataplane("default", "a", &["web"]);
        if let Some(w) = w {
            dp.meta.labels.insert("kuma.io/workload".into(), w.into());
        }
        dp
    };
    v.validate_for_dataplane(token.expose(), &labelled(Some("web")))
        .unwrap();
    for other in [Some("payments"), None] {
        let e = denied(v.validate_for_dataplane(token.expose(), &labelled(other)));
        assert!(
            matches!(e, PermissionDenied::WorkloadMismatch { .. }),
            "{e}"
        );
    }
    // Without the claim the label is not checked (as before).
    let open = f.issue(serde_json::json!({"mesh": "default"}));
    v.validate_for_dataplane(open.expose(), &labelled(Some("payments")))
        .unwrap();
}

// Expiry is checked against the clock; the message says how to get a new token.
#[test]
fn expired_token_refused() {
    let f = Fixture::new();
    let token = f.issue(serde_json::json!({"mesh": "default", "validFor": "1h"}));
    f.clock.advance(DAY);
    let err = f
        .validator()
        .validate_for_dataplane(token.expose(), &dataplane("default", "a", &["web"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Unauthenticated(Unauthenticated::Expired { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("weft-zone token dataplane"),
        "{err}"
    );
}

// A zone token is never accepted as a dataplane token, even signed with the same key.
#[test]
fn zone_token_is_not_a_dataplane_token() {
    let f = Fixture::new();
    let (zone_token, _) = issue_zone_token(
        &f.keys,
        f.clock.as_ref(),
        &ZoneTokenRequest::cp("east", DAY),
    )
    .unwrap();
    let err = f
        .validator()
        .validate_for_dataplane(zone_token.expose(), &dataplane("default", "a", &["web"]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("zone token, not a dataplane token"),
        "{err}"
    );
    // ... and the other way round.
    let dp_token = f.issue(serde_json::json!({"mesh": "default"}));
    let zv = ZoneTokenValidator::new(f.keys.verifying_keys(), Revocations::new(), f.clock.clone());
    assert!(zv.validate(dp_token.expose()).is_err());
}

// A token signed by another zone's key is refused as not issued here.
#[test]
fn foreign_key_refused() {
    let f = Fixture::new();
    let other = Fixture::new();
    let token = other.issue(serde_json::json!({"mesh": "default"}));
    let err = f
        .validator()
        .validate_for_dataplane(token.expose(), &dataplane("default", "a", &["web"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Unauthenticated(Unauthenticated::BadSignature { .. })
        ),
        "{err}"
    );
}

// Bad requests name the field; nothing is signed.
#[test]
fn bad_requests_name_the_field() {
    let f = Fixture::new();
    let issue = |body: serde_json::Value| {
        let body: DataplaneTokenBody = serde_json::from_value(body).unwrap();
        body.into_request()
            .and_then(|r| issue_dataplane_token(&f.keys, f.clock.as_ref(), &r))
    };
    for (body, field) in [
        (serde_json::json!({"mesh": ""}), "mesh"),
        (serde_json::json!({"mesh": "Bad Mesh"}), "mesh"),
        (serde_json::json!({"mesh": "m", "name": "a b"}), "name"),
        (
            serde_json::json!({"mesh": "m", "tags": {"kuma.io/service": ""}}),
            "tags",
        ),
        (
            serde_json::json!({"mesh": "m", "validFor": "0s"}),
            "validFor",
        ),
    ] {
        match issue(body.clone()) {
            Err(IssueError::Invalid { field: f, .. }) => assert_eq!(f, field, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
}
