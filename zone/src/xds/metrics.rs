//! Prometheus metrics of the xDS server (`weft_xds_*`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
}

impl XdsMetrics {
    pub fn new(registry: &mut Registry) -> Self {
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

impl Default for XdsMetrics {
    fn default() -> Self {
        Self::new(&mut Registry::default())
    }
}
