//! Graceful shutdown: a signal starts the drain, components stop accepting work
//! and finish what they hold, and a deadline bounds the wait.

use std::time::Duration;
pub use tokio_util::sync::CancellationToken;

/// How long a drain may take before the process exits anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Resolves on the first SIGINT or SIGTERM (Ctrl-C elsewhere).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => tracing::info!("SIGINT received, draining"),
                    _ = term.recv() => tracing::info!("SIGTERM received, draining"),
                }
                return;
            }
            _ => tracing::warn!("cannot install signal handlers; falling back to Ctrl-C only"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("interrupt received, draining");
}
