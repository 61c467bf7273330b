//! Per-type counters of one stream's sender, for insights and metrics.

/// What one type's sender did on one stream. Plain data: copy it into a
/// DataplaneInsight / ZoneInsight or add it to Prometheus counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeStats {
    /// Responses sent (each awaits its own ACK or NACK).
    pub responses_sent: u64,
    /// Resources sent (added or changed), over all responses.
    pub resources_sent: u64,
    /// Names sent in `removed_resources`, over all responses.
    pub removals_sent: u64,
    /// Responses the receiver ACKed.
    pub acks: u64,
    /// Responses the receiver NACKed.
    pub nacks: u64,
    /// Resources named as rejected by NACKs (a NACK naming none rejects all it covered).
    pub resources_rejected: u64,
    /// Encoded bytes of all responses sent.
    pub bytes_sent: u64,
    /// Encoded size of the largest response sent.
    pub largest_response: u64,
    /// Requests whose nonce was not the one awaited (ignored as ACK/NACK).
    pub stale_nonces: u64,
    /// Resources that could not be sent because alone they exceed the message limit.
    pub oversized_resources: u64,
    /// The `error_detail.message` of the last NACK.
    pub last_nack_reason: Option<String>,
}
