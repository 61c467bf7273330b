//! The sender against a hand-played receiver: the message size limit.

use super::peer::Peer;
use super::*;

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
