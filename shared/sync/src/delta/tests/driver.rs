//! The async pumps, wired back to back over channels as tonic would wire them.

use super::*;
use crate::delta::driver::{Apply, ApplyFn, SenderEvent, StreamEnd, run_receiver, run_sender};
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

type Versions = Arc<Mutex<BTreeMap<String, String>>>;

/// Incoming side of a channel, as a fallible stream (like tonic's `Streaming`).
fn stream<T>(rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = Result<T, Infallible>> {
    ReceiverStream::new(rx).map(Ok)
}

/// Applies one type into a shared name → version map; reports readiness.
struct MapApply {
    map: Versions,
    ready: watch::Sender<bool>,
}

impl Apply for MapApply {
    fn apply(
        &mut self,
        u: Update,
    ) -> impl Future<Output = Result<Vec<Rejection>, BoxError>> + Send {
        if let Ok(mut m) = self.map.lock() {
            if let UpdateKind::InitialLast { full_state } = &u.kind {
                m.retain(|n, _| full_state.contains(n));
            }
            for n in &u.removed {
                m.remove(n);
            }
            for r in &u.resources {
                m.insert(r.name.clone(), r.version.clone());
            }
        }
        if u.completes_initial_sync {
            self.ready.send_replace(true);
        }
        std::future::ready(Ok(Vec::new()))
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pumps_converge_and_follow_snapshot_changes() {
    // Sender and receiver pumps back to back: ready after the initial sync, then every
    // snapshot change reaches the receiver without polling.
    let (req_tx, req_rx) = mpsc::channel(16);
    let (resp_tx, resp_rx) = mpsc::channel(16);
    let items: Vec<(String, String)> = (0..500)
        .map(|i| (format!("r{i}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = items
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (snap_tx, snap_rx) = watch::channel(Some(snap(&[(MESH, &refs)])));

    let config = SenderConfig {
        max_message_bytes: 2048,
        ..SenderConfig::default()
    };
    let sent = Arc::new(Mutex::new(0usize));
    let sent2 = sent.clone();
    let sender_task = tokio::spawn(async move {
        let mut sender = Sender::new(config);
        let end = run_sender(
            &mut sender,
            stream(req_rx),
            resp_tx,
            snap_rx,
            16,
            |_, ev| {
                if let SenderEvent::Sent { bytes, .. } = ev {
                    assert!(bytes <= 2048);
                    if let Ok(mut n) = sent2.lock() {
                        *n += 1;
                    }
                }
            },
        )
        .await;
        (end.map_err(|e| e.to_string()), sender)
    });

    let map: Versions = Arc::default();
    let (ready_tx, mut ready_rx) = watch::channel(false);
    let mut apply = MapApply {
        map: map.clone(),
        ready: ready_tx,
    };
    let receiver_task = tokio::spawn(async move {
        let mut receiver = Receiver::new(Node::default(), [(MESH, BTreeMap::new())]);
        run_receiver(&mut receiver, stream(resp_rx), req_tx, &mut apply, 16)
            .await
            .map_err(|e| e.to_string())
    });

    ready_rx.wait_for(|r| *r).await.expect("ready");
    assert_eq!(map.lock().map(|m| m.len()).unwrap_or(0), 500);
    assert!(
        *sent.lock().expect("lock") > 10,
        "expected a split initial sync"
    );

    snap_tx.send_replace(Some(snap(&[(MESH, &[("r1", "changed"), ("new", "1")])])));
    let want = versions(&[("r1", "changed"), ("new", "1")]);
    eventually("the change", || map.lock().is_ok_and(|m| *m == want)).await;

    // Dropping the snapshot source ends the sender, which ends the receiver.
    drop(snap_tx);
    let (end, sender) = sender_task.await.expect("join");
    assert_eq!(end, Ok(StreamEnd::SourceClosed));
    assert_eq!(sender.known_versions(MESH), Some(&want));
    assert_eq!(
        receiver_task.await.expect("join"),
        Ok(StreamEnd::PeerClosed)
    );
}

#[tokio::test(start_paused = true)]
async fn nack_backoff_is_honoured_without_holding_up_other_types() {
    // After a NACK the type waits out its back-off, while another type is served at once.
    let (req_tx, req_rx) = mpsc::channel(16);
    let (resp_tx, mut resp_rx) = mpsc::channel(16);
    let (snap_tx, snap_rx) = watch::channel(Some(snap(&[(MESH, &[("a", "1")]), (TIMEOUT, &[])])));
    let config = SenderConfig {
        nack_backoff_base: Duration::from_secs(2),
        ..SenderConfig::default()
    };
    let task = tokio::spawn(async move {
        let mut sender = Sender::new(config);
        run_sender(&mut sender, stream(req_rx), resp_tx, snap_rx, 16, |_, _| {})
            .await
            .map_err(|e| e.to_string())
    });
    req_tx.send(subscribe(MESH, &["*"])).await.expect("send");
    req_tx.send(subscribe(TIMEOUT, &["*"])).await.expect("send");
    let m1 = resp_rx.recv().await.expect("mesh response");
    let t1 = resp_rx.recv().await.expect("timeout response");
    assert_eq!(
        (m1.type_url.as_str(), t1.type_url.as_str()),
        (MESH, TIMEOUT)
    );
    req_tx.send(ack(&t1)).await.expect("send");
    req_tx.send(nack(&m1, &[])).await.expect("send");
    tokio::task::yield_now().await;

    let start = tokio::time::Instant::now();
    snap_tx.send_replace(Some(snap(&[
        (MESH, &[("a", "2")]),
        (TIMEOUT, &[("t", "1")]),
    ])));
    let t2 = resp_rx.recv().await.expect("timeout response");
    assert_eq!(t2.type_url, TIMEOUT);
    assert!(start.elapsed() < Duration::from_millis(100));
    let m2 = resp_rx.recv().await.expect("mesh response after back-off");
    assert_eq!(m2.type_url, MESH);
    assert_eq!(sent(&m2), pairs(&[("a", "2")]));
    assert!(
        start.elapsed() >= Duration::from_millis(1990),
        "{:?}",
        start.elapsed()
    );

    drop(req_tx);
    assert_eq!(task.await.expect("join"), Ok(StreamEnd::PeerClosed));
}

#[tokio::test]
async fn fatal_apply_ends_the_receiver_with_an_error() {
    // A fatal apply error stops the receiver pump; no ACK is sent for that response.
    let (req_tx, mut req_rx) = mpsc::channel(16);
    let (resp_tx, resp_rx) = mpsc::channel(16);
    let mut receiver = Receiver::new(Node::default(), [(MESH, BTreeMap::new())]);
    let mut apply =
        ApplyFn(|_u: Update| -> Result<Vec<Rejection>, BoxError> { Err("sled: disk full".into()) });
    let mut s = Sender::new(SenderConfig::default());
    s.set_snapshot(snap(&[(MESH, &[("a", "1")])]));
    let driver = run_receiver(&mut receiver, stream(resp_rx), req_tx, &mut apply, 4);
    let peer = async {
        let first = req_rx.recv().await.expect("subscribe");
        s.on_request(&first, std::time::Instant::now()).expect("ok");
        for r in s.poll(std::time::Instant::now()).responses {
            resp_tx.send(r).await.expect("send");
        }
    };
    let (end, ()) = tokio::join!(driver, peer);
    let Err(DeltaError::Apply { type_url, source }) = end else {
        panic!("expected a fatal apply error, got {end:?}");
    };
    assert_eq!(type_url, MESH);
    assert_eq!(source.to_string(), "sled: disk full");
    assert!(req_rx.try_recv().is_err(), "no ACK after a fatal error");
}

#[tokio::test]
async fn transport_error_and_bad_request_end_the_sender() {
    // A failing incoming stream or a request without a type ends the pump with an error.
    let (_snap_tx, snap_rx) = watch::channel(None::<Snapshot>);
    let (resp_tx, _resp_rx) = mpsc::channel(4);
    let failing = futures::stream::iter([Err::<DeltaDiscoveryRequest, _>("connection reset")]);
    let mut sender = Sender::new(SenderConfig::default());
    let end = run_sender(
        &mut sender,
        failing,
        resp_tx.clone(),
        snap_rx.clone(),
        4,
        |_, _| {},
    )
    .await;
    assert!(
        matches!(end, Err(DeltaError::Transport(ref source)) if source.to_string() == "connection reset")
    );

    let bad = futures::stream::iter([Ok::<_, Infallible>(DeltaDiscoveryRequest::default())]);
    let end = run_sender(&mut sender, bad, resp_tx, snap_rx, 4, |_, _| {}).await;
    assert!(matches!(end, Err(DeltaError::MissingTypeUrl)));
}

#[tokio::test]
async fn closed_outgoing_side_ends_the_sender() {
    // When nobody reads responses any more, the pump stops instead of blocking forever.
    let (_snap_tx, snap_rx) = watch::channel(Some(snap(&[(MESH, &[("a", "1")])])));
    let (resp_tx, resp_rx) = mpsc::channel(4);
    drop(resp_rx);
    let reqs = futures::stream::iter([Ok::<_, Infallible>(subscribe(MESH, &["*"]))])
        .chain(futures::stream::pending());
    let mut sender = Sender::new(SenderConfig::default());
    let end = run_sender(&mut sender, reqs, resp_tx, snap_rx, 4, |_, _| {}).await;
    assert!(matches!(end, Ok(StreamEnd::OutgoingClosed)));
}

#[tokio::test(start_paused = true)]
async fn a_response_never_acked_is_reported_as_stalled_by_the_pump() {
    // Invariant: with no request or snapshot to wake it, the pump still notices a
    // response unanswered for `stall_after` and reports it once (observe + warn).
    let (req_tx, req_rx) = mpsc::channel(16);
    let (resp_tx, mut resp_rx) = mpsc::channel(16);
    let (_snap_tx, snap_rx) = watch::channel(Some(snap(&[(MESH, &[("a", "1")])])));
    let stalls = Arc::new(Mutex::new(Vec::new()));
    let seen = stalls.clone();
    let task = tokio::spawn(async move {
        let mut sender = Sender::new(SenderConfig::default());
        run_sender(
            &mut sender,
            stream(req_rx),
            resp_tx,
            snap_rx,
            16,
            |_, ev| {
                if let SenderEvent::Stalled(s) = ev {
                    seen.lock().expect("lock").push(s);
                }
            },
        )
        .await
        .map_err(|e| e.to_string())
    });
    req_tx.send(subscribe(MESH, &["*"])).await.expect("send");
    let r = resp_rx.recv().await.expect("response");
    let start = tokio::time::Instant::now();
    eventually("a stall", || !stalls.lock().expect("lock").is_empty()).await;
    assert!(start.elapsed() >= SenderConfig::DEFAULT_STALL_AFTER);
    tokio::time::sleep(SenderConfig::DEFAULT_STALL_AFTER * 4).await;
    let got = stalls.lock().expect("lock").clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].type_url.as_str(), got[0].nonce.as_str()),
        (MESH, r.nonce.as_str())
    );
    drop(req_tx);
    assert_eq!(task.await.expect("join"), Ok(StreamEnd::PeerClosed));
}

#[tokio::test]
async fn each_snapshot_taken_in_is_reported_as_a_generation() {
    // The stream's first snapshot is reported as first; a later one changes a
    // subscribed type; the same snapshot again changes nothing.
    let (req_tx, req_rx) = mpsc::channel(16);
    let (resp_tx, mut resp_rx) = mpsc::channel(16);
    let first = snap(&[(MESH, &[("a", "1")])]);
    let (snap_tx, snap_rx) = watch::channel(Some(first));
    let (gen_tx, mut gen_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut sender = Sender::new(SenderConfig::default());
        run_sender(
            &mut sender,
            stream(req_rx),
            resp_tx,
            snap_rx,
            16,
            move |_, ev| {
                if let SenderEvent::Generated { changed, first, .. } = ev {
                    let _ = gen_tx.send((first, changed));
                }
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
    // Nothing subscribed yet: the first snapshot changes no subscribed type.
    assert_eq!(generation(&mut gen_rx).await, Some((true, false)));
    req_tx
        .send(DeltaDiscoveryRequest {
            type_url: MESH.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), resp_rx.recv())
        .await
        .unwrap()
        .expect("a first response");
    let second = snap(&[(MESH, &[("a", "2")])]);
    snap_tx.send(Some(second.clone())).unwrap();
    assert_eq!(generation(&mut gen_rx).await, Some((false, true)));
    snap_tx.send(Some(second)).unwrap();
    assert_eq!(generation(&mut gen_rx).await, Some((false, false)));
    drop(req_tx);
    task.await.unwrap().unwrap();
}

/// The next generation event `(first, changed)`, within 5 s.
async fn generation(rx: &mut mpsc::UnboundedReceiver<(bool, bool)>) -> Option<(bool, bool)> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a generation within 5 s")
}
