//! Precise pacing for fixed-rate runs. Tokio's timer has 1 ms granularity,
//! which would release fixed-rate sends in 1 ms bursts (25 at once at
//! 25k req/s) and inflate the latency tail by the queueing of each burst.
//! One pacer thread instead sleeps on a condvar with a timeout (an hrtimer,
//! tens of µs of slack) until the earliest registered send time and wakes
//! exactly the tasks that are due. No spinning: the load tool usually
//! shares a small machine with the server it measures.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Entry {
    at: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

struct Shared {
    due: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
    stop: AtomicBool,
}

pub struct Pacer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    pub fn start() -> std::io::Result<Pacer> {
        let shared = Arc::new(Shared {
            due: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bwgate-load-pacer".into())
            .spawn(move || run(&s))?;
        Ok(Pacer {
            shared,
            thread: Some(thread),
        })
    }

    /// Completes at (or just after) `at`.
    pub fn until(&self, at: Instant) -> Until<'_> {
        Until { pacer: self, at }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shared.stop.store(true, AtomicOrdering::Release);
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(s: &Shared) {
    let mut due = s.due.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if s.stop.load(AtomicOrdering::Acquire) {
            // Release every waiter; none may hang on a stopped pacer.
            for Reverse(e) in due.drain() {
                e.waker.wake();
            }
            return;
        }
        let now = Instant::now();
        while due.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = due.pop() {
                e.waker.wake();
            }
        }
        let wait = due
            .peek()
            .map(|Reverse(e)| e.at.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100));
        due = s
            .changed
            .wait_timeout(due, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

pub struct Until<'a> {
    pacer: &'a Pacer,
    at: Instant,
}

impl Future for Until<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at || self.pacer.shared.stop.load(AtomicOrdering::Acquire) {
            return Poll::Ready(());
        }
        let s = &self.pacer.shared;
        let mut due = s.due.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = due.peek().is_none_or(|Reverse(e)| self.at < e.at);
        due.push(Reverse(Entry {
            at: self.at,
            waker: cx.waker().clone(),
        }));
        drop(due);
        if earliest {
            s.changed.notify_one();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_each_waiter_at_its_time_not_before() {
        let pacer = Pacer::start().unwrap();
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let wait = |t: Instant| {
            let p = &pacer;
            async move {
                p.until(t).await;
                let now = Instant::now();
                assert!(now >= t, "woke early");
                now - t
            }
        };
        let (a, b, c, d) = tokio::join!(wait(at(30)), wait(at(5)), wait(at(20)), wait(at(5)));
        for late in [a, b, c, d] {
            assert!(late < Duration::from_millis(500), "{late:?}");
        }
        // Already due: immediate.
        wait(start).await;
    }

    #[test]
    fn dropping_the_pacer_stops_its_thread() {
        let pacer = Pacer::start().expect("pacer");
        // Besides the pacer, only its thread holds the shared state: the
        // state is gone once the thread has returned.
        let shared = Arc::downgrade(&pacer.shared);
        // Drop elsewhere, so a pacer whose thread never stops (its drop
        // joins it) fails this test instead of hanging it.
        let (dropped, has_dropped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(pacer);
            let _ = dropped.send(());
        });
        has_dropped
            .recv_timeout(Duration::from_secs(5))
            .expect("the drop returns within 5 s");
        assert!(
            shared.upgrade().is_none(),
            "the pacer thread still runs after the drop"
        );
    }
}
