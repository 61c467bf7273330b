//! Address checks shared by the proxy resources (Dataplane, ZoneIngress,
//! ZoneEgress) and the Mesh's observability backends.

use crate::resource::validate::{Path, ValidationErrors};
use std::net::IpAddr;

pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// `0.0.0.0` or `::` (any spelling of an unspecified address).
pub(crate) fn is_unspecified(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// A DNS name as Kuma's validator (govalidator) accepts it: dot-separated labels
/// of letters, digits, `-` and `_`, each 1–63 characters not starting with `-`,
/// an optional trailing dot, at most 255 characters without the dots; not an IP.
pub(crate) fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 + s.matches('.').count() || is_ip(s) {
        return false;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0] != b'-'
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    })
}

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

/// Go's `net.SplitHostPort` for the forms users write: `host:port`, `[v6]:port`.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// A decimal port in 1..=65535.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // IPs and DNS names are told apart the way Kuma's validator does.
    #[test]
    fn ips_and_names() {
        for ok in ["10.0.0.1", "::1", "fd00::2"] {
            assert!(is_ip(ok), "{ok}");
            assert!(!is_dns_name(ok), "{ok}");
        }
        for ok in ["backend", "backend.svc.cluster.local", "my_host", "a.b."] {
            assert!(is_dns_name(ok), "{ok}");
        }
        let long_label = "a".repeat(64);
        for bad in ["", "-a", "a..b", "a b", "a/b", long_label.as_str()] {
            assert!(!is_dns_name(bad), "{bad:?}");
        }
    }

    // Only exact or wildcard matches overlap.
    #[test]
    fn overlap_rules() {
        assert!(overlap("127.0.0.1", "127.0.0.1"));
        assert!(overlap("0.0.0.0", "10.0.0.1"));
        assert!(overlap("::1", "::"));
        assert!(!overlap("127.0.0.1", "10.0.0.1"));
        assert!(!overlap("127.0.0.1", "localhost"));
    }

    // host:port splitting handles IPv6 brackets and refuses bare IPv6.
    #[test]
    fn host_port() {
        assert_eq!(split_host_port("a:80"), Some(("a", "80")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("a"), None);
        assert_eq!(parse_port("80"), Some(80));
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("+1"), None);
    }
}
