//! MeshPassthrough (Kuma order 500, single item, transparent proxy only): which
//! destinations outside the mesh a sidecar lets through: all, none, or only the
//! domains / IPs / CIDRs listed in `appendMatch` (concatenated across policies).
//! Kuma: `pkg/plugins/policies/meshpassthrough/api/v1alpha1`.

use super::common::check_single_item;
use super::targetref::{TargetRef, TargetRefKind};
use crate::resource::net;
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use TargetRefKind::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshPassthrough {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub default: Conf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PassthroughMode {
    All,
    #[default]
    Matched,
    None,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conf {
    /// `appendMatch` only has an effect with `Matched`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_mode: Option<PassthroughMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_match: Option<Vec<Match>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MatchType {
    #[default]
    Domain,
    #[serde(rename = "IP")]
    Ip,
    #[serde(rename = "CIDR")]
    Cidr,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Tls,
    Grpc,
    Http,
    Http2,
    Mysql,
}

impl Protocol {
    fn is_l7(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::Http | Protocol::Http2)
    }
}

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub r#type: MatchType,
    pub value: String,
    /// Every port when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Defaults to `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
}

impl Match {
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }
}

/// Top-level kinds over Kuma 2.9–2.14.
pub const TOP_KINDS: &[TargetRefKind] = &[Mesh, MeshSubset, Dataplane];

const L7_PORT_REASON: &str = "using the same port in multiple matches requires the same protocol for the following protocols: [grpc http http2]";

impl Validate for MeshPassthrough {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        check_single_item(path, &self.target_ref, TOP_KINDS, &self.default, errs);
    }
}

impl Validate for Conf {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let mut port_protocol: BTreeMap<u32, Protocol> = BTreeMap::new();
        let mut seen: BTreeSet<(u32, Protocol, &str)> = BTreeSet::new();
        for (i, m) in self.append_match.iter().flatten().enumerate() {
            let p = path.field("appendMatch").index(i);
            let proto = m.protocol();
            if proto == Protocol::Mysql && m.port.is_none() {
                errs.add(&p.field("port"), "port must be defined for Mysql protocol");
            }
            if let Some(port) = m.port {
                validate::check_port(&p.field("port"), port, errs);
                match port_protocol.get(&port) {
                    Some(existing) if *existing != proto && proto.is_l7() => {
                        errs.add(&p.field("port"), L7_PORT_REASON);
                    }
                    _ => {
                        port_protocol.insert(port, proto);
                    }
                }
                if !seen.insert((port, proto, m.value.as_str())) {
                    errs.add(
                        &p.field("value"),
                        format!(
                            "value {} is already defined for this port and protocol",
                            m.value
                        ),
                    );
                }
            }
            check_value(&p, m, proto, errs);
        }
    }
}

fn check_value(p: &Path, m: &Match, proto: Protocol, errs: &mut ValidationErrors) {
    let vp = p.field("value");
    match m.r#type {
        MatchType::Cidr if !net::is_cidr(&m.value) => {
            errs.add(&vp, "provided CIDR has incorrect value");
        }
        MatchType::Ip if !net::is_ip(&m.value) => {
            errs.add(&vp, "provided IP has incorrect value");
        }
        MatchType::Domain => {
            if matches!(proto, Protocol::Tcp | Protocol::Mysql) {
                errs.add(
                    &p.field("protocol"),
                    format!(
                        "protocol {} is not supported for a domain",
                        if proto == Protocol::Tcp {
                            "tcp"
                        } else {
                            "mysql"
                        }
                    ),
                );
            }
            let partial_wildcard =
                m.value.starts_with('*') && m.value.len() > 1 && !m.value[1..].starts_with('.');
            if partial_wildcard {
                errs.add(
                    &vp,
                    "provided DNS has incorrect value, partial wildcard is currently not supported",
                );
            }
            if m.port.is_none() && m.value.starts_with('*') && proto.is_l7() {
                errs.add(
                    &p.field("port"),
                    "wildcard domains doesn't work for all ports and layer 7 protocol",
                );
            }
            let name = m.value.strip_prefix("*.").unwrap_or(&m.value);
            if !name.starts_with('*') && !net::is_dns_name(name) {
                errs.add(&vp, "provided DNS has incorrect value");
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_messages;

    fn violations(yaml: &str) -> Vec<String> {
        spec_messages::<MeshPassthrough>(yaml)
    }

    // The documented kinds of matches are valid together.
    #[test]
    fn valid_matches() {
        let v = violations(
            "default:\n  passthroughMode: Matched\n  appendMatch:\n  - {type: Domain, value: api.example.com, port: 443, protocol: tls}\n  - {type: Domain, value: '*.example.com', port: 443, protocol: tls}\n  - {type: Domain, value: httpbin.org, port: 80, protocol: http}\n  - {type: IP, value: 10.0.0.5, port: 5432}\n  - {type: CIDR, value: 192.168.0.0/16}\n  - {type: IP, value: 10.0.0.7, port: 3306, protocol: mysql}\n",
        );
        assert!(v.is_empty(), "{v:?}");
    }

    // Each documented rule reports at its own field, all at once.
    #[test]
    fn collects_all() {
        let v = violations(
            "default:\n  appendMatch:\n  - {type: Domain, value: example.com}\n  - {type: IP, value: 300.1.1.1}\n  - {type: CIDR, value: 10.0.0.0/40}\n  - {type: Domain, value: '*w.example.com', port: 443, protocol: tls}\n  - {type: Domain, value: '*.example.com', protocol: http}\n  - {type: Domain, value: a.com, port: 80, protocol: http}\n  - {type: Domain, value: b.com, port: 80, protocol: grpc}\n  - {type: Domain, value: a.com, port: 80, protocol: http}\n  - {type: IP, value: 10.0.0.1, protocol: mysql}\n  - {type: Domain, value: bad_domain-.com!, port: 0, protocol: tls}\n",
        );
        let fields: Vec<&str> = v.iter().map(|s| s.split(": ").next().unwrap()).collect();
        let a = "spec.default.appendMatch";
        assert_eq!(
            fields,
            vec![
                format!("{a}[0].protocol"),
                format!("{a}[1].value"),
                format!("{a}[2].value"),
                format!("{a}[3].value"),
                format!("{a}[4].port"),
                format!("{a}[6].port"),
                format!("{a}[7].value"),
                format!("{a}[8].port"),
                format!("{a}[9].port"),
                format!("{a}[9].value"),
            ]
        );
    }
}
