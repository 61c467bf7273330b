//! The zone's xDS side: configuration generation for Envoy ([`generate`]) and the
//! ADS server that delivers it ([`server`]: SotW and delta, TLS, per-proxy
//! snapshots kept by [`cache`]). See docs/architecture.md.

pub mod generate;
pub mod sotw;
