//! Address rules shared by the proxy resources (Dataplane, ZoneIngress,
//! ZoneEgress), on the syntax checks of [`crate::resource::net`].

use crate::resource::net::{is_dns_name, is_ip, is_unspecified};
use crate::resource::validate::{Path, ValidationErrors};
use std::net::IpAddr;

/// Kuma's check of a proxy's `networking.address`: required, not a wildcard,
/// an IP or a DNS name. `path` is the address field itself.
pub(crate) fn check_address(path: &Path, address: &str, errs: &mut ValidationErrors) {
    if address.is_empty() {
        errs.add(path, "address can't be empty");
        return;
    }
    if is_unspecified(address) {
        errs.add(path, "must not be 0.0.0.0 or ::");
    } else if !is_ip(address) && !is_dns_name(address) {
        errs.add(path, "address has to be valid IP address or domain name");
    }
}

/// An advertised address (Dataplane, ZoneIngress): an IP or DNS name, not a wildcard.
pub(crate) fn check_advertised(path: &Path, a: &str, errs: &mut ValidationErrors) {
    if a.is_empty() {
        errs.add(path, "cannot be empty");
    } else if is_unspecified(a) {
        errs.add(path, "must not be 0.0.0.0 or ::");
    } else if !is_ip(a) && !is_dns_name(a) {
        errs.add(
            path,
            "advertisedAddress has to be valid IP address or domain name",
        );
    }
}

/// Whether two listener addresses can collide: equal, or either is a wildcard.
/// Addresses that are not IPs (DNS names) never collide with anything.
pub(crate) fn overlap(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a.is_unspecified() || b.is_unspecified() || a == b,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // Only exact or wildcard matches overlap.
    #[test]
    fn overlap_rules() {
        assert!(overlap("127.0.0.1", "127.0.0.1"));
        assert!(overlap("0.0.0.0", "10.0.0.1"));
        assert!(overlap("::1", "::"));
        assert!(!overlap("127.0.0.1", "10.0.0.1"));
        assert!(!overlap("127.0.0.1", "localhost"));
    }
}
