//! Small checks the policy confs share, with Kuma's wording
//! (`pkg/core/validators/common_validators.go`, `messages.go`): required and
//! exclusive sections, gateway scopes, status codes, counts and integer
//! percentages, file paths, bandwidths, base64 payloads and RE2 regexes.
//! Network syntax (IPs, hostnames, URLs) is in [`crate::resource::net`].

use super::targetref::{ProxyType, TargetRef, TargetRefKind};
use crate::resource::Duration;
use crate::resource::validate::{Path, ValidationErrors};

/// Kuma's `MustBeDefined`.
pub const MUST_BE_DEFINED: &str = "must be defined";
/// Kuma's `MustNotBeDefined`.
pub const MUST_NOT_BE_DEFINED: &str = "must not be defined";
/// Kuma's `MustNotBeEmpty`.
pub const MUST_NOT_BE_EMPTY: &str = "must not be empty";
/// Kuma's `HasToBeInUintPercentageRange`.
pub const UINT_PERCENTAGE_RANGE: &str = "must be in inclusive range [0, 100]";

/// Length of an optional list (for `check_sections`).
pub fn len<T>(v: &Option<Vec<T>>) -> Option<usize> {
    v.as_ref().map(Vec::len)
}

/// Whether an optional list has items.
pub fn non_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// The section a `type` field names (`file` for `type: File`...): its path and
/// value, or `None` after reporting it [`MUST_BE_DEFINED`].
pub fn required<'a, T>(
    path: &Path,
    field: &str,
    section: &'a Option<T>,
    errs: &mut ValidationErrors,
) -> Option<(Path, &'a T)> {
    let p = path.field(field);
    match section {
        None => {
            errs.add(&p, MUST_BE_DEFINED);
            None
        }
        Some(s) => Some((p, s)),
    }
}

/// Kuma's `MustHaveAtLeastOne`.
pub fn at_least_one(fields: &[&str]) -> String {
    format!("must have at least one defined: {}", fields.join(", "))
}

/// Kuma 2.x `IncludesGateways`: whether a top-level targetRef can select gateway
/// proxies (MeshGateway, MeshHTTPRoute, or Mesh / MeshSubset without a
/// `proxyTypes` that leaves gateways out).
pub fn includes_gateways(top: &TargetRef) -> bool {
    match top.kind {
        TargetRefKind::MeshGateway | TargetRefKind::MeshHTTPRoute => true,
        TargetRefKind::Mesh | TargetRefKind::MeshSubset => match &top.proxy_types {
            None => true,
            Some(types) => types.is_empty() || types.contains(&ProxyType::Gateway),
        },
        _ => false,
    }
}

/// Which sections of a sidecar-inbound / gateway-outbound policy (MeshRateLimit,
/// MeshFaultInjection) fit its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewaySplit {
    /// `from[]` / `rules[]` may be checked item by item.
    pub inbound_ok: bool,
    /// `to[]` may be checked item by item.
    pub to_ok: bool,
}

/// Sidecars take these policies on their inbounds (`from[]` / `rules[]`), gateways
/// on their outbounds (`to[]`). A scope that may include a gateway refuses the
/// inbound sections; one without gateways refuses `to`.
pub fn check_gateway_split(
    path: &Path,
    top: &TargetRef,
    sections: [(&str, bool); 3],
    errs: &mut ValidationErrors,
) -> GatewaySplit {
    let gateways = includes_gateways(top);
    let mut split = GatewaySplit {
        inbound_ok: true,
        to_ok: true,
    };
    for (name, set) in sections {
        if !set {
            continue;
        }
        if name == "to" && !gateways {
            errs.add(
                &path.field(name),
                format!("{MUST_NOT_BE_DEFINED}: spec.to is only for gateways, use spec.rules or spec.from"),
            );
            split.to_ok = false;
        } else if name != "to" && gateways {
            errs.add(
                &path.field(name),
                format!(
                    "{MUST_NOT_BE_DEFINED} when the scope includes a Gateway, select only \
                     proxyType Sidecar or select only gateways and use spec.to"
                ),
            );
            split.inbound_ok = false;
        }
    }
    split
}

/// MeshTrace and MeshProxyPatch apply to a whole gateway, not to some of its
/// listeners: a top-level `MeshGateway` may not select listeners by `tags`.
pub fn check_no_listener_tags(
    path: &Path,
    target_ref: &Option<TargetRef>,
    errs: &mut ValidationErrors,
) {
    if let Some(tr) = target_ref
        && tr.kind == TargetRefKind::MeshGateway
        && tr.tags.as_ref().is_some_and(|t| !t.is_empty())
    {
        errs.add(
            &path.field("targetRef").field("tags"),
            "must not be set with kind MeshGateway",
        );
    }
}

/// HTTP status codes: Kuma's `ValidateStatusCode`.
pub fn check_status_code(path: &Path, status: i64, errs: &mut ValidationErrors) {
    if !(100..=599).contains(&status) {
        errs.add(path, "must be in inclusive range [100, 599]");
    }
}

/// Counters and limits that must be above zero when set.
pub fn check_positive<T: Into<i64> + Copy>(
    path: &Path,
    value: Option<T>,
    errs: &mut ValidationErrors,
) {
    if value.is_some_and(|v| v.into() <= 0) {
        errs.add(path, "must be greater than 0");
    }
}

/// Durations that must parse when set; `0` is allowed (it disables).
pub fn check_duration(path: &Path, value: &Option<Duration>, errs: &mut ValidationErrors) {
    if let Some(d) = value {
        d.check(path, errs);
    }
}

/// Durations that must parse and be above zero when set.
pub fn check_positive_duration(path: &Path, value: &Option<Duration>, errs: &mut ValidationErrors) {
    if let Some(d) = value {
        d.check_positive(path, errs);
    }
}

/// Integer percentages: `[0, 100]`.
pub fn check_int_percentage<T: Into<i64> + Copy>(
    path: &Path,
    value: Option<T>,
    errs: &mut ValidationErrors,
) {
    if value.is_some_and(|v| !(0..=100).contains(&v.into())) {
        errs.add(path, UINT_PERCENTAGE_RANGE);
    }
}

/// `to[].targetRef.kind: MeshExternalService` is configured on the zone egress,
/// shared by every client, so only a Mesh-wide policy may use it.
pub fn check_mes_needs_mesh_top(
    path: &Path,
    top: &TargetRef,
    to: &TargetRef,
    errs: &mut ValidationErrors,
) {
    if to.kind == TargetRefKind::MeshExternalService && top.kind != TargetRefKind::Mesh {
        errs.add(
            &path.field("targetRef").field("kind"),
            "kind MeshExternalService is only allowed with targetRef.kind: Mesh as it is \
             configured on the Zone Egress and shared by all clients in the mesh",
        );
    }
}

/// govalidator `IsFilePath` for Unix: absolute, no NUL (`^(/[^/\x00]*)+/?$`).
pub fn is_unix_file_path(s: &str) -> bool {
    s.starts_with('/') && !s.contains('\0')
}

/// Absolute file paths (Kuma's `ValidatePathOrNil`).
pub fn check_file_path(path: &Path, file: &str, errs: &mut ValidationErrors) {
    if !is_unix_file_path(file) {
        errs.add(path, "must be a valid path when defined");
    }
}

/// Adds `reason` at `path` unless `pattern` is a valid RE2 regular expression
/// (Go's `regexp.Compile`).
pub fn check_regex(path: &Path, pattern: &str, reason: &str, errs: &mut ValidationErrors) {
    if regex_syntax::Parser::new().parse(pattern).is_err() {
        errs.add(path, reason);
    }
}

/// Bandwidth like `10kbps`, `1 Mbps`, `5Gbps` (Kuma's `ValidateBandwidth`).
pub fn check_bandwidth(path: &Path, value: &str, errs: &mut ValidationErrors) {
    if value.is_empty() {
        errs.add(path, MUST_BE_DEFINED);
        return;
    }
    let ok = ["kbps", "Mbps", "Gbps"].iter().any(|unit| {
        value.strip_suffix(unit).is_some_and(|n| {
            let n = n.strip_suffix(' ').unwrap_or(n);
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
    });
    if !ok {
        errs.add(path, "must be in kbps/Mbps/Gbps units");
    }
}

/// Standard base64 with padding (health-check payloads).
pub fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Mesh-wide policies include gateways unless proxyTypes leaves them out.
    #[test]
    fn gateway_scope() {
        let mut mesh = TargetRef::mesh();
        assert!(includes_gateways(&mesh));
        mesh.proxy_types = Some(vec![ProxyType::Sidecar]);
        assert!(!includes_gateways(&mesh));
        mesh.proxy_types = Some(vec![ProxyType::Sidecar, ProxyType::Gateway]);
        assert!(includes_gateways(&mesh));
        assert!(includes_gateways(&TargetRef::named(
            TargetRefKind::MeshGateway,
            "gw"
        )));
        assert!(!includes_gateways(&TargetRef::named(
            TargetRefKind::MeshService,
            "web"
        )));
    }

    // Bandwidth needs a number and one of Kuma's three units.
    #[test]
    fn bandwidth() {
        for ok in ["10kbps", "1 Mbps", "5Gbps"] {
            let mut errs = ValidationErrors::new();
            check_bandwidth(&Path::root(), ok, &mut errs);
            assert!(errs.is_empty(), "{ok}");
        }
        for bad in ["", "kbps", "10", "10 kb", "1.5Mbps", "10mbps", "10  kbps"] {
            let mut errs = ValidationErrors::new();
            check_bandwidth(&Path::root(), bad, &mut errs);
            assert_eq!(errs.violations().len(), 1, "{bad:?}");
        }
    }

    // Absolute Unix paths only.
    #[test]
    fn file_paths() {
        assert!(is_unix_file_path("/tmp/access.log") && !is_unix_file_path("#x"));
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

    // Base64 payloads: alphabet, length and padding.
    #[test]
    fn base64() {
        assert!(is_base64("cGluZw=="));
        assert!(is_base64(""));
        assert!(!is_base64("cGluZw="));
        assert!(!is_base64("ping!!!!"));
        assert!(!is_base64("a==="));
    }
}
