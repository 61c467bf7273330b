//! MeshRetry (order 1400), outbound only: HTTP destinations (http, http2) get
//! `route.retry_policy` from `http`, gRPC ones from `grpc` (default `retry_on`
//! as Kuma's), TCP ones `tcp_proxy.max_connect_attempts`. `numRetries: 0`
//! removes the retry policy. Numeric `retryOn` entries become
//! `retriable_status_codes`, `HttpMethod*` entries `retriable_request_headers` on
//! `:method`. A MeshRetry whose top-level targetRef is a MeshHTTPRoute sets the
//! retry policy of that route's Envoy routes only (its conf merged over the
//! destination's, as Kuma; `numRetries: 0` there removes the route's retries —
//! decision 0012).

use super::{Ctx, dur};
use crate::xds::generate::envoy::{any, duration, header_matcher, u32v};
use crate::xds::generate::model::{Chain, Protocol, ProxyConfig};
use envoy_types::pb::envoy::config::route::v3::{RetryPolicy, retry_policy, route};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig;
use weft_model::resource::ResourceType;
use weft_model::resource::policy::header::{HeaderMatch, HeaderMatchType};
use weft_model::resource::policy::meshretry::{
    BackOff, Conf, GrpcRetryOn, PredicateType, RateLimitFormat, RateLimitedBackOff,
};

const TY: ResourceType = ResourceType::MeshRetry;
const HTTP_DEFAULT: &str = "gateway-error,connect-failure,refused-stream";
const GRPC_DEFAULT: &str =
    "cancelled,connect-failure,gateway-error,refused-stream,reset,resource-exhausted,unavailable";

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    for part in cfg.outbounds.iter_mut() {
        let conf = ctx.to::<Conf>(TY, &part.service);
        let protocol = part.protocol;
        let policy_of = |conf: &Conf| {
            if protocol == Protocol::Grpc {
                grpc_policy(conf)
            } else {
                http_policy(conf)
            }
        };
        match &mut part.chain {
            Chain::Tcp(tcp) => {
                if let Some(n) = conf
                    .as_ref()
                    .and_then(|c| c.tcp.as_ref())
                    .and_then(|t| t.max_connect_attempt)
                {
                    tcp.max_connect_attempts = Some(u32v(n));
                }
            }
            Chain::Http(http) => {
                let policy = conf.as_ref().map(policy_of);
                for r in http.routes_mut() {
                    // A MeshRetry targeting the MeshHTTPRoute of this route wins.
                    let own = ctx
                        .to_route::<Conf>(TY, &part.service, &r.name)
                        .map(|c| policy_of(&c));
                    let Some(p) = own.or_else(|| policy.clone()) else {
                        continue;
                    };
                    if let Some(route::Action::Route(a)) = &mut r.action {
                        a.retry_policy = p;
                    }
                }
            }
        }
    }
}

fn back_off(b: &Option<BackOff>) -> Option<retry_policy::RetryBackOff> {
    let b = b.as_ref()?;
    Some(retry_policy::RetryBackOff {
        base_interval: Some(duration(
            dur(&b.base_interval).unwrap_or(std::time::Duration::from_millis(25)),
        )),
        max_interval: dur(&b.max_interval).map(duration),
    })
}

fn rate_limited(b: &Option<RateLimitedBackOff>) -> Option<retry_policy::RateLimitedRetryBackOff> {
    let b = b.as_ref()?;
    Some(retry_policy::RateLimitedRetryBackOff {
        reset_headers: b
            .reset_headers
            .iter()
            .flatten()
            .map(|h| retry_policy::ResetHeader {
                name: h.name.clone(),
                format: match h.format {
                    RateLimitFormat::Seconds => retry_policy::ResetHeaderFormat::Seconds as i32,
                    RateLimitFormat::UnixTimestamp => {
                        retry_policy::ResetHeaderFormat::UnixTimestamp as i32
                    }
                },
            })
            .collect(),
        max_interval: dur(&b.max_interval).map(duration),
    })
}

fn http_retry_on(cond: &str) -> Option<&'static str> {
    Some(match cond {
        "5xx" => "5xx",
        "GatewayError" => "gateway-error",
        "Reset" => "reset",
        "Retriable4xx" => "retriable-4xx",
        "ConnectFailure" => "connect-failure",
        "EnvoyRatelimited" => "envoy-ratelimited",
        "RefusedStream" => "refused-stream",
        "Http3PostConnectFailure" => "http3-post-connect-failure",
        _ => return None,
    })
}

fn http_policy(conf: &Conf) -> Option<RetryPolicy> {
    let h = conf.http.clone().unwrap_or_default();
    if h.num_retries == Some(0) {
        return None;
    }
    let mut on: Vec<String> = Vec::new();
    let mut codes = Vec::new();
    let mut methods = Vec::new();
    for c in h.retry_on.iter().flatten() {
        if let Some(s) = http_retry_on(c) {
            on.push(s.to_string());
        } else if let Ok(code) = c.parse::<u32>() {
            codes.push(code);
        } else if let Some(m) = c.strip_prefix("HttpMethod") {
            methods.push(m.to_uppercase());
        }
    }
    if !codes.is_empty() {
        on.push("retriable-status-codes".into());
    }
    let retry_on = if on.is_empty() {
        HTTP_DEFAULT.to_string()
    } else {
        on.join(",")
    };
    let mut p = RetryPolicy {
        retry_on,
        num_retries: h.num_retries.map(u32v),
        per_try_timeout: dur(&h.per_try_timeout).map(duration),
        retry_back_off: back_off(&h.back_off),
        rate_limited_retry_back_off: rate_limited(&h.rate_limited_back_off),
        retriable_status_codes: codes,
        retriable_headers: h
            .retriable_response_headers
            .iter()
            .flatten()
            .map(header_matcher)
            .collect(),
        retriable_request_headers: h
            .retriable_request_headers
            .iter()
            .flatten()
            .map(header_matcher)
            .collect(),
        host_selection_retry_max_attempts: h.host_selection_max_attempts.unwrap_or(0),
        ..RetryPolicy::default()
    };
    if !methods.is_empty() {
        let re = format!("^({})$", methods.join("|"));
        p.retriable_request_headers
            .push(header_matcher(&HeaderMatch {
                r#type: Some(HeaderMatchType::RegularExpression),
                name: ":method".into(),
                value: Some(re),
            }));
    }
    for pred in h.host_selection.iter().flatten() {
        match pred.predicate {
            PredicateType::OmitPreviousHosts => {
                p.retry_host_predicate
                    .push(retry_policy::RetryHostPredicate {
                        name: "envoy.retry_host_predicates.previous_hosts".into(),
                        config_type: Some(
                            retry_policy::retry_host_predicate::ConfigType::TypedConfig(any(
                                &PreviousHostsPredicate {},
                            )),
                        ),
                    })
            }
            PredicateType::OmitPreviousPriorities => {
                p.retry_priority = Some(retry_policy::RetryPriority {
                    name: "envoy.retry_priorities.previous_priorities".into(),
                    config_type: Some(retry_policy::retry_priority::ConfigType::TypedConfig(any(
                        &PreviousPrioritiesConfig {
                            update_frequency: pred.update_frequency.unwrap_or(2),
                        },
                    ))),
                });
            }
            // Endpoints carry their tags as `envoy.lb` metadata.
            PredicateType::OmitHostsWithTags => p.retry_host_predicate.push(
                retry_policy::RetryHostPredicate {
                    name: "envoy.retry_host_predicates.omit_host_metadata".into(),
                    config_type: Some(
                        retry_policy::retry_host_predicate::ConfigType::TypedConfig(any(
                            &envoy_types::pb::envoy::extensions::retry::host::omit_host_metadata::v3::OmitHostMetadataConfig {
                                metadata_match: crate::xds::generate::endpoints::lb_metadata(
                                    &pred.tags.clone().unwrap_or_default(),
                                ),
                            },
                        )),
                    ),
                },
            ),
        }
    }
    Some(p)
}

fn grpc_policy(conf: &Conf) -> Option<RetryPolicy> {
    let g = conf.grpc.clone().unwrap_or_default();
    if g.num_retries == Some(0) {
        return None;
    }
    let on: Vec<&str> = g
        .retry_on
        .iter()
        .flatten()
        .map(|c| match c {
            GrpcRetryOn::Canceled => "cancelled",
            GrpcRetryOn::DeadlineExceeded => "deadline-exceeded",
            GrpcRetryOn::Internal => "internal",
            GrpcRetryOn::ResourceExhausted => "resource-exhausted",
            GrpcRetryOn::Unavailable => "unavailable",
        })
        .collect();
    Some(RetryPolicy {
        retry_on: if on.is_empty() {
            GRPC_DEFAULT.to_string()
        } else {
            on.join(",")
        },
        num_retries: g.num_retries.map(u32v),
        per_try_timeout: dur(&g.per_try_timeout).map(duration),
        retry_back_off: back_off(&g.back_off),
        rate_limited_retry_back_off: rate_limited(&g.rate_limited_back_off),
        ..RetryPolicy::default()
    })
}
