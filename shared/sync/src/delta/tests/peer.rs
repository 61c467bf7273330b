//! A scripted receiver's view of a real sender: requests in, responses out, a fake clock.

use super::*;
use std::time::Instant;

/// A sender plus a fake clock.
pub(super) struct Peer {
    pub s: Sender,
    pub now: Instant,
}

impl Peer {
    pub fn new(snapshot: Option<Snapshot>) -> Self {
        Self::with(SenderConfig::default(), snapshot)
    }

    pub fn with(config: SenderConfig, snapshot: Option<Snapshot>) -> Self {
        let mut s = Sender::new(config);
        if let Some(snap) = snapshot {
            s.set_snapshot(snap);
        }
        Peer {
            s,
            now: Instant::now(),
        }
    }

    pub fn req(&mut self, r: DeltaDiscoveryRequest) -> RequestSummary {
        self.s.on_request(&r, self.now).expect("request accepted")
    }

    pub fn poll(&mut self) -> Vec<DeltaDiscoveryResponse> {
        let out = self.s.poll(self.now);
        assert!(out.errors.is_empty(), "unexpected errors: {:?}", out.errors);
        out.responses
    }

    /// Exactly one response is due.
    pub fn one(&mut self) -> DeltaDiscoveryResponse {
        let mut rs = self.poll();
        assert_eq!(rs.len(), 1, "expected one response, got {rs:?}");
        rs.remove(0)
    }

    pub fn none(&mut self) {
        let rs = self.poll();
        assert!(rs.is_empty(), "expected no response, got {rs:?}");
    }

    pub fn stats(&self, t: &str) -> TypeStats {
        self.s.stats(t).cloned().unwrap_or_default()
    }
}
