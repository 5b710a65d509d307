//! Helpers shared by the unit tests (compiled only for them).

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The one way a unit test waits for a condition: calls `observe` until it
/// returns `Ok(value)` (every 20 ms), and returns the value. At `timeout`
/// it panics naming `what` and the last observation (the last `Err`).
/// Uses tokio's clock, so it also works under a paused clock.
pub(crate) async fn eventually<T, O, F, Fut>(
    what: impl Display,
    timeout: Duration,
    mut observe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, O>>,
    O: Debug,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match observe().await {
            Ok(value) => return value,
            Err(observed) => observed,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?}; last observation: {last:?}\nwaiting for: {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[tokio::test]
async fn eventually_returns_the_first_ok_value() {
    let mut looks = 0;
    let seen = eventually("three looks", Duration::from_secs(5), || {
        looks += 1;
        let n = looks;
        async move {
            if n >= 3 {
                Ok(n)
            } else {
                Err(n)
            }
        }
    })
    .await;
    assert_eq!(seen, 3);
}

#[tokio::test]
#[should_panic(
    expected = "last observation: \"still nothing\"\nwaiting for: a thing that never comes"
)]
async fn eventually_panics_with_what_and_the_last_observation() {
    eventually(
        "a thing that never comes",
        Duration::from_millis(60),
        || async { Err::<(), _>("still nothing") },
    )
    .await;
}
