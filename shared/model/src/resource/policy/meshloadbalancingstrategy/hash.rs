//! Request hashing for consistent-hash load balancers and sticky routes: which
//! request or connection property feeds the hash.

use crate::resource::Duration;
use crate::resource::policy::checks::{MUST_BE_DEFINED, MUST_NOT_BE_EMPTY};
use crate::resource::validate::{Path, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashPolicyType {
    Header,
    Cookie,
    Connection,
    /// Deprecated spelling of `Connection` (with `connection.sourceIP`).
    #[serde(rename = "SourceIP")]
    SourceIp,
    QueryParameter,
    FilterState,
}

/// One request property to hash on; `type` says which section applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HashPolicy {
    #[serde(rename = "type")]
    pub policy_type: HashPolicyType,
    /// Stop at this policy when it produced a hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<NamedKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<Cookie>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_parameter: Option<NamedKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_state: Option<FilterState>,
}

/// `header: {name}` / `queryParameter: {name}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedKey {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    /// When set, a cookie with this TTL is generated if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Connection {
    #[serde(rename = "sourceIP", default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterState {
    pub key: String,
}

pub(super) fn check_hash_policies(
    path: &Path,
    list: &Option<Vec<HashPolicy>>,
    errs: &mut ValidationErrors,
) {
    for (i, hp) in list.iter().flatten().enumerate() {
        let p = path.index(i);
        let (section, present) = match hp.policy_type {
            HashPolicyType::Header => ("header", hp.header.is_some()),
            HashPolicyType::Cookie => ("cookie", hp.cookie.is_some()),
            HashPolicyType::Connection | HashPolicyType::SourceIp => {
                ("connection", hp.connection.is_some())
            }
            HashPolicyType::QueryParameter => ("queryParameter", hp.query_parameter.is_some()),
            HashPolicyType::FilterState => ("filterState", hp.filter_state.is_some()),
        };
        if !present {
            errs.add(&p.field(section), MUST_BE_DEFINED);
        }
        let mut non_empty_name = |field: &str, sub: &str, value: &str| {
            if value.is_empty() {
                errs.add(&p.field(field).field(sub), MUST_NOT_BE_EMPTY);
            }
        };
        if let Some(h) = &hp.header {
            non_empty_name("header", "name", &h.name);
        }
        if let Some(q) = &hp.query_parameter {
            non_empty_name("queryParameter", "name", &q.name);
        }
        if let Some(f) = &hp.filter_state {
            non_empty_name("filterState", "key", &f.key);
        }
        if let Some(c) = &hp.cookie {
            non_empty_name("cookie", "name", &c.name);
            if let Some(ttl) = &c.ttl {
                ttl.check(&p.field("cookie").field("ttl"), errs);
            }
            if c.path.as_deref().is_some_and(|path| !path.starts_with('/')) {
                errs.add(&p.field("cookie").field("path"), "must be an absolute path");
            }
        }
    }
}
