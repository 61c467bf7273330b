//! The sender against a hand-played receiver (Envoy or a Weft zone).

use super::*;
use std::time::{Duration, Instant};

/// A sender plus a fake clock.
struct Peer {
    s: Sender,
    now: Instant,
}

impl Peer {
    fn new(snapshot: Option<Snapshot>) -> Self {
        Self::with(SenderConfig::default(), snapshot)
    }

    fn with(config: SenderConfig, snapshot: Option<Snapshot>) -> Self {
        let mut s = Sender::new(config);
        if let Some(snap) = snapshot {
            s.set_snapshot(snap);
        }
        Peer {
            s,
            now: Instant::now(),
        }
    }

    fn req(&mut self, r: DeltaDiscoveryRequest) -> RequestSummary {
        self.s.on_request(&r, self.now).expect("request accepted")
    }

    fn poll(&mut self) -> Vec<DeltaDiscoveryResponse> {
        let out = self.s.poll(self.now);
        assert!(out.errors.is_empty(), "unexpected errors: {:?}", out.errors);
        out.responses
    }

    /// Exactly one response is due.
    fn one(&mut self) -> DeltaDiscoveryResponse {
        let mut rs = self.poll();
        assert_eq!(rs.len(), 1, "expected one response, got {rs:?}");
        rs.remove(0)
    }

    fn none(&mut self) {
        let rs = self.poll();
        assert!(rs.is_empty(), "expected no response, got {rs:?}");
    }

    fn stats(&self, t: &str) -> TypeStats {
        self.s.stats(t).cloned().unwrap_or_default()
    }
}

#[test]
fn first_wildcard_response_is_sent_even_when_empty() {
    // A wildcard subscriber always gets a first response, so it can finish its initial sync.
    let mut p = Peer::new(Some(snap(&[])));
    let sum = p.req(subscribe(MESH, &["*"]));
    assert!(sum.first && sum.subscription_changed && sum.verdict.is_none());
    let r = p.one();
    assert_eq!(r.type_url, MESH);
    assert!(r.resources.is_empty() && r.removed_resources.is_empty());
    assert!(!r.nonce.is_empty());
    assert_eq!(r.system_version_info, "");
    p.req(ack(&r));
    p.none();
}

#[test]
fn legacy_empty_subscribe_is_wildcard() {
    // Envoy's first CDS/LDS request names nothing: that means every resource.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1")])])));
    p.req(subscribe(MESH, &[]));
    assert_eq!(p.s.is_wildcard(MESH), Some(true));
    let r = p.one();
    assert_eq!(sent(&r), pairs(&[("a", "1"), ("b", "1")]));
    assert_eq!(r.resources[0].resource, Some(any("1")));
}

#[test]
fn expect_subscribe_send_v1_expect_ack_then_only_changes() {
    // After an ACK the sent versions are known: only changed or new resources follow.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    assert_eq!(sent(&r1), pairs(&[("a", "1"), ("b", "1")]));
    assert!(p.s.known_versions(MESH).is_some_and(BTreeMap::is_empty));
    let v = p.req(ack(&r1)).verdict;
    assert_eq!(
        v,
        Some(Verdict::Ack {
            nonce: r1.nonce.clone()
        })
    );
    assert_eq!(
        p.s.known_versions(MESH),
        Some(&versions(&[("a", "1"), ("b", "1")]))
    );
    p.none();

    p.s.set_snapshot(snap(&[(MESH, &[("a", "1"), ("b", "2"), ("c", "1")])]));
    let r2 = p.one();
    assert_ne!(r2.nonce, r1.nonce);
    assert_eq!(sent(&r2), pairs(&[("b", "2"), ("c", "1")]));
    p.req(ack(&r2));
    p.none();
    let st = p.stats(MESH);
    assert_eq!((st.responses_sent, st.resources_sent, st.acks), (2, 4, 2));
    assert!(st.bytes_sent > 0 && st.largest_response > 0);
}

#[test]
fn one_response_in_flight_per_type() {
    // Nothing more for a type is sent until its in-flight response is ACKed or NACKed.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    p.s.set_snapshot(snap(&[(MESH, &[("a", "2")])]));
    p.none();
    assert_eq!(p.s.awaiting(MESH), Some(r1.nonce.as_str()));
    p.req(ack(&r1));
    let r2 = p.one();
    assert_eq!(sent(&r2), pairs(&[("a", "2")]));
}

#[test]
fn unchanged_snapshot_sends_nothing() {
    // Re-setting the same or an equal snapshot produces no response.
    let s = snap(&[(MESH, &[("a", "1")])]);
    let mut p = Peer::new(Some(s.clone()));
    p.req(subscribe(MESH, &["*"]));
    let r = p.one();
    p.req(ack(&r));
    p.s.set_snapshot(s);
    p.none();
    p.s.set_snapshot(snap(&[(MESH, &[("a", "1")])]));
    p.none();
    assert_eq!(p.stats(MESH).responses_sent, 1);
}

#[test]
fn envoy_nack_is_not_resent_until_the_resource_changes() {
    // A whole-response NACK marks every resource in it rejected at that version.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    p.req(ack(&r1));
    p.s.set_snapshot(snap(&[(MESH, &[("a", "bad")])]));
    let r2 = p.one();
    let Some(Verdict::Nack {
        rejected, reason, ..
    }) = p.req(nack(&r2, &[])).verdict
    else {
        panic!("expected a NACK verdict");
    };
    assert_eq!(rejected, vec!["a".to_string()]);
    assert!(reason.contains("Invalid duration"));
    // The receiver still holds v1; the bad version is never retried.
    assert_eq!(p.s.known_versions(MESH), Some(&versions(&[("a", "1")])));
    p.now += Duration::from_secs(60);
    p.none();
    // Another resource changing does not drag the rejected one along.
    p.s.set_snapshot(snap(&[(MESH, &[("a", "bad"), ("b", "1")])]));
    let r3 = p.one();
    assert_eq!(sent(&r3), pairs(&[("b", "1")]));
    p.req(ack(&r3));
    // A fixed version goes out.
    p.s.set_snapshot(snap(&[(MESH, &[("a", "fixed"), ("b", "1")])]));
    let r4 = p.one();
    assert_eq!(sent(&r4), pairs(&[("a", "fixed")]));
    let st = p.stats(MESH);
    assert_eq!((st.nacks, st.resources_rejected), (1, 1));
    assert_eq!(
        st.last_nack_reason.as_deref(),
        Some("Invalid duration: Expected positive duration")
    );
}

#[test]
fn weft_nack_naming_resources_commits_the_others() {
    // A NACK naming its rejections commits the rest of the response.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1"), ("c", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r = p.one();
    p.req(nack(&r, &["b"]));
    assert_eq!(
        p.s.known_versions(MESH),
        Some(&versions(&[("a", "1"), ("c", "1")]))
    );
    p.now += Duration::from_secs(60);
    p.none();
}

#[test]
fn nack_removals_stay_pending_when_whole_response_rejected() {
    // A whole-response NACK commits no removal either: it is sent again after the back-off.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    p.req(ack(&r1));
    p.s.set_snapshot(snap(&[(MESH, &[("a", "2")])]));
    let r2 = p.one();
    assert_eq!(r2.removed_resources, vec!["b".to_string()]);
    p.req(nack(&r2, &[]));
    p.none();
    p.now += Duration::from_secs(1);
    let r3 = p.one();
    assert!(r3.resources.is_empty());
    assert_eq!(r3.removed_resources, vec!["b".to_string()]);
}

#[test]
fn repeated_nacks_back_off_increasingly_without_blocking_other_types() {
    // Consecutive NACKs of a type double its delay; other types flow; an ACK resets it.
    let config = SenderConfig {
        nack_backoff_base: Duration::from_millis(100),
        nack_backoff_max: Duration::from_millis(350),
        ..SenderConfig::default()
    };
    let mut p = Peer::with(config, Some(snap(&[(MESH, &[("a", "0")]), (TIMEOUT, &[])])));
    let t0 = p.now;
    p.req(subscribe(MESH, &["*"]));
    p.req(subscribe(TIMEOUT, &["*"]));
    let rs = p.poll();
    assert_eq!(rs.len(), 2);
    let (m, t) = (&rs[0], &rs[1]);
    assert_eq!((m.type_url.as_str(), t.type_url.as_str()), (MESH, TIMEOUT));
    p.req(ack(t));

    let mut delays = Vec::new();
    let mut last = m.clone();
    for i in 1..=4 {
        let Some(Verdict::Nack { backoff, .. }) = p.req(nack(&last, &[])).verdict else {
            panic!("expected NACK");
        };
        delays.push(backoff);
        assert_eq!(p.s.next_deadline(), Some(p.now + backoff));
        // Meanwhile the other type is served at once.
        p.s.set_snapshot(snap(&[
            (MESH, &[("a", &i.to_string())]),
            (TIMEOUT, &[("t", &i.to_string())]),
        ]));
        let other = p.one();
        assert_eq!(other.type_url, TIMEOUT);
        p.req(ack(&other));
        p.now += backoff - Duration::from_millis(1);
        p.none();
        p.now += Duration::from_millis(1);
        last = p.one();
        assert_eq!(last.type_url, MESH);
    }
    let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, vec![100, 200, 350, 350]);
    p.req(ack(&last));
    assert_eq!(p.s.next_deadline(), None);
    p.s.set_snapshot(snap(&[(MESH, &[("a", "x")]), (TIMEOUT, &[("t", "4")])]));
    let r = p.one();
    let Some(Verdict::Nack { backoff, .. }) = p.req(nack(&r, &[])).verdict else {
        panic!("expected NACK");
    };
    assert_eq!(backoff, Duration::from_millis(100));
    assert!(p.now > t0);
}

#[test]
fn stale_nonce_is_ignored() {
    // An ACK/NACK for a nonce that is not awaited changes nothing.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    let mut old = ack(&r1);
    old.response_nonce = "no-such-nonce".into();
    assert_eq!(
        p.req(old.clone()).verdict,
        Some(Verdict::Stale {
            nonce: "no-such-nonce".into()
        })
    );
    let mut bad = nack(&r1, &[]);
    bad.response_nonce = "no-such-nonce".into();
    p.req(bad);
    assert_eq!(p.s.awaiting(MESH), Some(r1.nonce.as_str()));
    assert!(p.s.known_versions(MESH).is_some_and(BTreeMap::is_empty));
    p.req(ack(&r1));
    // Once answered, a repeat of the same nonce is stale too.
    assert!(matches!(
        p.req(ack(&r1)).verdict,
        Some(Verdict::Stale { .. })
    ));
    assert_eq!(p.stats(MESH).stale_nonces, 3);
    assert_eq!(p.stats(MESH).acks, 1);
}

#[test]
fn reconnect_with_initial_versions_sends_only_the_difference() {
    // Declared versions count as known: unchanged resources are not resent, gone ones are removed.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "2"), ("c", "1")])])));
    let mut first = subscribe(MESH, &["*"]);
    first.initial_resource_versions = [("a", "1"), ("b", "1"), ("gone", "1")]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    p.req(first);
    let r = p.one();
    assert_eq!(sent(&r), pairs(&[("b", "2"), ("c", "1")]));
    assert_eq!(r.removed_resources, vec!["gone".to_string()]);
    p.req(ack(&r));
    assert_eq!(
        p.s.known_versions(MESH),
        Some(&versions(&[("a", "1"), ("b", "2"), ("c", "1")]))
    );
}

#[test]
fn reconnect_already_in_sync_still_gets_an_empty_first_response() {
    // Even when nothing differs, the wildcard type's first response goes out (empty).
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1")])])));
    let mut first = subscribe(MESH, &["*"]);
    first.initial_resource_versions = [("a".to_string(), "1".to_string())].into();
    p.req(first);
    let r = p.one();
    assert!(r.resources.is_empty() && r.removed_resources.is_empty());
}

#[test]
fn initial_versions_only_count_on_the_first_request() {
    // A later request's initial_resource_versions is ignored.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r = p.one();
    p.req(DeltaDiscoveryRequest {
        initial_resource_versions: [("z".to_string(), "9".to_string())].into(),
        ..ack(&r)
    });
    assert_eq!(p.s.known_versions(MESH), Some(&versions(&[("a", "1")])));
}

#[test]
fn deleted_resources_are_removed() {
    // A known name that leaves the snapshot is sent in removed_resources, then forgotten on ACK.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    p.req(ack(&r1));
    p.s.set_snapshot(snap(&[(MESH, &[("a", "1")])]));
    let r2 = p.one();
    assert!(r2.resources.is_empty());
    assert_eq!(r2.removed_resources, vec!["b".to_string()]);
    p.req(ack(&r2));
    assert_eq!(p.s.known_versions(MESH), Some(&versions(&[("a", "1")])));
    // A type vanishing from the snapshot removes all of it.
    p.s.set_snapshot(snap(&[]));
    let r3 = p.one();
    assert_eq!(r3.removed_resources, vec!["a".to_string()]);
    assert_eq!(p.stats(MESH).removals_sent, 2);
}

#[test]
fn removed_names_the_receiver_never_acked_are_not_sent() {
    // A resource added and deleted before its ACK: nothing to remove at the receiver
    // (it never had it), but its in-flight send is still committed and then removed.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1")])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    p.s.set_snapshot(snap(&[(MESH, &[])]));
    p.req(ack(&r1));
    let r2 = p.one();
    assert_eq!(r2.removed_resources, vec!["a".to_string()]);
    p.req(ack(&r2));
    p.s.set_snapshot(snap(&[(MESH, &[("b", "1")])]));
    p.s.set_snapshot(snap(&[(MESH, &[])]));
    p.none();
}

#[test]
fn split_at_the_limit_each_part_awaits_its_ack() {
    // No response exceeds the limit; parts go one at a time and all but the last say more follows.
    let limit = 4096;
    let config = SenderConfig {
        max_message_bytes: limit,
        ..SenderConfig::default()
    };
    let content = "x".repeat(300);
    let items: Vec<(String, String)> = (0..100)
        .map(|i| (format!("r{i:03}"), content.clone()))
        .collect();
    let mut t = TypeResources::new();
    for (n, c) in &items {
        t.insert(n.as_str(), "v1", any(c));
    }
    let mut p = Peer::with(config, Some(Snapshot::new().with_type(MESH, t)));
    p.req(subscribe(MESH, &["*"]));
    let mut got = Vec::new();
    let mut parts = 0;
    loop {
        let r = p.one();
        parts += 1;
        assert!(prost::Message::encoded_len(&r) <= limit);
        assert!(!r.resources.is_empty());
        p.none();
        got.extend(r.resources.iter().map(|x| x.name.clone()));
        p.req(ack(&r));
        if r.system_version_info != MORE_FOLLOWS {
            break;
        }
    }
    assert!(parts >= 8, "expected a split, got {parts} parts");
    assert_eq!(
        got,
        items.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    );
    p.none();
    let st = p.stats(MESH);
    assert_eq!(st.responses_sent, parts);
    assert!(st.largest_response as usize <= limit);
}

#[test]
fn split_batch_is_closed_even_if_the_rest_vanished() {
    // If what remained of a split batch disappears, an empty closing response still ends it.
    let config = SenderConfig {
        max_message_bytes: 1024,
        ..SenderConfig::default()
    };
    let big = "y".repeat(400);
    let mut p = Peer::with(config, Some(snap(&[(MESH, &[("a", &big), ("b", &big)])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    assert_eq!(r1.system_version_info, MORE_FOLLOWS);
    assert_eq!(r1.resources.len(), 1);
    p.s.set_snapshot(snap(&[(MESH, &[("a", &big)])]));
    p.req(ack(&r1));
    let r2 = p.one();
    assert!(r2.resources.is_empty() && r2.removed_resources.is_empty());
    assert_eq!(r2.system_version_info, "");
}

#[test]
fn oversized_resource_is_reported_not_sent_and_not_retried() {
    // A resource too large for any message is an error for that resource only, once per version.
    let config = SenderConfig {
        max_message_bytes: 1024,
        ..SenderConfig::default()
    };
    let huge = "z".repeat(2000);
    let mut p = Peer::with(
        config,
        Some(snap(&[(MESH, &[("a", "1"), ("huge", &huge)])])),
    );
    p.req(subscribe(MESH, &["*"]));
    let out = p.s.poll(p.now);
    assert_eq!(out.responses.len(), 1);
    assert_eq!(sent(&out.responses[0]), pairs(&[("a", "1")]));
    let [
        DeltaError::ResourceTooLarge {
            name, size, limit, ..
        },
    ] = out.errors.as_slice()
    else {
        panic!("expected one size error, got {:?}", out.errors);
    };
    assert_eq!((name.as_str(), *limit), ("huge", 1024));
    assert!(*size > 2000);
    p.req(ack(&out.responses[0]));
    // Not retried while unchanged; a new version is tried (and fits).
    p.s.set_snapshot(snap(&[(MESH, &[("a", "2"), ("huge", &huge)])]));
    let r = p.one();
    assert_eq!(sent(&r), pairs(&[("a", "2")]));
    p.req(ack(&r));
    p.s.set_snapshot(snap(&[(MESH, &[("a", "2"), ("huge", "small")])]));
    let r = p.one();
    assert_eq!(sent(&r), pairs(&[("huge", "small")]));
    assert_eq!(p.stats(MESH).oversized_resources, 1);
}

#[test]
fn explicit_subscription_gets_only_named_resources() {
    // Explicit names (Envoy EDS/RDS) get those names only; a missing one is reported removed.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1"), ("c", "1")])])));
    p.req(subscribe(MESH, &["a", "nope"]));
    assert_eq!(p.s.is_wildcard(MESH), Some(false));
    let r = p.one();
    assert_eq!(sent(&r), pairs(&[("a", "1")]));
    assert_eq!(r.removed_resources, vec!["nope".to_string()]);
    p.req(ack(&r));
    // Changes to unsubscribed names are not sent.
    p.s.set_snapshot(snap(&[(MESH, &[("a", "1"), ("b", "2"), ("c", "1")])]));
    p.none();
}

#[test]
fn subscribe_later_sends_even_if_known_and_unsubscribe_stops_updates() {
    // A (re)subscribed name is always sent; an unsubscribed one is forgotten and no longer updated.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1")])])));
    p.req(subscribe(MESH, &["a"]));
    let r1 = p.one();
    p.req(ack(&r1));
    let sum = p.req(DeltaDiscoveryRequest {
        resource_names_subscribe: vec!["b".into(), "a".into()],
        ..subscribe(MESH, &[])
    });
    assert!(sum.subscription_changed && !sum.first);
    let r2 = p.one();
    assert_eq!(sent(&r2), pairs(&[("a", "1"), ("b", "1")]));
    p.req(ack(&r2));
    p.req(DeltaDiscoveryRequest {
        resource_names_unsubscribe: vec!["a".into()],
        ..subscribe(MESH, &[])
    });
    assert_eq!(p.s.known_versions(MESH), Some(&versions(&[("b", "1")])));
    p.s.set_snapshot(snap(&[(MESH, &[("a", "2"), ("b", "1")])]));
    p.none();
    let names: Vec<&str> =
        p.s.subscribed_names(MESH)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
    assert_eq!(names, vec!["b"]);
}

#[test]
fn unsubscribing_the_wildcard_keeps_only_named_resources() {
    // Dropping "*" forgets every resource not explicitly named.
    let mut p = Peer::new(Some(snap(&[(MESH, &[("a", "1"), ("b", "1")])])));
    p.req(subscribe(MESH, &["*", "a"]));
    let r = p.one();
    p.req(ack(&r));
    p.req(DeltaDiscoveryRequest {
        resource_names_unsubscribe: vec!["*".into()],
        ..subscribe(MESH, &[])
    });
    assert_eq!(p.s.is_wildcard(MESH), Some(false));
    assert_eq!(p.s.known_versions(MESH), Some(&versions(&[("a", "1")])));
    p.s.set_snapshot(snap(&[(MESH, &[("a", "1"), ("b", "2")])]));
    p.none();
}

#[test]
fn nothing_is_sent_before_the_first_snapshot() {
    // Without a snapshot a subscription waits; the snapshot's arrival answers it.
    let mut p = Peer::new(None);
    p.req(subscribe(MESH, &["*"]));
    p.none();
    p.s.set_snapshot(snap(&[(MESH, &[("a", "1")])]));
    let r = p.one();
    assert_eq!(sent(&r), pairs(&[("a", "1")]));
}

#[test]
fn types_never_requested_are_not_sent_and_order_follows_requests() {
    // Only requested types are served, in the order they were first requested.
    let mut p = Peer::new(Some(snap(&[
        (MESH, &[("a", "1")]),
        (TIMEOUT, &[("t", "1")]),
        ("Other", &[("o", "1")]),
    ])));
    p.req(subscribe(TIMEOUT, &["*"]));
    p.req(subscribe(MESH, &["*"]));
    let rs = p.poll();
    let types: Vec<&str> = rs.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(types, vec![TIMEOUT, MESH]);
    assert_eq!(p.s.type_urls().collect::<Vec<_>>(), vec![TIMEOUT, MESH]);
}

#[test]
fn node_and_control_plane_id() {
    // The first node seen is kept; responses carry the configured control-plane id.
    let config = SenderConfig {
        control_plane_id: Some("global".into()),
        ..SenderConfig::default()
    };
    let mut p = Peer::with(config, Some(snap(&[])));
    p.req(DeltaDiscoveryRequest {
        node: Some(Node {
            id: "zone-1".into(),
            ..Default::default()
        }),
        ..subscribe(MESH, &["*"])
    });
    p.req(DeltaDiscoveryRequest {
        node: Some(Node {
            id: "other".into(),
            ..Default::default()
        }),
        ..subscribe(TIMEOUT, &["*"])
    });
    assert_eq!(p.s.node().map(|n| n.id.as_str()), Some("zone-1"));
    let rs = p.poll();
    assert!(rs.iter().all(|r| {
        r.control_plane
            .as_ref()
            .is_some_and(|c| c.identifier == "global")
    }));
}

#[test]
fn request_without_type_is_an_error() {
    // A request with no type URL is refused, not guessed.
    let mut s = Sender::new(SenderConfig::default());
    let err = s.on_request(&DeltaDiscoveryRequest::default(), Instant::now());
    assert!(matches!(err, Err(DeltaError::MissingTypeUrl)));
}

#[test]
fn backoff_formula_doubles_and_caps() {
    // base·2^(n−1), capped, never overflowing.
    let c = SenderConfig::default();
    assert_eq!(c.nack_backoff(1), Duration::from_millis(500));
    assert_eq!(c.nack_backoff(2), Duration::from_secs(1));
    assert_eq!(c.nack_backoff(4), Duration::from_secs(4));
    assert_eq!(c.nack_backoff(100), Duration::from_secs(30));
    assert_eq!(c.nack_backoff(u32::MAX), Duration::from_secs(30));
}
