//! `Mesh` (global-scoped; Kuma 2.x `api/mesh/v1alpha1/mesh.proto`, validator
//! `mesh_validator.go`): mTLS backends, legacy observability backends, passthrough,
//! routing switches, membership constraints and the MeshService mode.
//!
//! Backend `conf` objects depend on the backend's `type`. They are typed as the
//! union of every type's fields (no untagged enums: precise errors, strict
//! unknown-field checks) and validation refuses fields that do not belong to the
//! chosen type.

mod checks;
mod observability;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use checks::{MAX_MTLS_BACKENDS, RSA_BITS};
pub use observability::{
    Logging, LoggingBackend, LoggingBackendConf, LoggingBackendType, Metrics, MetricsBackend,
    MetricsBackendType, PrometheusAggregate, PrometheusConf, PrometheusEnvoy, PrometheusTls,
    PrometheusTlsMode, Tracing, TracingBackend, TracingBackendConf, TracingBackendType,
};

use super::Duration;
use super::Tags;
use super::secret::DataSource;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<Mtls>,
    /// Legacy (TrafficTrace era) tracing backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Legacy (TrafficLog era) logging backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Metrics every dataplane of the mesh exposes (a Dataplane may override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<MeshNetworking>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
    /// Default policies not to create with the mesh (`*` for all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_creating_initial_policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_services: Option<MeshServices>,
}

impl MeshSpec {
    /// mTLS is on exactly when `mtls.enabledBackend` is set (Kuma's `MTLSEnabled`).
    pub fn mtls_enabled(&self) -> bool {
        self.mtls
            .as_ref()
            .and_then(|m| m.enabled_backend.as_deref())
            .is_some_and(|b| !b.is_empty())
    }

    /// The CA backend `mtls.enabledBackend` names; `None` when mTLS is off (or
    /// the name matches no backend, which validation refuses).
    pub fn enabled_backend(&self) -> Option<&CaBackend> {
        let mtls = self.mtls.as_ref()?;
        let name = mtls.enabled_backend.as_deref().filter(|n| !n.is_empty())?;
        mtls.backends.iter().find(|b| b.name == name)
    }

    /// The mode inbound listeners use: the enabled backend's, STRICT by default;
    /// `None` when mTLS is off.
    pub fn mtls_mode(&self) -> Option<MtlsMode> {
        self.enabled_backend()
            .map(|b| b.mode.unwrap_or(MtlsMode::Strict))
    }

    /// Whether the passthrough cluster is on (Kuma's default: yes).
    pub fn passthrough_enabled(&self) -> bool {
        self.networking
            .as_ref()
            .and_then(|n| n.outbound.as_ref())
            .and_then(|o| o.passthrough)
            .unwrap_or(true)
    }

    /// Whether `policy_type` (e.g. `MeshRetry`) should be created with the mesh.
    pub fn creates_initial_policy(&self, policy_type: &str) -> bool {
        !self
            .skip_creating_initial_policies
            .iter()
            .any(|p| p == "*" || p == policy_type)
    }

    /// `meshServices.mode`, `Disabled` when unset.
    pub fn mesh_services_mode(&self) -> MeshServicesMode {
        self.mesh_services
            .as_ref()
            .and_then(|m| m.mode)
            .unwrap_or_default()
    }
}

/// `mtls`: the CA backends and which one is active.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mtls {
    /// Name of the active backend; unset or empty means mTLS is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<CaBackend>,
    /// Skip validating the CA (provided CAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_validation: Option<bool>,
}

/// Kuma's default lifetime of a workload certificate (`dpCert.rotation.expiration`).
pub const DEFAULT_WORKLOAD_CERT_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(24 * 3600);
/// Kuma's default lifetime of a builtin CA certificate (`caCert.expiration`).
pub const DEFAULT_CA_CERT_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(10 * 365 * 24 * 3600);

/// The Secret holding a builtin backend's CA certificate (Kuma's
/// `<mesh>.ca-builtin-cert-<backend>`).
pub fn builtin_ca_cert_secret(mesh: &str, backend: &str) -> String {
    format!("{mesh}.ca-builtin-cert-{backend}")
}

/// The Secret holding a builtin backend's CA private key
/// (`<mesh>.ca-builtin-key-<backend>`): never shown by the API.
pub fn builtin_ca_key_secret(mesh: &str, backend: &str) -> String {
    format!("{mesh}.ca-builtin-key-{backend}")
}

/// Whether a Secret of `mesh` named `name` holds a builtin CA's private key.
pub fn is_builtin_ca_key_secret(mesh: &str, name: &str) -> bool {
    name.strip_prefix(mesh)
        .and_then(|rest| rest.strip_prefix(".ca-builtin-key-"))
        .is_some_and(|backend| !backend.is_empty())
}

impl CaBackend {
    /// Lifetime of the workload certificates this backend issues.
    pub fn workload_cert_lifetime(&self) -> std::time::Duration {
        self.dp_cert
            .as_ref()
            .and_then(|d| d.rotation.as_ref())
            .and_then(|r| r.expiration.as_ref())
            .and_then(|e| e.parse().ok())
            .unwrap_or(DEFAULT_WORKLOAD_CERT_LIFETIME)
    }

    /// Lifetime of a builtin CA certificate.
    pub fn ca_cert_lifetime(&self) -> std::time::Duration {
        self.conf
            .as_ref()
            .and_then(|c| c.ca_cert.as_ref())
            .and_then(|c| c.expiration.as_ref())
            .and_then(|e| e.parse().ok())
            .unwrap_or(DEFAULT_CA_CERT_LIFETIME)
    }

    pub fn is_builtin(&self) -> bool {
        self.backend_type == Some(CaBackendType::Builtin)
    }
}

/// One certificate authority (`CertificateAuthorityBackend`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaBackend {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub backend_type: Option<CaBackendType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MtlsMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_cert: Option<DpCert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<CaConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_chain: Option<RootChain>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaBackendType {
    /// The control plane generates and stores the CA.
    Builtin,
    /// The user supplies the CA certificate and key.
    Provided,
}

/// How inbound listeners treat plaintext once mTLS is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    /// Only mTLS traffic is accepted.
    #[default]
    Strict,
    /// mTLS and plaintext are both accepted (migration).
    Permissive,
}

/// `dpCert`: workload certificate settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DpCert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    /// Timeout of a request to the CA for a workload certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Lifetime of a workload certificate, e.g. `24h` or `1d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootChain {
    /// Timeout of a request to the CA for the root chain (Kuma default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
}

/// A CA backend's `conf`: `caCert` for builtin, `cert` + `key` for provided.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<CaCert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<DataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<DataSource>,
}

/// Builtin CA certificate settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CaCert {
    /// RSA key size of the CA (Kuma default 2048).
    #[serde(default, rename = "RSAbits", skip_serializing_if = "Option::is_none")]
    pub rsa_bits: Option<u32>,
    /// Lifetime of the CA certificate (Kuma default 10y).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshNetworking {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<MeshOutbound>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshOutbound {
    /// `false` removes the transparent-proxy passthrough cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_aware_load_balancing: Option<bool>,
    /// Route cross-zone and external traffic through ZoneEgress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_egress: Option<bool>,
    /// Do not add the default allow-all RBAC for MeshExternalServices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_forbid_mesh_external_service_access: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane_proxy: Option<DataplaneProxyMembership>,
}

/// Which dataplanes may join the mesh. A proxy must match one requirement (if
/// any are listed) and no restriction; restrictions win.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneProxyMembership {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<MembershipRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrictions: Vec<MembershipRule>,
}

/// A tag selector; a `*` value matches any non-empty value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipRule {
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshServices {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MeshServicesMode>,
}

/// Whether destinations are `kuma.io/service` tags, real MeshServices, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MeshServicesMode {
    /// MeshServices are not generated.
    #[default]
    Disabled,
    /// Generated and used for configuration everywhere.
    Everywhere,
    /// Generated, used only where listed in `reachableBackends`.
    ReachableBackends,
    /// Generated and used; `kuma.io/service` destinations are not.
    Exclusive,
}
