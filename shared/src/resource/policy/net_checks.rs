//! Syntax checks for the network-ish strings policies carry: hostnames, IPs,
//! CIDRs, `host:port` endpoints, loose URLs, file paths, HTTP header names and
//! RE2 regular expressions. Each mirrors the Go check Kuma uses (k8s
//! `IsDNS1123Subdomain`, govalidator `IsURL` / `IsDNSName` / `IsFilePath`,
//! `regexp.Compile`), written without a URL or regex engine dependency.

use crate::resource::validate::{Path, ValidationErrors};
use std::net::IpAddr;

/// Longest DNS-1123 subdomain.
pub const DNS1123_MAX: usize = 253;

/// Why `s` is not a lower-case RFC 1123 subdomain (Kubernetes' wording), if it is not.
pub fn dns1123_subdomain_violation(s: &str) -> Option<String> {
    if s.len() > DNS1123_MAX {
        return Some(format!("must be no more than {DNS1123_MAX} characters"));
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if s.split('.').all(label_ok) {
        None
    } else {
        Some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character"
                .to_string(),
        )
    }
}

pub fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
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

/// govalidator `IsDNSName`: labels of letters, digits, `_` and `-` (not leading `-`),
/// at most 63 characters each, 255 in all, optional trailing dot, and not an IP.
pub fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 || is_ip(s) {
        return false;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    s.split('.').all(|l| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0] != b'-'
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    })
}

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

/// The parts of `scheme://user@host:port/path?query#fragment` this module needs.
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
    let (host, port) = split_host_port(hostport)?;
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

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (host, port text). `None` when
/// brackets are unbalanced or a bare IPv6 address carries no brackets.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?))),
        };
    }
    match s.split_once(':') {
        Some((h, p)) if !p.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

/// A port as text: 1–65535.
pub fn is_port_text(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|c| c.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

/// `host:port` with a DNS name or IP (IPv6 in brackets) and a port in 1–65535.
pub fn is_host_port(s: &str) -> bool {
    match split_host_port(s) {
        Some((host, Some(port))) => is_port_text(port) && (is_ip(host) || is_hostname_loose(host)),
        _ => false,
    }
}

/// govalidator `IsURL`, the check Kuma applies to collector addresses: an
/// optional `http(s)|tcp|udp|ws(s)|ftp` scheme, a host (name, IP or `[v6]`),
/// an optional port and path. A bare word with neither `.` nor `:` is refused.
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

/// govalidator `IsFilePath` for Unix: absolute, no NUL (`^(/[^/\x00]*)+/?$`).
pub fn is_unix_file_path(s: &str) -> bool {
    s.starts_with('/') && !s.contains('\0')
}

/// HTTP header names as Kuma's schema allows them: 1–256 lower-case token characters.
pub fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Reason for a bad header name.
pub const HEADER_NAME_REASON: &str = "must be a valid HTTP header name: 1 to 256 lower case \
     letters, digits or one of !#$%&'*+-.^_`|~";

/// Adds `reason` at `path` unless `pattern` is a valid RE2 regular expression.
pub fn check_regex(path: &Path, pattern: &str, reason: &str, errs: &mut ValidationErrors) {
    if regex_syntax::Parser::new().parse(pattern).is_err() {
        errs.add(path, reason);
    }
}

#[cfg(test)]
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

    // IPs, CIDRs, DNS names and paths: the accepted and the refused.
    #[test]
    fn misc() {
        assert!(is_cidr("10.0.0.0/8") && is_cidr("fd00::/8"));
        assert!(!is_cidr("10.0.0.0/33") && !is_cidr("10.0.0.0") && !is_cidr("x/8"));
        assert!(is_dns_name("api.example.com") && is_dns_name("my_host.local"));
        assert!(!is_dns_name("-a.com") && !is_dns_name("a..b") && !is_dns_name("1.2.3.4"));
        assert!(is_unix_file_path("/tmp/access.log") && !is_unix_file_path("#x"));
        assert!(is_header_name("x-request-id") && !is_header_name("X-Upper"));
    }

    // RE2 syntax errors are reported; valid patterns are not.
    #[test]
    fn regexes() {
        let mut e = ValidationErrors::new();
        check_regex(&Path::root(), "envoy_cluster_.*", "invalid regex", &mut e);
        assert!(e.is_empty());
        check_regex(&Path::root(), "(unclosed", "invalid regex", &mut e);
        check_regex(&Path::root(), "*x", "invalid regex", &mut e);
        assert_eq!(e.violations().len(), 2);
    }
}
