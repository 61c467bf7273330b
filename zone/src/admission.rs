//! Which proxies may connect: dataplane tokens checked at `POST /bootstrap` and on
//! the xDS stream.
//!
//! A proxy is admitted when it presents a genuine, live dataplane token issued by this
//! zone ([`crate::tokens`]) whose mesh / name / tag constraints the Dataplane meets, or
//! the zone's admin token. A zone ingress (egress) presents a zone token of scope
//! `ingress` (`egress`) for this zone, issued by this zone. Every refusal says what is wrong and how to fix it; the
//! message goes back to the proxy's operator and into the zone's log (never the token).

use crate::tokens::{DataplaneTokens, TokensError};
use std::path::Path;
use std::sync::Arc;
use weft_api::AdminToken;
use weft_model::resource::{Resource, ResourceType};
use weft_security::tokens::{SystemClock, TokenError, strip_bearer};

/// Why a proxy was refused; the message is shown to the proxy's operator, so it
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error(
        "no dataplane token: pass one with --dataplane-token-file (generate it with \
         `weft-zone token dataplane --mesh MESH` or POST /tokens/dataplane)"
    )]
    MissingToken,
    /// The token proves nothing (forged, expired, malformed...): `UNAUTHENTICATED`.
    #[error("dataplane token refused: {0}")]
    Refused(String),
    /// A genuine token that does not admit this Dataplane (another mesh, name or
    /// tags): `PERMISSION_DENIED`.
    #[error("dataplane token refused: {0}")]
    Denied(String),
}

#[derive(Debug, Clone, Default)]
enum Mode {
    /// Nothing is admitted (no key material configured).
    #[default]
    Closed,
    Tokens {
        tokens: Arc<DataplaneTokens>,
        admin: Option<AdminToken>,
        /// This zone's name (zone-proxy tokens name it).
        zone: String,
    },
    /// Test only: everything is admitted.
    AllowAll,
}

/// Checks dataplane tokens against the Dataplane a proxy presents. `Default` admits
/// nobody.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    mode: Mode,
}

impl Admission {
    /// Admits holders of tokens from `tokens` and, when given, of the admin token,
    /// in zone `zone`.
    pub fn new(tokens: Arc<DataplaneTokens>, admin: Option<AdminToken>, zone: &str) -> Self {
        Admission {
            mode: Mode::Tokens {
                tokens,
                admin,
                zone: zone.to_string(),
            },
        }
    }

    /// What zone `zone` builds at start: the keys in
    /// `<data_dir>/dataplane-token-keys` (created on first start) plus the admin
    /// token.
    pub fn from_data_dir(
        data_dir: &Path,
        admin: AdminToken,
        zone: &str,
    ) -> Result<Self, TokensError> {
        let tokens = DataplaneTokens::open(data_dir, Arc::new(SystemClock))?;
        Ok(Self::new(tokens, Some(admin), zone))
    }

    /// The zone's name, when this admission checks tokens.
    pub fn zone(&self) -> Option<&str> {
        match &self.mode {
            Mode::Tokens { zone, .. } => Some(zone),
            _ => None,
        }
    }

    /// **Test only**: admits every proxy with or without a token. Never use it in a
    /// running zone.
    pub fn insecure_allow_all() -> Self {
        Admission {
            mode: Mode::AllowAll,
        }
    }

    /// The token handle (issuing), when this admission checks tokens.
    pub fn tokens(&self) -> Option<&Arc<DataplaneTokens>> {
        match &self.mode {
            Mode::Tokens { tokens, .. } => Some(tokens),
            _ => None,
        }
    }

    /// Admits `dataplane` presenting `token` (the raw JWT; a `Bearer ` prefix is
    /// tolerated), or says why not.
    pub fn admit(&self, token: Option<&str>, dataplane: &Resource) -> Result<(), AdmissionError> {
        let (tokens, admin, zone) = match &self.mode {
            Mode::AllowAll => return Ok(()),
            Mode::Closed => {
                return Err(AdmissionError::Refused(
                    "this zone accepts no dataplane tokens (no signing keys configured)".into(),
                ));
            }
            Mode::Tokens {
                tokens,
                admin,
                zone,
            } => (tokens, admin, zone),
        };
        let token = token.map(strip_bearer).filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(AdmissionError::MissingToken);
        };
        if admin.as_ref().is_some_and(|a| a.matches(token)) {
            return Ok(());
        }
        let scope = match dataplane.resource_type() {
            ResourceType::Dataplane => None,
            ResourceType::ZoneIngress => Some(weft_security::tokens::SCOPE_INGRESS),
            ResourceType::ZoneEgress => Some(weft_security::tokens::SCOPE_EGRESS),
            other => {
                return Err(AdmissionError::Refused(format!(
                    "a {} is not a proxy",
                    other.name()
                )));
            }
        };
        let verdict = match scope {
            None => tokens.validate_for_dataplane(token, dataplane).map(drop),
            Some(scope) => tokens.validate_zone_proxy(token, zone, scope).map(drop),
        };
        match verdict {
            Ok(_) => Ok(()),
            Err(e @ TokenError::Unauthenticated(_)) => Err(AdmissionError::Refused(e.to_string())),
            Err(e @ TokenError::PermissionDenied(_)) => Err(AdmissionError::Denied(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use weft_model::resource::parse_resource;
    use weft_security::tokens::DataplaneTokenBody;

    fn dataplane(mesh: &str, name: &str) -> Resource {
        let yaml = format!(
            "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n  inbound:\n    - port: 8080\n      tags:\n        kuma.io/service: web\n"
        );
        parse_resource(yaml.as_bytes(), false).unwrap()
    }

    fn admission(dir: &Path) -> Admission {
        Admission::from_data_dir(dir, AdminToken::new("admin-secret"), "east").unwrap()
    }

    fn issue(a: &Admission, body: serde_json::Value) -> String {
        let body: DataplaneTokenBody = serde_json::from_value(body).unwrap();
        a.tokens().unwrap().issue(body).unwrap().token.into_string()
    }

    // A matching token, or the admin token, is admitted; no token is refused with the flag to use.
    #[test]
    fn admits_matching_token_and_admin() {
        let dir = tempfile::tempdir().unwrap();
        let a = admission(dir.path());
        let dp = dataplane("default", "web-1");
        let token = issue(&a, serde_json::json!({"mesh": "default", "name": "web-1"}));
        a.admit(Some(&token), &dp).unwrap();
        a.admit(Some(&format!("Bearer {token}")), &dp).unwrap();
        a.admit(Some("admin-secret"), &dp).unwrap();
        let e = a.admit(None, &dp).unwrap_err().to_string();
        assert!(e.contains("--dataplane-token-file"), "{e}");
        assert!(matches!(
            a.admit(Some(""), &dp),
            Err(AdmissionError::MissingToken)
        ));
    }

    // A token for another name or mesh, or from another zone, is refused with the reason.
    #[test]
    fn refusals_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let a = admission(dir.path());
        let token = issue(&a, serde_json::json!({"mesh": "default", "name": "web-1"}));
        let e = a
            .admit(Some(&token), &dataplane("default", "web-2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"web-1\"") && e.contains("\"web-2\""), "{e}");
        assert!(matches!(
            a.admit(Some(&token), &dataplane("default", "web-2")),
            Err(AdmissionError::Denied(_))
        ));
        let other_dir = tempfile::tempdir().unwrap();
        let other = admission(other_dir.path());
        let foreign = issue(&other, serde_json::json!({"mesh": "default"}));
        let e = a
            .admit(Some(&foreign), &dataplane("default", "web-1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("signature"), "{e}");
        assert!(!e.contains(&foreign), "the token must not be echoed: {e}");
        let e = a
            .admit(Some("garbage"), &dataplane("default", "web-1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed"), "{e}");
    }

    // A ZoneIngress is admitted with this zone's token of scope ingress only: a
    // dataplane token, an egress token or another zone's name is refused.
    #[test]
    fn zone_proxies_need_a_zone_token_of_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        let a = admission(dir.path());
        let ingress = parse_resource(
            b"type: ZoneIngress\nname: zi-1\nnetworking: {address: 127.0.0.1, port: 10001}\n",
            false,
        )
        .unwrap();
        let zone_token = |zone: &str, scope: &str| {
            let body: weft_security::tokens::ZoneTokenBody = serde_json::from_value(
                serde_json::json!({"zone": zone, "scope": [scope], "validFor": "1h"}),
            )
            .unwrap();
            a.tokens()
                .unwrap()
                .issue_zone_proxy("east", body)
                .map(|i| i.token.into_string())
        };
        a.admit(Some(&zone_token("east", "ingress").unwrap()), &ingress)
            .unwrap();
        let egress = zone_token("east", "egress").unwrap();
        let e = a.admit(Some(&egress), &ingress).unwrap_err().to_string();
        assert!(e.contains("ingress"), "{e}");
        let e = zone_token("west", "ingress").unwrap_err().to_string();
        assert!(e.contains("\"east\""), "{e}");
        let e = zone_token("east", "cp").unwrap_err().to_string();
        assert!(e.contains("global"), "{e}");
        let dp_token = issue(&a, serde_json::json!({"mesh": "default"}));
        assert!(a.admit(Some(&dp_token), &ingress).is_err());
        // and a zone token does not pass for a dataplane token
        let e = a
            .admit(
                Some(&zone_token("east", "ingress").unwrap()),
                &dataplane("default", "web-1"),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("refused"), "{e}");
    }

    // The same data dir gives the same keys: a token survives a zone restart.
    #[test]
    fn keys_persist_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let token = issue(
            &admission(dir.path()),
            serde_json::json!({"mesh": "default"}),
        );
        admission(dir.path())
            .admit(Some(&token), &dataplane("default", "x"))
            .unwrap();
        let offline = crate::tokens::issue_offline(
            dir.path(),
            serde_json::from_value(serde_json::json!({"mesh": "default"})).unwrap(),
        )
        .unwrap();
        admission(dir.path())
            .admit(Some(offline.token.expose()), &dataplane("default", "x"))
            .unwrap();
    }

    // Default admits nobody; insecure_allow_all admits everybody (tests only).
    #[test]
    fn closed_and_open_modes() {
        let dp = dataplane("default", "a");
        assert!(Admission::default().admit(Some("x"), &dp).is_err());
        Admission::insecure_allow_all().admit(None, &dp).unwrap();
    }
}
