//! The sender against a hand-played receiver: subscriptions, ACKs, reconnects, removals.

use super::peer::Peer;
use super::*;
use std::time::Instant;

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
fn waits_for_holds_a_type_until_its_dependency_is_acked() {
    // Make-before-break: with TIMEOUT waiting for MESH, a TIMEOUT change waits
    // while a MESH response is in flight, and goes out once that is ACKed.
    let config = SenderConfig {
        waits_for: [(TIMEOUT.to_string(), vec![MESH.to_string()])].into(),
        ..SenderConfig::default()
    };
    let mut p = Peer::with(
        config,
        Some(snap(&[(MESH, &[("m", "1")]), (TIMEOUT, &[("t", "1")])])),
    );
    // TIMEOUT subscribed first: the send order still follows the configuration.
    p.req(subscribe(TIMEOUT, &["*"]));
    p.req(subscribe(MESH, &["*"]));
    let mesh = p.one();
    assert_eq!(mesh.type_url, MESH);
    p.none();
    p.req(ack(&mesh));
    let timeout = p.one();
    assert_eq!(timeout.type_url, TIMEOUT);
    p.req(ack(&timeout));
    p.none();

    // Both change: the earlier type goes first again, alone.
    p.s.set_snapshot(snap(&[(MESH, &[("m", "2")]), (TIMEOUT, &[("t", "2")])]));
    let mesh = p.one();
    assert_eq!(mesh.type_url, MESH);
    p.req(ack(&mesh));
    assert_eq!(p.one().type_url, TIMEOUT);

    // Types that wait for nothing are never held.
    let free = SenderConfig {
        waits_for: [(TIMEOUT.to_string(), vec![])].into(),
        ..SenderConfig::default()
    };
    let mut q = Peer::with(
        free,
        Some(snap(&[(MESH, &[("m", "1")]), (TIMEOUT, &[("t", "1")])])),
    );
    q.req(subscribe(MESH, &["*"]));
    q.req(subscribe(TIMEOUT, &["*"]));
    assert_eq!(q.poll().len(), 2);
}
