//! The receiver against a hand-played sender (global's or a zone's).

use super::*;

fn node() -> Node {
    Node {
        id: "zone-1".into(),
        ..Default::default()
    }
}

fn response(
    type_url: &str,
    nonce: &str,
    items: &[(&str, &str)],
    removed: &[&str],
) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        type_url: type_url.into(),
        nonce: nonce.into(),
        resources: items
            .iter()
            .map(|(n, v)| Resource {
                name: n.to_string(),
                version: v.to_string(),
                resource: Some(any(v)),
                ..Default::default()
            })
            .collect(),
        removed_resources: removed.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

fn more(mut r: DeltaDiscoveryResponse) -> DeltaDiscoveryResponse {
    r.system_version_info = MORE_FOLLOWS.into();
    r
}

fn names(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|n| n.to_string()).collect()
}

/// The one answer an answer carries.
fn only(answer: Answer) -> Reply {
    assert_eq!(answer.replies.len(), 1, "{answer:?}");
    answer
        .replies
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no reply"))
}

/// Applies nothing, rejects nothing, remembers what it was given.
fn accept_all(
    seen: &mut Vec<Update>,
) -> impl FnMut(Update) -> Result<Vec<Rejection>, BoxError> + '_ {
    move |u| {
        seen.push(u);
        Ok(Vec::new())
    }
}

#[test]
fn initial_requests_subscribe_wildcard_with_node_and_local_versions() {
    // One wildcard request per type, in order, with the node and what is held locally.
    let r = Receiver::new(
        node(),
        [(MESH, versions(&[("a", "1")])), (TIMEOUT, BTreeMap::new())],
    );
    let reqs = r.initial_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].type_url, MESH);
    assert_eq!(reqs[1].type_url, TIMEOUT);
    for q in &reqs {
        assert_eq!(q.resource_names_subscribe, vec!["*".to_string()]);
        assert_eq!(q.node.as_ref().map(|n| n.id.as_str()), Some("zone-1"));
        assert!(q.response_nonce.is_empty() && q.error_detail.is_none());
    }
    assert_eq!(
        reqs[0]
            .initial_resource_versions
            .get("a")
            .map(String::as_str),
        Some("1")
    );
    assert!(reqs[1].initial_resource_versions.is_empty());
    assert!(!r.is_initial_sync_complete());
}

#[test]
fn send_v1_expect_ack() {
    // An applied response is ACKed with its nonce and its versions become known.
    let mut r = Receiver::new(node(), [(MESH, BTreeMap::new())]);
    let mut seen = Vec::new();
    let answer = r
        .on_response(
            response(MESH, "n1", &[("a", "1")], &[]),
            accept_all(&mut seen),
        )
        .expect("applied");
    assert!(answer.initial_sync_complete);
    let reply = only(answer);
    assert!(!reply.is_nack());
    assert_eq!(reply.request.response_nonce, "n1");
    assert_eq!(reply.request.type_url, MESH);
    assert!(reply.request.resource_names_subscribe.is_empty());
    assert_eq!(r.known_versions(MESH), Some(&versions(&[("a", "1")])));
    assert_eq!(
        seen[0].kind,
        UpdateKind::InitialLast {
            full_state: names(&["a"])
        }
    );
    assert!(seen[0].completes_initial_sync);
}

#[test]
fn rejection_nacks_naming_each_resource_while_valid_ones_apply() {
    // Rejected resources are named in the NACK (readable by the sender); the rest count as applied.
    let mut r = Receiver::new(node(), [(MESH, versions(&[("b", "0")]))]);
    let resp = response(MESH, "n1", &[("a", "1"), ("b", "1"), ("c", "1")], &[]);
    let reply = only(
        r.on_response(resp.clone(), |_u: Update| -> Result<_, BoxError> {
            Ok(vec![
                Rejection::new("b", "spec.x: must be positive"),
                Rejection::new("c", "bad"),
            ])
        })
        .expect("applied"),
    );
    assert!(reply.is_nack());
    assert_eq!(reply.rejected, vec!["b".to_string(), "c".to_string()]);
    let st = reply.request.error_detail.clone().unwrap_or_default();
    assert_eq!(st.code, NACK_CODE);
    assert!(st.message.contains("b: spec.x: must be positive"));
    assert_eq!(
        r.known_versions(MESH),
        Some(&versions(&[("a", "1"), ("b", "0")]))
    );
    // The real sender reads the same names back out of the NACK.
    let mut s = Sender::new(SenderConfig::default());
    s.set_snapshot(snap(&[(MESH, &[("a", "1"), ("b", "1"), ("c", "1")])]));
    s.on_request(&subscribe(MESH, &["*"]), std::time::Instant::now())
        .expect("ok");
    let out = s.poll(std::time::Instant::now());
    let mut nack_req = reply.request.clone();
    nack_req.response_nonce = out.responses[0].nonce.clone();
    let sum = s
        .on_request(&nack_req, std::time::Instant::now())
        .expect("ok");
    let Some(Verdict::Nack { rejected, .. }) = sum.verdict else {
        panic!("expected NACK");
    };
    assert_eq!(rejected, vec!["b".to_string(), "c".to_string()]);
    assert_eq!(s.known_versions(MESH), Some(&versions(&[("a", "1")])));
}

#[test]
fn fatal_apply_error_tears_down_without_reply() {
    // A fatal error from apply is returned as DeltaError::Apply and nothing is acknowledged.
    let mut r = Receiver::new(node(), [(MESH, BTreeMap::new())]);
    let err = r
        .on_response(response(MESH, "n1", &[("a", "1")], &[]), |_u| {
            Err("disk full")
        })
        .expect_err("fatal");
    let DeltaError::Apply { type_url, source } = &err else {
        panic!("expected Apply error, got {err:?}");
    };
    assert_eq!(
        (type_url.as_str(), source.to_string().as_str()),
        (MESH, "disk full")
    );
    assert!(err.to_string().contains("must restart"));
    assert!(r.known_versions(MESH).is_some_and(BTreeMap::is_empty));
    assert!(!r.is_initial_sync_complete());
    // The receiver is usable again (nothing left pending).
    assert!(r.begin(response(MESH, "n2", &[], &[])).is_ok());
}

#[test]
fn initial_response_is_full_state_later_ones_incremental() {
    // The first response defines the full state (declared + received − removed); later ones are deltas.
    let mut r = Receiver::new(node(), [(MESH, versions(&[("kept", "1"), ("gone", "1")]))]);
    let mut seen = Vec::new();
    r.on_response(
        response(MESH, "n1", &[("new", "1")], &["gone"]),
        accept_all(&mut seen),
    )
    .expect("ok");
    r.on_response(
        response(MESH, "n2", &[("x", "1")], &["kept"]),
        accept_all(&mut seen),
    )
    .expect("ok");
    assert_eq!(
        seen[0].kind,
        UpdateKind::InitialLast {
            full_state: names(&["kept", "new"])
        }
    );
    assert_eq!(seen[1].kind, UpdateKind::Incremental);
    assert_eq!(seen[1].removed, vec!["kept".to_string()]);
    assert!(!seen[1].completes_initial_sync);
    assert_eq!(
        r.known_versions(MESH),
        Some(&versions(&[("new", "1"), ("x", "1")]))
    );
}

#[test]
fn rejected_names_stay_in_the_full_state() {
    // A rejected update must not make the local copy look deleted at the end of the initial sync.
    let mut r = Receiver::new(node(), [(MESH, versions(&[("a", "0")]))]);
    let mut kinds = Vec::new();
    r.on_response(
        response(MESH, "n1", &[("a", "1")], &[]),
        |u: Update| -> Result<_, BoxError> {
            kinds.push(u.kind);
            Ok(vec![Rejection::new("a", "bad")])
        },
    )
    .expect("ok");
    assert_eq!(
        kinds,
        vec![UpdateKind::InitialLast {
            full_state: names(&["a"])
        }]
    );
    assert_eq!(r.known_versions(MESH), Some(&versions(&[("a", "0")])));
}

#[test]
fn split_initial_sync_completes_after_every_type_and_only_once() {
    // Initial sync ends when every type got its last initial part; that is reported once.
    let mut r = Receiver::new(
        node(),
        [(MESH, BTreeMap::new()), (TIMEOUT, BTreeMap::new())],
    );
    let mut seen = Vec::new();
    let a = r
        .on_response(
            more(response(MESH, "1", &[("a", "1")], &[])),
            accept_all(&mut seen),
        )
        .expect("ok");
    let b = r
        .on_response(response(TIMEOUT, "2", &[], &[]), accept_all(&mut seen))
        .expect("ok");
    assert!(!a.initial_sync_complete && !b.initial_sync_complete);
    assert!(!r.is_initial_sync_complete());
    let c = r
        .on_response(
            response(MESH, "3", &[("b", "1")], &["a"]),
            accept_all(&mut seen),
        )
        .expect("ok");
    assert!(c.initial_sync_complete && r.is_initial_sync_complete());
    let d = r
        .on_response(
            response(MESH, "4", &[("c", "1")], &[]),
            accept_all(&mut seen),
        )
        .expect("ok");
    assert!(!d.initial_sync_complete);
    // The part was answered at once, the last TIMEOUT response was held until MESH's
    // last part completed the initial sync; afterwards each response is answered.
    let nonces = |a: &Answer| -> Vec<String> {
        a.replies
            .iter()
            .map(|r| r.request.response_nonce.clone())
            .collect()
    };
    assert_eq!(
        [nonces(&a), nonces(&b), nonces(&c), nonces(&d)],
        [
            vec!["1".to_string()],
            vec![],
            vec!["2".to_string(), "3".to_string()],
            vec!["4".to_string()]
        ]
    );
    let kinds: Vec<(&UpdateKind, bool)> = seen
        .iter()
        .map(|u| (&u.kind, u.completes_initial_sync))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (&UpdateKind::InitialPart, false),
            (
                &UpdateKind::InitialLast {
                    full_state: names(&[])
                },
                false
            ),
            (
                &UpdateKind::InitialLast {
                    full_state: names(&["b"])
                },
                true
            ),
            (&UpdateKind::Incremental, false),
        ]
    );
}

#[test]
fn protocol_errors_are_reported() {
    // Unknown types, missing nonces and out-of-order begin/finish are errors, not panics.
    let mut r = Receiver::new(node(), [(MESH, BTreeMap::new())]);
    assert!(matches!(
        r.begin(response("Nope", "1", &[], &[])),
        Err(DeltaError::UnexpectedType { .. })
    ));
    assert!(matches!(
        r.begin(response(MESH, "", &[], &[])),
        Err(DeltaError::MissingNonce { .. })
    ));
    assert!(matches!(r.finish(vec![]), Err(DeltaError::NothingPending)));
    assert!(r.begin(response(MESH, "1", &[], &[])).is_ok());
    assert!(matches!(
        r.begin(response(MESH, "2", &[], &[])),
        Err(DeltaError::ApplyPending)
    ));
    assert!(r.finish(vec![]).is_ok());
}

#[test]
fn receiver_without_types_is_synced() {
    // Nothing subscribed means nothing to wait for.
    let r = Receiver::new(node(), Vec::<(String, BTreeMap<String, String>)>::new());
    assert!(r.is_initial_sync_complete());
    assert!(r.initial_requests().is_empty());
}

#[test]
fn declared_versions_are_cut_to_fit_the_message_limit() {
    // The initial request never exceeds the limit; the full state then covers only what was declared.
    let local: BTreeMap<String, String> = (0..1000)
        .map(|i| (format!("resource-{i:04}"), format!("{:064}", i)))
        .collect();
    let mut r = Receiver::with_max_message_bytes(node(), [(MESH, local.clone())], 16 * 1024);
    let req = r.initial_requests().remove(0);
    let len = prost::Message::encoded_len(&req);
    assert!(len <= 16 * 1024 && len > 15 * 1024, "{len}");
    let declared = req.initial_resource_versions.len();
    assert!(declared > 50 && declared < 1000);
    // The first `declared` names, in order, were kept.
    assert!(req.initial_resource_versions.contains_key("resource-0000"));
    assert!(!req.initial_resource_versions.contains_key("resource-0999"));
    let mut kinds = Vec::new();
    r.on_response(
        response(MESH, "1", &[], &[]),
        |u: Update| -> Result<_, BoxError> {
            kinds.push(u.kind);
            Ok(vec![])
        },
    )
    .expect("ok");
    let UpdateKind::InitialLast { full_state } = &kinds[0] else {
        panic!("expected the last initial part");
    };
    assert_eq!(full_state.len(), declared);
}

#[test]
fn nack_stays_within_the_message_limit() {
    // Thousands of long rejection reasons still make a NACK no larger than the limit.
    let mut r = Receiver::with_max_message_bytes(node(), [(MESH, BTreeMap::new())], 32 * 1024);
    let items: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("r{i}"), "1".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let reply = only(
        r.on_response(
            response(MESH, "n", &refs, &[]),
            |u: Update| -> Result<_, BoxError> {
                Ok(u.resources
                    .iter()
                    .map(|x| Rejection::new(x.name.clone(), "e".repeat(2000)))
                    .collect())
            },
        )
        .expect("ok"),
    );
    assert!(reply.is_nack());
    assert!(prost::Message::encoded_len(&reply.request) <= 32 * 1024);
}

#[test]
fn answers_are_held_until_the_initial_sync_commits() {
    // Before every type has arrived nothing is acknowledged or known; the response that
    // completes the initial sync releases every answer, in arrival order.
    let mut r = Receiver::new(
        node(),
        [(MESH, BTreeMap::new()), (TIMEOUT, BTreeMap::new())],
    );
    let mut seen = Vec::new();
    let first = r
        .on_response(
            response(MESH, "m1", &[("a", "1")], &[]),
            accept_all(&mut seen),
        )
        .expect("ok");
    assert_eq!(first, Answer::default());
    assert!(r.known_versions(MESH).is_some_and(BTreeMap::is_empty));
    let last = r
        .on_response(
            response(TIMEOUT, "t1", &[("x", "1")], &[]),
            accept_all(&mut seen),
        )
        .expect("ok");
    assert!(last.initial_sync_complete);
    let answered: Vec<(&str, &str, bool)> = last
        .replies
        .iter()
        .map(|q| (q.type_url(), q.request.response_nonce.as_str(), q.is_nack()))
        .collect();
    assert_eq!(answered, [(MESH, "m1", false), (TIMEOUT, "t1", false)]);
    assert_eq!(r.known_versions(MESH), Some(&versions(&[("a", "1")])));
    assert_eq!(r.known_versions(TIMEOUT), Some(&versions(&[("x", "1")])));
}

#[test]
fn the_commit_nacks_each_rejection_in_its_own_types_answer() {
    // A resource of an earlier type refused by the final commit is NACKed in that type's
    // answer (which the real sender honours), not in the answer of the type that came last.
    let mut s = Sender::new(SenderConfig::default());
    s.set_snapshot(snap(&[
        (MESH, &[("a", "1"), ("b", "1")]),
        (TIMEOUT, &[("x", "1")]),
    ]));
    let now = std::time::Instant::now();
    let mut r = Receiver::new(
        node(),
        [(MESH, BTreeMap::new()), (TIMEOUT, BTreeMap::new())],
    );
    for q in r.initial_requests() {
        s.on_request(&q, now).expect("subscribe");
    }
    let mut replies = Vec::new();
    for resp in s.poll(now).responses {
        let answer = r
            .on_response(resp, |u: Update| -> Result<_, BoxError> {
                Ok(if u.completes_initial_sync {
                    vec![Rejection::of_type(MESH, "a", "mesh \"m\" does not exist")]
                } else {
                    vec![]
                })
            })
            .expect("ok");
        replies.extend(answer.replies);
    }
    let verdicts: Vec<(&str, Vec<String>)> = replies
        .iter()
        .map(|q| (q.type_url(), q.rejected.clone()))
        .collect();
    assert_eq!(verdicts, [(MESH, vec!["a".to_string()]), (TIMEOUT, vec![])]);
    for q in &replies {
        s.on_request(&q.request, now).expect("answer");
    }
    assert_eq!(s.known_versions(MESH), Some(&versions(&[("b", "1")])));
    assert_eq!(s.known_versions(TIMEOUT), Some(&versions(&[("x", "1")])));
    assert_eq!(s.stats(MESH).map(|st| st.resources_rejected), Some(1));
    assert_eq!(r.known_versions(MESH), Some(&versions(&[("b", "1")])));
}

#[test]
fn a_rejection_from_an_earlier_part_is_named_in_the_last_parts_answer() {
    // Parts of a split initial sync are answered at once; a resource of an early part that
    // the commit refuses is NACKed by the type's last answer and is not known.
    let mut r = Receiver::new(node(), [(MESH, BTreeMap::new())]);
    let part = r
        .on_response(
            more(response(MESH, "p1", &[("a", "1")], &[])),
            accept_all(&mut Vec::new()),
        )
        .expect("ok");
    assert!(!only(part).is_nack());
    let last = only(
        r.on_response(
            response(MESH, "p2", &[("b", "1")], &[]),
            |_u: Update| -> Result<_, BoxError> {
                Ok(vec![Rejection::of_type(MESH, "a", "orphan")])
            },
        )
        .expect("ok"),
    );
    assert_eq!(last.request.response_nonce, "p2");
    assert_eq!(last.rejected, vec!["a".to_string()]);
    assert_eq!(r.known_versions(MESH), Some(&versions(&[("b", "1")])));
}

#[test]
fn rejecting_another_type_outside_the_initial_commit_is_an_error() {
    // Only the update that completes the initial sync may name resources of other types.
    let mut r = Receiver::new(
        node(),
        [(MESH, BTreeMap::new()), (TIMEOUT, BTreeMap::new())],
    );
    let err = r
        .on_response(
            response(MESH, "1", &[("a", "1")], &[]),
            |_u: Update| -> Result<_, BoxError> {
                Ok(vec![Rejection::of_type(TIMEOUT, "x", "no")])
            },
        )
        .expect_err("stray");
    assert!(matches!(err, DeltaError::StrayRejection { .. }), "{err}");
}
