//! What the metrics Weft serves under Kuma's names share (decision 0018).
//!
//! - Kuma registers every control-plane metric through a registerer that adds
//!   the label `zone`: the zone's name on a zone, `Global` on global.
//!   [`scope`] gives the sub-registry that does the same.
//! - Kuma's histograms mostly use the Prometheus client's default buckets
//!   ([`DEFAULT_BUCKETS`]), and several of them observe milliseconds.
//! - Kuma serves the Prometheus text format, where a counter may be named without
//!   `_total` (`xds_generation_errors`, `xds_responses_sent`); OpenMetrics, which
//!   `/metrics` answers, requires the suffix on counter samples. [`Unsuffixed`]
//!   keeps Kuma's series name by declaring the family `unknown` (valid
//!   OpenMetrics; PromQL's `rate` and `increase` work the same on it).

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::borrow::Cow;

/// The Prometheus client's default histogram buckets (`prometheus.DefBuckets`).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Kuma's `zone` label value: the zone's name (`default` when unnamed, Kuma's
/// default zone name), or `Global`.
pub fn zone_label(zone: Option<&str>, global: bool) -> String {
    if global {
        "Global".into()
    } else {
        zone.unwrap_or("default").into()
    }
}

/// A sub-registry of `registry` whose metrics carry `zone="<zone>"`, as every
/// metric of Kuma's control plane does.
pub fn scope<'a>(registry: &'a mut Registry, zone: &str) -> &'a mut Registry {
    registry.sub_registry_with_label((Cow::Borrowed("zone"), Cow::Owned(zone.to_string())))
}

/// A counter exposed under its own name, without `_total` (see the module
/// docs); cheap to clone (clones share the value).
#[derive(Debug, Clone, Default)]
pub struct Unsuffixed(Counter);

impl Unsuffixed {
    pub fn inc(&self) -> u64 {
        self.0.inc()
    }

    pub fn inc_by(&self, v: u64) -> u64 {
        self.0.inc_by(v)
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for Unsuffixed {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for Unsuffixed {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // An `unknown` sample is written as a gauge's is: the family name, no suffix.
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).unwrap();
        out
    }

    // An unsuffixed counter keeps Kuma's series name, alone or in a family, and
    // the scope adds Kuma's `zone` label.
    #[test]
    fn unsuffixed_counter_keeps_the_name() {
        let mut registry = Registry::default();
        let kuma = scope(&mut registry, "east");
        let errors = Unsuffixed::default();
        kuma.register("xds_generation_errors", "errors", errors.clone());
        let sent = Family::<Vec<(String, String)>, Unsuffixed>::default();
        kuma.register("xds_responses_sent", "responses", sent.clone());
        errors.inc();
        errors.inc();
        sent.get_or_create(&vec![("type_url".into(), "t".into())])
            .inc();
        let t = text(&registry);
        assert!(t.contains("# TYPE xds_generation_errors unknown\n"), "{t}");
        assert!(
            t.contains("xds_generation_errors{zone=\"east\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("xds_responses_sent{zone=\"east\",type_url=\"t\"} 1\n"),
            "{t}"
        );
        assert!(!t.contains("_total"), "{t}");
    }

    // The label value is Kuma's: the zone's name, `default` unnamed, `Global`.
    #[test]
    fn zone_label_values() {
        assert_eq!(zone_label(Some("east"), false), "east");
        assert_eq!(zone_label(None, false), "default");
        assert_eq!(zone_label(None, true), "Global");
    }
}
