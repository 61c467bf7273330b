//! Views derived from a Dataplane's networking, with Kuma's defaults applied
//! (`api/mesh/v1alpha1/dataplane_helpers.go`): where each listener binds, where
//! its application listens, which inbounds may receive traffic.

use super::{
    DEFAULT_OUTBOUND_ADDRESS, DataplaneSpec, GatewayType, Inbound, InboundState, Networking,
    Outbound, addr,
};
use crate::resource::tags;

/// An inbound with its defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InboundInterface {
    /// Where Envoy listens: `inbound.address`, else `networking.address`.
    pub dataplane_ip: String,
    /// What other proxies connect to: `networking.advertisedAddress`, else `dataplane_ip`.
    pub dataplane_advertised_ip: String,
    pub dataplane_port: u32,
    /// Where the application listens: `inbound.serviceAddress`, else `dataplane_ip`.
    pub workload_ip: String,
    /// `inbound.servicePort` (when non-zero), else `port`.
    pub workload_port: u32,
}

/// An outbound with its defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundInterface {
    /// `outbound.address`, else 127.0.0.1.
    pub dataplane_ip: String,
    pub dataplane_port: u32,
}

impl Networking {
    /// The resolved interface of one of this networking's inbounds.
    pub fn inbound_interface(&self, inbound: &Inbound) -> InboundInterface {
        let dataplane_ip = inbound
            .address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| self.address.clone());
        let dataplane_advertised_ip = self
            .advertised_address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| dataplane_ip.clone());
        let workload_ip = inbound
            .service_address
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| dataplane_ip.clone());
        let workload_port = inbound
            .service_port
            .filter(|p| *p != 0)
            .unwrap_or(inbound.port);
        InboundInterface {
            dataplane_ip,
            dataplane_advertised_ip,
            dataplane_port: inbound.port,
            workload_ip,
            workload_port,
        }
    }

    /// The resolved interface of an outbound.
    pub fn outbound_interface(outbound: &Outbound) -> OutboundInterface {
        OutboundInterface {
            dataplane_ip: outbound
                .address
                .clone()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| DEFAULT_OUTBOUND_ADDRESS.to_string()),
            dataplane_port: outbound.port,
        }
    }
}

impl Inbound {
    /// Only healthy inbounds become endpoints: state `Ready` (the default) and
    /// `health` absent or `ready: true`.
    pub fn is_healthy(&self) -> bool {
        self.state.unwrap_or_default() == InboundState::Ready
            && self.health.as_ref().is_none_or(|h| h.ready)
    }

    /// The `kuma.io/service` tag.
    pub fn service(&self) -> Option<&str> {
        self.tags.get(tags::SERVICE).map(String::as_str)
    }

    /// The protocol: the `protocol` field, else the `kuma.io/protocol` tag, else `tcp`.
    pub fn protocol(&self) -> &str {
        self.protocol
            .as_deref()
            .or_else(|| self.tags.get(tags::PROTOCOL).map(String::as_str))
            .unwrap_or("tcp")
    }
}

impl DataplaneSpec {
    fn inbounds(&self) -> &[Inbound] {
        self.networking
            .as_ref()
            .map_or(&[][..], |n| n.inbound.as_slice())
    }

    /// Every inbound's interface, in `networking.inbound` order.
    pub fn inbound_interfaces(&self) -> Vec<InboundInterface> {
        match &self.networking {
            Some(n) => n.inbound.iter().map(|i| n.inbound_interface(i)).collect(),
            None => Vec::new(),
        }
    }

    /// Every outbound's interface, in `networking.outbound` order.
    pub fn outbound_interfaces(&self) -> Vec<OutboundInterface> {
        self.networking.as_ref().map_or_else(Vec::new, |n| {
            n.outbound
                .iter()
                .map(Networking::outbound_interface)
                .collect()
        })
    }

    /// Whether inbound `i` exists and is healthy (see [`Inbound::is_healthy`]).
    pub fn is_inbound_healthy(&self, i: usize) -> bool {
        self.inbounds().get(i).is_some_and(Inbound::is_healthy)
    }

    /// The distinct `kuma.io/service` values this proxy serves (gateway first,
    /// then inbounds), in first-seen order.
    pub fn service_tags(&self) -> Vec<&str> {
        let gateway = self
            .networking
            .as_ref()
            .and_then(|n| n.gateway.as_ref())
            .and_then(|g| g.tags.get(tags::SERVICE))
            .map(String::as_str);
        let mut out: Vec<&str> = Vec::new();
        for s in gateway
            .into_iter()
            .chain(self.inbounds().iter().filter_map(Inbound::service))
        {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The service that identifies the proxy (certificate, stats): the gateway's,
    /// else the first inbound's.
    pub fn identifying_service(&self) -> Option<&str> {
        self.service_tags().first().copied()
    }

    /// The gateway type, when the proxy is a gateway.
    pub fn gateway_type(&self) -> Option<GatewayType> {
        self.networking
            .as_ref()
            .and_then(|n| n.gateway.as_ref())
            .map(|g| g.gateway_type.unwrap_or_default())
    }

    /// Whether `ip:port` collides with an inbound listener or its application
    /// (exact address match, or either side a wildcard).
    pub fn uses_inbound_interface(&self, ip: &str, port: u32) -> bool {
        self.inbound_interfaces().iter().any(|i| {
            (i.dataplane_port == port && addr::overlap(ip, &i.dataplane_ip))
                || (i.workload_port == port && addr::overlap(ip, &i.workload_ip))
        })
    }

    /// Whether `ip:port` collides with an outbound listener.
    pub fn uses_outbound_interface(&self, ip: &str, port: u32) -> bool {
        self.outbound_interfaces()
            .iter()
            .any(|o| o.dataplane_port == port && addr::overlap(ip, &o.dataplane_ip))
    }

    /// Whether the proxy runs with transparent proxying.
    pub fn is_transparent(&self) -> bool {
        self.networking
            .as_ref()
            .is_some_and(|n| n.transparent_proxying.is_some())
    }
}
