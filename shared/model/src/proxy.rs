//! What the zone's Envoy bootstrap and `weft-dp` agree on about a proxy: its ADS
//! flavour, admin port and access-log sink. Both sides read these from here, so
//! `weft-dp` need not link the control plane.

/// Envoy's admin port when the Dataplane names none (Kuma's default).
pub const DEFAULT_ADMIN_PORT: u16 = 9901;

/// Which ADS flavour Envoy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XdsApi {
    /// `DELTA_GRPC`: incremental xDS.
    #[default]
    Delta,
    /// `GRPC`: state of the world.
    Sotw,
}

impl XdsApi {
    pub fn api_type(self) -> &'static str {
        match self {
            XdsApi::Delta => "DELTA_GRPC",
            XdsApi::Sotw => "GRPC",
        }
    }
}

/// The Fluentd tag prefix of a MeshAccessLog TCP backend: `weft-dp`'s sink writes
/// the record's `message` to the `host:port` after it.
pub const TCP_TAG_PREFIX: &str = "weft.tcp.";

/// Longest unix socket path (sun_path is 108 bytes with the NUL on Linux).
pub const MAX_SOCKET_PATH: usize = 107;

pub mod admin;
