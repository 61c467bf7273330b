//! MeshFaultInjection (order 800), inbound HTTP: `envoy.filters.http.fault`
//! filters before the router, one per `http[]` entry: `abort` →
//! `abort.http_status` + percentage, `delay` → `fixed_delay` + percentage,
//! `responseBandwidth` → `response_rate_limit.fixed_limit` (kbps).
//!
//! Which clients a fault applies to is Kuma's: the `from[]` entries' client tag
//! subsets (`Mesh`, `MeshSubset`, `MeshService`, `MeshServiceSubset`) split the
//! clients into disjoint groups — for each tag key, one of its values or none of
//! them — and each group with an entry covering it gets the merge of every
//! covering entry's conf, its filters matching the client's `x-kuma-tags` header
//! (set by the client's outbound, see [`crate::xds::generate::base`]): the
//! group's tags present, the other values of its keys absent (one inverted
//! matcher per absent value, where Kuma folds them into one — decision 0012).
//! The value match is exact within the comma-separated list (Kuma's regex also
//! matches a suffix — decision 0012). Policies with `rules[]` use the
//! catch-all conf for every client, as Kuma's inbound rules.

use super::{Ctx, dur};
use crate::xds::generate::envoy::string_matcher;
use crate::xds::generate::envoy::{any, duration, fraction};
use crate::xds::generate::model::{Chain, ProxyConfig};
use envoy_types::pb::envoy::config::route::v3::{HeaderMatcher, header_matcher};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, FaultRateLimit, fault_delay, fault_rate_limit,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_filter,
};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use weft_model::resource::policy::intorstring::IntOrString;
use weft_model::resource::policy::meshfaultinjection::{Conf, FaultInjectionConf};
use weft_model::resource::policy::targetref::TargetRef;
use weft_model::resource::{ResourceType, Spec, Tags};
use weft_model::rules::{MergeMode, merge, select, subset_of};

const TY: ResourceType = ResourceType::MeshFaultInjection;

fn percent(p: &Option<IntOrString>) -> f64 {
    p.as_ref()
        .and_then(|p| p.per_million())
        .map_or(100.0, |pm| f64::from(pm) / 10_000.0)
}

/// `1kbps`, `5mbps`, `1gbps` (any case) in kbit/s.
pub fn kbps(limit: &str) -> Option<u64> {
    let l = limit.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = l.strip_suffix("gbps") {
        (n, 1_000_000)
    } else if let Some(n) = l.strip_suffix("mbps") {
        (n, 1_000)
    } else if let Some(n) = l.strip_suffix("kbps") {
        (n, 1)
    } else {
        return None;
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.inbounds.iter_mut() {
        let Chain::Http(http) = &mut part.chain else {
            continue;
        };
        for (client, conf) in groups(ctx, part.port) {
            let headers = client.matchers();
            for f in conf.http.iter().flatten() {
                http.filters.push(filter(f, headers.clone()));
            }
        }
    }
}

/// A group of clients: tags they have, values of keys they do not have.
#[derive(Debug, Clone, Default, PartialEq)]
struct Clients {
    with: Tags,
    without: Vec<(String, String)>,
}

impl Clients {
    /// `x-kuma-tags` matchers: one for every tag present (in key order, as the
    /// header lists them), one inverted per absent value.
    fn matchers(&self) -> Vec<HeaderMatcher> {
        let mut out = Vec::new();
        if !self.with.is_empty() {
            let re: String = self.with.iter().map(|(k, v)| tag_regex(k, v)).collect();
            out.push(tags_matcher(format!(".*{re}"), false));
        }
        for (k, v) in &self.without {
            out.push(tags_matcher(format!(".*{}", tag_regex(k, v)), true));
        }
        out
    }
}

/// `&key=` then `value` as one of the tag's comma-separated values (`*`: any).
fn tag_regex(key: &str, value: &str) -> String {
    if value == "*" {
        format!("&{}=.*", re_escape(key))
    } else {
        format!("&{}=([^&]*,)?{}[,&].*", re_escape(key), re_escape(value))
    }
}

fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn tags_matcher(regex: String, invert: bool) -> HeaderMatcher {
    HeaderMatcher {
        name: "x-kuma-tags".into(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
            string_matcher(string_matcher::MatchPattern::SafeRegex(
                crate::xds::generate::envoy::regex(&regex),
            )),
        )),
        invert_match: invert,
        ..HeaderMatcher::default()
    }
}

/// The `from[]` entries for the inbound on `port`, weakest first: (client
/// subset, conf). `None` when a selecting policy uses `rules[]`.
fn from_items(ctx: &Ctx<'_>, port: u32) -> Option<Vec<(Tags, Value)>> {
    let Spec::Dataplane(dp) = &ctx.dataplane.spec else {
        return Some(Vec::new());
    };
    let proxy = select::ProxyView::new(ctx.dataplane, dp);
    let mut selected: Vec<_> = ctx
        .view
        .policies
        .iter()
        .filter(|p| {
            p.resource.resource_type() == TY && p.resource.meta.mesh == ctx.dataplane.meta.mesh
        })
        .filter_map(|p| select::select(&proxy, p))
        .filter(|s| s.inbounds.contains(&port))
        .collect();
    selected.sort_by(|a, b| a.key.cmp(&b.key));
    let mut items = Vec::new();
    for sel in selected {
        let spec = &sel.policy.spec;
        if spec
            .get("rules")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty())
        {
            return None;
        }
        for item in spec
            .get("from")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(subset) = item
                .get("targetRef")
                .and_then(|t| serde_json::from_value::<TargetRef>(t.clone()).ok())
                .and_then(|t| subset_of(&t))
            else {
                continue;
            };
            items.push((subset, item.get("default").cloned().unwrap_or(Value::Null)));
        }
    }
    Some(items)
}

/// Most groups of clients a policy set is split into; beyond, the faults apply
/// to no one and a warning is logged.
const MAX_GROUPS: usize = 4096;

/// The client groups of the inbound on `port` and their merged confs, groups
/// with more tags first.
fn groups(ctx: &Ctx<'_>, port: u32) -> Vec<(Clients, Conf)> {
    let Some(items) = from_items(ctx, port) else {
        return ctx
            .from::<Conf>(TY, port)
            .map(|c| vec![(Clients::default(), c)])
            .unwrap_or_default();
    };
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (subset, _) in &items {
        for (k, v) in subset {
            values.entry(k).or_default().insert(v);
        }
    }
    let count = values
        .values()
        .try_fold(1usize, |n, vs| n.checked_mul(vs.len() + 1));
    if count.is_none_or(|n| n > MAX_GROUPS) {
        tracing::warn!(
            proxy = %ctx.proxy,
            port,
            "MeshFaultInjection: too many client tag combinations; faults not applied"
        );
        return Vec::new();
    }
    // Every choice, per key, of one of its values or none of them.
    let mut combos: Vec<Clients> = vec![Clients::default()];
    for (k, vs) in &values {
        let mut next = Vec::with_capacity(combos.len() * (vs.len() + 1));
        for c in &combos {
            for v in vs {
                let mut c = c.clone();
                c.with.insert(k.to_string(), v.to_string());
                next.push(c);
            }
            let mut c = c.clone();
            c.without
                .extend(vs.iter().map(|v| (k.to_string(), v.to_string())));
            next.push(c);
        }
        combos = next;
    }
    combos.sort_by_key(|c| std::cmp::Reverse(c.with.len()));
    let origin = weft_model::rules::Origin {
        ty: TY.name().to_string(),
        name: String::new(),
        entry: String::new(),
    };
    let mut out = Vec::new();
    for c in combos {
        let covering: Vec<&Value> = items
            .iter()
            .filter(|(subset, _)| subset.iter().all(|(k, v)| c.with.get(k) == Some(v)))
            .map(|(_, conf)| conf)
            .collect();
        if covering.is_empty() {
            continue;
        }
        let merged = merge::merge_all(covering.into_iter().map(|v| (v, &origin)), MergeMode::Patch);
        match merged.typed::<Conf>() {
            Ok(conf) => out.push((c, conf)),
            Err(e) => tracing::warn!(error = %e, "merged MeshFaultInjection conf does not decode"),
        }
    }
    out
}

fn filter(f: &FaultInjectionConf, headers: Vec<HeaderMatcher>) -> HttpFilter {
    let mut fault = HttpFault {
        headers,
        ..HttpFault::default()
    };
    if let Some(a) = &f.abort {
        fault.abort = Some(FaultAbort {
            percentage: Some(fraction(percent(&a.percentage))),
            error_type: Some(fault_abort::ErrorType::HttpStatus(
                a.http_status
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(500),
            )),
            ..FaultAbort::default()
        });
    }
    if let Some(d) = &f.delay {
        fault.delay = Some(FaultDelay {
            percentage: Some(fraction(percent(&d.percentage))),
            fault_delay_secifier: dur(&d.value)
                .map(|v| fault_delay::FaultDelaySecifier::FixedDelay(duration(v))),
        });
    }
    if let Some(b) = &f.response_bandwidth
        && let Some(k) = b.limit.as_deref().and_then(kbps)
    {
        fault.response_rate_limit = Some(FaultRateLimit {
            percentage: Some(fraction(percent(&b.percentage))),
            limit_type: Some(fault_rate_limit::LimitType::FixedLimit(
                fault_rate_limit::FixedLimit { limit_kbps: k },
            )),
        });
    }
    HttpFilter {
        name: "envoy.filters.http.fault".into(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any(&fault))),
        ..HttpFilter::default()
    }
}
