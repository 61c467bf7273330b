//! `weft-security`: who may talk to whom.
//!
//! - [`pki`]: the KDS CA and server certificate, rustls configs (CA file or pinned CA).
//! - [`tokens`]: signed JWTs (zone and dataplane tokens), signing keys with rotation,
//!   revocation.
//! - [`files`]: atomic writes of the files both keep on disk.

pub mod files;
pub mod pki;
pub mod tokens;
