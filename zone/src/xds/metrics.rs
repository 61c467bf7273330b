//! Prometheus metrics of the xDS server: Weft's `weft_xds_*`, and beside them
//! Kuma's names (decision 0018), labelled `zone` as Kuma labels them:
//!
//! - `xds_generation{proxy_type,result}`: milliseconds to generate one proxy's
//!   configuration (histogram, Kuma's default buckets); `proxy_type` `dataplane`,
//!   `ingress` or `egress`; `result` `changed` (a new snapshot was published) or
//!   `generated` (the same configuration came out). Kuma's `skip` (a periodic
//!   check found nothing to do) never happens: Weft generates on changes only.
//! - `xds_generation_errors`: failed generations (a counter without `_total`);
//! - `xds_snapshot_resources{resource_type}`: resources per type of each new
//!   snapshot (`Cluster`, `Listener`, ...);
//! - the ADS stream set of [`weft_sync::discovery_stats`] with prefix `xds`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;
use weft_runtime::kuma_metrics::{self, DEFAULT_BUCKETS, Unsuffixed};
use weft_sync::delta::Snapshot;
use weft_sync::discovery_stats::DiscoveryStats;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GenerationLabels {
    proxy_type: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResourceTypeLabel {
    resource_type: &'static str,
}

fn generation_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

fn snapshot_resources_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

/// Kuma's short names of the xDS types (its `xds_snapshot_resources` labels).
const SHORT_TYPE_NAMES: [(&str, &str); 8] = [
    ("envoy.config.endpoint.v3.ClusterLoadAssignment", "Endpoint"),
    ("envoy.config.cluster.v3.Cluster", "Cluster"),
    ("envoy.config.route.v3.RouteConfiguration", "Route"),
    (
        "envoy.config.route.v3.ScopedRouteConfiguration",
        "ScopedRoute",
    ),
    ("envoy.config.route.v3.VirtualHost", "VirtualHost"),
    ("envoy.config.listener.v3.Listener", "Listener"),
    ("envoy.extensions.transport_sockets.tls.v3.Secret", "Secret"),
    ("envoy.service.runtime.v3.Runtime", "Runtime"),
];

/// What a generation produced, for `xds_generation`'s `result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// A snapshot different from the last one was published.
    Changed,
    /// The configuration came out the same (or a newer one was already out).
    Same,
}

/// Kuma's xDS families.
#[derive(Clone, Debug)]
pub struct KumaXds {
    generation: Family<GenerationLabels, Histogram, fn() -> Histogram>,
    pub generation_errors: Unsuffixed,
    snapshot_resources: Family<ResourceTypeLabel, Histogram, fn() -> Histogram>,
    /// The ADS streams' set (`xds_streams_active`, `xds_responses_sent`, ...).
    pub streams: DiscoveryStats,
}

#[derive(Clone, Debug)]
pub struct XdsMetrics {
    /// Proxies with at least one open ADS stream.
    pub connected_proxies: Gauge,
    /// Open ADS streams (SotW and delta).
    pub streams: Gauge,
    /// Streams refused (bad node, failed admission, store errors).
    pub refused: Counter,
    pub responses: Counter,
    pub acks: Counter,
    pub nacks: Counter,
    /// Responses that awaited their ACK for `SenderConfig::stall_after` (each
    /// counted once; the zone logs a warning naming the proxy).
    pub stalls: Counter,
    /// Per-proxy generations, and those that failed (the last good snapshot stays).
    pub generations: Counter,
    pub generation_errors: Counter,
    pub generation_seconds: Histogram,
    /// The same facts under Kuma's names.
    pub kuma: KumaXds,
}

impl XdsMetrics {
    /// Registers `weft_xds_*`, and Kuma's xDS families with `zone="<kuma_zone>"`.
    pub fn new(registry: &mut Registry, kuma_zone: &str) -> Self {
        let kuma = {
            let scope = kuma_metrics::scope(registry, kuma_zone);
            let k = KumaXds {
                generation: Family::new_with_constructor(generation_histogram),
                generation_errors: Unsuffixed::default(),
                snapshot_resources: Family::new_with_constructor(snapshot_resources_histogram),
                streams: DiscoveryStats::new(scope, "xds"),
            };
            scope.register(
                "xds_generation",
                "Summary of XDS Snapshot generation, in milliseconds",
                k.generation.clone(),
            );
            scope.register(
                "xds_generation_errors",
                "Counter of errors during XDS generation",
                k.generation_errors.clone(),
            );
            scope.register(
                "xds_snapshot_resources",
                "Distribution of resource counts per xDS snapshot by resource type.",
                k.snapshot_resources.clone(),
            );
            k
        };
        let m = XdsMetrics {
            connected_proxies: Gauge::default(),
            streams: Gauge::default(),
            refused: Counter::default(),
            responses: Counter::default(),
            acks: Counter::default(),
            nacks: Counter::default(),
            stalls: Counter::default(),
            generations: Counter::default(),
            generation_errors: Counter::default(),
            generation_seconds: Histogram::new(exponential_buckets(0.000_01, 2.0, 16)),
            kuma,
        };
        let sub = registry.sub_registry_with_prefix("weft_xds");
        sub.register(
            "connected_proxies",
            "Proxies with an open ADS stream",
            m.connected_proxies.clone(),
        );
        sub.register("streams", "Open ADS streams", m.streams.clone());
        sub.register("refused", "ADS streams refused", m.refused.clone());
        sub.register("responses", "xDS responses sent", m.responses.clone());
        sub.register("acks", "xDS responses ACKed", m.acks.clone());
        sub.register(
            "nacks",
            "xDS responses NACKed (rejected by a proxy)",
            m.nacks.clone(),
        );
        sub.register(
            "stalls",
            "xDS responses that awaited their ACK for 5 s or more (a stuck proxy)",
            m.stalls.clone(),
        );
        sub.register(
            "generations",
            "Per-proxy configuration generations",
            m.generations.clone(),
        );
        sub.register(
            "generation_errors",
            "Generations that failed (the proxy keeps its last good configuration)",
            m.generation_errors.clone(),
        );
        sub.register(
            "generation_seconds",
            "Time to generate one proxy's configuration",
            m.generation_seconds.clone(),
        );
        m
    }
}

impl XdsMetrics {
    /// One proxy's generation: `took`, and what came out (`None`: it failed).
    pub fn generated(&self, proxy_type: &'static str, took: Duration, result: Option<Generated>) {
        self.generations.inc();
        self.generation_seconds.observe(took.as_secs_f64());
        let result = match result {
            Some(Generated::Changed) => "changed",
            Some(Generated::Same) => "generated",
            None => {
                self.generation_failed();
                return;
            }
        };
        self.kuma
            .generation
            .get_or_create(&GenerationLabels { proxy_type, result })
            .observe(took.as_secs_f64() * 1000.0);
    }

    /// A generation, or a part of one (a certificate), failed.
    pub fn generation_failed(&self) {
        self.generation_errors.inc();
        self.kuma.generation_errors.inc();
    }

    /// A new snapshot went out: its resources per type.
    pub fn published(&self, snapshot: &Snapshot) {
        for (suffix, short) in SHORT_TYPE_NAMES {
            let count = snapshot
                .type_urls()
                .filter(|t| t.ends_with(suffix))
                .filter_map(|t| snapshot.get(t))
                .map(|r| r.len())
                .sum::<usize>();
            if count > 0 {
                self.kuma
                    .snapshot_resources
                    .get_or_create(&ResourceTypeLabel {
                        resource_type: short,
                    })
                    .observe(count as f64);
            }
        }
    }
}

impl Default for XdsMetrics {
    fn default() -> Self {
        Self::new(&mut Registry::default(), "default")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).unwrap();
        out
    }

    // A generation moves Weft's and Kuma's series alike: Kuma's in milliseconds,
    // labelled by proxy type and result; a failure counts in both error counters.
    #[test]
    fn generation_moves_kuma_series() {
        let mut registry = Registry::default();
        let m = XdsMetrics::new(&mut registry, "east");
        m.generated(
            "dataplane",
            Duration::from_micros(2500),
            Some(Generated::Changed),
        );
        m.generated(
            "dataplane",
            Duration::from_micros(500),
            Some(Generated::Same),
        );
        m.generated("ingress", Duration::from_micros(100), None);
        let t = text(&registry);
        for line in [
            r#"xds_generation_count{zone="east",proxy_type="dataplane",result="changed"} 1"#,
            r#"xds_generation_sum{zone="east",proxy_type="dataplane",result="changed"} 2.5"#,
            r#"xds_generation_count{zone="east",proxy_type="dataplane",result="generated"} 1"#,
            r#"xds_generation_errors{zone="east"} 1"#,
            "weft_xds_generations_total 3",
            "weft_xds_generation_errors_total 1",
        ] {
            assert!(t.contains(line), "{line} missing in\n{t}");
        }
    }
}
