//! The Dataplane's semantic rules (Kuma's `dataplane_validator.go`), with its
//! messages where it has them.

use super::{
    BackendKind, BackendRef, DataplaneSpec, Gateway, GatewayType, Inbound, Listener, Networking,
    Outbound, ProbeEndpoint, Probes, ReachableBackendRef, ServiceProbe, TransparentProxying, addr,
};
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use crate::resource::{net, tags};
use std::collections::BTreeSet;

/// Envoy's admin API listens on the loopback address.
const ADMIN_IP: &str = "127.0.0.1";

impl Validate for DataplaneSpec {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let np = path.field("networking");
        let gateway = self.gateway_type();
        match &self.networking {
            None => errs.add(&np, "must be defined"),
            Some(net) => {
                check_roles(&np, net, gateway, errs);
                net.validate(&np, errs);
                check_admin(&np, self, net, errs);
            }
        }
        if gateway == Some(GatewayType::Builtin) && self.probes.is_some() {
            errs.add(
                &path.field("probes"),
                "probes cannot be defined for builtin gateways",
            );
        } else {
            self.probes.validate(&path.field("probes"), errs);
        }
        self.metrics.validate(&path.field("metrics"), errs);
    }
}

/// A proxy is a sidecar (inbounds), a gateway (no inbounds) or a zone proxy
/// (listeners); builtin gateways have no outbounds either.
fn check_roles(
    np: &Path,
    net: &Networking,
    gateway: Option<GatewayType>,
    errs: &mut ValidationErrors,
) {
    match gateway {
        Some(GatewayType::Delegated) if !net.inbound.is_empty() => errs.add(
            &np.field("inbound"),
            "inbound cannot be defined for delegated gateways",
        ),
        Some(GatewayType::Builtin) => {
            if !net.inbound.is_empty() {
                errs.add(
                    &np.field("inbound"),
                    "inbound cannot be defined for builtin gateways",
                );
            }
            if !net.outbound.is_empty() {
                errs.add(
                    &np.field("outbound"),
                    "outbound cannot be defined for builtin gateways",
                );
            }
        }
        None if net.inbound.is_empty() && net.listeners.is_empty() => errs.add(
            np,
            "has to contain at least one inbound interface or gateway",
        ),
        _ => {}
    }
}

/// The admin port must not collide with a listener or an application.
fn check_admin(np: &Path, dp: &DataplaneSpec, net: &Networking, errs: &mut ValidationErrors) {
    let Some(admin) = &net.admin else { return };
    let p = np.field("admin").field("port");
    validate::check_port(&p, admin.port, errs);
    if dp.uses_inbound_interface(ADMIN_IP, admin.port) {
        errs.add(&p, "must differ from inbound");
    }
    if dp.uses_outbound_interface(ADMIN_IP, admin.port) {
        errs.add(&p, "must differ from outbound");
    }
    if let Some(tp) = &net.transparent_proxying {
        let redirects = [
            ("redirectPortInbound", tp.redirect_port_inbound),
            ("redirectPortOutbound", tp.redirect_port_outbound),
        ];
        for (name, port) in redirects {
            if port == Some(admin.port) {
                errs.add(&p, format!("must differ from {name}"));
            }
        }
    }
}

impl Validate for Networking {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        addr::check_address(&path.field("address"), &self.address, errs);
        if let Some(a) = &self.advertised_address {
            addr::check_advertised(&path.field("advertisedAddress"), a, errs);
        }
        if let Some(g) = &self.gateway {
            g.validate(&path.field("gateway"), errs);
        }
        let mut names = BTreeSet::new();
        for (i, inbound) in self.inbound.iter().enumerate() {
            let p = path.field("inbound").index(i);
            check_inbound(&p, inbound, self, errs);
            if let Some(name) = inbound.name.as_deref()
                && !names.insert(name)
            {
                errs.add(
                    &p.field("name"),
                    format!("{name:?} name is already used for another inbound"),
                );
            }
        }
        self.outbound.validate(&path.field("outbound"), errs);
        self.transparent_proxying
            .validate(&path.field("transparentProxying"), errs);
        let mut names = BTreeSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let p = path.field("listeners").index(i);
            l.validate(&p, errs);
            let name = l.name.clone().unwrap_or_else(|| l.port.to_string());
            if !names.insert(name.clone()) {
                errs.add(
                    &p.field("name"),
                    format!("{name:?} name is already used for another listener"),
                );
            }
        }
    }
}

fn check_inbound(path: &Path, inbound: &Inbound, net: &Networking, errs: &mut ValidationErrors) {
    validate::check_port(&path.field("port"), inbound.port, errs);
    if let Some(sp) = inbound.service_port.filter(|p| *p != 0) {
        validate::check_port(&path.field("servicePort"), sp, errs);
    }
    if let Some(a) = &inbound.address
        && !net::is_ip(a)
    {
        errs.add(&path.field("address"), "address has to be valid IP address");
    }
    if let Some(sa) = &inbound.service_address {
        let p = path.field("serviceAddress");
        if !net::is_ip(sa) {
            errs.add(&p, "serviceAddress has to be valid IP address");
        }
        let iface = net.inbound_interface(inbound);
        if *sa == iface.dataplane_ip && iface.workload_port == inbound.port {
            errs.add(
                &p,
                "serviceAddress and servicePort has to differ from address and port",
            );
        }
    }
    let tp = path.field("tags");
    if !inbound.tags.contains_key(tags::SERVICE) {
        errs.add(&tp.key(tags::SERVICE), "tag has to exist");
    }
    if let Some(proto) = inbound.tags.get(tags::PROTOCOL) {
        check_protocol(&tp.key(tags::PROTOCOL), proto, errs);
    }
    validate::check_tags(&tp, &inbound.tags, false, errs);
    if let Some(proto) = &inbound.protocol {
        check_protocol(&path.field("protocol"), proto, errs);
    }
    inbound
        .service_probe
        .validate(&path.field("serviceProbe"), errs);
}

fn check_protocol(path: &Path, value: &str, errs: &mut ValidationErrors) {
    if !tags::PROTOCOLS.contains(&value) {
        errs.add(
            path,
            format!(
                "tag {:?} has an invalid value {value:?}. Allowed values: {}",
                tags::PROTOCOL,
                tags::PROTOCOLS.join(", ")
            ),
        );
    }
}

impl Validate for ServiceProbe {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Some(d) = &self.interval {
            d.check_positive(&path.field("interval"), errs);
        }
        if let Some(d) = &self.timeout {
            d.check_positive(&path.field("timeout"), errs);
        }
        for (name, t) in [
            ("unhealthyThreshold", self.unhealthy_threshold),
            ("healthyThreshold", self.healthy_threshold),
        ] {
            if t == Some(0) {
                errs.add(&path.field(name), "must be greater than zero");
            }
        }
    }
}

const MISSING_SERVICE: &str = "mandatory tag \"kuma.io/service\" is missing";

impl Validate for Outbound {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        validate::check_port(&path.field("port"), self.port, errs);
        if let Some(a) = &self.address
            && !net::is_ip(a)
        {
            errs.add(&path.field("address"), "address has to be valid IP address");
        }
        match &self.backend_ref {
            Some(br) => {
                br.validate(&path.field("backendRef"), errs);
                if !self.tags.is_empty() {
                    errs.add(
                        &path.field("backendRef"),
                        "both backendRef and tags/service cannot be defined",
                    );
                }
            }
            None => {
                let tp = path.field("tags");
                if !self.tags.contains_key(tags::SERVICE) {
                    errs.add(&tp, MISSING_SERVICE);
                }
                validate::check_tags(&tp, &self.tags, false, errs);
            }
        }
    }
}

const BACKEND_KINDS: &str =
    "invalid value. Available values are: MeshExternalService,MeshMultiZoneService,MeshService";

impl Validate for BackendRef {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.kind.is_none() {
            errs.add(&path.field("kind"), BACKEND_KINDS);
        }
        if self.name.as_deref().is_none_or(str::is_empty) && self.labels.is_empty() {
            errs.add(path, "either 'name' or 'labels' should be specified");
        }
        // A MeshExternalService's port comes from its endpoints.
        if self.kind != Some(BackendKind::MeshExternalService) {
            validate::check_port(&path.field("port"), self.port.unwrap_or(0), errs);
        }
    }
}

impl Validate for Gateway {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let tp = path.field("tags");
        if !self.tags.contains_key(tags::SERVICE) {
            errs.add(&tp.key(tags::SERVICE), "tag has to exist");
        }
        if let Some(proto) = self.tags.get(tags::PROTOCOL)
            && proto != "tcp"
        {
            errs.add(
                &tp.key(tags::PROTOCOL),
                format!("other values than tcp are not allowed, provided value {proto:?}"),
            );
        }
        validate::check_tags(&tp, &self.tags, false, errs);
    }
}

impl Validate for TransparentProxying {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        for (name, port) in [
            ("redirectPortInbound", self.redirect_port_inbound),
            ("redirectPortOutbound", self.redirect_port_outbound),
        ] {
            if let Some(p) = port {
                validate::check_port(&path.field(name), p, errs);
            }
        }
        if let (Some(i), Some(o)) = (self.redirect_port_inbound, self.redirect_port_outbound)
            && i == o
        {
            errs.add(
                &path.field("redirectPortOutbound"),
                "must differ from redirectPortInbound",
            );
        }
        for (i, s) in self.direct_access_services.iter().enumerate() {
            validate::check_tag_value(&path.field("directAccessServices").index(i), s, true, errs);
        }
        for (i, s) in self.reachable_services.iter().enumerate() {
            validate::check_tag_value(&path.field("reachableServices").index(i), s, false, errs);
        }
        if let Some(rb) = &self.reachable_backends {
            rb.refs
                .validate(&path.field("reachableBackends").field("refs"), errs);
        }
    }
}

impl Validate for ReachableBackendRef {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.kind.is_none() {
            errs.add(&path.field("kind"), BACKEND_KINDS);
        }
        let np = path.field("name");
        match (self.name.as_deref(), self.namespace.as_deref()) {
            (Some(name), _) => validate::check_name(&np, name, errs),
            (None, Some(_)) => errs.add(&np, "name is required, when namespace is defined"),
            (None, None) if self.labels.is_empty() => errs.add(&np, "name or labels are required"),
            (None, None) => {}
        }
        if (self.name.is_some() || self.namespace.is_some()) && !self.labels.is_empty() {
            errs.add(
                &path.field("labels"),
                "labels cannot be defined when name is specified",
            );
        }
        if let Some(p) = self.port {
            validate::check_port(&path.field("port"), p, errs);
        }
    }
}

impl Validate for Listener {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        if self.listener_type.is_none() {
            errs.add(&path.field("type"), "must be defined");
        }
        validate::check_port(&path.field("port"), self.port, errs);
        if let Some(a) = &self.address
            && !net::is_ip(a)
        {
            errs.add(&path.field("address"), "address has to be valid IP address");
        }
    }
}

impl Validate for Probes {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        validate::check_port(&path.field("port"), self.port, errs);
        self.endpoints.validate(&path.field("endpoints"), errs);
    }
}

impl Validate for ProbeEndpoint {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        validate::check_port(&path.field("inboundPort"), self.inbound_port, errs);
        for (name, value) in [("inboundPath", &self.inbound_path), ("path", &self.path)] {
            if !value.starts_with('/') || value.contains(char::is_whitespace) {
                errs.add(&path.field(name), "should be a valid URL Path");
            }
        }
    }
}
