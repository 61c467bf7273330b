//! MeshHTTPRoute's semantic rules (Kuma `validation.go` plus its schema's enums,
//! patterns and limits, which Kuma also enforces on Universal).

use super::{
    Filter, FilterType, HeaderMatch, HeaderMatchType, HeaderModifier, Match, MeshHTTPRoute,
    PathMatch, PathMatchType, PathRewrite, PathRewriteType, QueryParamsMatchType, Rule,
};
use crate::resource::net;
use crate::resource::policy::checks::{check_regex, required};
use crate::resource::policy::common::{Kinds, check_to_target_ref, check_top, top_or_mesh};
use crate::resource::policy::header::{
    HEADER_NAME_REASON, HeaderKeyValue, check_modifier_len, is_header_name,
};
use crate::resource::policy::targetref::{TargetRef, TargetRefKind};
use crate::resource::validate::{self, Path, Validate, ValidationErrors};
use TargetRefKind::*;
use std::collections::BTreeSet;

/// Top-level kinds over Kuma 2.9–2.14 (MeshGateway for gateway routes). The kind
/// lists are MeshTCPRoute's too.
pub const TOP_KINDS: &[TargetRefKind] = &[
    Mesh,
    MeshSubset,
    MeshService,
    MeshServiceSubset,
    MeshGateway,
    Dataplane,
];
/// `to[].targetRef` kinds for sidecars.
pub const TO_KINDS: &[TargetRefKind] = &[MeshService, MeshExternalService, MeshMultiZoneService];
/// `to[].targetRef` kinds when the route attaches to a MeshGateway.
pub const TO_KINDS_GATEWAY: &[TargetRefKind] = &[Mesh];
/// Kinds a backend may be.
pub const BACKEND_KINDS: &[TargetRefKind] = &[
    MeshService,
    MeshServiceSubset,
    MeshExternalService,
    MeshMultiZoneService,
];
/// Kinds a mirror target may be.
pub const MIRROR_KINDS: &[TargetRefKind] = &[MeshService, MeshServiceSubset];

/// Redirect status codes Kuma's schema allows.
const REDIRECT_CODES: &[u32] = &[301, 302, 303, 307, 308];

/// What MeshHTTPRoute and MeshTCPRoute check first: the top-level targetRef.
/// Returns it (Mesh when omitted) and the kinds `to[].targetRef` may take under it.
pub(crate) fn check_route_top(
    path: &Path,
    target_ref: &Option<TargetRef>,
    errs: &mut ValidationErrors,
) -> (TargetRef, &'static [TargetRefKind]) {
    check_top(path, target_ref, Kinds::top_only(TOP_KINDS), errs);
    let top = top_or_mesh(target_ref);
    let to_kinds = if top.kind == MeshGateway {
        TO_KINDS_GATEWAY
    } else {
        TO_KINDS
    };
    (top, to_kinds)
}

impl Validate for MeshHTTPRoute {
    fn validate(&self, path: &Path, errs: &mut ValidationErrors) {
        let (top, to_kinds) = check_route_top(path, &self.target_ref, errs);
        let gateway = top.kind == MeshGateway;
        for (i, to) in self.to.iter().flatten().enumerate() {
            let p = path.field("to").index(i);
            check_to_target_ref(&p.field("targetRef"), &to.target_ref, to_kinds, errs);
            if !gateway && to.hostnames.as_ref().is_some_and(|h| !h.is_empty()) {
                errs.add(&p.field("hostnames"), "must not be defined");
            }
            for (j, rule) in to.rules.iter().flatten().enumerate() {
                check_rule(&p.field("rules").index(j), rule, &top, errs);
            }
        }
    }
}

fn check_rule(path: &Path, rule: &Rule, top: &TargetRef, errs: &mut ValidationErrors) {
    let mp = path.field("matches");
    if rule.matches.is_empty() {
        errs.add(&mp, "must not be empty");
    }
    for (k, m) in rule.matches.iter().enumerate() {
        check_match(&mp.index(k), m, errs);
    }
    let dp = path.field("default");
    let filters = rule.default.filters.as_deref().unwrap_or_default();
    for (k, f) in filters.iter().enumerate() {
        check_filter(&dp.field("filters").index(k), f, &rule.matches, top, errs);
    }
    let bp = dp.field("backendRefs");
    let backends = rule.default.backend_refs.as_deref().unwrap_or_default();
    if backends.is_empty()
        && top.kind == MeshGateway
        && !filters
            .iter()
            .any(|f| f.r#type == FilterType::RequestRedirect)
    {
        errs.add(&bp, "must not be empty");
    }
    for (k, b) in backends.iter().enumerate() {
        b.check(&bp.index(k), BACKEND_KINDS, errs);
    }
}

fn check_match(path: &Path, m: &Match, errs: &mut ValidationErrors) {
    if let Some(pm) = &m.path {
        check_path_match(&path.field("path"), pm, errs);
    }
    let mut names = BTreeSet::new();
    for (i, q) in m.query_params.iter().flatten().enumerate() {
        let p = path.field("queryParams").index(i);
        if q.name.is_empty() {
            errs.add(&p.field("name"), "must not be empty");
        } else if !names.insert(q.name.as_str()) {
            errs.add(
                &p.field("name"),
                format!("multiple entries for name {}", q.name),
            );
        }
        if q.r#type == QueryParamsMatchType::RegularExpression {
            check_re(&p.field("value"), &q.value, errs);
        }
    }
    for (i, h) in m.headers.iter().flatten().enumerate() {
        check_header_match(&path.field("headers").index(i), h, errs);
    }
}

fn check_re(path: &Path, pattern: &str, errs: &mut ValidationErrors) {
    check_regex(path, pattern, "must be a valid regular expression", errs);
}

fn check_path_match(path: &Path, pm: &PathMatch, errs: &mut ValidationErrors) {
    let vp = path.field("value");
    if pm.value.is_empty() {
        errs.add(&vp, "must not be empty");
        return;
    }
    match pm.r#type {
        PathMatchType::RegularExpression => check_re(&vp, &pm.value, errs),
        PathMatchType::PathPrefix => {
            if pm.value == "/" {
                return;
            }
            if pm.value.ends_with('/') {
                errs.add(
                    &vp,
                    "does not need a trailing slash because only a `/`-separated prefix or an entire path is matched",
                );
            }
            if !pm.value.starts_with('/') {
                errs.add(&vp, "must be an absolute path");
            }
        }
        PathMatchType::Exact => {
            if !pm.value.starts_with('/') {
                errs.add(&vp, "must be an absolute path");
            }
        }
    }
}

fn check_header_match(path: &Path, h: &HeaderMatch, errs: &mut ValidationErrors) {
    if !is_header_name(&h.name) {
        errs.add(&path.field("name"), HEADER_NAME_REASON);
    }
    let value_set = h.value.as_deref().is_some_and(|v| !v.is_empty());
    match h.r#type.unwrap_or_default() {
        HeaderMatchType::Present | HeaderMatchType::Absent if value_set => {
            errs.add(&path.field("value"), "must not be defined");
        }
        HeaderMatchType::RegularExpression => {
            check_re(&path.field("value"), h.value.as_deref().unwrap_or(""), errs);
        }
        _ => {}
    }
}

/// Whether every match is a path prefix (no matches counts as `/`).
fn all_prefix(matches: &[Match]) -> bool {
    matches.iter().all(|m| {
        m.path
            .as_ref()
            .is_some_and(|p| p.r#type == PathMatchType::PathPrefix)
    })
}

/// The new hostname and path a redirect or a rewrite gives.
fn check_host_and_path(
    path: &Path,
    hostname: &Option<String>,
    rewrite: &Option<PathRewrite>,
    matches: &[Match],
    errs: &mut ValidationErrors,
) {
    if let Some(h) = hostname {
        check_precise_hostname(&path.field("hostname"), h, errs);
    }
    if let Some(rw) = rewrite {
        check_path_rewrite(&path.field("path"), rw, matches, errs);
    }
}

fn check_filter(
    path: &Path,
    f: &Filter,
    matches: &[Match],
    top: &TargetRef,
    errs: &mut ValidationErrors,
) {
    match f.r#type {
        FilterType::RequestHeaderModifier | FilterType::ResponseHeaderModifier => {
            let (field, block) = if f.r#type == FilterType::RequestHeaderModifier {
                ("requestHeaderModifier", &f.request_header_modifier)
            } else {
                ("responseHeaderModifier", &f.response_header_modifier)
            };
            if let Some((p, m)) = required(path, field, block, errs) {
                check_header_modifier(&p, m, errs);
            }
        }
        FilterType::RequestRedirect => {
            let Some((p, r)) = required(path, "requestRedirect", &f.request_redirect, errs) else {
                return;
            };
            check_host_and_path(&p, &r.hostname, &r.path, matches, errs);
            if let Some(port) = r.port {
                validate::check_port(&p.field("port"), port, errs);
            }
            if let Some(code) = r.status_code
                && !REDIRECT_CODES.contains(&code)
            {
                errs.add(
                    &p.field("statusCode"),
                    "must be one of 301, 302, 303, 307, 308",
                );
            }
        }
        FilterType::UrlRewrite => {
            let Some((p, r)) = required(path, "urlRewrite", &f.url_rewrite, errs) else {
                return;
            };
            check_host_and_path(&p, &r.hostname, &r.path, matches, errs);
            if r.host_to_backend_hostname == Some(true) {
                let hp = p.field("hostToBackendHostname");
                if top.kind != MeshGateway {
                    errs.add(&hp, "can only be set with MeshGateway");
                }
                if r.hostname.is_some() {
                    errs.add(&hp, "cannot be set together with hostname");
                }
            }
        }
        FilterType::RequestMirror => {
            let Some((p, m)) = required(path, "requestMirror", &f.request_mirror, errs) else {
                return;
            };
            m.backend_ref
                .check(&p.field("backendRef"), MIRROR_KINDS, errs);
            if let Some(pct) = &m.percentage {
                pct.check_percentage(&p.field("percentage"), true, errs);
            }
        }
    }
}

fn check_path_rewrite(
    path: &Path,
    rw: &PathRewrite,
    matches: &[Match],
    errs: &mut ValidationErrors,
) {
    match rw.r#type {
        PathRewriteType::ReplaceFullPath if rw.replace_full_path.is_none() => {
            errs.add(&path.field("replaceFullPath"), "must be defined");
        }
        PathRewriteType::ReplacePrefixMatch if rw.replace_prefix_match.is_none() => {
            errs.add(&path.field("replacePrefixMatch"), "must be defined");
        }
        _ => {}
    }
    if rw.replace_prefix_match.is_some() && !all_prefix(matches) {
        errs.add(
            &path.field("replacePrefixMatch"),
            "can only appear if all matches match a path prefix",
        );
    }
}

/// A hostname that is not an IP address (Gateway API `PreciseHostname`).
fn check_precise_hostname(path: &Path, h: &str, errs: &mut ValidationErrors) {
    if net::is_ip(h) {
        errs.add(path, "cannot be an IP address");
    } else if let Some(reason) = net::dns1123_subdomain_violation(h) {
        errs.add(path, reason);
    }
}

/// Route header modifiers: some action, at most 16 entries per list, and each
/// header name (valid) in one entry of one list only.
fn check_header_modifier(path: &Path, m: &HeaderModifier, errs: &mut ValidationErrors) {
    if m.set.is_none() && m.add.is_none() && m.remove.is_none() {
        errs.add(path, "must have at least one defined: set, add, remove");
        return;
    }
    let names = |l: &Option<Vec<HeaderKeyValue>>| -> Vec<String> {
        l.iter().flatten().map(|kv| kv.name.clone()).collect()
    };
    let removes: Vec<String> = m.remove.iter().flatten().cloned().collect();
    let mut seen = BTreeSet::new();
    // `set` / `add` entries are `{name, value}`; `remove` lists bare names.
    for (field, list, keyed) in [
        ("set", names(&m.set), true),
        ("add", names(&m.add), true),
        ("remove", removes, false),
    ] {
        let lp = path.field(field);
        check_modifier_len(&lp, list.len(), errs);
        for (i, n) in list.into_iter().enumerate() {
            let p = if keyed {
                lp.index(i).field("name")
            } else {
                lp.index(i)
            };
            if !is_header_name(&n) {
                errs.add(&p, HEADER_NAME_REASON);
            } else if !seen.insert(n) {
                errs.add(&p, "duplicate header name");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::test_support::spec_messages;

    fn violations(yaml: &str) -> Vec<String> {
        spec_messages::<MeshHTTPRoute>(yaml)
    }

    fn route(rule: &str) -> String {
        let indented: String = rule.lines().map(|l| format!("    {l}\n")).collect();
        format!(
            "targetRef: {{kind: Mesh}}\nto:\n- targetRef: {{kind: MeshService, name: backend}}\n  rules:\n{indented}"
        )
    }

    // A rich but correct sidecar route has no violations.
    #[test]
    fn valid_route() {
        let v = violations(&route(
            "- matches:\n  - path: {type: PathPrefix, value: /api}\n    method: GET\n    queryParams: [{type: Exact, name: v, value: '2'}]\n    headers: [{type: Present, name: x-canary}]\n  default:\n    filters:\n    - type: URLRewrite\n      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}\n    - type: RequestMirror\n      requestMirror: {percentage: '12.5', backendRef: {kind: MeshService, name: shadow}}\n    backendRefs:\n    - {kind: MeshService, name: backend, port: 8080, weight: 90}\n    - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}\n",
        ));
        assert!(v.is_empty(), "{v:?}");
    }

    // Path values: absolute, no trailing slash on prefixes (except '/'), non-empty.
    #[test]
    fn path_rules() {
        let v = violations(&route(
            "- matches:\n  - path: {type: PathPrefix, value: api/}\n  - path: {type: Exact, value: x}\n  - path: {type: PathPrefix, value: /}\n  - path: {type: RegularExpression, value: '(a'}\n",
        ));
        let fields: Vec<&str> = v.iter().map(|s| s.split(": ").next().unwrap()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.to[0].rules[0].matches[0].path.value",
                "spec.to[0].rules[0].matches[0].path.value",
                "spec.to[0].rules[0].matches[1].path.value",
                "spec.to[0].rules[0].matches[3].path.value",
            ]
        );
        assert!(v[2].ends_with("must be an absolute path"));
    }

    // Header matches: Present/Absent carry no value; names are lower-case tokens;
    // query param names are unique.
    #[test]
    fn header_and_query_rules() {
        let v = violations(&route(
            "- matches:\n  - headers:\n    - {type: Absent, name: x-a, value: y}\n    - {name: X-Upper, value: y}\n    queryParams:\n    - {type: Exact, name: a, value: '1'}\n    - {type: RegularExpression, name: a, value: '.*'}\n",
        ));
        assert_eq!(
            v,
            vec![
                "spec.to[0].rules[0].matches[0].queryParams[1].name: multiple entries for name a"
                    .to_string(),
                "spec.to[0].rules[0].matches[0].headers[0].value: must not be defined".into(),
                format!("spec.to[0].rules[0].matches[0].headers[1].name: {HEADER_NAME_REASON}"),
            ]
        );
    }

    // Filters need their block; header modifiers need an action and unique names;
    // redirects take Kuma's status codes; prefix rewrites need prefix matches.
    #[test]
    fn filter_rules() {
        let v = violations(&route(
            "- matches:\n  - path: {type: Exact, value: /x}\n  default:\n    filters:\n    - type: RequestHeaderModifier\n    - type: ResponseHeaderModifier\n      responseHeaderModifier: {}\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: x-a, value: '1'}], remove: [x-a]}\n    - type: RequestRedirect\n      requestRedirect: {hostname: 10.0.0.1, statusCode: 304, port: 0, path: {type: ReplacePrefixMatch, replacePrefixMatch: /y}}\n    - type: URLRewrite\n      urlRewrite: {hostname: example.com, hostToBackendHostname: true}\n",
        ));
        let fields: Vec<&str> = v.iter().map(|s| s.split(": ").next().unwrap()).collect();
        let f = "spec.to[0].rules[0].default.filters";
        assert_eq!(
            fields,
            vec![
                format!("{f}[0].requestHeaderModifier"),
                format!("{f}[1].responseHeaderModifier"),
                format!("{f}[2].requestHeaderModifier.remove[0]"),
                format!("{f}[3].requestRedirect.hostname"),
                format!("{f}[3].requestRedirect.path.replacePrefixMatch"),
                format!("{f}[3].requestRedirect.port"),
                format!("{f}[3].requestRedirect.statusCode"),
                format!("{f}[4].urlRewrite.hostToBackendHostname"),
                format!("{f}[4].urlRewrite.hostToBackendHostname"),
            ]
        );
    }

    // Gateway routes: to[] is Mesh, hostnames are allowed, rules need backends
    // unless they redirect.
    #[test]
    fn gateway_rules() {
        let v = violations(
            "targetRef: {kind: MeshGateway, name: edge}\nto:\n- targetRef: {kind: Mesh}\n  hostnames: [example.com]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n    default: {}\n  - matches: [{path: {type: PathPrefix, value: /old}}]\n    default:\n      filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}}]\n",
        );
        assert_eq!(
            v,
            vec!["spec.to[0].rules[0].default.backendRefs: must not be empty"]
        );
        let v = violations(
            "to:\n- targetRef: {kind: MeshService, name: a}\n  hostnames: [example.com]\n  rules: []\n",
        );
        assert_eq!(v, vec!["spec.to[0].hostnames: must not be defined"]);
    }

    // The mirror percentage is an int-or-string between 0 and 100 and keeps its form.
    #[test]
    fn mirror_percentage() {
        let v = violations(&route(
            "- matches: [{path: {type: PathPrefix, value: /}}]\n  default:\n    filters:\n    - type: RequestMirror\n      requestMirror: {percentage: 150, backendRef: {kind: MeshExternalService, name: x}}\n",
        ));
        let fields: Vec<&str> = v.iter().map(|s| s.split(": ").next().unwrap()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.to[0].rules[0].default.filters[0].requestMirror.backendRef.kind",
                "spec.to[0].rules[0].default.filters[0].requestMirror.percentage",
            ]
        );
    }
}
