//! `weft-sync`: keeping two sides in step.
//!
//! - [`delta`]: the delta-xDS engine (sender and receiver state machines), one for
//!   global → zone, zone → global and zone → Envoy.
//! - [`discovery_stats`]: Kuma's per-discovery-service metrics (`xds_*`,
//!   `kds_delta_*`).
//! - [`insight`]: per-peer stream bookkeeping behind the insight endpoints.
//! - [`kds`]: how store resources travel over KDS (names, payloads, which types go
//!   which way) and the shared snapshot feed a KDS sender follows.

pub mod delta;
pub mod discovery_stats;
pub mod insight;
pub mod kds;
