//! What one connection shares between its requests: its body budget and
//! how many requests are in progress, which tells when it went idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::LimitsConfig;
use crate::http::body_budget::{BodyBudget, BudgetScope};

pub struct ConnState {
    /// Bytes of request bodies this connection may hold at once.
    pub body_budget: BodyBudget,
    /// Requests in progress (HTTP/2: open streams being served).
    in_progress: watch::Sender<usize>,
}

impl ConnState {
    pub fn new(limits: &LimitsConfig) -> Arc<ConnState> {
        Arc::new(ConnState {
            body_budget: BodyBudget::new(limits.max_connection_body_bytes, BudgetScope::Connection),
            in_progress: watch::Sender::new(0),
        })
    }

    /// Counts a request as in progress until the guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> RequestInProgress {
        self.in_progress.send_modify(|n| *n += 1);
        RequestInProgress(self.clone())
    }

    pub fn requests_in_progress(&self) -> usize {
        *self.in_progress.borrow()
    }

    /// Resolves once no request has been in progress for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut in_progress = self.in_progress.subscribe();
        loop {
            // The sender lives in `self`, so this only waits.
            if in_progress.wait_for(|n| *n == 0).await.is_err() {
                return;
            }
            // Any request starting (or ending) restarts the wait.
            if tokio::time::timeout(timeout, in_progress.changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

pub struct RequestInProgress(Arc<ConnState>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.in_progress.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    #[tokio::test]
    async fn idle_only_after_the_last_request_ends() {
        let state = ConnState::new(&LimitsConfig::default());
        let request = state.begin_request();
        let idle = state.idle_for(Duration::from_millis(100));
        tokio::pin!(idle);
        // A request in progress for longer than the timeout: not idle.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), idle.as_mut())
                .await
                .is_err()
        );
        drop(request);
        let ended = Instant::now();
        idle.await;
        assert!(ended.elapsed() >= Duration::from_millis(100));
    }
}
