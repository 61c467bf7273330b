//! Zone-level resources (global-scoped): `ZoneIngress` and `ZoneEgress` (proxies
//! created in a zone and reported up; `zone_ingress.proto`, `zoneegress.proto`)
//! and `Zone` (a zone known to the global control plane; `zone.proto`).

use super::Tags;
use super::dataplane::{EnvoyAdmin, addr};
use super::tags;
use super::validate::{self, Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// The entry point of a zone for traffic from other zones (routes by TLS SNI).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneIngressSpec {
    /// The zone it serves; set by the control plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<ZoneIngressNetworking>,
    /// Computed by the control plane: the services reachable through this ingress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available_services: Vec<AvailableService>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneIngressNetworking {
    /// Where the listener binds.
    #[serde(default)]
    pub address: String,
    /// What other zones connect to (IP or DNS name); set together with `advertisedPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_address: Option<String>,
    #[serde(default)]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<EnvoyAdmin>,
}

/// A unique subset of endpoints behind the ingress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableService {
    #[serde(default)]
    pub tags: Tags,
    /// How many instances; the endpoint weight other zones use.
    #[serde(default)]
    pub instances: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_service: Option<bool>,
}

/// What a zone's ingress offers other zones, computed from the zone's own
/// Dataplanes (Kuma's `availableServices`): one entry per mesh and distinct tag
/// set of a healthy inbound, with the number of such inbounds. Deterministic
/// (by mesh, then tags), so an unchanged zone computes an identical list and no
/// write travels. Computed on every change of the zone's Dataplanes, not on a
/// timer.
pub fn available_services<'a>(
    dataplanes: impl IntoIterator<Item = &'a super::Resource>,
) -> Vec<AvailableService> {
    let mut counts: std::collections::BTreeMap<(String, Tags), u32> = Default::default();
    for r in dataplanes {
        let (Some(mesh), super::Spec::Dataplane(dp)) = (&r.meta.mesh, &r.spec) else {
            continue;
        };
        // Proxies that came from other zones are theirs to offer.
        if r.meta.labels.get(tags::ORIGIN).map(String::as_str) == Some("global") {
            continue;
        }
        for inbound in dp.networking.iter().flat_map(|n| &n.inbound) {
            if inbound.service().is_some() && inbound.is_healthy() {
                *counts
                    .entry((mesh.clone(), inbound.tags.clone()))
                    .or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|((mesh, tags), instances)| AvailableService {
            tags,
            instances,
            mesh: Some(mesh),
            external_service: None,
        })
        .collect()
}

impl ZoneIngressSpec {
    /// Where other zones reach this ingress: the advertised pair when set, else
    /// the listener's own address and port.
    pub fn public_endpoint(&self) -> Option<(&str, u32)> {
        let n = self.networking.as_ref()?;
        match (n.advertised_address.as_deref(), n.advertised_port) {
            (Some(a), Some(p)) if !a.is_empty() && p != 0 => Some((a, p)),
            _ => Some((n.address.as_str(), n.port)),
        }
    }
}

/// The exit of a zone for external and cross-zone traffic (`Mesh.routing.zoneEgress`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneEgressSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<ZoneEgressNetworking>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneEgressNetworking {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<EnvoyAdmin>,
}

/// A zone as the global control plane knows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneSpec {
    /// `false` disconnects the zone's control plane; unset means enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

impl ZoneSpec {
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

impl Validate for ZoneSpec {
    fn validate(&self, _path: &Path, _errs: &mut ValidationErrors) {}
}

/// The listener of a zone proxy's `networking`.
struct Listener<'a> {
    address: &'a str,
    port: u32,
    /// ZoneIngress only: the address and port other zones connect to.
    advertised: Option<(Option<&'a str>, Option<u32>)>,
    admin: Option<&'a EnvoyAdmin>,
}

/// What ZoneIngress and ZoneEgress share: the zone name, and a required
/// `networking` whose listener address and ports are valid (the admin port on
/// localhost must not be the proxy's own).
fn check_zone_proxy(
    path: &Path,
    zone: Option<&str>,
    listener: Option<Listener<'_>>,
    errs: &mut ValidationErrors,
) {
    if let Some(z) = zone {
        validate::check_name(&path.field("zone"), z, errs);
    }
    let np = path.field("networking");
    let Some(l) = listener else {
        errs.add(&np, "must be defined");
        return;
    };
    addr::check_address(&np.field("address"), l.address, errs);
    validate::check_port(&np.field("port"), l.port, errs);
    match l.advertised {
        Some((Some(a), Some(p))) => {
            addr::check_advertised(&np.field("advertisedAddress"), a, errs);
            validate::check_port(&np.field("advertisedPort"), p, errs);
        }
        Some((Some(_), None)) => errs.add(
            &np.field("advertisedPort"),
            "has to be defined with advertisedAddress",
        ),
        Some((None, Some(_))) => errs.add(
            &np.field("advertisedAddress"),
            "has to be defined with advertisedPort",
        ),
        Some((None, None)) | None => {}
    }
    if let Some(admin) = l.admin {
        let p = np.field("admin").field("port");
        validate::check_port(&p, admin.port, errs);
        if admin.port != 0 && admin.port == l.port {
            errs.add(&p, "must differ from port");
        }
    }
}

impl Validate for ZoneIngressSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let listener = self.networking.as_ref().map(|n| Listener {
            address: &n.address,
            port: n.port,
            advertised: Some((n.advertised_address.as_deref(), n.advertised_port)),
            admin: n.admin.as_ref(),
        });
        check_zone_proxy(path, self.zone.as_deref(), listener, errs);
        for (i, s) in self.available_services.iter().enumerate() {
            let p = path.field("availableServices").index(i);
            if !s.tags.contains_key(tags::SERVICE) {
                errs.add(&p.field("tags").key(tags::SERVICE), "cannot be empty");
            }
            validate::check_tags(&p.field("tags"), &s.tags, false, errs);
            if let Some(m) = &s.mesh {
                validate::check_name(&p.field("mesh"), m, errs);
            }
        }
    }
}

impl Validate for ZoneEgressSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let listener = self.networking.as_ref().map(|n| Listener {
            address: &n.address,
            port: n.port,
            advertised: None,
            admin: n.admin.as_ref(),
        });
        check_zone_proxy(path, self.zone.as_deref(), listener, errs);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::resource::test_support::{fields_at, parse};

    fn fields<T: Validate>(spec: &T) -> Vec<String> {
        fields_at(spec, &Path::root())
    }

    fn ingress(yaml: &str) -> ZoneIngressSpec {
        parse(yaml)
    }

    // A complete ingress is valid and publishes its advertised endpoint.
    #[test]
    fn valid_ingress() {
        let zi = ingress(
            r#"
zone: zone-1
networking:
  address: 10.0.0.5
  advertisedAddress: ingress.zone-1.example.com
  port: 10001
  advertisedPort: 30001
  admin: {port: 9901}
availableServices:
  - {tags: {kuma.io/service: backend, version: v1}, instances: 2, mesh: default}
  - {tags: {kuma.io/service: httpbin}, instances: 1, mesh: default, externalService: true}
"#,
        );
        assert!(fields(&zi).is_empty(), "{:?}", fields(&zi));
        assert_eq!(
            zi.public_endpoint(),
            Some(("ingress.zone-1.example.com", 30001))
        );
    }

    // Without the advertised pair, the listener address is the public endpoint.
    #[test]
    fn public_endpoint_falls_back() {
        let zi = ingress("networking: {address: 10.0.0.5, port: 10001}");
        assert_eq!(zi.public_endpoint(), Some(("10.0.0.5", 10001)));
        assert_eq!(ZoneIngressSpec::default().public_endpoint(), None);
    }

    // Networking is required; address, ports and the advertised pair are checked.
    #[test]
    fn ingress_rules() {
        assert_eq!(fields(&ZoneIngressSpec::default()), ["networking"]);
        let zi = ingress(
            r#"
zone: Zone_1
networking: {address: 0.0.0.0, port: 0, advertisedPort: 70000, admin: {port: 0}}
availableServices: [{tags: {version: "v 1"}, mesh: Default}]
"#,
        );
        assert_eq!(
            fields(&zi),
            [
                "zone",
                "networking.address",
                "networking.port",
                "networking.advertisedAddress",
                "networking.admin.port",
                r#"availableServices[0].tags["kuma.io/service"]"#,
                r#"availableServices[0].tags["version"]"#,
                "availableServices[0].mesh",
            ]
        );
        let zi = ingress("networking: {address: a.example, port: 1, advertisedAddress: b.example}");
        assert_eq!(fields(&zi), ["networking.advertisedPort"]);
    }

    // An egress needs networking with an address and a port distinct from admin's.
    #[test]
    fn egress_rules() {
        assert_eq!(fields(&ZoneEgressSpec::default()), ["networking"]);
        let ok: ZoneEgressSpec = serde_yaml_ng::from_str(
            "zone: zone-1\nnetworking: {address: 10.0.0.6, port: 10002, admin: {port: 9902}}",
        )
        .unwrap();
        assert!(fields(&ok).is_empty());
        let bad: ZoneEgressSpec =
            serde_yaml_ng::from_str("networking: {address: '', port: 10002, admin: {port: 10002}}")
                .unwrap();
        assert_eq!(
            fields(&bad),
            ["networking.address", "networking.admin.port"]
        );
    }

    // A zone is enabled unless it says otherwise.
    #[test]
    fn zone_enabled() {
        assert!(ZoneSpec::default().is_enabled());
        let z: ZoneSpec = serde_yaml_ng::from_str("enabled: false").unwrap();
        assert!(!z.is_enabled());
    }
}

#[cfg(test)]
mod available_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::resource::parse_resource;

    fn dp(mesh: &str, name: &str, inbounds: &str) -> crate::resource::Resource {
        parse_resource(
            format!(
                "type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 10.0.0.1\n  inbound:\n{inbounds}"
            )
            .as_bytes(),
            false,
        )
        .unwrap()
    }

    // Healthy inbounds are counted per mesh and tag set; unhealthy ones and other
    // zones' proxies are not; the order does not depend on the input's.
    #[test]
    fn counts_healthy_instances_per_mesh_and_tags() {
        let v1 = "    - {port: 80, tags: {kuma.io/service: backend, version: v1}}\n";
        let v2 = "    - {port: 80, tags: {kuma.io/service: backend, version: v2}}\n";
        let down = "    - {port: 80, tags: {kuma.io/service: backend, version: v1}, health: {ready: false}}\n";
        let mut remote = dp("default", "remote-1", v1);
        remote
            .meta
            .labels
            .insert(tags::ORIGIN.into(), "global".into());
        let all = [
            dp("default", "b-1", v1),
            dp("default", "b-2", v1),
            dp("default", "b-3", v2),
            dp("default", "b-4", down),
            dp("other", "b-1", v1),
            remote,
        ];
        let got = available_services(all.iter());
        let summary: Vec<(String, String, u32)> = got
            .iter()
            .map(|a| {
                (
                    a.mesh.clone().unwrap(),
                    a.tags["version"].clone(),
                    a.instances,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("default".to_string(), "v1".to_string(), 2),
                ("default".to_string(), "v2".to_string(), 1),
                ("other".to_string(), "v1".to_string(), 1),
            ]
        );
        assert_eq!(available_services(all.iter().rev()), got);
    }
}
