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
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match by(Instant::now() + within, probe).await {
        Some(v) => v,
        None => panic!("{what}: did not happen within {within:?}"),
    }
}

/// Polls `probe` until it returns `Some(value)` (returned) or `deadline` passes
/// (`None`), for a test that reports a miss itself instead of panicking. The
/// probe runs at least once.
pub async fn by<T, F, Fut>(deadline: Instant, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
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
    async fn by_gives_up_at_the_deadline_without_panicking() {
        // A condition that never holds yields None once the deadline has passed.
        let deadline = Instant::now() + Duration::from_millis(50);
        let got: Option<()> = by(deadline, || async { None }).await;
        assert!(got.is_none());
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test]
    #[should_panic(expected = "never: did not happen within")]
    async fn panics_naming_the_condition_after_the_deadline() {
        // A condition that never holds fails the test with its name.
        until(Duration::from_millis(50), "never", || async { false }).await;
    }
}
