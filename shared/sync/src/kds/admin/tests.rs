use super::*;
use weft_model::proxy::admin::AdminOp::{Clusters, Stats};

fn web() -> ProxyRef {
    ProxyRef::new(ResourceType::Dataplane, Some("default"), "web-1").unwrap()
}

/// A zone that answers every request on `rx` through `stream` with `answer`.
fn answering(
    stream: OpenStream,
    mut rx: mpsc::Receiver<EnvoyAdminRequest>,
    answer: impl Fn(&EnvoyAdminRequest) -> Result<AdminReply, AdminError> + Send + 'static,
) -> tokio::task::JoinHandle<Vec<EnvoyAdminRequest>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(req) = rx.recv().await {
            for part in into_parts(&req.request_id, answer(&req)) {
                stream.accept(part).unwrap();
            }
            seen.push(req);
        }
        seen
    })
}

// A request reaches the zone's stream for its kind, carrying the proxy and the
// query; the zone's parts come back reassembled, content type kept.
#[tokio::test]
async fn requests_reach_the_zone_and_answers_come_back_whole() {
    let streams = AdminStreams::default();
    let (stream, rx) = streams.open("west", Stats);
    let body: Vec<u8> = (0..3 * CHUNK_BYTES + 17).map(|i| (i % 251) as u8).collect();
    let expected = body.clone();
    let zone = answering(stream, rx, move |req| {
        assert_eq!(req.resource_type, "Dataplane");
        assert_eq!(req.resource_mesh, "default");
        assert_eq!(req.resource_name, "web-1");
        assert_eq!(req.format, "json");
        assert_eq!(req.filter, "^server");
        Ok(AdminReply {
            content_type: "application/json".into(),
            body: body.clone(),
        })
    });
    let query = AdminQuery {
        format: Format::Json,
        filter: Some("^server".into()),
        ..AdminQuery::default()
    };
    let reply = streams
        .request("west", Stats, &web(), &query, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body, expected);
    // Another kind has no stream: the zone is offline for it.
    let err = streams
        .request("west", Clusters, &web(), &query, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AdminError::ZoneOffline {
            zone: "west".into()
        }
    );
    drop(streams);
    zone.abort();
}

// No stream for the zone: 503 naming the zone, at once.
#[tokio::test]
async fn a_zone_without_a_stream_is_offline() {
    let streams = AdminStreams::default();
    let err = streams
        .request(
            "east",
            Stats,
            &web(),
            &AdminQuery::default(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("zone east is offline"), "{err}");
}

// A zone that does not answer: the request times out naming the zone and the
// proxy, and a late answer is refused as unknown (nothing leaks).
#[tokio::test(start_paused = true)]
async fn unanswered_requests_time_out() {
    let streams = AdminStreams::default();
    let (stream, mut rx) = streams.open("west", Stats);
    let err = streams
        .request(
            "west",
            Stats,
            &web(),
            &AdminQuery::default(),
            Duration::from_secs(15),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 504);
    assert!(err.to_string().contains("zone west"), "{err}");
    assert!(err.to_string().contains("Dataplane default/web-1"), "{err}");
    let req = rx.recv().await.unwrap();
    let late = into_parts(
        &req.request_id,
        Ok(AdminReply {
            content_type: String::new(),
            body: b"late".to_vec(),
        }),
    );
    for part in late {
        assert!(matches!(
            stream.accept(part),
            Err(PartError::UnknownRequest(_))
        ));
    }
}

// A zone answers only on its own stream: parts sent by another zone, even with
// the right request id, are refused, and the request still gets its own zone's
// answer.
#[tokio::test]
async fn a_zone_cannot_answer_for_another() {
    let streams = AdminStreams::default();
    let (west, mut west_rx) = streams.open("west", Stats);
    let (east, _east_rx) = streams.open("east", Stats);
    let s = streams.clone();
    let request = tokio::spawn(async move {
        s.request(
            "west",
            Stats,
            &web(),
            &AdminQuery::default(),
            Duration::from_secs(5),
        )
        .await
    });
    let req = west_rx.recv().await.unwrap();
    let forged = into_parts(
        &req.request_id,
        Ok(AdminReply {
            content_type: String::new(),
            body: b"forged".to_vec(),
        }),
    );
    for part in forged {
        assert!(east.accept(part).is_err());
    }
    for part in into_parts(
        &req.request_id,
        Ok(AdminReply {
            content_type: "text/plain".into(),
            body: b"server.live: 1\n".to_vec(),
        }),
    ) {
        west.accept(part).unwrap();
    }
    let reply = request.await.unwrap().unwrap();
    assert_eq!(reply.body, b"server.live: 1\n");
}

// An answer past the limit fails as too large (naming the proxy), however the
// zone splits it; the zone's own error keeps the zone's status.
#[tokio::test]
async fn oversized_answers_and_zone_errors() {
    let streams = AdminStreams::default();
    let (stream, mut rx) = streams.open("west", Stats);
    let s = streams.clone();
    let request = tokio::spawn(async move {
        s.request(
            "west",
            Stats,
            &web(),
            &AdminQuery::default(),
            Duration::from_secs(5),
        )
        .await
    });
    let req = rx.recv().await.unwrap();
    let mut sent = 0;
    while sent <= MAX_RESPONSE_BYTES {
        let part = EnvoyAdminResponse {
            request_id: req.request_id.clone(),
            chunk: vec![b'x'; CHUNK_BYTES],
            more: true,
            ..EnvoyAdminResponse::default()
        };
        if stream.accept(part).is_err() {
            break;
        }
        sent += CHUNK_BYTES;
    }
    let err = request.await.unwrap().unwrap_err();
    assert!(matches!(err, AdminError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("Dataplane default/web-1"), "{err}");
    assert_eq!(err.status(), 502);

    let s = streams.clone();
    let request = tokio::spawn(async move {
        s.request(
            "west",
            Stats,
            &web(),
            &AdminQuery::default(),
            Duration::from_secs(5),
        )
        .await
    });
    let req = rx.recv().await.unwrap();
    let not_connected = AdminError::NotConnected {
        proxy: web().to_string(),
        reason: "its weft-dp is not running".into(),
    };
    for part in into_parts(&req.request_id, Err(not_connected.clone())) {
        stream.accept(part).unwrap();
    }
    let err = request.await.unwrap().unwrap_err();
    assert_eq!(err.status(), 503);
    assert_eq!(err.to_string(), not_connected.to_string());
}

// A stream that ends fails what waits on it (the zone went offline); a newer
// stream of the same zone replaces an older one.
#[tokio::test]
async fn ended_and_replaced_streams_fail_their_requests() {
    let streams = AdminStreams::default();
    let (old, _old_rx) = streams.open("west", Stats);
    let s = streams.clone();
    let request = tokio::spawn(async move {
        s.request(
            "west",
            Stats,
            &web(),
            &AdminQuery::default(),
            Duration::from_secs(5),
        )
        .await
    });
    // Wait until the request is in flight, then reconnect.
    while streams
        .lock()
        .streams
        .values()
        .all(|s| s.pending.is_empty())
    {
        tokio::task::yield_now().await;
    }
    let (new, _new_rx) = streams.open("west", Stats);
    let err = request.await.unwrap().unwrap_err();
    assert_eq!(
        err,
        AdminError::ZoneOffline {
            zone: "west".into()
        }
    );
    // The old stream ending does not unregister the new one.
    drop(old);
    assert!(streams.has_stream("west", Stats));
    drop(new);
    assert!(!streams.has_stream("west", Stats));
}

// Parts stay under 1 MiB; an empty answer is one part; what a zone receives is
// re-checked (a query that does not fit its kind is a 400).
#[test]
fn parts_and_request_checks() {
    let parts = into_parts(
        "r",
        Ok(AdminReply {
            content_type: "text/plain".into(),
            body: vec![0; 2 * CHUNK_BYTES + 1],
        }),
    );
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.chunk.len() <= CHUNK_BYTES));
    assert_eq!(
        parts.iter().map(|p| p.more).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(parts[0].content_type, "text/plain");
    let parts = into_parts(
        "r",
        Ok(AdminReply {
            content_type: String::new(),
            body: Vec::new(),
        }),
    );
    assert_eq!(parts.len(), 1);
    assert!(!parts[0].more);

    let mut req = to_request("r".into(), &web(), &AdminQuery::default());
    assert_eq!(from_request(Stats, &req).unwrap().0, web());
    req.include_eds = true;
    let err = from_request(Stats, &req).unwrap_err();
    assert_eq!(err.status(), 400);
    req.include_eds = false;
    req.resource_type = "Mesh".into();
    assert!(
        from_request(Stats, &req)
            .unwrap_err()
            .to_string()
            .contains("not a proxy type")
    );
}
