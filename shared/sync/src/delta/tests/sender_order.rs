//! Envoy's make-before-break order against a hand-played Envoy: endpoints follow
//! every cluster sent (the startup race of issue 9), listeners wait for the cluster
//! ACK, and a response stuck awaiting its ACK is reported.

use super::peer::Peer;
use super::*;
use std::time::Duration;

const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";

/// A client proxy's snapshot: EDS cluster `backend`, static `local`, one listener.
fn client(cluster: &str, endpoints: &str, listener: &str) -> Snapshot {
    snap(&[
        (CDS, &[("backend", cluster), ("local", "l1")]),
        (EDS, &[("backend", endpoints)]),
        (LDS, &[("outbound", listener)]),
    ])
}

fn types(rs: &[DeltaDiscoveryResponse]) -> Vec<&str> {
    rs.iter().map(|r| r.type_url.as_str()).collect()
}

#[test]
fn an_updated_cluster_gets_its_endpoints_again_even_when_envoy_has_them() {
    // Invariant: after a response carrying cluster X, the ClusterLoadAssignment X
    // goes out again (after it, without waiting for the cluster ACK), even when
    // Envoy already holds that version — Envoy warms an updated cluster only on a
    // fresh EDS response and withholds the cluster ACK (and so the listeners) until
    // then. The issue-9 sequence: the backend appears between CDS and EDS.
    let mut p = Peer::with(SenderConfig::envoy(), Some(client("tcp", "none", "tcp")));
    p.req(subscribe(CDS, &[]));
    let c1 = p.one();
    assert_eq!(sent(&c1), pairs(&[("backend", "tcp"), ("local", "l1")]));

    // The backend's sidecar registers: its cluster turns HTTP/2, it has an endpoint.
    p.s.set_snapshot(client("http2", "one", "http"));
    p.req(subscribe(EDS, &["backend"]));
    let e1 = p.one();
    assert_eq!(sent(&e1), pairs(&[("backend", "one")]));
    p.req(ack(&c1));
    let c2 = p.one();
    assert_eq!(sent(&c2), pairs(&[("backend", "http2")]));
    p.req(subscribe(LDS, &[]));
    p.none(); // EDS in flight; listeners wait for the cluster ACK.

    // Envoy ACKs the endpoints it applied to the old cluster; the new one is
    // warming, so the cluster ACK does not come until endpoints arrive again.
    p.req(ack(&e1));
    let e2 = p.one();
    assert_eq!(e2.type_url, EDS);
    assert_eq!(sent(&e2), pairs(&[("backend", "one")]));
    p.req(ack(&e2));
    p.none();
    p.req(ack(&c2));
    let l = p.one();
    assert_eq!(l.type_url, LDS);
    assert_eq!(sent(&l), pairs(&[("outbound", "http")]));
    p.req(ack(&l));
    p.none();
}

#[test]
fn endpoints_follow_their_cluster_in_the_same_poll_and_only_theirs() {
    // Invariant: with nothing of EDS in flight, a cluster-only change yields the
    // cluster, then the same-named endpoints (no other name), in one poll; a
    // cluster without endpoints (static) or a name Envoy did not subscribe to adds
    // nothing.
    let two = |cluster_a: &str| {
        snap(&[
            (CDS, &[("a", cluster_a), ("b", "b1"), ("local", "l1")]),
            (EDS, &[("a", "ea"), ("b", "eb"), ("c", "ec")]),
        ])
    };
    let mut p = Peer::with(SenderConfig::envoy(), Some(two("a1")));
    p.req(subscribe(CDS, &[]));
    let c = p.one();
    p.req(subscribe(EDS, &["a", "b"]));
    let e = p.one();
    assert_eq!(sent(&e), pairs(&[("a", "ea"), ("b", "eb")]));
    p.req(ack(&c));
    p.req(ack(&e));
    p.none();

    p.s.set_snapshot(two("a2"));
    let rs = p.poll();
    assert_eq!(types(&rs), vec![CDS, EDS]);
    assert_eq!(sent(&rs[0]), pairs(&[("a", "a2")]));
    assert_eq!(sent(&rs[1]), pairs(&[("a", "ea")]));
    p.req(ack(&rs[0]));
    p.req(ack(&rs[1]));
    p.none();

    // The static cluster changes: it has no endpoints, so only CDS goes.
    p.s.set_snapshot(snap(&[
        (CDS, &[("a", "a2"), ("b", "b1"), ("local", "l2")]),
        (EDS, &[("a", "ea"), ("b", "eb"), ("c", "ec")]),
    ]));
    let rs = p.poll();
    assert_eq!(types(&rs), vec![CDS]);
}

#[test]
fn resent_names_go_out_after_their_trigger_whatever_the_request_order() {
    // Invariant: a type listed in `resend_with` is sent after the response that
    // made it due, in the same poll, even when it was requested first.
    let config = SenderConfig {
        resend_with: [(MESH.to_string(), vec![TIMEOUT.to_string()])].into(),
        ..SenderConfig::default()
    };
    let mut p = Peer::with(
        config,
        Some(snap(&[(MESH, &[("x", "1")]), (TIMEOUT, &[("x", "t")])])),
    );
    p.req(subscribe(TIMEOUT, &["*"]));
    p.req(subscribe(MESH, &["*"]));
    let rs = p.poll();
    assert_eq!(types(&rs), vec![TIMEOUT, MESH]);
    for r in &rs {
        p.req(ack(r));
    }
    // TIMEOUT's first response went before MESH's: it goes again, after.
    let again = p.one();
    assert_eq!(
        (again.type_url.as_str(), sent(&again)),
        (TIMEOUT, pairs(&[("x", "t")]))
    );
    p.req(ack(&again));
    p.none();
    p.s.set_snapshot(snap(&[(MESH, &[("x", "2")]), (TIMEOUT, &[("x", "t")])]));
    let rs = p.poll();
    assert_eq!(types(&rs), vec![MESH, TIMEOUT]);
    assert_eq!(sent(&rs[1]), pairs(&[("x", "t")]));
}

#[test]
fn a_response_awaiting_its_ack_is_reported_once_as_a_stall() {
    // Invariant: a response unanswered for `stall_after` is reported exactly once,
    // naming what it carried and the types held back behind it; the sender's
    // deadline wakes the pump for it, and none is left once it is reported.
    let mut p = Peer::with(SenderConfig::envoy(), Some(client("c1", "e1", "l1")));
    let after = SenderConfig::DEFAULT_STALL_AFTER;
    let sent_at = p.now;
    p.req(subscribe(CDS, &[]));
    let c = p.one();
    p.req(subscribe(LDS, &[]));
    assert_eq!(p.s.next_deadline(), Some(sent_at + after));

    let early = p.s.poll(sent_at + after - Duration::from_millis(1));
    assert!(early.stalls.is_empty() && early.responses.is_empty());
    let out = p.s.poll(sent_at + after);
    assert_eq!(
        out.stalls,
        vec![Stall {
            type_url: CDS.into(),
            nonce: c.nonce.clone(),
            waited: after,
            names: vec!["backend".into(), "local".into()],
            holding: vec![LDS.into()],
        }]
    );
    assert!(
        out.stalls[0]
            .to_string()
            .contains("awaited its ACK for 5.0 s")
    );
    assert_eq!(p.s.next_deadline(), None);
    assert!(p.s.poll(sent_at + after * 3).stalls.is_empty());

    // Late ACK: the listeners go, and their own clock starts.
    p.now = sent_at + after * 3;
    p.req(ack(&c));
    let l = p.one();
    assert_eq!(l.type_url, LDS);
    assert_eq!(p.s.next_deadline(), Some(p.now + after));

    // `stall_after: None` never reports.
    let quiet = SenderConfig {
        stall_after: None,
        ..SenderConfig::envoy()
    };
    let mut q = Peer::with(quiet, Some(client("c1", "e1", "l1")));
    q.req(subscribe(CDS, &[]));
    q.one();
    assert_eq!(q.s.next_deadline(), None);
    assert!(q.s.poll(q.now + after * 10).stalls.is_empty());
}

#[test]
fn an_elapsed_backoff_of_a_held_type_is_no_deadline() {
    // Invariant: once a NACK back-off has elapsed, the sender stops reporting it as
    // its next deadline even while the type is held behind another (else the pump
    // would wake in a busy loop until the other type's ACK).
    let config = SenderConfig {
        stall_after: None,
        ..SenderConfig::envoy()
    };
    let mut p = Peer::with(config, Some(client("c1", "e1", "l1")));
    p.req(subscribe(CDS, &[]));
    let c = p.one();
    p.req(subscribe(LDS, &[]));
    p.req(ack(&c));
    let l = p.one();
    p.req(nack(&l, &[]));
    let backoff_end = p.s.next_deadline().expect("a back-off");
    // A cluster change goes out and awaits its ACK: the listeners are held.
    p.s.set_snapshot(client("c2", "e1", "l2"));
    assert_eq!(p.one().type_url, CDS);
    let later = backoff_end + Duration::from_secs(1);
    assert!(p.s.poll(later).responses.is_empty());
    assert_eq!(p.s.next_deadline(), None);
}
