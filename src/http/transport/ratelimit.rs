//! Per-caller request rate limit on the flow-through face: one token bucket
//! per (provisioningId, client identity), where the identity is the client
//! certificate's subject CN when there is one, else the peer IP.
//!
//! Memory stays bounded: buckets are keyed by a 64-bit hash of the pair
//! (randomly seeded, so callers cannot aim for collisions), so an entry has
//! a fixed size whatever the URL. A bucket untouched for longer than it
//! takes to refill completely is indistinguishable from a new one, so
//! sweeps drop such buckets: every `SWEEP_EVERY`, or every second while
//! the map holds more than `SOFT_CAP`. At `HARD_CAP` no new bucket is
//! created: callers without one pass unlimited (fail open, counted in
//! `bwgate_rate_limiter_full_total`) rather than locking out every new AS.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::config::LimitsConfig;

const SWEEP_EVERY: Duration = Duration::from_secs(30);
const SWEEP_UNDER_PRESSURE: Duration = Duration::from_secs(1);
const SOFT_CAP: usize = 100_000;
const HARD_CAP: usize = 400_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: DashMap<u64, Bucket>,
    seed: RandomState,
    hard_cap: usize,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last sweep.
    last_sweep_ms: AtomicU64,
    sweep_lock: Mutex<()>,
}

impl RateLimiter {
    pub fn new(limits: &LimitsConfig) -> RateLimiter {
        RateLimiter {
            rate: limits.rate_per_sec as f64,
            burst: limits.rate_burst.max(1) as f64,
            buckets: DashMap::new(),
            seed: RandomState::new(),
            hard_cap: HARD_CAP,
            epoch: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
            sweep_lock: Mutex::new(()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one token. `Err(secs)`: over the limit, retry after `secs` (≥ 1).
    pub fn check(&self, provisioning_id: &str, identity: &str) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        let now = Instant::now();
        self.maybe_sweep(now);
        let key = self.seed.hash_one((provisioning_id, identity));
        if self.buckets.len() >= self.hard_cap && !self.buckets.contains_key(&key) {
            ::metrics::counter!("bwgate_rate_limiter_full_total").increment(1);
            return Ok(());
        }
        let mut bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// Buckets currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn maybe_sweep(&self, now: Instant) {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let every = if self.buckets.len() >= SOFT_CAP {
            SWEEP_UNDER_PRESSURE
        } else {
            SWEEP_EVERY
        };
        if now_ms.saturating_sub(last) < every.as_millis() as u64 {
            return;
        }
        // One sweeper at a time; the others go on without waiting.
        let Ok(_guard) = self.sweep_lock.try_lock() else {
            return;
        };
        self.last_sweep_ms.store(now_ms, Ordering::Relaxed);
        self.sweep(now);
    }

    /// Drops buckets idle long enough to have refilled completely.
    fn sweep(&self, now: Instant) {
        let full_after = Duration::from_secs_f64(self.burst / self.rate);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < full_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, burst: u32) -> RateLimiter {
        let limits = LimitsConfig {
            rate_per_sec: rate,
            rate_burst: burst,
            ..LimitsConfig::default()
        };
        RateLimiter::new(&limits)
    }

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let l = limiter(5, 5);
        for _ in 0..5 {
            assert_eq!(l.check("p", "a"), Ok(()));
        }
        assert_eq!(l.check("p", "a"), Err(1));
        // Separate buckets per identity and per provisioningId.
        assert_eq!(l.check("p", "b"), Ok(()));
        assert_eq!(l.check("q", "a"), Ok(()));
    }

    #[test]
    fn zero_rate_is_off() {
        let l = limiter(0, 1);
        for _ in 0..100 {
            assert_eq!(l.check("p", "a"), Ok(()));
        }
        assert!(l.is_empty());
    }

    #[test]
    fn slow_rate_asks_for_longer_waits() {
        let l = limiter(1, 1);
        assert_eq!(l.check("p", "a"), Ok(()));
        assert_eq!(l.check("p", "a"), Err(1));
    }

    #[test]
    fn sweep_drops_refilled_buckets_only() {
        let l = limiter(1000, 1);
        l.check("p", "old").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        l.check("p", "new").unwrap();
        l.sweep(Instant::now());
        assert_eq!(l.len(), 1);
        assert!(l.buckets.contains_key(&l.seed.hash_one(("p", "new"))));
    }

    #[test]
    fn full_map_fails_open_for_new_callers_only() {
        let mut l = limiter(1, 1);
        l.hard_cap = 2;
        l.check("p", "a").unwrap();
        l.check("p", "b").unwrap();
        // Known callers stay limited; a new one passes without a bucket.
        assert_eq!(l.check("p", "a"), Err(1));
        for _ in 0..3 {
            assert_eq!(l.check("p", "c"), Ok(()));
        }
        assert_eq!(l.len(), 2);
    }
}
