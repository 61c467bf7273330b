//! Source matchers of the inbound `rules[]` (`api/common/v1alpha1/match.go`):
//! a client is selected by its SPIFFE ID (`Exact` / `Prefix`) or by the SNI it sent.
//! MeshTrafficPermission lists them under allow / deny / allowWithShadowDeny;
//! MeshTimeout, MeshRateLimit and MeshFaultInjection put them on a rule's `matches`
//! (checked by [`Match`]'s `Validate`); MeshAccessLog's rules use the same matchers
//! with checks of their own.

use crate::resource::net;
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    #[serde(rename = "spiffeID", default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<SpiffeIdMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<SniMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SpiffeIdMatchType {
    #[default]
    Exact,
    Prefix,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpiffeIdMatch {
    pub r#type: SpiffeIdMatchType,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SniMatchType {
    #[default]
    Exact,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SniMatch {
    pub r#type: SniMatchType,
    pub value: String,
}

/// `spec.rules[]` of the inbound policies that can depend on the client.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRule<C> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<Match>>,
    pub default: C,
}

impl<C> MatchRule<C> {
    /// Whether the rule only applies to some clients.
    pub fn has_matches(&self) -> bool {
        self.matches.as_ref().is_some_and(|m| !m.is_empty())
    }
}

impl Validate for Match {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.spiffe_id.is_none() && self.sni.is_none() {
            errs.add(path, "must have at least one defined: spiffeID, sni");
        }
        if let Some(m) = &self.spiffe_id
            && let Err(e) = check_spiffe_id(&m.value)
        {
            errs.add(
                &path.field("spiffeID").field("value"),
                format!("must be a valid Spiffe ID: {e}"),
            );
        }
        if let Some(m) = &self.sni {
            let p = path.field("sni").field("value");
            if m.value.is_empty() {
                errs.add(&p, "must be set");
            } else if !net::is_dns1123_subdomain(&m.value) {
                errs.add(
                    &p,
                    "must be a lowercase RFC 1123 subdomain: lower case alphanumeric characters, \
                     '-' or '.', starting and ending with an alphanumeric character",
                );
            }
        }
    }
}

/// Checks every rule's `matches` and its conf (with the conf's own `Validate`).
pub fn check_match_rules<C: Validate>(
    path: &Path,
    rules: &Option<Vec<MatchRule<C>>>,
    errs: &mut ValidationErrors,
) {
    for (i, rule) in rules.iter().flatten().enumerate() {
        let p = path.field("rules").index(i);
        rule.matches.validate(&p.field("matches"), errs);
        rule.default.validate(&p.field("default"), errs);
    }
}

/// Why a SPIFFE ID is malformed, in go-spiffe's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpiffeIdError {
    Scheme,
    NoTrustDomain,
    TrustDomainCharacters,
    EmptySegment,
    DotSegment,
    SegmentCharacters,
    TrailingSlash,
}

impl SpiffeIdError {
    pub fn reason(self) -> &'static str {
        match self {
            SpiffeIdError::Scheme => "scheme is missing or invalid",
            SpiffeIdError::NoTrustDomain => "trust domain is missing",
            SpiffeIdError::TrustDomainCharacters => {
                "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
            }
            SpiffeIdError::EmptySegment => "path cannot contain empty segments",
            SpiffeIdError::DotSegment => "path cannot contain dot segments",
            SpiffeIdError::SegmentCharacters => {
                "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
            }
            SpiffeIdError::TrailingSlash => "path cannot have a trailing slash",
        }
    }
}

impl fmt::Display for SpiffeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// SPIFFE ID syntax (the SPIFFE spec, as go-spiffe's `spiffeid.FromString` reads it):
/// `spiffe://<trust domain>[/<segment>...]`, trust domain of lower-case letters,
/// digits, `.`, `-`, `_`; path segments non-empty, not `.` or `..`, of letters,
/// digits, `.`, `-`, `_`; no trailing slash. The first problem found scanning left
/// to right is reported.
pub fn check_spiffe_id(id: &str) -> Result<(), SpiffeIdError> {
    let rest = id.strip_prefix("spiffe://").ok_or(SpiffeIdError::Scheme)?;
    let (td, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if td.is_empty() {
        return Err(SpiffeIdError::NoTrustDomain);
    }
    if !td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(SpiffeIdError::TrustDomainCharacters);
    }
    if path.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.into_iter().enumerate() {
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(SpiffeIdError::SegmentCharacters);
        }
        match segment {
            "" if i == last => return Err(SpiffeIdError::TrailingSlash),
            "" => return Err(SpiffeIdError::EmptySegment),
            "." | ".." => return Err(SpiffeIdError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::fields_at;

    fn fields(m: &Match) -> Vec<String> {
        fields_at(m, &Path::root().field("m"))
    }

    // SPIFFE IDs: trust domain required and lower case; clean path segments.
    #[test]
    fn spiffe_ids() {
        for ok in [
            "spiffe://trust.domain",
            "spiffe://default.zone-1.mesh.local/ns/demo/sa/web",
            "spiffe://td/a_b.c-D",
        ] {
            assert_eq!(check_spiffe_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://td/x",
            "spiffe://",
            "spiffe://TD/x",
            "spiffe://td/",
            "spiffe://td//x",
            "spiffe://td/./x",
            "spiffe://td/a b",
            "td/x",
        ] {
            assert!(check_spiffe_id(bad).is_err(), "{bad}");
        }
    }

    // A match must select something, and each selector is checked where it sits.
    #[test]
    fn match_checks() {
        assert_eq!(fields(&Match::default()), vec!["m"]);
        let m: Match = serde_json::from_str(
            r#"{"spiffeID":{"type":"Prefix","value":"spiffe://Bad"},"sni":{"type":"Exact","value":"Not_DNS"}}"#,
        )
        .unwrap();
        assert_eq!(fields(&m), vec!["m.spiffeID.value", "m.sni.value"]);
    }

    // Kuma's JSON names round-trip: `spiffeID`, `type`.
    #[test]
    fn json_names() {
        let text = r#"{"spiffeID":{"type":"Exact","value":"spiffe://td/web"}}"#;
        let m: Match = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), text);
        // Another spelling is not Kuma's field: it is ignored (the API warns).
        let other: Match = serde_json::from_str(r#"{"spiffeId":{}}"#).unwrap();
        assert_eq!(other, Match::default());
    }
}
