#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use envoy_types::pb::google::rpc::Status as RpcStatus;

const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

fn any(v: &str) -> Any {
    Any {
        type_url: "t".into(),
        value: v.as_bytes().to_vec(),
    }
}

fn snapshot(clusters: &[(&str, &str)], endpoints: &[(&str, &str)]) -> Snapshot {
    let mut c = TypeResources::new();
    for (n, v) in clusters {
        c.insert(*n, *v, any(v));
    }
    let mut e = TypeResources::new();
    for (n, v) in endpoints {
        e.insert(*n, *v, any(v));
    }
    Snapshot::new().with_type(CLUSTER_TYPE, c).with_type(EDS, e)
}

fn req(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: type_url.into(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

fn nack(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        error_detail: Some(RpcStatus {
            code: 3,
            message: "bad cluster".into(),
            details: vec![],
        }),
        ..req(type_url, names, version, nonce)
    }
}

fn sender() -> SotwSender {
    SotwSender::new(SenderConfig::default())
}

#[test]
fn full_state_first_response_then_only_changes() {
    // CDS carries every cluster whatever was asked; after the ACK nothing is resent until the content changes.
    let now = Instant::now();
    let mut s = sender();
    s.set_snapshot(snapshot(&[("a", "1"), ("b", "1")], &[]));
    s.on_request(&req(CLUSTER_TYPE, &["a"], "", ""), now)
        .unwrap();
    let out = s.poll(now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].resources.len(), 2);
    let (v1, n1) = (out[0].version_info.clone(), out[0].nonce.clone());
    assert!(s.poll(now).is_empty(), "one response in flight per type");
    let r = s
        .on_request(&req(CLUSTER_TYPE, &[], &v1, &n1), now)
        .unwrap();
    assert_eq!(r.verdict, Some(SotwVerdict::Ack { nonce: n1 }));
    assert!(s.poll(now).is_empty());
    s.set_snapshot(snapshot(&[("a", "1"), ("b", "1")], &[("x", "1")]));
    assert!(
        s.poll(now).is_empty(),
        "an EDS-only change does not resend CDS"
    );
    s.set_snapshot(snapshot(&[("a", "2"), ("b", "1")], &[]));
    let out = s.poll(now);
    assert_eq!(out.len(), 1);
    assert_ne!(out[0].version_info, v1);
}

#[test]
fn eds_answers_requested_names_only() {
    // EDS carries the requested names that exist; asking for more names sends again.
    let now = Instant::now();
    let mut s = sender();
    s.set_snapshot(snapshot(&[], &[("x", "1"), ("y", "1"), ("z", "1")]));
    s.on_request(&req(EDS, &["x", "missing"], "", ""), now)
        .unwrap();
    let out = s.poll(now);
    assert_eq!(out[0].resources, vec![any("1")]);
    let (v, n) = (out[0].version_info.clone(), out[0].nonce.clone());
    s.on_request(&req(EDS, &["x", "y"], &v, &n), now).unwrap();
    let out = s.poll(now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].resources.len(), 2);
    let (v2, n2) = (out[0].version_info.clone(), out[0].nonce.clone());
    s.on_request(&req(EDS, &["x", "y"], &v2, &n2), now).unwrap();
    // A change to an endpoint nobody asked for sends nothing.
    s.set_snapshot(snapshot(&[], &[("x", "1"), ("y", "1"), ("z", "2")]));
    assert!(s.poll(now).is_empty());
    // `*` asks for everything.
    s.on_request(&req(EDS, &["*"], &v2, ""), now).unwrap();
    assert_eq!(s.poll(now)[0].resources.len(), 3);
}

#[test]
fn nack_is_not_resent_and_backs_off() {
    // A NACKed version is never resent; a new version waits out the back-off.
    let now = Instant::now();
    let mut s = sender();
    s.set_snapshot(snapshot(&[("a", "1")], &[]));
    s.on_request(&req(CLUSTER_TYPE, &[], "", ""), now).unwrap();
    let out = s.poll(now);
    let (v1, n1) = (out[0].version_info.clone(), out[0].nonce.clone());
    s.on_request(&req(CLUSTER_TYPE, &[], &v1, &n1), now)
        .unwrap();
    s.set_snapshot(snapshot(&[("a", "2")], &[]));
    let out = s.poll(now);
    let n2 = out[0].nonce.clone();
    let r = s
        .on_request(&nack(CLUSTER_TYPE, &[], &v1, &n2), now)
        .unwrap();
    let Some(SotwVerdict::Nack {
        backoff, reason, ..
    }) = r.verdict
    else {
        panic!("expected a NACK, got {:?}", r.verdict);
    };
    assert_eq!(reason, "bad cluster");
    assert_eq!(s.held_version(CLUSTER_TYPE), Some(v1.as_str()));
    let later = now + backoff * 4;
    assert!(
        s.poll(later).is_empty(),
        "the rejected version is not resent"
    );
    assert_eq!(
        s.next_deadline(),
        None,
        "an elapsed back-off is no deadline (the pump would wake in a busy loop)"
    );
    s.set_snapshot(snapshot(&[("a", "3")], &[]));
    let out = s.poll(later);
    assert_eq!(out.len(), 1, "a new version goes once the back-off is over");
    let r = s
        .on_request(&nack(CLUSTER_TYPE, &[], &v1, &out[0].nonce), later)
        .unwrap();
    let Some(SotwVerdict::Nack { backoff, .. }) = r.verdict else {
        panic!("expected a NACK, got {:?}", r.verdict);
    };
    s.set_snapshot(snapshot(&[("a", "4")], &[]));
    assert!(s.poll(later).is_empty(), "back-off holds the next version");
    assert_eq!(s.next_deadline(), Some(later + backoff));
    assert_eq!(s.poll(later + backoff).len(), 1);
    let stats: Vec<_> = s.all_stats().collect();
    assert_eq!(stats[0].1.nacks, 2);
    assert_eq!(stats[0].1.acks, 1);
    assert_eq!(stats[0].1.last_nack_reason.as_deref(), Some("bad cluster"));
}

#[test]
fn stale_nonce_is_ignored_but_names_apply() {
    // A request with an old nonce neither ACKs nor NACKs; the response stays awaited.
    let now = Instant::now();
    let mut s = sender();
    s.set_snapshot(snapshot(&[], &[("x", "1"), ("y", "1")]));
    s.on_request(&req(EDS, &["x"], "", ""), now).unwrap();
    let n1 = s.poll(now)[0].nonce.clone();
    let r = s
        .on_request(&nack(EDS, &["x", "y"], "", "old"), now)
        .unwrap();
    assert_eq!(
        r.verdict,
        Some(SotwVerdict::Stale {
            nonce: "old".into()
        })
    );
    assert_eq!(s.awaiting(EDS), Some(n1.as_str()));
    assert!(s.poll(now).is_empty());
    s.on_request(&req(EDS, &["x", "y"], "v", &n1), now).unwrap();
    assert_eq!(s.poll(now)[0].resources.len(), 2);
}

#[test]
fn reconnect_with_current_version_sends_nothing() {
    // A proxy that declares the current version on its first request gets no resend.
    let now = Instant::now();
    let mut a = sender();
    a.set_snapshot(snapshot(&[("a", "1")], &[]));
    a.on_request(&req(CLUSTER_TYPE, &[], "", ""), now).unwrap();
    let v = a.poll(now)[0].version_info.clone();
    let mut b = sender();
    b.set_snapshot(snapshot(&[("a", "1")], &[]));
    b.on_request(&req(CLUSTER_TYPE, &[], &v, ""), now).unwrap();
    assert!(b.poll(now).is_empty());
    assert_eq!(
        b.on_request(&req("", &[], "", ""), now),
        Err(SotwError::MissingTypeUrl)
    );
}

#[test]
fn listeners_wait_for_clusters_to_be_acked() {
    // Make-before-break (SenderConfig::envoy): a listener change is not sent while a
    // cluster response is in flight, so a listener never names an unknown cluster.
    let mut s = SotwSender::new(SenderConfig::envoy());
    let mut listeners = TypeResources::new();
    listeners.insert("l1", "1", any("1"));
    s.set_snapshot(snapshot(&[("c1", "1")], &[]).with_type(LISTENER_TYPE, listeners));
    let now = Instant::now();
    s.on_request(&req(LISTENER_TYPE, &[], "", ""), now).unwrap();
    s.on_request(&req(CLUSTER_TYPE, &[], "", ""), now).unwrap();
    let out = s.poll(now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].type_url, CLUSTER_TYPE);
    assert!(s.poll(now).is_empty());
    s.on_request(
        &req(CLUSTER_TYPE, &[], &out[0].version_info, &out[0].nonce),
        now,
    )
    .unwrap();
    let next = s.poll(now);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].type_url, LISTENER_TYPE);
}

#[test]
fn endpoints_follow_every_cluster_response_even_unchanged() {
    // Invariant (issue 9's startup race): after a CDS response, EDS goes out again
    // (after it, without waiting for the CDS ACK) even when the proxy holds that
    // version — Envoy warms an updated cluster only on a fresh EDS response and
    // withholds the CDS ACK, and so the listeners, until then.
    let mut s = SotwSender::new(SenderConfig::envoy());
    let mut listeners = TypeResources::new();
    listeners.insert("l1", "1", any("1"));
    let with = |cluster: &str, endpoints: &str| {
        snapshot(&[("backend", cluster)], &[("backend", endpoints)])
            .with_type(LISTENER_TYPE, listeners.clone())
    };
    let now = Instant::now();
    s.set_snapshot(with("tcp", "none"));
    s.on_request(&req(CLUSTER_TYPE, &[], "", ""), now).unwrap();
    let c1 = s.poll(now).remove(0);
    // The backend registers between the cluster response and the EDS request.
    s.set_snapshot(with("http2", "one"));
    s.on_request(&req(EDS, &["backend"], "", ""), now).unwrap();
    let e1 = s.poll(now).remove(0);
    assert_eq!(
        (e1.type_url.as_str(), &e1.resources),
        (EDS, &vec![any("one")])
    );
    s.on_request(&req(CLUSTER_TYPE, &[], &c1.version_info, &c1.nonce), now)
        .unwrap();
    let c2 = s.poll(now).remove(0);
    assert_eq!(c2.type_url, CLUSTER_TYPE);
    s.on_request(&req(LISTENER_TYPE, &[], "", ""), now).unwrap();
    assert!(s.poll(now).is_empty(), "EDS in flight, listeners held");
    s.on_request(&req(EDS, &["backend"], &e1.version_info, &e1.nonce), now)
        .unwrap();
    let e2 = s.poll(now);
    assert_eq!(e2.len(), 1, "{e2:?}");
    assert_eq!(e2[0].type_url, EDS);
    assert_eq!(e2[0].version_info, e1.version_info, "unchanged, sent again");
    s.on_request(
        &req(EDS, &["backend"], &e2[0].version_info, &e2[0].nonce),
        now,
    )
    .unwrap();
    assert!(s.poll(now).is_empty(), "listeners wait for the CDS ACK");
    s.on_request(&req(CLUSTER_TYPE, &[], &c2.version_info, &c2.nonce), now)
        .unwrap();
    assert_eq!(s.poll(now)[0].type_url, LISTENER_TYPE);

    // With EDS idle, a cluster change yields CDS then EDS in one poll.
    s.set_snapshot(with("http2-v2", "one"));
    let out = s.poll(now);
    let types: Vec<&str> = out.iter().map(|r| r.type_url.as_str()).collect();
    assert_eq!(types, vec![CLUSTER_TYPE, EDS]);
}

#[test]
fn a_response_awaiting_its_ack_is_reported_once_as_a_stall() {
    // Invariant: a response unanswered for `stall_after` is reported exactly once,
    // with the types held behind it; the deadline wakes the pump for it.
    let mut s = SotwSender::new(SenderConfig::envoy());
    let after = SenderConfig::DEFAULT_STALL_AFTER;
    s.set_snapshot(snapshot(&[("c", "1")], &[]));
    let now = Instant::now();
    s.on_request(&req(CLUSTER_TYPE, &[], "", ""), now).unwrap();
    s.on_request(&req(LISTENER_TYPE, &[], "", ""), now).unwrap();
    let c = s.poll(now).remove(0);
    assert_eq!(s.next_deadline(), Some(now + after));
    assert!(s.take_stalls(now + after / 2).is_empty());
    let stalls = s.take_stalls(now + after);
    assert_eq!(stalls.len(), 1);
    assert_eq!(
        (stalls[0].type_url.as_str(), stalls[0].nonce.as_str()),
        (CLUSTER_TYPE, c.nonce.as_str())
    );
    assert_eq!(stalls[0].holding, vec![LISTENER_TYPE.to_string()]);
    assert!(s.take_stalls(now + after * 2).is_empty());
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn held_resources_are_those_of_the_last_acked_response() {
    // What a proxy holds of a named type (SDS for CA rotation) changes on ACK
    // only: a response in flight or NACKed leaves the previous holding.
    let now = Instant::now();
    let mut s = sender();
    s.set_snapshot(snapshot(&[], &[("x", "1"), ("y", "1")]));
    s.on_request(&req(EDS, &["x", "y"], "", ""), now).unwrap();
    let out = s.poll(now);
    assert!(s.held_resources(EDS).unwrap().is_empty(), "in flight only");
    let (v, n) = (out[0].version_info.clone(), out[0].nonce.clone());
    s.on_request(&req(EDS, &["x", "y"], &v, &n), now).unwrap();
    let held: Vec<(&str, &str)> = s
        .held_resources(EDS)
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(held, [("x", "1"), ("y", "1")]);
    s.set_snapshot(snapshot(&[], &[("x", "2"), ("y", "1")]));
    let out = s.poll(now);
    let (v, n) = (out[0].version_info.clone(), out[0].nonce.clone());
    s.on_request(&nack(EDS, &["x", "y"], &v, &n), now).unwrap();
    assert_eq!(
        s.held_resources(EDS).unwrap()["x"],
        "1",
        "a NACK changes nothing"
    );
}
