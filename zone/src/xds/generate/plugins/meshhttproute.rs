//! MeshHTTPRoute (order 100): the routes of each HTTP outbound. Every rule of
//! the merged conf becomes one Envoy route per match (`PathPrefix /x` → two
//! routes, `path: /x` and `prefix: /x/`, as Kuma), sorted by Gateway API
//! precedence (exact path, then longest prefix, then regex; a method; more
//! headers; more query params); a catch-all `prefix: /` to the service is
//! appended when no rule covers it. Backends: one → `cluster`, several →
//! `weighted_clusters`; `MeshServiceSubset` backends get their own cluster
//! `<service>-<hash>` with tag-filtered endpoints. Routes carry Kuma's names: the
//! hash of their rule's matches ([`names::route_name`]). Filters: request/response
//! header modifiers, redirects, URL rewrites (host, full path, prefix), mirrors.

use super::Ctx;
use crate::xds::generate::base::{catch_all, ensure_outbound_cluster};
use crate::xds::generate::envoy::{fraction, header, header_matcher, regex, string_matcher, u32v};
use crate::xds::generate::model::{Chain, ProxyConfig};
use crate::xds::generate::names;
use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::{
    QueryParameterMatcher, RedirectAction, Route, RouteAction, RouteMatch, WeightedCluster,
    query_parameter_matcher, redirect_action, route, route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatchAndSubstitute, string_matcher};
use envoy_types::pb::google::protobuf::BoolValue;
use serde::Deserialize;
use weft_model::resource::policy::backend_ref::BackendRef;
use weft_model::resource::policy::header::{HeaderMatch, HeaderMatchType};
use weft_model::resource::policy::meshhttproute::{
    Filter, FilterType, Match, PathMatchType, PathRewriteType, QueryParamsMatchType, Rule, Scheme,
};
use weft_model::resource::policy::targetref::TargetRefKind;
use weft_model::resource::{ResourceType, Tags};

/// The merged `to[]` conf of MeshHTTPRoute.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConf {
    #[serde(default)]
    pub rules: Vec<Rule>,
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for i in 0..cfg.outbounds.len() {
        let service = cfg.outbounds[i].service.clone();
        if !matches!(cfg.outbounds[i].chain, Chain::Http(_)) {
            continue;
        }
        let Some(conf) = ctx.to::<RouteConf>(ResourceType::MeshHTTPRoute, &service) else {
            continue;
        };
        let mut routes: Vec<(Key, Route)> = Vec::new();
        for rule in &conf.rules {
            let name = names::route_name(&rule.matches);
            let action = action(cfg, ctx, &service, &rule.default.backend_refs);
            let filters = rule.default.filters.clone().unwrap_or_default();
            let matches = if rule.matches.is_empty() {
                vec![Match::default()]
            } else {
                rule.matches.clone()
            };
            for m in &matches {
                for (key, r) in routes_for(m, &name, &action, &filters, cfg, ctx) {
                    routes.push((key, r));
                }
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut routes: Vec<Route> = routes.into_iter().map(|(_, r)| r).collect();
        if !routes.iter().any(is_catch_all) {
            let mut r = catch_all(&service);
            r.name = names::catch_all_route_name();
            routes.push(r);
        }
        if let Chain::Http(http) = &mut cfg.outbounds[i].chain {
            *http.routes_mut() = routes;
        }
    }
}

/// Precedence: (path kind, path length, method, headers, query params).
type Key = (u8, usize, bool, usize, usize);

fn is_catch_all(r: &Route) -> bool {
    r.r#match.as_ref().is_some_and(|m| {
        m.headers.is_empty()
            && m.query_parameters.is_empty()
            && matches!(&m.path_specifier, Some(route_match::PathSpecifier::Prefix(p)) if p == "/")
    })
}

fn backend_cluster(cfg: &mut ProxyConfig, ctx: &Ctx<'_>, b: &BackendRef, default: &str) -> String {
    let name = b.service_name().unwrap_or_else(|| default.to_string());
    let tags = match b.kind {
        TargetRefKind::MeshServiceSubset => b.tags.clone().unwrap_or_default(),
        _ => Tags::new(),
    };
    ensure_outbound_cluster(cfg, ctx.view, &name, &tags)
}

fn action(
    cfg: &mut ProxyConfig,
    ctx: &Ctx<'_>,
    service: &str,
    refs: &Option<Vec<BackendRef>>,
) -> RouteAction {
    let refs = refs.clone().unwrap_or_default();
    let mut weighted: Vec<(String, u32)> = refs
        .iter()
        .map(|b| (backend_cluster(cfg, ctx, b, service), b.weight.unwrap_or(1)))
        .collect();
    if weighted.iter().all(|(_, w)| *w == 0) {
        weighted.clear();
    }
    weighted.retain(|(_, w)| *w > 0);
    let specifier = match weighted.len() {
        0 => route_action::ClusterSpecifier::Cluster(service.to_string()),
        1 => route_action::ClusterSpecifier::Cluster(weighted[0].0.clone()),
        _ => route_action::ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: weighted
                .into_iter()
                .map(|(name, w)| weighted_cluster::ClusterWeight {
                    name,
                    weight: Some(u32v(w)),
                    ..weighted_cluster::ClusterWeight::default()
                })
                .collect(),
            ..WeightedCluster::default()
        }),
    };
    RouteAction {
        cluster_specifier: Some(specifier),
        ..RouteAction::default()
    }
}

fn routes_for(
    m: &Match,
    name: &str,
    action: &RouteAction,
    filters: &[Filter],
    cfg: &mut ProxyConfig,
    ctx: &Ctx<'_>,
) -> Vec<(Key, Route)> {
    use route_match::PathSpecifier as P;
    let mut base = RouteMatch::default();
    let mut headers: Vec<HeaderMatch> = m.headers.clone().unwrap_or_default();
    if let Some(method) = m.method {
        let name = serde_json::to_value(method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        headers.push(HeaderMatch {
            r#type: Some(HeaderMatchType::Exact),
            name: ":method".into(),
            value: Some(name),
        });
    }
    base.headers = headers.iter().map(header_matcher).collect();
    base.query_parameters = m
        .query_params
        .iter()
        .flatten()
        .map(|q| QueryParameterMatcher {
            name: q.name.clone(),
            query_parameter_match_specifier: Some(
                query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(string_matcher(
                    match q.r#type {
                        QueryParamsMatchType::Exact => {
                            string_matcher::MatchPattern::Exact(q.value.clone())
                        }
                        QueryParamsMatchType::RegularExpression => {
                            string_matcher::MatchPattern::SafeRegex(regex(&q.value))
                        }
                    },
                )),
            ),
        })
        .collect();
    let extra = (
        m.method.is_some(),
        m.headers.as_ref().map_or(0, Vec::len),
        m.query_params.as_ref().map_or(0, Vec::len),
    );
    // (path specifier, rewrite prefix suffix needed, key rank, length)
    let mut variants: Vec<(P, bool, u8, usize)> = Vec::new();
    match &m.path {
        None => variants.push((P::Prefix("/".into()), false, 2, 1)),
        Some(p) => match p.r#type {
            PathMatchType::Exact => {
                variants.push((P::Path(p.value.clone()), false, 3, p.value.len()))
            }
            PathMatchType::RegularExpression => {
                variants.push((P::SafeRegex(regex(&p.value)), false, 1, p.value.len()))
            }
            PathMatchType::PathPrefix => {
                let v = p.value.trim_end_matches('/');
                if v.is_empty() {
                    variants.push((P::Prefix("/".into()), false, 2, 1));
                } else {
                    variants.push((P::Path(v.to_string()), false, 2, v.len() + 1));
                    variants.push((P::Prefix(format!("{v}/")), true, 2, v.len() + 1));
                }
            }
        },
    }
    let mut out = Vec::new();
    for (spec, slash, rank, len) in variants {
        let mut rm = base.clone();
        rm.path_specifier = Some(spec);
        let mut r = Route {
            name: name.to_string(),
            r#match: Some(rm),
            action: Some(route::Action::Route(action.clone())),
            ..Route::default()
        };
        apply_filters(&mut r, filters, slash, cfg, ctx);
        out.push(((rank, len, extra.0, extra.1, extra.2), r));
    }
    out
}

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

fn apply_filters(
    r: &mut Route,
    filters: &[Filter],
    slash: bool,
    cfg: &mut ProxyConfig,
    ctx: &Ctx<'_>,
) {
    for f in filters {
        match f.r#type {
            FilterType::RequestHeaderModifier => {
                if let Some(m) = &f.request_header_modifier {
                    for kv in m.set.iter().flatten() {
                        r.request_headers_to_add
                            .push(header(&kv.name, &kv.value, true));
                    }
                    for kv in m.add.iter().flatten() {
                        r.request_headers_to_add
                            .push(header(&kv.name, &kv.value, false));
                    }
                    r.request_headers_to_remove
                        .extend(m.remove.iter().flatten().cloned());
                }
            }
            FilterType::ResponseHeaderModifier => {
                if let Some(m) = &f.response_header_modifier {
                    for kv in m.set.iter().flatten() {
                        r.response_headers_to_add
                            .push(header(&kv.name, &kv.value, true));
                    }
                    for kv in m.add.iter().flatten() {
                        r.response_headers_to_add
                            .push(header(&kv.name, &kv.value, false));
                    }
                    r.response_headers_to_remove
                        .extend(m.remove.iter().flatten().cloned());
                }
            }
            FilterType::RequestRedirect => {
                let Some(rd) = &f.request_redirect else {
                    continue;
                };
                let mut a = RedirectAction {
                    host_redirect: rd.hostname.clone().unwrap_or_default(),
                    port_redirect: rd.port.unwrap_or(0),
                    response_code: match rd.status_code {
                        Some(301) => redirect_action::RedirectResponseCode::MovedPermanently,
                        Some(303) => redirect_action::RedirectResponseCode::SeeOther,
                        Some(307) => redirect_action::RedirectResponseCode::TemporaryRedirect,
                        Some(308) => redirect_action::RedirectResponseCode::PermanentRedirect,
                        _ => redirect_action::RedirectResponseCode::Found,
                    } as i32,
                    ..RedirectAction::default()
                };
                if let Some(s) = rd.scheme {
                    a.scheme_rewrite_specifier = Some(
                        redirect_action::SchemeRewriteSpecifier::SchemeRedirect(match s {
                            Scheme::Http => "http".into(),
                            Scheme::Https => "https".into(),
                        }),
                    );
                }
                if let Some(p) = &rd.path {
                    a.path_rewrite_specifier = match p.r#type {
                        PathRewriteType::ReplaceFullPath => p
                            .replace_full_path
                            .clone()
                            .map(redirect_action::PathRewriteSpecifier::PathRedirect),
                        PathRewriteType::ReplacePrefixMatch => {
                            p.replace_prefix_match.clone().map(|v| {
                                redirect_action::PathRewriteSpecifier::PrefixRewrite(if slash {
                                    with_slash(&v)
                                } else {
                                    v
                                })
                            })
                        }
                    };
                }
                r.action = Some(route::Action::Redirect(a));
            }
            FilterType::UrlRewrite => {
                let Some(rw) = &f.url_rewrite else { continue };
                let Some(route::Action::Route(a)) = &mut r.action else {
                    continue;
                };
                if let Some(h) = &rw.hostname {
                    a.host_rewrite_specifier = Some(
                        route_action::HostRewriteSpecifier::HostRewriteLiteral(h.clone()),
                    );
                } else if rw.host_to_backend_hostname == Some(true) {
                    a.host_rewrite_specifier =
                        Some(route_action::HostRewriteSpecifier::AutoHostRewrite(
                            BoolValue { value: true },
                        ));
                }
                if let Some(p) = &rw.path {
                    match p.r#type {
                        PathRewriteType::ReplaceFullPath => {
                            a.regex_rewrite = Some(RegexMatchAndSubstitute {
                                pattern: Some(regex("^/.*$")),
                                substitution: p.replace_full_path.clone().unwrap_or_default(),
                            });
                        }
                        PathRewriteType::ReplacePrefixMatch => {
                            let v = p.replace_prefix_match.clone().unwrap_or_default();
                            a.prefix_rewrite = if slash { with_slash(&v) } else { v };
                        }
                    }
                }
            }
            FilterType::RequestMirror => {
                let Some(mirror) = &f.request_mirror else {
                    continue;
                };
                let cluster = backend_cluster(cfg, ctx, &mirror.backend_ref, "");
                let Some(route::Action::Route(a)) = &mut r.action else {
                    continue;
                };
                let pct = mirror
                    .percentage
                    .as_ref()
                    .and_then(|p| p.per_million())
                    .map_or(100.0, |pm| f64::from(pm) / 10_000.0);
                a.request_mirror_policies
                    .push(route_action::RequestMirrorPolicy {
                        cluster,
                        runtime_fraction: Some(RuntimeFractionalPercent {
                            default_value: Some(fraction(pct)),
                            runtime_key: String::new(),
                        }),
                        ..route_action::RequestMirrorPolicy::default()
                    });
            }
        }
    }
}
