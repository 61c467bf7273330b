//! Kuma's per-discovery-service metrics, under Kuma's names (decision 0018): what
//! Kuma's go-control-plane stats callbacks record for its xDS server (prefix
//! `xds`) and for the side that sends KDS resources (prefix `kds_delta`).
//!
//! - `<prefix>_streams_active`: open streams (gauge);
//! - `<prefix>_responses_sent{type_url}`: responses sent (counter, no `_total`);
//! - `<prefix>_responses_sent_bytes{type_url}`: their encoded size (histogram,
//!   1 KiB .. 32 MiB buckets);
//! - `<prefix>_requests_received{type_url,confirmation,error_type}`: requests that
//!   answer a response, `ACK` (`error_type="no_error"`) or `NACK`
//!   (`error_type="other"`; Kuma's `user` is a Kubernetes webhook failure);
//! - `<prefix>_delivery`: milliseconds from the configuration being ready (the
//!   snapshot published) to the peer's ACK or NACK of the response carrying it
//!   (histogram, default buckets).
//!
//! Labels are bounded: type URLs, two confirmations, two error types; no
//! per-peer label.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use tokio::time::Instant;
use weft_runtime::kuma_metrics::{DEFAULT_BUCKETS, Unsuffixed};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TypeUrl {
    type_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Confirmation {
    type_url: String,
    confirmation: &'static str,
    error_type: &'static str,
}

fn bytes_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1024.0, 2.0, 16))
}

fn delivery_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

/// One discovery service's families; cheap to clone (clones share them).
#[derive(Clone, Debug)]
pub struct DiscoveryStats {
    streams_active: Gauge,
    responses_sent: Family<TypeUrl, Unsuffixed>,
    response_bytes: Family<TypeUrl, Histogram, fn() -> Histogram>,
    requests_received: Family<Confirmation, Unsuffixed>,
    delivery: Histogram,
}

/// How a request answered the response it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    Ack { nonce: &'a str },
    Nack { nonce: &'a str },
}

/// At most this many responses await their answer per stream; past it the
/// oldest timings are forgotten (the delivery metric misses them, nothing else).
const MAX_IN_FLIGHT: usize = 1024;

impl DiscoveryStats {
    /// Registers `<prefix>_*` in `registry` (give it Kuma's `zone` scope).
    pub fn new(registry: &mut Registry, prefix: &str) -> Self {
        let s = DiscoveryStats {
            streams_active: Gauge::default(),
            responses_sent: Family::default(),
            response_bytes: Family::new_with_constructor(bytes_histogram),
            requests_received: Family::default(),
            delivery: delivery_histogram(),
        };
        registry.register(
            format!("{prefix}_streams_active"),
            "Number of active connections between a server and a client",
            s.streams_active.clone(),
        );
        registry.register(
            format!("{prefix}_responses_sent"),
            "Number of responses sent by the server to a client",
            s.responses_sent.clone(),
        );
        registry.register(
            format!("{prefix}_responses_sent_bytes"),
            "Size in bytes of DiscoveryResponse messages sent by the server",
            s.response_bytes.clone(),
        );
        registry.register(
            format!("{prefix}_requests_received"),
            "Number of confirmations requests from a client",
            s.requests_received.clone(),
        );
        registry.register(
            format!("{prefix}_delivery"),
            "Summary of config delivery including a response (ACK/NACK) from the client, in milliseconds",
            s.delivery.clone(),
        );
        s
    }

    /// Counts an open stream until the returned value drops.
    pub fn stream(&self) -> StreamStats {
        self.streams_active.inc();
        StreamStats {
            stats: self.clone(),
            in_flight: HashMap::new(),
        }
    }
}

/// One stream's view of [`DiscoveryStats`].
#[derive(Debug)]
pub struct StreamStats {
    stats: DiscoveryStats,
    /// nonce → when the snapshot its response was built from was published.
    in_flight: HashMap<String, Instant>,
}

impl StreamStats {
    /// A response went out: `bytes` encoded, built from a snapshot published at
    /// `published` (when known).
    pub fn sent(&mut self, type_url: &str, nonce: &str, bytes: usize, published: Option<Instant>) {
        let labels = TypeUrl {
            type_url: type_url.to_string(),
        };
        self.stats.responses_sent.get_or_create(&labels).inc();
        self.stats
            .response_bytes
            .get_or_create(&labels)
            .observe(bytes as f64);
        if let Some(at) = published {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                self.in_flight.clear();
            }
            self.in_flight.insert(nonce.to_string(), at);
        }
    }

    /// A request answered a response of this stream.
    pub fn answered(&mut self, type_url: &str, answer: Answer<'_>) {
        let (nonce, confirmation, error_type) = match answer {
            Answer::Ack { nonce } => (nonce, "ACK", "no_error"),
            Answer::Nack { nonce } => (nonce, "NACK", "other"),
        };
        self.stats
            .requests_received
            .get_or_create(&Confirmation {
                type_url: type_url.to_string(),
                confirmation,
                error_type,
            })
            .inc();
        if let Some(at) = self.in_flight.remove(nonce) {
            self.stats
                .delivery
                .observe(at.elapsed().as_secs_f64() * 1000.0);
        }
    }

    /// A request named a response no longer awaited: its timing is dropped.
    pub fn superseded(&mut self, nonce: &str) {
        self.in_flight.remove(nonce);
    }
}

impl Drop for StreamStats {
    fn drop(&mut self) {
        self.stats.streams_active.dec();
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

    // A stream counts while open; a response and its ACK move the response,
    // request and delivery series, under Kuma's names and labels.
    #[tokio::test(start_paused = true)]
    async fn response_ack_and_delivery() {
        let mut registry = Registry::default();
        let stats = DiscoveryStats::new(&mut registry, "xds");
        let mut stream = stats.stream();
        assert!(text(&registry).contains("xds_streams_active 1\n"));
        let published = Instant::now();
        tokio::time::advance(std::time::Duration::from_millis(3)).await;
        stream.sent(
            "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "1",
            2048,
            Some(published),
        );
        tokio::time::advance(std::time::Duration::from_millis(4)).await;
        stream.answered(
            "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            Answer::Ack { nonce: "1" },
        );
        stream.sent("t2", "2", 10, None);
        stream.answered("t2", Answer::Nack { nonce: "2" });
        let t = text(&registry);
        for line in [
            r#"xds_responses_sent{type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster"} 1"#,
            r#"xds_responses_sent_bytes_sum{type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster"} 2048.0"#,
            r#"xds_requests_received{type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster",confirmation="ACK",error_type="no_error"} 1"#,
            r#"xds_requests_received{type_url="t2",confirmation="NACK",error_type="other"} 1"#,
            // 7 ms from publication to the ACK: one observation, in milliseconds
            "xds_delivery_sum 7.0",
            "xds_delivery_count 1",
        ] {
            assert!(t.contains(line), "{line} missing in\n{t}");
        }
        drop(stream);
        assert!(text(&registry).contains("xds_streams_active 0\n"));
    }
}
