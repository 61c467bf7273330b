//! Dataplane tokens: what a proxy (`weft-dp` and its Envoy) presents to its zone at
//! `POST /bootstrap` and on the xDS stream.
//!
//! Claims follow Kuma's dataplane token (`Mesh`, `Name`, `Tags`, `Type`, capitalized)
//! plus the registered `jti`, `iat`, `nbf`, `exp`. `Type` is always `dataplane`; a
//! token without it (a zone token) is refused, and the zone signs dataplane tokens with
//! its own keys (`<data-dir>/dataplane-token-keys/`), so one kind can never pass for
//! the other.
//!
//! A token admits a Dataplane when the mesh is the token's, the name is the token's
//! (when the token names one), and, for each tag the token constrains, every value the
//! Dataplane carries for it (inbounds and gateway) is one the token allows.

use super::jwt::{self, Registered, TokenClaims, Validator, Verified};
use super::{Clock, IssueError, PermissionDenied, SigningKeys, Token, TokenError, TokenKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use weft_model::resource::validate::{Path, ValidationErrors, check_name};
use weft_model::resource::{Resource, Spec};

/// The only `Type` this module issues and accepts.
pub const TYPE_DATAPLANE: &str = "dataplane";

pub const DATAPLANE_TOKEN: TokenKind = TokenKind {
    name: "dataplane token",
    present_hint: "weft-dp reads it from --dataplane-token-file and sends it as \
                   `authorization: Bearer <token>`",
    reissue_hint: "generate a new one on the zone with `weft-zone token dataplane --mesh MESH` \
                   or `POST /tokens/dataplane`",
};

/// The claims of a dataplane token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneClaims {
    /// Always [`TYPE_DATAPLANE`].
    #[serde(rename = "Type")]
    pub token_type: String,
    #[serde(rename = "Mesh")]
    pub mesh: String,
    /// The Dataplane's name; `None` admits any name in the mesh.
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tag → allowed values (e.g. `kuma.io/service` → `[backend]`).
    #[serde(rename = "Tags", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Vec<String>>,
    /// The workload the Dataplane must be (its `kuma.io/workload` label, which
    /// MeshIdentity SPIFFE ids read); `None` leaves the label unchecked.
    #[serde(rename = "Workload", default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(flatten)]
    pub registered: Registered,
}

impl TokenClaims for DataplaneClaims {
    const KIND: TokenKind = DATAPLANE_TOKEN;
    fn registered(&self) -> &Registered {
        &self.registered
    }
}

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataplaneTokenRequest {
    pub mesh: String,
    pub name: Option<String>,
    pub tags: BTreeMap<String, Vec<String>>,
    pub workload: Option<String>,
    pub valid_for: Duration,
}

/// A tag value in a request body: one value or a list of allowed values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TagValues {
    One(String),
    Many(Vec<String>),
}

impl TagValues {
    fn into_vec(self) -> Vec<String> {
        match self {
            TagValues::One(v) => vec![v],
            TagValues::Many(v) => v,
        }
    }
}

/// The JSON body of `POST /tokens/dataplane`: `{"mesh": "default", "name": "web-1",
/// "tags": {"kuma.io/service": "web"}, "validFor": "24h"}`; all but `mesh` optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataplaneTokenBody {
    pub mesh: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, TagValues>,
    /// Admit only Dataplanes labelled `kuma.io/workload: <workload>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub valid_for: String,
}

impl DataplaneTokenBody {
    pub fn into_request(self) -> Result<DataplaneTokenRequest, IssueError> {
        Ok(DataplaneTokenRequest {
            valid_for: jwt::parse_valid_for(&self.valid_for)?,
            mesh: self.mesh,
            name: self.name.filter(|n| !n.is_empty()),
            workload: self.workload.filter(|w| !w.is_empty()),
            tags: self
                .tags
                .into_iter()
                .map(|(k, v)| (k, v.into_vec()))
                .collect(),
        })
    }
}

/// Issues a dataplane token signed with the newest key; returns it with its claims
/// (log the `jti`, never the token).
pub fn issue_dataplane_token(
    keys: &SigningKeys,
    clock: &dyn Clock,
    req: &DataplaneTokenRequest,
) -> Result<(Token, DataplaneClaims), IssueError> {
    let invalid = |field, errs: ValidationErrors| IssueError::Invalid {
        field,
        reason: errs.to_string(),
    };
    let mut errs = ValidationErrors::new();
    check_name(&Path::root().field("mesh"), &req.mesh, &mut errs);
    if !errs.is_empty() {
        return Err(invalid("mesh", errs));
    }
    if let Some(name) = &req.name {
        check_name(&Path::root().field("name"), name, &mut errs);
        if !errs.is_empty() {
            return Err(invalid("name", errs));
        }
    }
    let mut tags = BTreeMap::new();
    for (tag, values) in &req.tags {
        if tag.trim().is_empty() {
            return Err(IssueError::Invalid {
                field: "tags",
                reason: "a tag name must not be empty".into(),
            });
        }
        let values: BTreeSet<&String> = values.iter().collect();
        if values.is_empty() || values.iter().any(|v| v.is_empty()) {
            return Err(IssueError::Invalid {
                field: "tags",
                reason: format!("tag {tag:?} needs a non-empty value"),
            });
        }
        tags.insert(tag.clone(), values.into_iter().cloned().collect());
    }
    let claims = DataplaneClaims {
        token_type: TYPE_DATAPLANE.to_string(),
        mesh: req.mesh.clone(),
        name: req.name.clone(),
        tags,
        workload: req.workload.clone(),
        registered: Registered::new(clock, req.valid_for)?,
    };
    let token = jwt::sign(keys, &claims)?;
    Ok((token, claims))
}

/// Validates dataplane tokens.
pub type DataplaneTokenValidator = Validator<DataplaneClaims>;

impl Validator<DataplaneClaims> {
    /// A genuine, live dataplane token that admits `dataplane` (a Dataplane resource).
    pub fn validate_for_dataplane(
        &self,
        token: &str,
        dataplane: &Resource,
    ) -> Result<Verified<DataplaneClaims>, TokenError> {
        let verified = self.verify(token).map_err(|e| {
            // A zone token fails here on its signature or claims; say what it is.
            if jwt::read_unverified::<DataplaneClaims>(token).is_err()
                && jwt::read_unverified::<super::ZoneClaims>(token).is_ok()
            {
                return TokenError::Unauthenticated(super::Unauthenticated::Malformed {
                    kind: DATAPLANE_TOKEN,
                    reason: "it is a zone token, not a dataplane token",
                });
            }
            e.into()
        })?;
        if verified.claims.token_type != TYPE_DATAPLANE {
            return Err(super::Unauthenticated::Malformed {
                kind: DATAPLANE_TOKEN,
                reason: "its Type is not \"dataplane\"",
            }
            .into());
        }
        check_admits(&verified.claims, dataplane)?;
        Ok(verified)
    }
}

/// Whether `claims` admit `dataplane`: mesh, name, tag constraints.
pub fn check_admits(
    claims: &DataplaneClaims,
    dataplane: &Resource,
) -> Result<(), PermissionDenied> {
    let mesh = dataplane.meta.mesh.clone().unwrap_or_default();
    if claims.mesh != mesh {
        return Err(PermissionDenied::MeshMismatch {
            token_mesh: claims.mesh.clone(),
            mesh,
        });
    }
    if let Some(name) = &claims.name
        && *name != dataplane.meta.name
    {
        return Err(PermissionDenied::NameMismatch {
            token_name: name.clone(),
            name: dataplane.meta.name.clone(),
        });
    }
    if let Some(workload) = &claims.workload {
        let label = dataplane.meta.labels.get(WORKLOAD_LABEL).cloned();
        if label.as_ref() != Some(workload) {
            return Err(PermissionDenied::WorkloadMismatch {
                token_workload: workload.clone(),
                workload: label,
            });
        }
    }
    let have = dataplane_tags(dataplane);
    for (tag, allowed) in &claims.tags {
        let actual: Vec<String> = have
            .get(tag.as_str())
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        if actual.is_empty() || actual.iter().any(|v| !allowed.contains(v)) {
            return Err(PermissionDenied::TagMismatch {
                tag: tag.clone(),
                allowed: allowed.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// The Dataplane label a token's `Workload` claim pins.
pub const WORKLOAD_LABEL: &str = "kuma.io/workload";

/// Every tag value of a Dataplane's inbounds and gateway, by tag.
pub fn dataplane_tags(dataplane: &Resource) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let Spec::Dataplane(spec) = &dataplane.spec else {
        return out;
    };
    let Some(net) = &spec.networking else {
        return out;
    };
    let inbound = net.inbound.iter().map(|i| &i.tags);
    for tags in inbound.chain(net.gateway.iter().map(|g| &g.tags)) {
        for (k, v) in tags {
            out.entry(k.as_str()).or_default().insert(v.as_str());
        }
    }
    out
}

#[cfg(test)]
#[path = "dataplane_tests.rs"]
mod tests;
