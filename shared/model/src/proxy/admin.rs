//! Envoy admin through the control plane (decision 0015): the three read-only
//! requests an operator can make of any proxy (`xds`, `stats`, `clusters`), their
//! query parameters, the Envoy admin path each becomes, and the errors every hop
//! (REST API, KDS, the zone's relay, `weft-dp`) answers with. Shared by the zone,
//! global and `weft-dp`, so each hop checks the same rules and no hop can widen
//! what reaches Envoy: only `GET` of `/config_dump`, `/stats` and `/clusters`.

use crate::resource::ResourceType;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest answer any hop carries (config dumps of large meshes are MBs); a
/// larger one is refused with [`AdminError::TooLarge`], never cut short.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Longest `filter` regex accepted.
pub const MAX_FILTER_LEN: usize = 256;

/// How long `weft-dp` waits for Envoy's admin.
pub const ENVOY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the zone waits for its proxy's answer (through `weft-dp`).
pub const ZONE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long global waits for the zone's answer (over KDS).
pub const GLOBAL_TIMEOUT: Duration = Duration::from_secs(15);

/// The three admin requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AdminOp {
    /// Envoy's `/config_dump` (REST `.../xds`).
    XdsConfig,
    /// Envoy's `/stats` (REST `.../stats`).
    Stats,
    /// Envoy's `/clusters` (REST `.../clusters`).
    Clusters,
}

impl AdminOp {
    pub const ALL: [AdminOp; 3] = [AdminOp::XdsConfig, AdminOp::Stats, AdminOp::Clusters];

    /// The last path segment of the REST route (Kuma's).
    pub fn segment(self) -> &'static str {
        match self {
            AdminOp::XdsConfig => "xds",
            AdminOp::Stats => "stats",
            AdminOp::Clusters => "clusters",
        }
    }

    /// Envoy's admin path.
    pub fn envoy_path(self) -> &'static str {
        match self {
            AdminOp::XdsConfig => "/config_dump",
            AdminOp::Stats => "/stats",
            AdminOp::Clusters => "/clusters",
        }
    }

    /// The query parameters the REST route takes.
    fn allowed(self) -> &'static str {
        match self {
            AdminOp::XdsConfig => "include_eds",
            AdminOp::Stats => "format (text|json) and filter (a regex)",
            AdminOp::Clusters => "format (text|json)",
        }
    }
}

/// Output format of `stats` and `clusters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }

    /// `text` (or empty) or `json`.
    pub fn parse(s: &str) -> Result<Format, QueryError> {
        match s {
            "" | "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(QueryError::Invalid {
                name: "format",
                reason: format!("{other:?} is not a format; use text or json"),
            }),
        }
    }
}

/// What a request asks of Envoy beyond its kind.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminQuery {
    /// Config dump: include EDS.
    #[serde(default)]
    pub include_eds: bool,
    /// Stats and clusters.
    #[serde(default)]
    pub format: Format,
    /// Stats: Envoy's `filter` regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// A query parameter the route does not take, or a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("unknown query parameter {name:?}; {segment} takes {allowed}")]
    Unknown {
        name: String,
        segment: &'static str,
        allowed: &'static str,
    },
    #[error("query parameter {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl QueryError {
    /// The parameter at fault.
    pub fn field(&self) -> &str {
        match self {
            QueryError::Unknown { name, .. } => name,
            QueryError::Invalid { name, .. } => name,
        }
    }
}

impl AdminQuery {
    /// The REST query of `op`'s route (Kuma's parameters): `include_eds` for
    /// `xds`, `format` and `filter` for `stats`, `format` for `clusters`.
    /// Anything else is refused, naming it.
    pub fn parse(op: AdminOp, pairs: &[(String, String)]) -> Result<AdminQuery, QueryError> {
        let mut q = AdminQuery::default();
        for (name, value) in pairs {
            match (op, name.as_str()) {
                (AdminOp::XdsConfig, "include_eds") => {
                    q.include_eds = match value.as_str() {
                        "" | "true" => true,
                        "false" => false,
                        other => {
                            return Err(QueryError::Invalid {
                                name: "include_eds",
                                reason: format!("{other:?} is not true or false"),
                            });
                        }
                    }
                }
                (AdminOp::Stats | AdminOp::Clusters, "format") => q.format = Format::parse(value)?,
                (AdminOp::Stats, "filter") => {
                    q.filter = (!value.is_empty()).then(|| value.clone());
                }
                _ => {
                    return Err(QueryError::Unknown {
                        name: name.clone(),
                        segment: op.segment(),
                        allowed: op.allowed(),
                    });
                }
            }
        }
        q.check(op)?;
        Ok(q)
    }

    /// Whether this query suits `op` (every hop checks what it receives).
    pub fn check(&self, op: AdminOp) -> Result<(), QueryError> {
        let misplaced = |name: &'static str| QueryError::Unknown {
            name: name.into(),
            segment: op.segment(),
            allowed: op.allowed(),
        };
        if self.include_eds && op != AdminOp::XdsConfig {
            return Err(misplaced("include_eds"));
        }
        if self.format != Format::Text && op == AdminOp::XdsConfig {
            return Err(misplaced("format"));
        }
        if let Some(filter) = &self.filter {
            if op != AdminOp::Stats {
                return Err(misplaced("filter"));
            }
            if filter.len() > MAX_FILTER_LEN {
                return Err(QueryError::Invalid {
                    name: "filter",
                    reason: format!("is {} bytes; at most {MAX_FILTER_LEN}", filter.len()),
                });
            }
            if let Err(e) = regex_syntax::Parser::new().parse(filter) {
                return Err(QueryError::Invalid {
                    name: "filter",
                    reason: format!("is not a valid regular expression: {e}"),
                });
            }
        }
        Ok(())
    }

    /// The Envoy admin path and query for `op` (always a read; nothing else is
    /// ever asked of Envoy).
    pub fn envoy_path(&self, op: AdminOp) -> String {
        let mut params = Vec::new();
        if op == AdminOp::XdsConfig && self.include_eds {
            params.push("include_eds".to_string());
        }
        if op != AdminOp::XdsConfig && self.format == Format::Json {
            params.push("format=json".to_string());
        }
        if let (AdminOp::Stats, Some(f)) = (op, &self.filter) {
            params.push(format!("filter={}", percent_encode(f)));
        }
        if params.is_empty() {
            op.envoy_path().to_string()
        } else {
            format!("{}?{}", op.envoy_path(), params.join("&"))
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Envoy's answer to an admin request, as every hop carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminReply {
    /// Envoy's `content-type`.
    pub content_type: String,
    pub body: Vec<u8>,
}

/// The proxy a request is for, as its zone names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyRef {
    /// Dataplane, ZoneIngress or ZoneEgress.
    pub ty: ResourceType,
    /// `None` for zone ingresses and egresses.
    pub mesh: Option<String>,
    pub name: String,
}

impl ProxyRef {
    pub fn new(ty: ResourceType, mesh: Option<&str>, name: &str) -> Result<ProxyRef, String> {
        if !matches!(
            ty,
            ResourceType::Dataplane | ResourceType::ZoneIngress | ResourceType::ZoneEgress
        ) {
            return Err(format!(
                "{} is not a proxy type (Dataplane, ZoneIngress, ZoneEgress)",
                ty.name()
            ));
        }
        let mesh = mesh.filter(|m| !m.is_empty()).map(str::to_string);
        if (ty == ResourceType::Dataplane) != mesh.is_some() {
            return Err(format!(
                "a {} {} a mesh",
                ty.name(),
                if ty == ResourceType::Dataplane {
                    "needs"
                } else {
                    "has no"
                }
            ));
        }
        if name.is_empty() {
            return Err("the proxy's name is empty".into());
        }
        Ok(ProxyRef {
            ty,
            mesh,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for ProxyRef {
    /// `Dataplane default/web-1`, `ZoneIngress ingress-1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mesh {
            Some(mesh) => write!(f, "{} {mesh}/{}", self.ty.name(), self.name),
            None => write!(f, "{} {}", self.ty.name(), self.name),
        }
    }
}

/// One command on a proxy's relay stream (zone → `weft-dp`), one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayCommand {
    pub id: u64,
    pub op: AdminOp,
    #[serde(flatten)]
    pub query: AdminQuery,
}

/// How `weft-dp` reports that it could not get Envoy's answer: the header
/// [`RELAY_ERROR_HEADER`] holds one of these, the body the reason.
pub const RELAY_ERROR_HEADER: &str = "x-weft-relay-error";
/// Envoy answered more than [`MAX_RESPONSE_BYTES`].
pub const RELAY_ERROR_TOO_LARGE: &str = "too-large";
/// Envoy could not be reached, or answered an error.
pub const RELAY_ERROR_ENVOY: &str = "envoy";

/// Why an admin request got no answer; every variant names what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("{proxy} not found{where_}")]
    NotFound { proxy: String, where_: String },
    #[error("{proxy} is not connected: {reason}")]
    NotConnected { proxy: String, reason: String },
    #[error("{what} did not answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error(
        "the answer of {proxy} is larger than {limit} bytes, the most the control plane carries; \
         narrow it (stats: ?filter=<regex>; xds: without include_eds)"
    )]
    TooLarge { proxy: String, limit: usize },
    #[error("the Envoy of {proxy} failed: {reason}")]
    Envoy { proxy: String, reason: String },
    #[error("zone {zone} is offline: it has no KDS connection to this global")]
    ZoneOffline { zone: String },
    #[error(
        "zone {zone} does not support Envoy admin requests over KDS (it did not open \
         GlobalKDSService.{rpc}); upgrade the zone"
    )]
    ZoneUnsupported { zone: String, rpc: &'static str },
    #[error("{what} has too many admin requests in flight ({limit}); try again")]
    Busy { what: String, limit: usize },
    /// An error a zone reported over KDS, with the status its own API gives it.
    #[error("{message}")]
    Remote { status: u16, message: String },
}

impl AdminError {
    /// The HTTP status the REST API answers with.
    pub fn status(&self) -> u16 {
        match self {
            AdminError::NotFound { .. } => 404,
            AdminError::NotConnected { .. }
            | AdminError::ZoneOffline { .. }
            | AdminError::ZoneUnsupported { .. }
            | AdminError::Busy { .. } => 503,
            AdminError::Timeout { .. } => 504,
            AdminError::TooLarge { .. } | AdminError::Envoy { .. } => 502,
            AdminError::Remote { status, .. } => match *status {
                400..=599 => *status,
                _ => 502,
            },
        }
    }
}

/// The name of the GlobalKDSService RPC that carries `op` (Kuma's).
pub fn kds_rpc(op: AdminOp) -> &'static str {
    match op {
        AdminOp::XdsConfig => "StreamXDSConfigs",
        AdminOp::Stats => "StreamStats",
        AdminOp::Clusters => "StreamClusters",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Each route takes its own parameters and refuses others, naming them.
    #[test]
    fn queries_are_checked_per_route() {
        let q = AdminQuery::parse(AdminOp::XdsConfig, &pairs(&[("include_eds", "true")])).unwrap();
        assert!(q.include_eds);
        assert_eq!(q.envoy_path(AdminOp::XdsConfig), "/config_dump?include_eds");
        let q = AdminQuery::parse(
            AdminOp::Stats,
            &pairs(&[("format", "json"), ("filter", "^server\\.live$")]),
        )
        .unwrap();
        assert_eq!(
            q.envoy_path(AdminOp::Stats),
            "/stats?format=json&filter=%5Eserver%5C.live%24"
        );
        assert_eq!(
            AdminQuery::default().envoy_path(AdminOp::Clusters),
            "/clusters"
        );
        let e = AdminQuery::parse(AdminOp::Clusters, &pairs(&[("filter", "x")])).unwrap_err();
        assert_eq!(e.field(), "filter");
        assert!(e.to_string().contains("clusters takes format"), "{e}");
        let e = AdminQuery::parse(AdminOp::Stats, &pairs(&[("format", "yaml")])).unwrap_err();
        assert!(e.to_string().contains("\"yaml\" is not a format"), "{e}");
        let e = AdminQuery::parse(AdminOp::Stats, &pairs(&[("filter", "(")])).unwrap_err();
        assert!(e.to_string().contains("regular expression"), "{e}");
        let long = "a".repeat(MAX_FILTER_LEN + 1);
        let e = AdminQuery::parse(AdminOp::Stats, &pairs(&[("filter", &long)])).unwrap_err();
        assert_eq!(e.field(), "filter");
        // Envoy's mutating endpoints cannot be reached through any parameter.
        let e = AdminQuery::parse(AdminOp::Stats, &pairs(&[("reset_counters", "")])).unwrap_err();
        assert_eq!(e.field(), "reset_counters");
    }

    // A query received from another hop is re-checked against its op.
    #[test]
    fn received_queries_are_rechecked() {
        let q = AdminQuery {
            include_eds: true,
            ..AdminQuery::default()
        };
        assert!(q.check(AdminOp::Stats).is_err());
        let q = AdminQuery {
            filter: Some("x".into()),
            ..AdminQuery::default()
        };
        assert!(q.check(AdminOp::Clusters).is_err());
        assert!(q.check(AdminOp::Stats).is_ok());
    }

    // A relay command travels as one JSON line and back.
    #[test]
    fn relay_commands_round_trip() {
        let c = RelayCommand {
            id: 7,
            op: AdminOp::Stats,
            query: AdminQuery {
                format: Format::Json,
                filter: Some("cluster\\..*".into()),
                ..AdminQuery::default()
            },
        };
        let line = serde_json::to_string(&c).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<RelayCommand>(&line).unwrap(), c);
    }

    // Proxies are named the way the API names them; errors map onto statuses.
    #[test]
    fn proxies_and_errors_are_named() {
        let p = ProxyRef::new(ResourceType::Dataplane, Some("default"), "web-1").unwrap();
        assert_eq!(p.to_string(), "Dataplane default/web-1");
        let p = ProxyRef::new(ResourceType::ZoneIngress, None, "ingress-1").unwrap();
        assert_eq!(p.to_string(), "ZoneIngress ingress-1");
        assert!(ProxyRef::new(ResourceType::Dataplane, None, "x").is_err());
        assert!(ProxyRef::new(ResourceType::Mesh, None, "x").is_err());
        let e = AdminError::ZoneOffline {
            zone: "west".into(),
        };
        assert_eq!(e.status(), 503);
        assert!(e.to_string().contains("zone west"));
        assert_eq!(
            AdminError::Remote {
                status: 404,
                message: "x".into()
            }
            .status(),
            404
        );
        assert_eq!(
            AdminError::Remote {
                status: 200,
                message: "x".into()
            }
            .status(),
            502
        );
    }
}
