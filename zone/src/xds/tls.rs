//! The xDS server's TLS material: a CA and server certificate the zone creates in
//! `<data-dir>/xds-tls/` on first start and reuses afterwards (the same machinery as
//! global's KDS TLS, `weft_security::pki`). The bootstrap carries the CA inline so
//! Envoy verifies the zone.

use std::net::SocketAddr;
use std::path::Path;
use weft_security::pki::{KdsTls, PkiError, default_sans};

/// Directory under the data dir holding the generated xDS TLS files.
pub const XDS_TLS_DIR: &str = "xds-tls";

/// Loads (creating on first start) the xDS CA and server certificate. The server
/// certificate covers localhost, loopback, the bound IP when it is a specific one,
/// and this host's name.
pub fn load_xds_tls(data_dir: &Path, address: SocketAddr) -> Result<KdsTls, PkiError> {
    let mut sans = default_sans();
    let ip = address.ip();
    if !ip.is_unspecified() && !sans.contains(&ip.to_string()) {
        sans.push(ip.to_string());
    }
    if let Some(host) = host_name()
        && !sans.contains(&host)
    {
        sans.push(host);
    }
    KdsTls::load_or_create(&data_dir.join(XDS_TLS_DIR), &sans)
}

/// This machine's host name, when it is a usable DNS name.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = name.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then_some(name)
}
