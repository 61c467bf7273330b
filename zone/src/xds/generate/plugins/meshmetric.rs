//! MeshMetric (order 1500, single item), Prometheus backends of sidecars: per
//! backend a listener `_kuma:metrics:prometheus:<clientId | default-backend>` on
//! the Dataplane's `networking.address` and the backend's `port` (default 5670)
//! whose one route, path prefix `path` (default `/metrics`), goes to the cluster
//! `kuma:envoy:admin` (Envoy's own admin, `127.0.0.1:<networking.admin.port>`)
//! rewritten to `/stats/prometheus` with Envoy's stat selection: `usedonly`
//! unless `sidecar.includeUnused`, `filter=<sidecar.regex>`, `text_readouts`.
//!
//! Kuma routes the same listener to kuma-dp (the "metrics hijacker"), which
//! scrapes that admin endpoint and then applies the profiles, merges the
//! applications' metrics and pushes to OpenTelemetry collectors; Weft has Envoy
//! serve its stats itself (decision 0014), so profiles, applications and
//! OpenTelemetry backends are not applied (the PUT answer warns). The rewrite
//! replaces the whole path, so the listener reaches no admin endpoint but the
//! stats one.

use super::Ctx;
use crate::xds::generate::base::static_cluster;
use crate::xds::generate::envoy::{any, sanitize, socket};
use crate::xds::generate::model::{ClusterPart, ClusterRole, Protocol, ProxyConfig, router_filter};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use std::time::Duration;
use weft_model::resource::policy::meshmetric::{BackendType, Conf, PrometheusBackend, Sidecar};
use weft_model::resource::{ResourceType, Spec};

const TY: ResourceType = ResourceType::MeshMetric;

/// Kuma's name of the Prometheus listener (`<prefix>:<clientId>`).
pub const LISTENER_PREFIX: &str = "_kuma:metrics:prometheus";
/// A backend without `clientId` (Kuma's `default-backend`).
pub const DEFAULT_BACKEND: &str = "default-backend";
/// The cluster to Envoy's own admin (Kuma's name for it).
pub const ADMIN_CLUSTER: &str = "kuma:envoy:admin";
pub const DEFAULT_PORT: u32 = 5670;
pub const DEFAULT_PATH: &str = "/metrics";

/// The admin path a scrape is rewritten to: Envoy's Prometheus stats with the
/// sidecar's selection. `text_readouts` comes last: a scraper's own query string
/// is appended after it by the rewrite, and may spoil only that one.
pub fn stats_path(sidecar: Option<&Sidecar>) -> String {
    let mut params = Vec::new();
    if let Some(re) = sidecar.and_then(|s| s.regex.as_deref()) {
        params.push(format!("filter={}", query_escape(re)));
    }
    if !sidecar.and_then(|s| s.include_unused).unwrap_or(false) {
        params.push("usedonly".to_string());
    }
    params.push("text_readouts".to_string());
    format!("/stats/prometheus?{}", params.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let Some(merged) = ctx.rules.single(TY) else {
        return;
    };
    let conf: Conf = match merged.typed() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(policy = %TY, error = %e, "merged policy conf does not decode; ignored");
            return;
        }
    };
    let Spec::Dataplane(dp) = &ctx.dataplane.spec else {
        return;
    };
    let Some(address) = dp.networking.as_ref().map(|n| n.address.as_str()) else {
        return;
    };
    let admin_port = u32::from(crate::bootstrap::envoy::admin_port(ctx.dataplane));
    let path = stats_path(conf.sidecar.as_ref());
    let mut added = false;
    for backend in conf.backends.iter().flatten() {
        let (BackendType::Prometheus, Some(prom)) = (backend.r#type, &backend.prometheus) else {
            continue;
        };
        let port = prom.port.unwrap_or(DEFAULT_PORT);
        let taken = cfg
            .inbounds
            .iter()
            .chain(cfg.outbounds.iter())
            .any(|l| l.address == address && l.port == port)
            || cfg.system_listeners.iter().any(|l| same_port(l, port))
            || (port == admin_port && address == "127.0.0.1");
        let listener = listener(address, prom, &path);
        if taken || cfg.system_listeners.iter().any(|l| l.name == listener.name) {
            tracing::warn!(
                proxy = %ctx.proxy, listener = %listener.name, port,
                "MeshMetric Prometheus backend skipped: its name or port is already in use on the proxy"
            );
            continue;
        }
        cfg.system_listeners.push(listener);
        added = true;
    }
    if added {
        cfg.clusters.insert(
            ADMIN_CLUSTER.to_string(),
            ClusterPart {
                role: ClusterRole::System,
                protocol: Protocol::Http,
                cluster: static_cluster(
                    ADMIN_CLUSTER,
                    "127.0.0.1",
                    admin_port,
                    Duration::from_secs(5),
                ),
                http_options: None,
            },
        );
    }
}

fn same_port(l: &Listener, port: u32) -> bool {
    use envoy_types::pb::envoy::config::core::v3::{address, socket_address};
    matches!(
        l.address.as_ref().and_then(|a| a.address.as_ref()),
        Some(address::Address::SocketAddress(s))
            if s.port_specifier == Some(socket_address::PortSpecifier::PortValue(port))
    )
}

/// The Prometheus listener of one backend (Kuma's `unsecuredListener`).
fn listener(address: &str, prom: &PrometheusBackend, stats_path: &str) -> Listener {
    let name = format!(
        "{LISTENER_PREFIX}:{}",
        prom.client_id.as_deref().unwrap_or(DEFAULT_BACKEND)
    );
    let route = Route {
        r#match: Some(RouteMatch {
            path_specifier: Some(route_match::PathSpecifier::Prefix(
                prom.path
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PATH.to_string()),
            )),
            ..RouteMatch::default()
        }),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                ADMIN_CLUSTER.to_string(),
            )),
            // The whole path (not only the prefix): no other admin endpoint is reachable.
            regex_rewrite: Some(
                envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute {
                    pattern: Some(crate::xds::generate::envoy::regex("^.*$")),
                    substitution: stats_path.to_string(),
                },
            ),
            ..RouteAction::default()
        })),
        ..Route::default()
    };
    let hcm = HttpConnectionManager {
        stat_prefix: sanitize(&name),
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(
            RouteConfiguration {
                name: name.clone(),
                virtual_hosts: vec![VirtualHost {
                    name: name.clone(),
                    domains: vec!["*".to_string()],
                    routes: vec![route],
                    ..VirtualHost::default()
                }],
                ..RouteConfiguration::default()
            },
        )),
        http_filters: vec![router_filter()],
        ..HttpConnectionManager::default()
    };
    Listener {
        name,
        address: Some(socket(address, prom.port.unwrap_or(DEFAULT_PORT))),
        traffic_direction: TrafficDirection::Inbound as i32,
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
            }],
            ..FilterChain::default()
        }],
        ..Listener::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The stats path carries Kuma's default `usedonly`, the escaped filter, and
    // `text_readouts` last.
    #[test]
    fn stats_path_selection() {
        assert_eq!(stats_path(None), "/stats/prometheus?usedonly&text_readouts");
        let s = Sidecar {
            regex: Some("^server\\.(live|state)$".into()),
            include_unused: Some(true),
            ..Sidecar::default()
        };
        assert_eq!(
            stats_path(Some(&s)),
            "/stats/prometheus?filter=%5Eserver%5C.%28live%7Cstate%29%24&text_readouts"
        );
    }
}
