//! `Dataplane` (mesh-scoped; Kuma 2.x `api/mesh/v1alpha1/dataplane.proto`,
//! validator `pkg/core/resources/apis/mesh/dataplane_validator.go`): a proxy's
//! address, inbounds (what it serves), outbounds (what it consumes), gateway
//! role, transparent-proxy settings, Envoy admin port, metrics and probes.
//!
//! [`interfaces`] holds the derived views the rest of Weft uses (Kuma's
//! `dataplane_helpers.go`): listener and workload addresses, healthy inbounds,
//! service tags.

pub(crate) mod addr;
mod checks;
pub mod interfaces;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use interfaces::{InboundInterface, OutboundInterface};

use super::Duration;
use super::Tags;
use super::mesh::MetricsBackend;
use serde::{Deserialize, Serialize};

/// Outbound address when none is written (Kuma's default).
pub const DEFAULT_OUTBOUND_ADDRESS: &str = "127.0.0.1";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneSpec {
    /// Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<Networking>,
    /// Overrides the mesh's enabled metrics backend for this proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsBackend>,
    /// Virtual probes (deprecated on Universal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy: Option<EnvoyConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    /// IP or DNS name other proxies and the control plane reach this proxy on.
    #[serde(default)]
    pub address: String,
    /// Routable address other proxies use instead of `address` (Envoy still
    /// binds `address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<Inbound>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<Outbound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    /// Present ⇒ the proxy runs with transparent proxying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent_proxying: Option<TransparentProxying>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<EnvoyAdmin>,
    /// Zone proxy listeners embedded in a Dataplane (Kuma 2.14).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
}

/// A service this proxy serves; one Envoy inbound listener each.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inbound {
    /// Where Envoy listens (the application's port under transparent proxying).
    #[serde(default)]
    pub port: u32,
    /// Where the application listens; defaults to `port` (0 means unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<u32>,
    /// Application address; defaults to the inbound's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_address: Option<String>,
    /// Listener address; defaults to `networking.address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `kuma.io/service` is mandatory.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// `None` means healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_probe: Option<ServiceProbe>,
    /// `None` means `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InboundState>,
    /// Section name for `targetRef.sectionName` and MeshService ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Newer alternative to the `kuma.io/protocol` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[serde(default)]
    pub ready: bool,
}

/// Active health checking of the application by Envoy (HDS, Universal).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// A TCP connect check (the only checker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpProbe>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TcpProbe {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum InboundState {
    #[default]
    Ready,
    NotReady,
    /// No listener, but the identity still goes into the certificate.
    Ignored,
}

/// A service this proxy consumes; one Envoy outbound listener each.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbound {
    /// Listener IP; defaults to 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default)]
    pub port: u32,
    /// `kuma.io/service` is mandatory unless `backendRef` is used.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_ref: Option<BackendRef>,
}

/// An outbound to a real MeshService / MeshExternalService / MeshMultiZoneService.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<BackendKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Required except for MeshExternalService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub labels: Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BackendKind {
    MeshService,
    MeshExternalService,
    MeshMultiZoneService,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// `kuma.io/service` is mandatory.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// `None` means `DELEGATED`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub gateway_type: Option<GatewayType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GatewayType {
    /// An independent proxy (Kong, Contour, ...) sending traffic into the mesh.
    #[default]
    Delegated,
    /// The proxy itself is configured as a gateway (MeshGateway).
    Builtin,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransparentProxying {
    /// Port all inbound traffic is redirected to (kuma-dp default 15006).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_port_inbound: Option<u32>,
    /// Port all outbound traffic is redirected to (kuma-dp default 15001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_port_outbound: Option<u32>,
    /// Services reached directly on IP:PORT (`*` for all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct_access_services: Vec<String>,
    /// `kuma.io/service` values reachable through the proxy (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reachable_services: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_mode: Option<IpFamilyMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable_backends: Option<ReachableBackends>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum IpFamilyMode {
    /// Backward compatibility only.
    UnSpecified,
    #[default]
    DualStack,
    IPv4,
    IPv6,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReachableBackends {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<ReachableBackendRef>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReachableBackendRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<BackendKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub labels: Tags,
}

/// Envoy admin API (bound to localhost); also used by ZoneIngress / ZoneEgress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyAdmin {
    #[serde(default)]
    pub port: u32,
}

/// A zone proxy listener embedded in a Dataplane.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub listener_type: Option<ListenerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default)]
    pub port: u32,
    /// Section name; defaults to the port as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ListenerState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListenerType {
    ZoneIngress,
    ZoneEgress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ListenerState {
    #[default]
    Ready,
    NotReady,
}

/// Virtual probes: application endpoints exposed on `port` without mTLS.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probes {
    #[serde(default)]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<ProbeEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeEndpoint {
    #[serde(default)]
    pub inbound_port: u32,
    #[serde(default)]
    pub inbound_path: String,
    #[serde(default)]
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xds_transport_protocol_variant: Option<XdsTransportProtocolVariant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum XdsTransportProtocolVariant {
    #[default]
    Default,
    /// Incremental xDS.
    DeltaGrpc,
    /// State-of-the-world xDS.
    Grpc,
}
