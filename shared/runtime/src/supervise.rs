//! Named components in one supervised set.
//!
//! Every long-running part of a control plane (REST API, KDS, xDS, caches, feeds)
//! runs here under a name. A component is expected to run until shutdown:
//!
//! - a **critical** component ([`Supervisor::spawn`]) that ends before shutdown —
//!   with an error, without one, by a panic or an abort — stops the whole set, and
//!   [`Supervisor::wait`] returns a [`ComponentError`] naming it (the binary then
//!   exits non-zero);
//! - a **restarting** component ([`Supervisor::spawn_restarting`]) is started again
//!   after a back-off; its [`Reporter`] counts the restart, so `/ready` shows the
//!   interruption, and it reports ready again itself once it has caught up.
//!
//! [`Control`] lets tests abort a component as a crash would.

use crate::health::{Health, Reporter, State};
use crate::shutdown::CancellationToken;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::{AbortHandle, JoinError, JoinSet};

/// Any error a component ends with (its sources kept).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How long the rest of the set may take to stop after a component failed.
pub const FAILURE_DRAIN: Duration = Duration::from_millis(500);

/// Why the set stopped: the first component that ended unexpectedly.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error("the {component} failed: {source}")]
    Failed {
        component: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("the {component} stopped unexpectedly (before shutdown)")]
    Stopped { component: &'static str },
    #[error("the {component} panicked: {message}")]
    Panicked {
        component: &'static str,
        message: String,
    },
    #[error("the {component} was aborted")]
    Aborted { component: &'static str },
}

impl ComponentError {
    /// The component that ended.
    pub fn component(&self) -> &'static str {
        match self {
            ComponentError::Failed { component, .. }
            | ComponentError::Stopped { component }
            | ComponentError::Panicked { component, .. }
            | ComponentError::Aborted { component } => component,
        }
    }

    fn from_join(component: &'static str, e: JoinError) -> Self {
        if e.is_panic() {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            ComponentError::Panicked { component, message }
        } else {
            ComponentError::Aborted { component }
        }
    }
}

/// Restart back-off: doubles from `start` up to `max`; a run that lasted `healthy`
/// starts it afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub start: Duration,
    pub max: Duration,
    pub healthy: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            start: Duration::from_millis(100),
            max: Duration::from_secs(5),
            healthy: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The pause before restart number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.start
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max)
    }
}

/// Aborts a running component as a crash would (for tests and fault drills).
#[derive(Debug, Clone, Default)]
pub struct Control {
    running: Arc<Mutex<BTreeMap<&'static str, AbortHandle>>>,
}

impl Control {
    /// Aborts `component`'s current run; false when no such component runs.
    pub fn abort(&self, component: &str) -> bool {
        match self.lock().get(component) {
            Some(handle) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// The names of every supervised component.
    pub fn components(&self) -> Vec<&'static str> {
        self.lock().keys().copied().collect()
    }

    fn set(&self, component: &'static str, handle: AbortHandle) {
        self.lock().insert(component, handle);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, AbortHandle>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The supervised set of one process.
pub struct Supervisor {
    set: JoinSet<Result<(), ComponentError>>,
    shutdown: CancellationToken,
    health: Health,
    control: Control,
}

impl Supervisor {
    /// A set that stops when `shutdown` fires, and fires it when a component fails.
    pub fn new(shutdown: CancellationToken, health: Health) -> Self {
        Supervisor {
            set: JoinSet::new(),
            shutdown,
            health,
            control: Control::default(),
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn control(&self) -> Control {
        self.control.clone()
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Runs a critical component: reported ready while it runs; ending before
    /// shutdown stops the set.
    pub fn spawn<F, E>(&mut self, component: &'static str, run: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let reporter = self.health.reporter(component, State::Ready);
        let shutdown = self.shutdown.clone();
        let inner = tokio::spawn(async move { run.await.map_err(Into::into) });
        self.control.set(component, inner.abort_handle());
        self.set.spawn(async move {
            let ended = inner.await;
            let result = settle(component, ended, &shutdown);
            if let Err(e) = &result {
                reporter.down(e.to_string());
            }
            result
        });
    }

    /// Runs a component that is started again (after [`Backoff`]) whenever it ends
    /// before shutdown. `make` gets the component's [`Reporter`]: it starts as
    /// [`State::Starting`] and the component reports ready itself.
    pub fn spawn_restarting<M, F, E>(
        &mut self,
        component: &'static str,
        backoff: Backoff,
        mut make: M,
    ) where
        M: FnMut(Reporter) -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let reporter = self.health.reporter(component, State::Starting);
        let shutdown = self.shutdown.clone();
        let control = self.control.clone();
        let mut run_once = move |reporter: Reporter| {
            let run = make(reporter);
            let inner = tokio::spawn(async move { run.await.map_err(Into::into) });
            control.set(component, inner.abort_handle());
            inner
        };
        // The first run starts now, so the component is listed (and abortable)
        // as soon as this returns.
        let mut inner = run_once(reporter.clone());
        self.set.spawn(async move {
            let mut attempt = 0u32;
            loop {
                let started = tokio::time::Instant::now();
                let ended = (&mut inner).await;
                if shutdown.is_cancelled() {
                    return settle(component, ended, &shutdown);
                }
                let why = match settle(component, ended, &shutdown) {
                    Err(e) => e,
                    // `settle` only says Ok after shutdown.
                    Ok(()) => ComponentError::Stopped { component },
                };
                if started.elapsed() >= backoff.healthy {
                    attempt = 0;
                }
                attempt = attempt.saturating_add(1);
                let delay = backoff.delay(attempt);
                tracing::warn!(component, error = %why, restart_in = ?delay, "component ended; restarting it");
                reporter.restarted(why.to_string());
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
                inner = run_once(reporter.clone());
            }
        });
    }

    /// Waits until every component has stopped. The first one to end unexpectedly
    /// is logged by name, cancels the others (which get [`FAILURE_DRAIN`] to stop)
    /// and is returned.
    pub async fn wait(mut self) -> Result<(), ComponentError> {
        let mut first = None;
        while let Some(joined) = self.set.join_next().await {
            let result = joined.unwrap_or_else(|e| Err(ComponentError::from_join("supervisor", e)));
            if let Err(e) = result {
                tracing::error!(component = e.component(), error = %e, "component ended unexpectedly; stopping the others");
                self.shutdown.cancel();
                first = Some(e);
                break;
            }
        }
        if first.is_some() {
            let rest = async { while self.set.join_next().await.is_some() {} };
            if tokio::time::timeout(FAILURE_DRAIN, rest).await.is_err() {
                tracing::warn!(deadline = ?FAILURE_DRAIN, "components still running after a failure; aborting them");
                self.set.abort_all();
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How a component's run ended, judged against shutdown.
fn settle(
    component: &'static str,
    ended: Result<Result<(), BoxError>, JoinError>,
    shutdown: &CancellationToken,
) -> Result<(), ComponentError> {
    match ended {
        Ok(Ok(())) if shutdown.is_cancelled() => Ok(()),
        Ok(Ok(())) => Err(ComponentError::Stopped { component }),
        Ok(Err(source)) => Err(ComponentError::Failed { component, source }),
        Err(e) => Err(ComponentError::from_join(component, e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn until_cancelled(shutdown: CancellationToken) -> Result<(), BoxError> {
        shutdown.cancelled().await;
        Ok(())
    }

    // Shutdown stops every component and the set ends cleanly.
    #[tokio::test]
    async fn shutdown_ends_cleanly() {
        let shutdown = CancellationToken::new();
        let mut sup = Supervisor::new(shutdown.clone(), Health::default());
        sup.spawn("a", until_cancelled(shutdown.clone()));
        sup.spawn("b", until_cancelled(shutdown.clone()));
        shutdown.cancel();
        sup.wait().await.unwrap();
    }

    // An aborted critical component stops the set, which names it and cancels the rest.
    #[tokio::test]
    async fn aborted_critical_component_stops_the_set() {
        let shutdown = CancellationToken::new();
        let health = Health::default();
        let mut sup = Supervisor::new(shutdown.clone(), health.clone());
        sup.spawn("REST API", until_cancelled(shutdown.clone()));
        sup.spawn("xDS server", until_cancelled(shutdown.clone()));
        let control = sup.control();
        assert!(control.abort("xDS server"));
        let err = sup.wait().await.unwrap_err();
        assert_eq!(err.component(), "xDS server");
        assert!(matches!(err, ComponentError::Aborted { .. }), "{err}");
        assert!(shutdown.is_cancelled());
        assert!(!health.is_ready());
    }

    // A component that returns early (Ok or Err) or panics is named with its cause.
    #[tokio::test]
    async fn early_end_error_and_panic_are_named() {
        type End = fn() -> Result<(), BoxError>;
        let cases: [(&str, End); 3] = [
            ("stopped", || Ok(())),
            ("failed", || Err("listener closed".into())),
            ("panicked", || panic!("boom")),
        ];
        for (name, end) in cases {
            let shutdown = CancellationToken::new();
            let mut sup = Supervisor::new(shutdown.clone(), Health::default());
            sup.spawn("other", until_cancelled(shutdown.clone()));
            sup.spawn(name, async move { end() });
            let err = sup.wait().await.unwrap_err();
            assert_eq!(err.component(), name);
            let text = err.to_string();
            match name {
                "stopped" => assert!(text.contains("stopped unexpectedly"), "{text}"),
                "failed" => {
                    assert!(text.contains("listener closed"), "{text}");
                    assert!(std::error::Error::source(&err).is_some());
                }
                _ => assert!(text.contains("boom"), "{text}"),
            }
        }
    }

    // A restarting component comes back after an abort; the restart is on record.
    #[tokio::test(start_paused = true)]
    async fn restarting_component_comes_back() {
        let shutdown = CancellationToken::new();
        let health = Health::default();
        let mut sup = Supervisor::new(shutdown.clone(), health.clone());
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let token = shutdown.clone();
        sup.spawn_restarting("cache", Backoff::default(), move |reporter| {
            counted.fetch_add(1, Ordering::SeqCst);
            let token = token.clone();
            async move {
                reporter.ready();
                until_cancelled(token).await
            }
        });
        let control = sup.control();
        while runs.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        assert!(control.abort("cache"));
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while health.get("cache").map(|r| r.state) != Some(State::Ready) {
            tokio::task::yield_now().await;
        }
        let report = health.get("cache").unwrap();
        assert_eq!(report.restarts, 1);
        assert_eq!(
            report.last_restart.map(|r| r.reason).as_deref(),
            Some("the cache was aborted")
        );
        shutdown.cancel();
        sup.wait().await.unwrap();
    }

    // Back-off doubles up to its cap.
    #[test]
    fn backoff_doubles_to_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(10), Duration::from_secs(5));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
    }
}
