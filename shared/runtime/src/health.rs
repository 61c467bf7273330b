//! What each component reports about itself, for `/ready` and the logs.
//!
//! A component holds a [`Reporter`] and says whether it is starting, ready,
//! degraded (serving, with a reason an operator should see) or down. The process is
//! ready when no component is starting or down. Restarts are counted, so an
//! interruption stays visible after the component is back.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use time::OffsetDateTime;

/// One component's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not serving yet (e.g. a zone before its first sync).
    Starting,
    /// Serving normally.
    Ready,
    /// Serving, but something needs attention (the reason says what).
    Degraded,
    /// Not serving.
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Degraded => "degraded",
            State::Down => "down",
        }
    }

    /// Whether the process may take traffic while a component is in this state.
    pub fn serves(self) -> bool {
        matches!(self, State::Ready | State::Degraded)
    }
}

/// One component's report, as `/ready` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the state last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// How often the supervisor restarted the component.
    #[serde(skip_serializing_if = "is_zero")]
    pub restarts: u32,
    /// Why it was last restarted, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_restart: Option<Restart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restart {
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every component's report. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<&'static str, Report>>>,
    /// Bumped on every change, for [`Health::until_serving`].
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            components: Arc::default(),
            changed: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl Health {
    /// A reporter for `component`, which starts in `initial` state.
    pub fn reporter(&self, component: &'static str, initial: State) -> Reporter {
        self.update(component, |r| {
            r.state = initial;
            r.reason = None;
        });
        Reporter {
            health: self.clone(),
            component,
        }
    }

    /// Ready when every component serves (none is starting or down).
    pub fn is_ready(&self) -> bool {
        self.lock().values().all(|r| r.state.serves())
    }

    /// Every component's report, by name.
    pub fn snapshot(&self) -> BTreeMap<&'static str, Report> {
        self.lock().clone()
    }

    /// Why the process is not ready: the first component that does not serve,
    /// by its reason (or "<component> <state>" when it gave none).
    pub fn blocker(&self) -> Option<String> {
        self.lock()
            .iter()
            .find(|(_, r)| !r.state.serves())
            .map(|(name, r)| describe(name, r))
    }

    /// One line for an operator: the blocker when not ready; otherwise the first
    /// degraded component's reason, else the first ready one that gave a reason
    /// (e.g. "synced with global"), else "serving".
    pub fn summary(&self) -> String {
        if let Some(blocker) = self.blocker() {
            return blocker;
        }
        let map = self.lock();
        map.iter()
            .find(|(_, r)| r.state == State::Degraded)
            .or_else(|| map.iter().find(|(_, r)| r.reason.is_some()))
            .map_or_else(|| "serving".to_string(), |(name, r)| describe(name, r))
    }

    /// Waits until every one of `components` serves, or `within` has passed;
    /// whether they all serve. (A control plane waits for its local followers'
    /// first list before it announces itself.)
    pub async fn until_serving(&self, components: &[&str], within: std::time::Duration) -> bool {
        let mut changed = self.changed.subscribe();
        let serving = |h: &Self| {
            let map = h.lock();
            components
                .iter()
                .all(|c| map.get(c).is_some_and(|r| r.state.serves()))
        };
        let wait = async {
            loop {
                changed.borrow_and_update();
                if serving(self) {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
        serving(self)
    }

    pub fn get(&self, component: &str) -> Option<Report> {
        self.lock().get(component).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Report>> {
        // A report is plain data: a panic elsewhere cannot leave it half-written.
        self.components
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, component: &'static str, f: impl FnOnce(&mut Report)) {
        let mut map = self.lock();
        let report = map.entry(component).or_insert_with(|| Report {
            state: State::Starting,
            reason: None,
            since: OffsetDateTime::now_utc(),
            restarts: 0,
            last_restart: None,
        });
        let before = (report.state, report.reason.clone());
        f(report);
        if before != (report.state, report.reason.clone()) {
            report.since = OffsetDateTime::now_utc();
        }
        drop(map);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn describe(component: &str, report: &Report) -> String {
    match &report.reason {
        Some(reason) => reason.clone(),
        None => format!("{component} {}", report.state.as_str()),
    }
}

/// One component's handle on [`Health`].
#[derive(Debug, Clone)]
pub struct Reporter {
    health: Health,
    component: &'static str,
}

impl Reporter {
    /// A reporter that belongs to no process (for tests and tools).
    pub fn detached(component: &'static str) -> Self {
        Health::default().reporter(component, State::Starting)
    }

    pub fn component(&self) -> &'static str {
        self.component
    }

    pub fn ready(&self) {
        self.set(State::Ready, None);
    }

    /// Ready, with a word for the operator (e.g. "synced with global").
    pub fn ready_with(&self, reason: impl Into<String>) {
        self.set(State::Ready, Some(reason.into()));
    }

    pub fn degraded(&self, reason: impl Into<String>) {
        self.set(State::Degraded, Some(reason.into()));
    }

    pub fn down(&self, reason: impl Into<String>) {
        self.set(State::Down, Some(reason.into()));
    }

    pub fn starting(&self, reason: impl Into<String>) {
        self.set(State::Starting, Some(reason.into()));
    }

    /// Counts a restart by the supervisor; the component is down until it reports again.
    pub fn restarted(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.health.update(self.component, |r| {
            r.restarts = r.restarts.saturating_add(1);
            r.last_restart = Some(Restart {
                reason: reason.clone(),
                at: OffsetDateTime::now_utc(),
            });
            r.state = State::Down;
            r.reason = Some(format!("restarting after: {reason}"));
        });
    }

    pub fn state(&self) -> State {
        self.health
            .get(self.component)
            .map_or(State::Starting, |r| r.state)
    }

    fn set(&self, state: State, reason: Option<String>) {
        self.health.update(self.component, |r| {
            r.state = state;
            r.reason = reason;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The process is ready only when every component serves; degraded still serves.
    #[test]
    fn ready_when_every_component_serves() {
        let health = Health::default();
        let api = health.reporter("REST API", State::Ready);
        let kds = health.reporter("KDS client", State::Starting);
        assert!(!health.is_ready());
        assert_eq!(health.blocker().as_deref(), Some("KDS client starting"));
        kds.degraded("serving from store, global unreachable");
        assert!(health.is_ready());
        assert_eq!(health.summary(), "serving from store, global unreachable");
        api.down("listener closed");
        assert!(!health.is_ready());
        assert_eq!(health.blocker().as_deref(), Some("listener closed"));
        assert_eq!(health.summary(), "listener closed");
    }

    // A restart stays on the record after the component is ready again.
    #[test]
    fn restarts_are_remembered() {
        let health = Health::default();
        let cache = health.reporter("xDS cache", State::Ready);
        cache.restarted("aborted");
        assert!(!health.is_ready());
        cache.ready();
        let report = health.get("xDS cache").map(|r| (r.state, r.restarts));
        assert_eq!(report, Some((State::Ready, 1)));
        let json = serde_json::to_value(health.snapshot()).unwrap_or_default();
        assert_eq!(json["xDS cache"]["lastRestart"]["reason"], "aborted");
        assert_eq!(json["xDS cache"]["state"], "ready");
    }

    // Waiting for components ends as soon as they all serve, and says false when
    // one still does not at the deadline.
    #[tokio::test(start_paused = true)]
    async fn until_serving_waits_for_the_named_components() {
        let health = Health::default();
        let feed = health.reporter("feed", State::Starting);
        let _api = health.reporter("api", State::Down);
        let waiter = {
            let health = health.clone();
            tokio::spawn(async move {
                health
                    .until_serving(&["feed"], std::time::Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        feed.ready();
        assert!(waiter.await.unwrap_or(false));
        assert!(
            !health
                .until_serving(&["api"], std::time::Duration::from_secs(1))
                .await
        );
    }

    // `since` moves only when the state or reason changes.
    #[test]
    fn since_tracks_changes_only() {
        let health = Health::default();
        let r = health.reporter("x", State::Ready);
        let first = health.get("x").map(|r| r.since);
        r.ready();
        assert_eq!(health.get("x").map(|r| r.since), first);
    }
}
