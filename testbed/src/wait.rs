//! Waiting for a condition in tests: poll with a bounded deadline, never a blind
//! sleep. Both helpers panic with `what` and the deadline when it passes, which is
//! what a test wants.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `probe` until it returns `Some(value)` and returns the value; panics
/// naming `what` once `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: did not happen within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it returns true; panics naming `what` once `within` has
/// passed.
pub async fn until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(within, what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_value_the_probe_yields() {
        // The probe runs until it answers Some, and that answer is returned.
        let calls = AtomicU32::new(0);
        let v = eventually(Duration::from_secs(5), "third call", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "never: did not happen within")]
    async fn panics_naming_the_condition_after_the_deadline() {
        // A condition that never holds fails the test with its name.
        until(Duration::from_millis(50), "never", || async { false }).await;
    }
}
