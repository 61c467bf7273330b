//! `weft-shared`: the vocabulary every Weft component speaks.
//!
//! - [`resource`]: Kuma-format resources, their validation and canonical encoding.
//! - [`store`]: the `ResourceStore` trait with its sled and in-memory backends.
//! - [`pki`]: the KDS CA and server certificate, rustls configs (CA file or pinned CA).
//! - [`tokens`]: signed JWTs (zone tokens), signing keys with rotation, revocation.
//! - [`delta`]: the delta-xDS engine (sender and receiver state machines) for KDS and xDS.

pub mod api;
pub mod cli;
pub mod config;
pub mod delta;
pub mod kds;
pub mod pki;
pub mod resource;
pub mod rules;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tokens;
