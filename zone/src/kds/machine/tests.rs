//! Every transition of the client's state machine, with paused time and no network.

use super::*;
use crate::kds::session::ConnectError;
use weft_security::pki::PkiError;
use weft_store::StoreError;

/// A fixed wall clock: 2024-05-01T12:00:00Z plus `secs`.
fn wall(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800 + secs)
}

/// Now, on tokio's (paused) clock, with no jitter.
fn now(wall_secs: u64) -> Now {
    Now {
        instant: Instant::now(),
        wall: wall(wall_secs),
        jitter: 1.0,
    }
}

fn unreachable() -> SessionError {
    SessionError::Connect(ConnectError::Tls(PkiError::BadPem(
        "connection refused".into(),
    )))
}

/// Drives `m` through `events`, all at `now(0)`; the last action.
fn run(mut m: Machine, events: Vec<Event>) -> (Machine, Action) {
    let mut action = m.action();
    for e in events {
        (m, action) = step(m, e, now(0));
    }
    (m, action)
}

fn wait_of(m: &Machine) -> Duration {
    match m.state {
        State::Backoff { until, .. } => until - Instant::now(),
        ref other => panic!("expected Backoff, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn first_sync_path_and_readiness() {
    // Connecting → Handshaking → InitialSync → Synced, one action each; a zone that never
    // synced is not ready until the commit, then ready, and remembers when it synced.
    let m = Machine::new(None);
    assert_eq!(m.action(), Action::Connect);
    assert!(!m.readiness().ready);
    let (m, a) = step(m, Event::Connected, now(0));
    assert_eq!(
        (&m.state, a),
        (&State::Handshaking { attempt: 0 }, Action::Handshake)
    );
    let (m, a) = step(m, Event::Accepted, now(0));
    assert_eq!(
        (&m.state, a),
        (&State::InitialSync { attempt: 0 }, Action::Sync)
    );
    let r = m.readiness();
    assert!(
        !r.ready && r.reason.contains("first sync is under way"),
        "{r:?}"
    );
    let (m, a) = step(m, Event::InitialSyncCommitted, now(5));
    assert_eq!((&m.state, a), (&State::Synced, Action::Sync));
    assert_eq!(m.last_sync, Some(wall(5)));
    assert_eq!(m.readiness(), Readiness::ready("synced with global"));
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_exponentially_up_to_15s() {
    // Each failed attempt waits twice as long as the last (0.5 s first), capped at 15 s;
    // the wait ends on the clock and leads back to Connecting with the count kept.
    let mut m = Machine::new(None);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let (next, a) = step(m, Event::Failed(unreachable()), now(0));
        let State::Backoff {
            attempt,
            class,
            until,
        } = next.state.clone()
        else {
            panic!("expected Backoff, got {:?}", next.state);
        };
        assert_eq!(class, Class::Transient);
        assert_eq!(a, Action::Wait { until });
        waits.push(wait_of(&next));
        // The driver sleeps until `until`; with paused time that takes exactly the wait.
        let before = Instant::now();
        tokio::time::sleep_until(until).await;
        assert_eq!(
            Instant::now() - before,
            *waits.last().unwrap_or(&Duration::ZERO)
        );
        let (next, a) = step(next, Event::BackoffElapsed, now(0));
        assert_eq!(
            (&next.state, a),
            (&State::Connecting { attempt }, Action::Connect)
        );
        m = next;
    }
    let secs: Vec<f64> = waits.iter().map(Duration::as_secs_f64).collect();
    assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]);
}

#[tokio::test(start_paused = true)]
async fn jitter_scales_the_wait() {
    // The wait is the back-off times the jitter the driver drew (±25 %).
    let (m, _) = step(
        Machine::new(None),
        Event::Failed(unreachable()),
        Now {
            jitter: 1.2,
            ..now(0)
        },
    );
    assert_eq!(wait_of(&m), Duration::from_millis(600));
}

#[tokio::test(start_paused = true)]
async fn refused_token_backs_off_long_and_says_so() {
    // UNAUTHENTICATED / PERMISSION_DENIED: first retry after 10 s, then 20 s, 40 s, capped
    // at 60 s; a zone that never synced stays not ready and says global refuses its token.
    let mut m = Machine::new(None);
    let mut waits = Vec::new();
    for status in [
        tonic::Status::unauthenticated("token expired"),
        tonic::Status::permission_denied("token is for zone-a"),
        tonic::Status::unauthenticated("token expired"),
        tonic::Status::unauthenticated("token expired"),
    ] {
        let (next, _) = step(m, Event::Connected, now(0));
        let (next, a) = step(next, Event::Refused(status), now(0));
        assert!(matches!(
            next.state,
            State::Backoff {
                class: Class::Auth,
                ..
            }
        ));
        assert!(matches!(a, Action::Wait { .. }));
        waits.push(wait_of(&next).as_secs());
        let r = next.readiness();
        assert!(!r.ready, "{r:?}");
        assert!(
            r.reason
                .starts_with("never synced with global: global refuses this zone's token since 2024-05-01T12:00:00Z"),
            "{r:?}"
        );
        (m, _) = step(next, Event::BackoffElapsed, now(0));
    }
    assert_eq!(waits, [10, 20, 40, 60]);
}

#[tokio::test(start_paused = true)]
async fn other_refusals_and_handshake_failures_are_transient() {
    // A refusal with any other status (UNAVAILABLE: global shutting down), or a store
    // error while opening the streams, takes the normal back-off.
    for event in [
        Event::Refused(tonic::Status::unavailable("shutting down")),
        Event::Failed(SessionError::Store(StoreError::Io(
            weft_store::IoError::msg("disk"),
        ))),
    ] {
        let (m, _) = run(Machine::new(None), vec![Event::Connected, event]);
        assert!(matches!(
            m.state,
            State::Backoff {
                class: Class::Transient,
                attempt: 1,
                ..
            }
        ));
        assert_eq!(wait_of(&m), Duration::from_millis(500));
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_ending_during_the_initial_sync_counts_as_a_failed_attempt() {
    // An attempt that never completed its initial sync keeps growing the back-off.
    let m = Machine {
        state: State::Connecting { attempt: 2 },
        ..Machine::new(None)
    };
    let (m, _) = run(
        m,
        vec![
            Event::Connected,
            Event::Accepted,
            Event::StreamEnded(SessionError::Closed),
        ],
    );
    assert!(matches!(m.state, State::Backoff { attempt: 3, .. }));
    assert_eq!(wait_of(&m), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_synced_session_that_ends_starts_the_back_off_afresh() {
    // After a healthy (synced) session the first retry is the shortest; a revocation
    // that cuts the live stream is an auth refusal (long back-off).
    let m = Machine {
        state: State::Connecting { attempt: 6 },
        ..Machine::new(None)
    };
    let synced = |m| {
        run(
            m,
            vec![
                Event::Connected,
                Event::Accepted,
                Event::InitialSyncCommitted,
            ],
        )
        .0
    };
    let (m, _) = step(synced(m), Event::StreamEnded(SessionError::Closed), now(0));
    assert!(matches!(m.state, State::Backoff { attempt: 1, .. }));
    assert_eq!(wait_of(&m), Duration::from_millis(500));
    let (m, _) = step(m, Event::BackoffElapsed, now(0));
    let revoked = SessionError::Stream(weft_sync::delta::DeltaError::Transport(Box::new(
        tonic::Status::unauthenticated("token revoked"),
    )));
    let (m, _) = step(synced(m), Event::StreamEnded(revoked), now(0));
    assert!(matches!(
        m.state,
        State::Backoff {
            class: Class::Auth,
            attempt: 1,
            ..
        }
    ));
    assert_eq!(wait_of(&m), Duration::from_secs(10));
    assert!(
        m.readiness().ready,
        "a synced zone serves through a refusal"
    );
}

#[tokio::test(start_paused = true)]
async fn a_zone_with_a_stored_sync_serves_while_global_is_unreachable() {
    // Restarted with a full sync in its store, the zone is ready from the start; while
    // global is unreachable it says so and since when (the first failure, not the
    // latest); once global accepts it again, it re-syncs while serving.
    let m = Machine::new(Some(wall(0)));
    let r = m.readiness();
    assert!(r.ready, "{r:?}");
    assert_eq!(
        r.reason,
        "serving from store, connecting to global (last full sync 2024-05-01T12:00:00Z)"
    );
    let (m, _) = step(m, Event::Failed(unreachable()), now(60));
    let (m, _) = step(m, Event::BackoffElapsed, now(61));
    let (m, _) = step(m, Event::Failed(unreachable()), now(62));
    let r = m.readiness();
    assert!(r.ready);
    assert!(
        r.reason.starts_with(
            "serving from store, global unreachable since 2024-05-01T12:01:00Z: cannot set up TLS"
        ),
        "{r:?}"
    );
    assert!(
        r.reason.ends_with("(last full sync 2024-05-01T12:00:00Z)"),
        "{r:?}"
    );
    let (m, _) = run(
        m,
        vec![Event::BackoffElapsed, Event::Connected, Event::Accepted],
    );
    assert_eq!(m.trouble, None);
    let r = m.readiness();
    assert!(
        r.ready
            && r.reason
                .starts_with("serving from store, re-syncing with global")
    );
}

#[tokio::test(start_paused = true)]
async fn a_zone_that_never_synced_is_not_ready_and_says_why() {
    // Without a stored sync, an unreachable global means 503 with the reason.
    let (m, _) = step(Machine::new(None), Event::Failed(unreachable()), now(0));
    let r = m.readiness();
    assert!(!r.ready);
    assert!(
        r.reason
            .starts_with("never synced with global: global unreachable since 2024-05-01T12:00:00Z: cannot set up TLS"),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_from_every_state() {
    // Whatever the state, Shutdown leads to Stopped and the Stop action.
    let until = Instant::now() + Duration::from_secs(1);
    for state in [
        State::Connecting { attempt: 0 },
        State::Handshaking { attempt: 1 },
        State::InitialSync { attempt: 0 },
        State::Synced,
        State::Backoff {
            attempt: 1,
            class: Class::Transient,
            until,
        },
        State::Stopped,
    ] {
        let m = Machine {
            state,
            ..Machine::new(Some(wall(0)))
        };
        let (m, a) = step(m, Event::Shutdown, now(0));
        assert_eq!((&m.state, a), (&State::Stopped, Action::Stop));
        assert!(!m.readiness().ready);
    }
}

#[tokio::test(start_paused = true)]
async fn unexpected_events_change_nothing() {
    // An event the state does not expect leaves the machine as it was.
    let until = Instant::now() + Duration::from_secs(1);
    type MakeEvent = fn() -> Event;
    let cases: Vec<(State, Vec<MakeEvent>)> = vec![
        (
            State::Connecting { attempt: 1 },
            vec![
                || Event::Accepted,
                || Event::InitialSyncCommitted,
                || Event::BackoffElapsed,
                || Event::StreamEnded(SessionError::Closed),
                || Event::Refused(tonic::Status::unauthenticated("x")),
            ],
        ),
        (
            State::Handshaking { attempt: 1 },
            vec![|| Event::Connected, || Event::InitialSyncCommitted, || {
                Event::BackoffElapsed
            }],
        ),
        (
            State::InitialSync { attempt: 1 },
            vec![|| Event::Connected, || Event::Accepted, || {
                Event::BackoffElapsed
            }],
        ),
        (
            State::Synced,
            vec![|| Event::Connected, || Event::InitialSyncCommitted, || {
                Event::Failed(SessionError::Closed)
            }],
        ),
        (
            State::Backoff {
                attempt: 1,
                class: Class::Transient,
                until,
            },
            vec![
                || Event::Connected,
                || Event::Accepted,
                || Event::Failed(SessionError::Closed),
                || Event::StreamEnded(SessionError::Closed),
            ],
        ),
        (
            State::Stopped,
            vec![|| Event::Connected, || Event::BackoffElapsed],
        ),
    ];
    for (state, events) in cases {
        for event in events {
            let m = Machine {
                state: state.clone(),
                ..Machine::new(None)
            };
            let before = m.clone();
            let (after, a) = step(m, event(), now(0));
            assert_eq!(after, before);
            assert_eq!(a, before.action());
        }
    }
}
