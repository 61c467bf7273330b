//! Prometheus metrics of KDS streams (`weft_kds_*`), the same on both sides, per
//! zone, direction and resource type:
//!
//! Types are KDS type names (`MeshTimeout`, `Dataplane`, ...).
//!
//! - `weft_kds_streams{zone,direction}`: open streams;
//! - `weft_kds_responses_total{zone,direction,type}`: delta responses sent (by the
//!   side that sends the direction's resources) or received;
//! - `weft_kds_acks_total`, `weft_kds_nacks_total{zone,direction,type}`;
//! - `weft_kds_bytes_total{zone,direction,type}`: encoded response bytes;
//! - `weft_kds_propagation_seconds{zone,direction}`: from a change being published
//!   by the sender's snapshot feed to the peer's ACK of the response carrying it
//!   (the peer ACKs after committing).

use crate::delta::driver::{ReceiverEvent, SenderEvent};
use crate::delta::{Sender, Verdict};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use tokio::time::Instant;

/// Which way a stream carries resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Direction {
    /// Meshes, secrets and policies (`GlobalToZoneSync`).
    global_to_zone,
    /// Dataplanes, ingresses and egresses (`ZoneToGlobalSync`).
    zone_to_global,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::global_to_zone => "global_to_zone",
            Direction::zone_to_global => "zone_to_global",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StreamLabels {
    pub zone: String,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TypeLabels {
    pub zone: String,
    pub direction: Direction,
    pub r#type: String,
}

fn propagation_histogram() -> Histogram {
    // 100 µs .. ~13 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

/// The KDS families; cheap to clone (the families are shared).
#[derive(Clone, Debug)]
pub struct KdsMetrics {
    streams: Family<StreamLabels, Gauge>,
    responses: Family<TypeLabels, Counter>,
    acks: Family<TypeLabels, Counter>,
    nacks: Family<TypeLabels, Counter>,
    bytes: Family<TypeLabels, Counter>,
    largest: Family<TypeLabels, Gauge>,
    propagation: Family<StreamLabels, Histogram, fn() -> Histogram>,
}

impl KdsMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = KdsMetrics {
            streams: Family::default(),
            responses: Family::default(),
            acks: Family::default(),
            nacks: Family::default(),
            bytes: Family::default(),
            largest: Family::default(),
            propagation: Family::new_with_constructor(propagation_histogram),
        };
        let sub = registry.sub_registry_with_prefix("weft_kds");
        sub.register("streams", "Open KDS streams", m.streams.clone());
        sub.register(
            "responses",
            "KDS delta responses sent or received",
            m.responses.clone(),
        );
        sub.register("acks", "KDS responses ACKed", m.acks.clone());
        sub.register(
            "nacks",
            "KDS responses NACKed (some resource rejected)",
            m.nacks.clone(),
        );
        sub.register("bytes", "Encoded KDS response bytes", m.bytes.clone());
        sub.register(
            "largest_response_bytes",
            "The largest encoded KDS response sent or received (DESIGN §5 bounds it at 1 MiB)",
            m.largest.clone(),
        );
        sub.register(
            "propagation_seconds",
            "From a change published by the sender's snapshot feed to the peer's ACK of it",
            m.propagation.clone(),
        );
        m
    }

    /// Counts an open stream until the returned value drops; it records the
    /// stream's responses, verdicts and latencies.
    pub fn stream(&self, zone: &str, direction: Direction) -> StreamMetrics {
        let labels = StreamLabels {
            zone: zone.to_string(),
            direction,
        };
        self.streams.get_or_create(&labels).inc();
        StreamMetrics {
            metrics: self.clone(),
            labels,
            in_flight: HashMap::new(),
        }
    }
}

impl KdsMetrics {
    fn record_largest(&self, labels: &TypeLabels, bytes: usize) {
        let g = self.largest.get_or_create(labels);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if g.get() < bytes {
            g.set(bytes);
        }
    }
}

impl Default for KdsMetrics {
    fn default() -> Self {
        Self::new(&mut Registry::default())
    }
}

/// One stream's view of [`KdsMetrics`].
#[derive(Debug)]
pub struct StreamMetrics {
    metrics: KdsMetrics,
    labels: StreamLabels,
    /// nonce → when the snapshot its response was built from was published.
    in_flight: HashMap<String, Instant>,
}

impl StreamMetrics {
    fn type_labels(&self, type_url: &str) -> TypeLabels {
        TypeLabels {
            zone: self.labels.zone.clone(),
            direction: self.labels.direction,
            r#type: type_url.to_string(),
        }
    }

    /// The sending side: what `driver::run_sender`'s `observe` sees.
    pub fn sender_event(&mut self, sender: &Sender, event: &SenderEvent) {
        match event {
            SenderEvent::Sent {
                type_url,
                nonce,
                bytes,
                ..
            } => {
                let labels = self.type_labels(type_url);
                self.metrics.responses.get_or_create(&labels).inc();
                self.metrics
                    .bytes
                    .get_or_create(&labels)
                    .inc_by(*bytes as u64);
                self.metrics.record_largest(&labels, *bytes);
                if let Some(published) = sender.snapshot().and_then(|s| s.published_at()) {
                    self.in_flight.insert(nonce.clone(), published);
                }
            }
            SenderEvent::Request(summary) => {
                let labels = self.type_labels(&summary.type_url);
                match &summary.verdict {
                    Some(Verdict::Ack { nonce }) => {
                        self.metrics.acks.get_or_create(&labels).inc();
                        if let Some(published) = self.in_flight.remove(nonce) {
                            self.metrics
                                .propagation
                                .get_or_create(&self.labels)
                                .observe(published.elapsed().as_secs_f64());
                        }
                    }
                    Some(Verdict::Nack { nonce, .. }) => {
                        self.metrics.nacks.get_or_create(&labels).inc();
                        self.in_flight.remove(nonce);
                    }
                    Some(Verdict::Stale { nonce }) => {
                        self.in_flight.remove(nonce);
                    }
                    None => {}
                }
            }
            SenderEvent::Error(_) | SenderEvent::Stalled(_) => {}
        }
    }

    /// The receiving side: what `driver::run_receiver_observed`'s `observe` sees.
    pub fn receiver_event(&self, event: &ReceiverEvent<'_>) {
        match event {
            ReceiverEvent::Received { type_url, bytes } => {
                let labels = self.type_labels(type_url);
                self.metrics.responses.get_or_create(&labels).inc();
                self.metrics
                    .bytes
                    .get_or_create(&labels)
                    .inc_by(*bytes as u64);
                self.metrics.record_largest(&labels, *bytes);
            }
            ReceiverEvent::Replied(reply) => {
                let labels = self.type_labels(reply.type_url());
                let verdicts = if reply.is_nack() {
                    &self.metrics.nacks
                } else {
                    &self.metrics.acks
                };
                verdicts.get_or_create(&labels).inc();
            }
        }
    }
}

impl Drop for StreamMetrics {
    fn drop(&mut self) {
        self.metrics.streams.get_or_create(&self.labels).dec();
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

    // A stream is counted while it is open, per zone and direction.
    #[test]
    fn streams_gauge_follows_lifetime() {
        let mut registry = Registry::default();
        let m = KdsMetrics::new(&mut registry);
        let s = m.stream("zone-a", Direction::global_to_zone);
        assert!(
            text(&registry)
                .contains(r#"weft_kds_streams{zone="zone-a",direction="global_to_zone"} 1"#),
            "{}",
            text(&registry)
        );
        drop(s);
        assert!(
            text(&registry)
                .contains(r#"weft_kds_streams{zone="zone-a",direction="global_to_zone"} 0"#)
        );
    }

    // A received response counts as a response and as an ACK or a NACK of its
    // type; the largest response's size is kept.
    #[test]
    fn received_counts_verdicts_per_type() {
        let mut registry = Registry::default();
        let m = KdsMetrics::new(&mut registry);
        let s = m.stream("zone-b", Direction::zone_to_global);
        let reply = |nack: bool| crate::delta::Reply {
            request: crate::delta::DeltaDiscoveryRequest {
                type_url: "Dataplane".into(),
                error_detail: nack.then(Default::default),
                ..Default::default()
            },
            rejected: vec![],
        };
        for (nack, bytes) in [(false, 120), (true, 80)] {
            s.receiver_event(&ReceiverEvent::Received {
                type_url: "Dataplane",
                bytes,
            });
            s.receiver_event(&ReceiverEvent::Replied(&reply(nack)));
        }
        let t = text(&registry);
        for line in [
            r#"weft_kds_responses_total{zone="zone-b",direction="zone_to_global",type="Dataplane"} 2"#,
            r#"weft_kds_bytes_total{zone="zone-b",direction="zone_to_global",type="Dataplane"} 200"#,
            r#"weft_kds_acks_total{zone="zone-b",direction="zone_to_global",type="Dataplane"} 1"#,
            r#"weft_kds_nacks_total{zone="zone-b",direction="zone_to_global",type="Dataplane"} 1"#,
            // the largest of the two, not the last
            r#"weft_kds_largest_response_bytes{zone="zone-b",direction="zone_to_global",type="Dataplane"} 120"#,
        ] {
            assert!(t.contains(line), "{line} missing in\n{t}");
        }
    }
}
