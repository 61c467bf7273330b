//! Graceful shutdown: a signal starts the drain, components stop accepting work
//! and finish what they hold, and a deadline bounds the wait.

use std::time::Duration;
pub use tokio_util::sync::CancellationToken;

/// How long a drain may take before the process exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// SIGINT and SIGTERM handlers. Install them before announcing readiness: a
/// signal that arrives earlier would otherwise take the default action (the
/// process dies without draining).
pub struct Signals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    /// Registers the handlers now (needs a Tokio runtime).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => {
                    tracing::warn!("cannot install signal handlers; falling back to Ctrl-C only");
                    None
                }
            };
            Signals { unix }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.unix {
            tokio::select! {
                _ = int.recv() => tracing::info!("SIGINT received, draining"),
                _ = term.recv() => tracing::info!("SIGTERM received, draining"),
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupt received, draining");
    }
}
