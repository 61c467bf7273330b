//! Syntax of the network names and addresses resources carry: IPs, CIDRs, DNS
//! names, `host:port` endpoints, ports written as text and loose URLs. Each
//! mirrors the Go check Kuma uses (k8s `IsDNS1123Subdomain`, govalidator
//! `IsDNSName` / `IsURL`, Go's `net.SplitHostPort`), written without a URL
//! dependency. Proxies, meshes and policies all use these; the rules built on
//! them (what a proxy may listen on, what a collector URL needs) stay with their
//! resource.

use std::net::IpAddr;

/// Longest DNS-1123 subdomain.
pub const DNS1123_MAX: usize = 253;

pub fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// `0.0.0.0` or `::` (any spelling of an unspecified address).
pub fn is_unspecified(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// `10.0.0.0/8`, `fd00::/8`.
pub fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    !bits.is_empty()
        && bits.bytes().all(|c| c.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|b| b <= max)
}

/// One RFC 1123 label: lower-case alphanumerics and `-`, not at either end.
fn is_dns1123_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Kubernetes' `IsDNS1123Subdomain`: dot-separated RFC 1123 labels, at most
/// [`DNS1123_MAX`] characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= DNS1123_MAX && s.split('.').all(is_dns1123_label)
}

/// Why `s` is not a lower-case RFC 1123 subdomain (Kubernetes' wording), if it is not.
pub fn dns1123_subdomain_violation(s: &str) -> Option<String> {
    if s.len() > DNS1123_MAX {
        Some(format!("must be no more than {DNS1123_MAX} characters"))
    } else if !is_dns1123_subdomain(s) {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character"
                .to_string(),
        )
    } else {
        None
    }
}

/// A DNS name as govalidator's `IsDNSName` accepts it: dot-separated labels of
/// letters, digits, `-` and `_`, each 1–63 characters not starting with `-`, an
/// optional trailing dot, at most 255 characters without the dots; not an IP.
pub fn is_dns_name(s: &str) -> bool {
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

/// The host part of a URL or endpoint: labels of letters, digits, `-` and `_`.
fn is_hostname_loose(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

/// Go's `net.SplitHostPort` for the forms users write: `host:port`, `[v6]:port`.
/// `None` without a port, with unbalanced brackets or for a bare IPv6 address.
pub fn split_host_port(s: &str) -> Option<(&str, &str)> {
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

/// A URL authority's `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_authority(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some((host, port)) = split_host_port(s) {
        return Some((host, Some(port)));
    }
    match s.strip_prefix('[') {
        Some(rest) => match rest.split_once(']')? {
            (host, "") => Some((host, None)),
            _ => None,
        },
        None if s.contains(':') => None,
        None => Some((s, None)),
    }
}

/// A decimal port in 1..=65535.
pub fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// `host:port` with a DNS name or IP (IPv6 in brackets) and a port in 1–65535.
pub fn is_host_port(s: &str) -> bool {
    match split_host_port(s) {
        Some((host, port)) => {
            parse_port(port).is_some() && (is_ip(host) || is_hostname_loose(host))
        }
        None => false,
    }
}

/// The parts of `scheme://user@host:port/path?query#fragment` the checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

/// Splits an absolute URL with an authority (`scheme://...`); `None` without `://`,
/// with an empty or malformed scheme, or with white space.
pub fn split_url(s: &str) -> Option<UrlParts<'_>> {
    if s.chars().any(char::is_whitespace) {
        return None;
    }
    let (scheme, rest) = s.split_once("://")?;
    let mut sc = scheme.bytes();
    if !sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !sc.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = split_authority(hostport)?;
    Some(UrlParts {
        scheme,
        user,
        host,
        port,
        path,
        query,
        fragment,
    })
}

/// govalidator `IsURL`, the check Kuma applies to collector addresses: an
/// optional `http(s)|tcp|udp|ws(s)|ftp` scheme, a host (name, IP or `[v6]`),
/// an optional port of up to five digits and a path. A bare word with neither
/// `.` nor `:` is refused.
pub fn is_url(s: &str) -> bool {
    let n = s.chars().count();
    if s.is_empty() || n >= 2083 || n <= 3 || s.starts_with('.') {
        return false;
    }
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    let with_scheme;
    let text = if s.contains("://") {
        s
    } else {
        if !s.contains(':') && !s.contains('.') {
            return false;
        }
        with_scheme = format!("http://{s}");
        &with_scheme
    };
    let Some(u) = split_url(text) else {
        return false;
    };
    let scheme_ok = matches!(
        u.scheme.to_ascii_lowercase().as_str(),
        "http" | "https" | "tcp" | "udp" | "ws" | "wss" | "ftp"
    );
    let host_ok = is_ip(u.host) || is_hostname_loose(u.host);
    let port_ok = u
        .port
        .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()));
    scheme_ok && host_ok && port_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // Hostnames follow RFC 1123 exactly as Kubernetes does: lower case, no edge dashes.
    #[test]
    fn dns1123() {
        assert!(dns1123_subdomain_violation("a.example-1.com").is_none());
        for bad in ["A.com", "-a.com", "a..com", "a_b.com", ""] {
            assert!(dns1123_subdomain_violation(bad).is_some(), "{bad:?}");
        }
    }

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

    // Addresses Kuma accepts for collectors pass; bare words and junk fail.
    #[test]
    fn urls() {
        for ok in [
            "127.0.0.1:5000",
            "google.com",
            "http://logs.com",
            "http://zipkin.local:9411/api/v2/spans",
            "logstash:5044",
            "https://[::1]:443/x",
        ] {
            assert!(is_url(ok), "{ok}");
        }
        for bad in [
            "not_valid_url",
            "",
            "a b.com",
            ".x.com",
            "gopher://x.com",
            "x.com:port",
        ] {
            assert!(!is_url(bad), "{bad}");
        }
    }

    // host:port needs both parts and a real port.
    #[test]
    fn host_ports() {
        assert!(is_host_port("otel-collector:4317"));
        assert!(is_host_port("[fd00::1]:4317"));
        assert!(!is_host_port("otel-collector"));
        assert!(!is_host_port("otel:0"));
        assert!(!is_host_port("http://otel:4317"));
    }

    // URL splitting exposes what the Datadog and OpenTelemetry checks look at.
    #[test]
    fn split() {
        let u = split_url("http://user@dd.local:8126/p?q=1#f").unwrap();
        assert_eq!(
            (
                u.scheme, u.user, u.host, u.port, u.path, u.query, u.fragment
            ),
            (
                "http",
                Some("user"),
                "dd.local",
                Some("8126"),
                "/p",
                Some("q=1"),
                Some("f")
            )
        );
        assert!(split_url("dd.local:8126").is_none());
    }

    // IPs, CIDRs and DNS names: the accepted and the refused.
    #[test]
    fn misc() {
        assert!(is_cidr("10.0.0.0/8") && is_cidr("fd00::/8"));
        assert!(!is_cidr("10.0.0.0/33") && !is_cidr("10.0.0.0") && !is_cidr("x/8"));
        assert!(is_dns_name("api.example.com") && is_dns_name("my_host.local"));
        assert!(!is_dns_name("-a.com") && !is_dns_name("a..b") && !is_dns_name("1.2.3.4"));
    }
}
