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
//!
//! Beside them, Kuma's KDS metrics under Kuma's names (decision 0018), with
//! Kuma's `zone` label (the zone's name, or `Global`):
//!
//! - on the side that sends a direction's resources (global for
//!   `global_to_zone`, the zone for `zone_to_global`), Kuma's delta-server set:
//!   `kds_delta_streams_active`, `kds_delta_responses_sent{type_url}`,
//!   `kds_delta_responses_sent_bytes{type_url}`,
//!   `kds_delta_requests_received{type_url,confirmation,error_type}`,
//!   `kds_delta_delivery` (ms), `kds_delta_generation{reason,result,zone_name}`
//!   (ms: taking in a new snapshot and building the responses due from it;
//!   `reason` `resync` for a stream's first snapshot, `event` after; `result`
//!   `changed` or `no_changes`) and `kds_delta_generation_errors` (a resource
//!   that could not be sent);
//! - on global only: `kds_zone_active_connections{zone_name}` (both directions'
//!   streams) and `kds_nack_total{zone_name,resource_type}` (NACKs global sends
//!   for what a zone reported).

use crate::delta::driver::{ReceiverEvent, SenderEvent};
use crate::delta::{Sender, Verdict};
use crate::discovery_stats::{Answer, DiscoveryStats, StreamStats};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use tokio::time::Instant;
use weft_runtime::kuma_metrics::{self, DEFAULT_BUCKETS, Unsuffixed};

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

/// Which control plane serves the metrics: it decides which side of each
/// direction it is, and Kuma's `zone` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    Global,
    /// A zone, by name (`None`: unnamed).
    Zone(Option<String>),
}

impl Side {
    /// Whether this side sends the resources of `direction` (Kuma's delta server).
    fn sends(&self, direction: Direction) -> bool {
        matches!(
            (self, direction),
            (Side::Global, Direction::global_to_zone) | (Side::Zone(_), Direction::zone_to_global)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GenerationLabels {
    reason: &'static str,
    result: &'static str,
    zone_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ZoneName {
    zone_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ZoneNack {
    zone_name: String,
    resource_type: String,
}

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

/// Kuma's KDS families (see the module docs).
#[derive(Clone, Debug)]
struct KumaKds {
    side: Side,
    delta: DiscoveryStats,
    generation: Family<GenerationLabels, Histogram, fn() -> Histogram>,
    generation_errors: Unsuffixed,
    /// Global only.
    zone_connections: Family<ZoneName, Gauge>,
    zone_nacks: Family<ZoneNack, Counter>,
}

impl KumaKds {
    fn new(registry: &mut Registry, side: Side) -> Self {
        let zone = match &side {
            Side::Global => kuma_metrics::zone_label(None, true),
            Side::Zone(name) => kuma_metrics::zone_label(name.as_deref(), false),
        };
        let kuma = kuma_metrics::scope(registry, &zone);
        let k = KumaKds {
            delta: DiscoveryStats::new(kuma, "kds_delta"),
            generation: Family::new_with_constructor(default_histogram),
            generation_errors: Unsuffixed::default(),
            zone_connections: Family::default(),
            zone_nacks: Family::default(),
            side,
        };
        kuma.register(
            "kds_delta_generation",
            "Summary of KDS Snapshot generation, in milliseconds",
            k.generation.clone(),
        );
        kuma.register(
            "kds_delta_generation_errors",
            "Counter of errors during KDS generation",
            k.generation_errors.clone(),
        );
        if k.side == Side::Global {
            kuma.register(
                "kds_zone_active_connections",
                "Number of active KDS streams per zone.",
                k.zone_connections.clone(),
            );
            kuma.register(
                "kds_nack",
                "Total KDS NACKs sent by zone and resource type.",
                k.zone_nacks.clone(),
            );
        }
        k
    }
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
    kuma: KumaKds,
}

impl KdsMetrics {
    /// Registers Weft's `weft_kds_*` and Kuma's KDS families in `registry`.
    pub fn new(registry: &mut Registry, side: Side) -> Self {
        let m = KdsMetrics {
            streams: Family::default(),
            responses: Family::default(),
            acks: Family::default(),
            nacks: Family::default(),
            bytes: Family::default(),
            largest: Family::default(),
            propagation: Family::new_with_constructor(propagation_histogram),
            kuma: KumaKds::new(registry, side),
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
        let kuma = &self.kuma;
        let delta = kuma.side.sends(direction).then(|| kuma.delta.stream());
        if kuma.side == Side::Global {
            kuma.zone_connections
                .get_or_create(&ZoneName {
                    zone_name: zone.to_string(),
                })
                .inc();
        }
        StreamMetrics {
            metrics: self.clone(),
            labels,
            in_flight: HashMap::new(),
            delta,
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
        Self::new(&mut Registry::default(), Side::Zone(None))
    }
}

/// One stream's view of [`KdsMetrics`].
#[derive(Debug)]
pub struct StreamMetrics {
    metrics: KdsMetrics,
    labels: StreamLabels,
    /// nonce → when the snapshot its response was built from was published.
    in_flight: HashMap<String, Instant>,
    /// Kuma's delta-server view, on the side that sends.
    delta: Option<StreamStats>,
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
                let published = sender.snapshot().and_then(|s| s.published_at());
                if let Some(published) = published {
                    self.in_flight.insert(nonce.clone(), published);
                }
                if let Some(delta) = &mut self.delta {
                    delta.sent(type_url, nonce, *bytes, published);
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
                        if let Some(delta) = &mut self.delta {
                            delta.answered(&summary.type_url, Answer::Ack { nonce });
                        }
                    }
                    Some(Verdict::Nack { nonce, .. }) => {
                        self.metrics.nacks.get_or_create(&labels).inc();
                        self.in_flight.remove(nonce);
                        if let Some(delta) = &mut self.delta {
                            delta.answered(&summary.type_url, Answer::Nack { nonce });
                        }
                    }
                    Some(Verdict::Stale { nonce }) => {
                        self.in_flight.remove(nonce);
                        if let Some(delta) = &mut self.delta {
                            delta.superseded(nonce);
                        }
                    }
                    None => {}
                }
            }
            SenderEvent::Error(_) => {
                if self.delta.is_some() {
                    self.metrics.kuma.generation_errors.inc();
                }
            }
            SenderEvent::Generated {
                took,
                changed,
                first,
            } => {
                if self.delta.is_some() {
                    let labels = GenerationLabels {
                        reason: if *first { "resync" } else { "event" },
                        result: if *changed { "changed" } else { "no_changes" },
                        zone_name: self.labels.zone.clone(),
                    };
                    self.metrics
                        .kuma
                        .generation
                        .get_or_create(&labels)
                        .observe(took.as_secs_f64() * 1000.0);
                }
            }
            SenderEvent::Stalled(_) => {}
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
                if reply.is_nack() && self.metrics.kuma.side == Side::Global {
                    self.metrics
                        .kuma
                        .zone_nacks
                        .get_or_create(&ZoneNack {
                            zone_name: self.labels.zone.clone(),
                            resource_type: reply.type_url().to_string(),
                        })
                        .inc();
                }
            }
        }
    }
}

impl Drop for StreamMetrics {
    fn drop(&mut self) {
        self.metrics.streams.get_or_create(&self.labels).dec();
        if self.metrics.kuma.side == Side::Global {
            self.metrics
                .kuma
                .zone_connections
                .get_or_create(&ZoneName {
                    zone_name: self.labels.zone.clone(),
                })
                .dec();
        }
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
        let m = KdsMetrics::new(&mut registry, Side::Global);
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
        let m = KdsMetrics::new(&mut registry, Side::Global);
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

    // Kuma's names on global: a stream to a zone counts as a zone connection and
    // a delta stream; a generation, a sent response and its ACK move Kuma's
    // series; a resource that cannot be sent counts as a generation error.
    #[tokio::test]
    async fn kuma_names_on_global() {
        let mut registry = Registry::default();
        let m = KdsMetrics::new(&mut registry, Side::Global);
        let sender = Sender::new(crate::delta::SenderConfig::default());
        let mut down = m.stream("zone-a", Direction::global_to_zone);
        let up = m.stream("zone-a", Direction::zone_to_global);
        down.sender_event(
            &sender,
            &SenderEvent::Generated {
                took: std::time::Duration::from_micros(1500),
                changed: true,
                first: true,
            },
        );
        down.sender_event(
            &sender,
            &SenderEvent::Sent {
                type_url: "Mesh".into(),
                nonce: "1".into(),
                resources: 1,
                removed: 0,
                bytes: 300,
            },
        );
        down.sender_event(
            &sender,
            &SenderEvent::Request(crate::delta::RequestSummary {
                type_url: "Mesh".into(),
                first: false,
                subscription_changed: false,
                verdict: Some(Verdict::Ack { nonce: "1".into() }),
            }),
        );
        down.sender_event(
            &sender,
            &SenderEvent::Error(crate::delta::DeltaError::MissingTypeUrl),
        );
        let t = text(&registry);
        for line in [
            r#"kds_zone_active_connections{zone="Global",zone_name="zone-a"} 2"#,
            // only global_to_zone is global's to send
            r#"kds_delta_streams_active{zone="Global"} 1"#,
            r#"kds_delta_generation_count{zone="Global",reason="resync",result="changed",zone_name="zone-a"} 1"#,
            r#"kds_delta_generation_sum{zone="Global",reason="resync",result="changed",zone_name="zone-a"} 1.5"#,
            r#"kds_delta_responses_sent{zone="Global",type_url="Mesh"} 1"#,
            r#"kds_delta_requests_received{zone="Global",type_url="Mesh",confirmation="ACK",error_type="no_error"} 1"#,
            r#"kds_delta_generation_errors{zone="Global"} 1"#,
        ] {
            assert!(t.contains(line), "{line} missing in\n{t}");
        }
        drop((down, up));
        let t = text(&registry);
        assert!(
            t.contains(r#"kds_zone_active_connections{zone="Global",zone_name="zone-a"} 0"#),
            "{t}"
        );
        assert!(
            t.contains(r#"kds_delta_streams_active{zone="Global"} 0"#),
            "{t}"
        );
    }

    // On a zone, the zone_to_global stream is the one it sends: Kuma's delta set
    // counts it; global-only families are absent.
    #[test]
    fn kuma_names_on_a_zone() {
        let mut registry = Registry::default();
        let m = KdsMetrics::new(&mut registry, Side::Zone(Some("east".into())));
        let _down = m.stream("east", Direction::global_to_zone);
        let _up = m.stream("east", Direction::zone_to_global);
        let t = text(&registry);
        assert!(
            t.contains(r#"kds_delta_streams_active{zone="east"} 1"#),
            "{t}"
        );
        assert!(!t.contains("kds_zone_active_connections"), "{t}");
    }
}
