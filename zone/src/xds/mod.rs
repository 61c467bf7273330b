//! The zone's xDS side: configuration generation for Envoy ([`generate`]) and, next
//! to it, the ADS server that delivers it. See /work/xds-plan.md (session plan) and
//! docs/architecture.md.

pub mod generate;
