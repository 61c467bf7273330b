//! The zone's link to global as a pure state machine: [`step`] takes the machine,
//! an [`Event`] the driver observed and the current time ([`Now`]), and returns the
//! next machine and the [`Action`] the driver performs next. No IO, no clock, no
//! randomness (the jitter comes in with [`Now`]), so every transition is unit-tested
//! with paused time (kube-runtime's `watcher` has the same shape).
//!
//! ```text
//!            Connected            Accepted                InitialSyncCommitted
//! Connecting ────────► Handshaking ───────► InitialSync ──────────────────────► Synced
//!     │ Failed              │ Refused, Failed    │ StreamEnded                     │ StreamEnded
//!     └────────────────┬────┴────────────────────┴─────────────────────────────────┘
//!                      ▼
//!                   Backoff ── BackoffElapsed ──► Connecting
//! ```
//! `Shutdown` leads from every state to `Stopped`. An event the state does not
//! expect changes nothing.
//!
//! Besides the state, the machine remembers across attempts when the zone last
//! completed a full sync (also from before a restart: the store's marker, see
//! decision 0008) and since when global has been unreachable or refusing, which is
//! what [`Machine::readiness`] reports.

use super::session::{Class, SessionError};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Whether the zone serves, and why: the KDS client's part of `/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// Serving from the store without being in sync with global (shown as
    /// "degraded": ready, with a reason an operator should see).
    pub degraded: bool,
    /// For an operator: what the client is doing, or waiting for.
    pub reason: String,
}

impl Readiness {
    pub fn ready(reason: impl Into<String>) -> Self {
        Readiness {
            ready: true,
            degraded: false,
            reason: reason.into(),
        }
    }

    /// Ready from a sync held in the store, not (yet) in step with global.
    pub fn from_store(reason: impl Into<String>) -> Self {
        Readiness {
            ready: true,
            degraded: true,
            reason: reason.into(),
        }
    }

    pub fn not_ready(reason: impl Into<String>) -> Self {
        Readiness {
            ready: false,
            degraded: false,
            reason: reason.into(),
        }
    }
}

/// The states of the zone's link to global. `attempt` counts the attempts that
/// failed in a row before this one (the back-off grows with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Dialing global: TCP, TLS (global's certificate verified), HTTP/2.
    Connecting { attempt: u32 },
    /// Connected; opening both KDS streams with the zone token. Global answers
    /// once it has authenticated the zone, or refuses with a status.
    Handshaking { attempt: u32 },
    /// Both streams are open and global's initial sync is arriving; it is staged
    /// and committed in one store transaction once every type has arrived.
    InitialSync { attempt: u32 },
    /// The initial sync is committed; changes flow both ways as they happen.
    Synced,
    /// Waiting until `until` before the next attempt. `class` says why it waits
    /// that long (a refused token waits longer than a lost connection).
    Backoff {
        attempt: u32,
        class: Class,
        until: Instant,
    },
    /// Shut down: nothing more happens.
    Stopped,
}

/// What the driver observed.
#[derive(Debug)]
pub enum Event {
    /// The transport to global is up.
    Connected,
    /// Global accepted both streams (it authenticated the zone).
    Accepted,
    /// Global answered a stream with an error status (a refused token, say).
    Refused(tonic::Status),
    /// Dialing or opening the streams failed otherwise (transport, TLS, store).
    Failed(SessionError),
    /// The initial sync was committed to the store.
    InitialSyncCommitted,
    /// The streams ended, after they were accepted.
    StreamEnded(SessionError),
    /// The back-off is over.
    BackoffElapsed,
    /// The zone is shutting down.
    Shutdown,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Dial global; report `Connected` or `Failed`.
    Connect,
    /// Open both streams on the connection; report `Accepted`, `Refused` or `Failed`.
    Handshake,
    /// Run the streams; report `InitialSyncCommitted` (once) and `StreamEnded`.
    Sync,
    /// Sleep until `until`; report `BackoffElapsed`.
    Wait { until: Instant },
    /// Stop.
    Stop,
}

/// The outside world a step may depend on, passed in so the step stays pure.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub instant: Instant,
    /// Wall-clock time, for what readiness reports.
    pub wall: SystemTime,
    /// The back-off's jitter factor, in [0.75, 1.25).
    pub jitter: f64,
}

impl Now {
    /// The current time, with a fresh random jitter.
    pub fn current() -> Self {
        Now {
            instant: Instant::now(),
            wall: SystemTime::now(),
            jitter: rand::random_range(0.75..1.25),
        }
    }
}

/// Why the zone cannot talk to global at the moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    /// When the link was first lost (or first failed) in this run of failures.
    pub since: SystemTime,
    pub class: Class,
    /// The last failure, for operators.
    pub error: String,
}

/// The state, plus what the client remembers across attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub state: State,
    /// When the store last took in a full sync from global (`None`: never).
    pub last_sync: Option<SystemTime>,
    /// Set from the first failure until global accepts the zone again.
    pub trouble: Option<Trouble>,
}

/// Transient failures: 0.5 s, 1 s, 2 s, … capped at 15 s.
const TRANSIENT_BASE: Duration = Duration::from_millis(500);
const TRANSIENT_MAX: Duration = Duration::from_secs(15);
/// A refused token: 10 s, 20 s, 40 s, capped at 60 s (a new token takes an
/// operator; hammering global with a refused one helps nobody).
const AUTH_BASE: Duration = Duration::from_secs(10);
const AUTH_MAX: Duration = Duration::from_secs(60);

/// A disabled zone: 2 s, 4 s, ... capped at 15 s, so that enabling it on
/// global brings it back soon without hammering global meanwhile.
const DISABLED_BASE: Duration = Duration::from_secs(2);
const DISABLED_MAX: Duration = Duration::from_secs(15);

/// How long to wait before attempt number `attempt + 1` (`attempt` ≥ 1 failures),
/// before jitter.
pub fn backoff(class: Class, attempt: u32) -> Duration {
    let (base, max) = match class {
        Class::Transient => (TRANSIENT_BASE, TRANSIENT_MAX),
        Class::Auth => (AUTH_BASE, AUTH_MAX),
        Class::Disabled => (DISABLED_BASE, DISABLED_MAX),
    };
    let doublings = attempt.saturating_sub(1).min(16);
    base.saturating_mul(1u32 << doublings).min(max)
}

impl Machine {
    /// A client about to dial; `last_sync` is when the store last took in a full
    /// sync (before a restart), if ever.
    pub fn new(last_sync: Option<SystemTime>) -> Self {
        Machine {
            state: State::Connecting { attempt: 0 },
            last_sync,
            trouble: None,
        }
    }

    /// What the current state asks the driver to do.
    pub fn action(&self) -> Action {
        match self.state {
            State::Connecting { .. } => Action::Connect,
            State::Handshaking { .. } => Action::Handshake,
            State::InitialSync { .. } | State::Synced => Action::Sync,
            State::Backoff { until, .. } => Action::Wait { until },
            State::Stopped => Action::Stop,
        }
    }

    /// Whether the zone serves, and why. A zone that holds a full sync serves it,
    /// whether or not global is reachable; one that never synced does not.
    pub fn readiness(&self) -> Readiness {
        let last = self.last_sync.map(rfc3339);
        match (&self.state, last) {
            (State::Stopped, _) => Readiness::not_ready("shutting down"),
            (State::Synced, _) => Readiness::ready("synced with global"),
            (State::InitialSync { .. }, Some(last)) => Readiness::from_store(format!(
                "serving from store, re-syncing with global (last full sync {last})"
            )),
            (State::InitialSync { .. }, None) => {
                Readiness::not_ready("never synced with global: the first sync is under way")
            }
            (_, Some(last)) => Readiness::from_store(match &self.trouble {
                None => format!("serving from store, connecting to global (last full sync {last})"),
                Some(t) => format!(
                    "serving from store, {} since {}: {} (last full sync {last})",
                    t.class.what(),
                    rfc3339(t.since),
                    t.error
                ),
            }),
            (_, None) => Readiness::not_ready(match &self.trouble {
                None => "never synced with global: connecting".to_string(),
                Some(t) => format!(
                    "never synced with global: {} since {}: {}",
                    t.class.what(),
                    rfc3339(t.since),
                    t.error
                ),
            }),
        }
    }

    /// The attempt count of the state (0 when synced or stopped).
    fn attempt(&self) -> u32 {
        match self.state {
            State::Connecting { attempt }
            | State::Handshaking { attempt }
            | State::InitialSync { attempt }
            | State::Backoff { attempt, .. } => attempt,
            State::Synced | State::Stopped => 0,
        }
    }

    /// Into `Backoff` after a failure of `class`.
    fn fail(mut self, class: Class, error: String, now: Now) -> Self {
        let attempt = self.attempt().saturating_add(1);
        let delay = backoff(class, attempt).mul_f64(now.jitter.clamp(0.0, 2.0));
        self.trouble = Some(match self.trouble.take() {
            // Still the same kind of trouble: it started earlier.
            Some(t) if t.class == class => Trouble { error, ..t },
            _ => Trouble {
                since: now.wall,
                class,
                error,
            },
        });
        self.state = State::Backoff {
            attempt,
            class,
            until: now.instant + delay,
        };
        self
    }
}

/// The machine after `event`, and what the driver does next.
pub fn step(machine: Machine, event: Event, now: Now) -> (Machine, Action) {
    let mut m = machine;
    m = match (m.state.clone(), event) {
        (_, Event::Shutdown) => Machine {
            state: State::Stopped,
            ..m
        },
        (State::Connecting { attempt }, Event::Connected) => Machine {
            state: State::Handshaking { attempt },
            ..m
        },
        (State::Connecting { .. } | State::Handshaking { .. }, Event::Failed(e)) => {
            let class = e.class();
            m.fail(class, e.to_string(), now)
        }
        (State::Handshaking { .. }, Event::Refused(status)) => {
            let e = SessionError::Refused(status);
            let class = e.class();
            m.fail(class, e.to_string(), now)
        }
        (State::Handshaking { attempt }, Event::Accepted) => Machine {
            state: State::InitialSync { attempt },
            trouble: None,
            ..m
        },
        (State::InitialSync { .. }, Event::InitialSyncCommitted) => Machine {
            state: State::Synced,
            last_sync: Some(now.wall),
            ..m
        },
        // From Synced the attempt count is 0: a healthy session starts the back-off afresh.
        (State::InitialSync { .. } | State::Synced, Event::StreamEnded(e)) => {
            let class = e.class();
            m.fail(class, e.to_string(), now)
        }
        (State::Backoff { attempt, .. }, Event::BackoffElapsed) => Machine {
            state: State::Connecting { attempt },
            ..m
        },
        // Not expected in this state: nothing changes.
        (_, _) => m,
    };
    let action = m.action();
    (m, action)
}

/// `2024-05-01T12:00:00Z`.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests;
