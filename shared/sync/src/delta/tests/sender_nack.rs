//! The sender against a hand-played receiver: NACKs, back-off, stale nonces.

use super::peer::Peer;
use super::*;
use std::time::Duration;

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
fn backoff_formula_doubles_and_caps() {
    // base·2^(n−1), capped, never overflowing.
    let c = SenderConfig::default();
    assert_eq!(c.nack_backoff(1), Duration::from_millis(500));
    assert_eq!(c.nack_backoff(2), Duration::from_secs(1));
    assert_eq!(c.nack_backoff(4), Duration::from_secs(4));
    assert_eq!(c.nack_backoff(100), Duration::from_secs(30));
    assert_eq!(c.nack_backoff(u32::MAX), Duration::from_secs(30));
}

#[test]
fn nack_of_the_last_part_retracts_resources_of_earlier_parts() {
    // A resource ACKed provisionally in an earlier part and NACKed in the type's last
    // answer is no longer known, is not resent at that version, and is resent once it changes.
    let config = SenderConfig {
        max_message_bytes: 1024,
        ..SenderConfig::default()
    };
    let big = "y".repeat(400);
    let mut p = Peer::with(config, Some(snap(&[(MESH, &[("a", &big), ("b", &big)])])));
    p.req(subscribe(MESH, &["*"]));
    let r1 = p.one();
    assert_eq!(r1.system_version_info, MORE_FOLLOWS);
    assert_eq!(sent(&r1), pairs(&[("a", &big)]));
    p.req(ack(&r1));
    let r2 = p.one();
    assert_eq!(sent(&r2), pairs(&[("b", &big)]));
    let Some(Verdict::Nack { rejected, .. }) = p.req(nack(&r2, &["a"])).verdict else {
        panic!("expected a NACK verdict");
    };
    assert_eq!(rejected, vec!["a".to_string()]);
    assert_eq!(p.s.known_versions(MESH), Some(&versions(&[("b", &big)])));
    assert_eq!(p.stats(MESH).resources_rejected, 1);
    p.now += Duration::from_secs(60);
    p.none();
    let fixed = "z".repeat(400);
    p.s.set_snapshot(snap(&[(MESH, &[("a", &fixed), ("b", &big)])]));
    let r3 = p.one();
    assert_eq!(sent(&r3), pairs(&[("a", &fixed)]));
}
