//! Failed-attempt limiter for credential checks (portal sign-in at the
//! XSP, provisioning Basic auth, partner admin tokens): counts wrong
//! credentials per key, where a key is (realm, user id) or (realm, client
//! address). After `max` failures within the window the key is locked for
//! a backoff that doubles with each further lock of that key (capped);
//! while locked the caller is refused before anything is verified.
//!
//! After a lock ends, the key stays "on probation" for one window: its
//! next failure locks it again at once (with the doubled length), so a
//! guesser gets one try per lock instead of a fresh allowance.
//!
//! Memory stays bounded like `ratelimit::RateLimiter`: entries are keyed
//! by a randomly seeded 64-bit hash, swept once they are unlocked and idle
//! for a whole window, and at `HARD_CAP` no new entry is made (those
//! failures go uncounted, seen in `bwgate_auth_lockout_full_total`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::config::LimitsConfig;

const SWEEP_EVERY: Duration = Duration::from_secs(30);
const SWEEP_UNDER_PRESSURE: Duration = Duration::from_secs(1);
const SOFT_CAP: usize = 100_000;
const HARD_CAP: usize = 400_000;

/// What a key stands for; user ids and addresses get their own thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    User,
    Address,
}

/// Which credential check a key belongs to (one count per face).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Realm {
    /// BroadWorks user id + password at the XSP (`/activate/signin`,
    /// `/self-activate/…`).
    PortalSignIn,
    /// Flow-through Basic auth; keys also name the provisioningId.
    Provisioning,
    /// Partner admin tokens (status page sign-in, JSON API).
    PartnerToken,
    /// XSI Basic auth (BroadWorks credentials at the XSP).
    XsiBasic,
}

impl Realm {
    pub fn label(self) -> &'static str {
        match self {
            Realm::PortalSignIn => "portal_signin",
            Realm::Provisioning => "provisioning",
            Realm::PartnerToken => "partner_token",
            Realm::XsiBasic => "xsi_basic",
        }
    }
}

/// One key to count: `scope` narrows the realm (the provisioningId for
/// flow-through, empty otherwise), `value` is the user id or address.
#[derive(Debug, Clone, Copy)]
pub struct AttemptKey<'a> {
    pub realm: Realm,
    pub scope: &'a str,
    pub kind: KeyKind,
    pub value: &'a str,
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    window_start: Instant,
    /// Locks so far (the backoff doubles with each).
    locks: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Debug)]
pub struct Lockout {
    max_per_user: u32,
    max_per_address: u32,
    window: Duration,
    base: Duration,
    cap: Duration,
    entries: DashMap<u64, Entry>,
    seed: RandomState,
    hard_cap: usize,
    epoch: Instant,
    last_sweep_ms: AtomicU64,
    sweep_lock: Mutex<()>,
}

impl Lockout {
    pub fn new(limits: &LimitsConfig) -> Lockout {
        Lockout {
            max_per_user: limits.auth_max_failures_per_user.max(1),
            max_per_address: limits.auth_max_failures_per_address.max(1),
            window: Duration::from_secs(limits.auth_failure_window_secs.max(1)),
            base: Duration::from_secs(limits.auth_lockout_secs.max(1)),
            cap: Duration::from_secs(
                limits
                    .auth_lockout_max_secs
                    .max(limits.auth_lockout_secs)
                    .max(1),
            ),
            entries: DashMap::new(),
            seed: RandomState::new(),
            hard_cap: HARD_CAP,
            epoch: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
            sweep_lock: Mutex::new(()),
        }
    }

    fn hash(&self, key: &AttemptKey<'_>) -> u64 {
        self.seed
            .hash_one((key.realm, key.scope, key.kind, key.value))
    }

    /// `Err(secs)` while any of `keys` is locked: retry after `secs` (≥ 1).
    pub fn check(&self, keys: &[AttemptKey<'_>]) -> Result<(), u64> {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(e) = self.entries.get(&self.hash(key)) {
                if let Some(until) = e.locked_until {
                    wait = wait.max(until.saturating_duration_since(now));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(secs_up(wait))
        }
    }

    /// Counts a wrong credential against every key; `Err(secs)` when this
    /// failure locked one of them.
    pub fn failure(&self, keys: &[AttemptKey<'_>]) -> Result<(), u64> {
        let now = Instant::now();
        self.maybe_sweep(now);
        let mut locked_for = Duration::ZERO;
        for key in keys {
            let hash = self.hash(key);
            if self.entries.len() >= self.hard_cap && !self.entries.contains_key(&hash) {
                ::metrics::counter!("bwgate_auth_lockout_full_total").increment(1);
                continue;
            }
            let max = match key.kind {
                KeyKind::User => self.max_per_user,
                KeyKind::Address => self.max_per_address,
            };
            let mut e = self.entries.entry(hash).or_insert(Entry {
                failures: 0,
                window_start: now,
                locks: 0,
                locked_until: None,
                last: now,
            });
            let on_probation = match e.locked_until {
                Some(until) if now < until => {
                    // Verified while another request locked the key: the
                    // lock stands, no extra count.
                    locked_for = locked_for.max(until - now);
                    continue;
                }
                Some(until) => now.saturating_duration_since(until) < self.window,
                None => false,
            };
            if !on_probation && e.locked_until.is_some() {
                // Quiet for a whole window after its last lock: forgiven.
                e.locks = 0;
                e.locked_until = None;
            }
            if now.saturating_duration_since(e.window_start) >= self.window {
                e.failures = 0;
                e.window_start = now;
            }
            e.failures += 1;
            e.last = now;
            if on_probation || e.failures >= max {
                let length = self.backoff(e.locks);
                e.locks = e.locks.saturating_add(1);
                e.locked_until = Some(now + length);
                e.failures = 0;
                e.window_start = now;
                locked_for = locked_for.max(length);
                ::metrics::counter!(
                    "bwgate_auth_lockouts_total",
                    "realm" => key.realm.label(),
                    "key" => match key.kind { KeyKind::User => "user", KeyKind::Address => "address" }
                )
                .increment(1);
            }
        }
        if locked_for.is_zero() {
            Ok(())
        } else {
            Err(secs_up(locked_for))
        }
    }

    /// A right credential: the user id's count starts again (addresses
    /// keep theirs, so one valid account does not reset a guesser).
    pub fn success(&self, user: &AttemptKey<'_>) {
        if user.kind == KeyKind::User {
            self.entries.remove(&self.hash(user));
        }
    }

    fn backoff(&self, previous_locks: u32) -> Duration {
        let factor = 1u32.checked_shl(previous_locks.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn maybe_sweep(&self, now: Instant) {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let every = if self.entries.len() >= SOFT_CAP {
            SWEEP_UNDER_PRESSURE
        } else {
            SWEEP_EVERY
        };
        if now_ms.saturating_sub(last) < every.as_millis() as u64 {
            return;
        }
        let Ok(_guard) = self.sweep_lock.try_lock() else {
            return;
        };
        self.last_sweep_ms.store(now_ms, Ordering::Relaxed);
        self.sweep(now);
    }

    /// Drops entries that are unlocked and past their probation, and saw
    /// no failure for a whole window: they count as new.
    fn sweep(&self, now: Instant) {
        let window = self.window;
        self.entries.retain(|_, e| {
            let quiet_since = e.locked_until.map_or(e.last, |u| u.max(e.last));
            now.saturating_duration_since(quiet_since) < window
        });
    }
}

/// The address a client is counted (and queued) under: an IPv4 address
/// as it is, an IPv6 address by its /64, since one subscriber line or
/// host usually holds a whole /64 and could otherwise spread guesses over
/// 2^64 addresses. IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn secs_up(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lockout(per_user: u32, per_address: u32, base: u64, cap: u64) -> Lockout {
        Lockout::new(&LimitsConfig {
            auth_max_failures_per_user: per_user,
            auth_max_failures_per_address: per_address,
            auth_failure_window_secs: 900,
            auth_lockout_secs: base,
            auth_lockout_max_secs: cap,
            ..LimitsConfig::default()
        })
    }

    fn user(v: &str) -> AttemptKey<'_> {
        AttemptKey {
            realm: Realm::PortalSignIn,
            scope: "",
            kind: KeyKind::User,
            value: v,
        }
    }

    fn addr(v: &str) -> AttemptKey<'_> {
        AttemptKey {
            realm: Realm::PortalSignIn,
            scope: "",
            kind: KeyKind::Address,
            value: v,
        }
    }

    #[test]
    fn locks_after_max_failures_then_refuses_with_retry_after() {
        let l = lockout(3, 100, 30, 900);
        let keys = [user("kim"), addr("10.0.0.1")];
        assert_eq!(l.failure(&keys), Ok(()));
        assert_eq!(l.failure(&keys), Ok(()));
        assert_eq!(l.check(&keys), Ok(()));
        assert_eq!(l.failure(&keys), Err(30));
        assert_eq!(l.check(&keys), Err(30));
        // Another user from another address is not affected.
        assert_eq!(l.check(&[user("lee"), addr("10.0.0.2")]), Ok(()));
        // The same user from another address is (the user key).
        assert_eq!(l.check(&[user("kim"), addr("10.0.0.2")]), Err(30));
    }

    #[test]
    fn the_address_limit_catches_spraying_over_many_users() {
        let l = lockout(100, 5, 60, 900);
        let names: Vec<String> = (0..5).map(|i| format!("user{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            let r = l.failure(&[user(n), addr("10.0.0.9")]);
            assert_eq!(r.is_err(), i == 4, "{i}");
        }
        assert_eq!(l.check(&[user("fresh"), addr("10.0.0.9")]), Err(60));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_probation_relocks_at_once() {
        let l = lockout(2, 100, 10, 35);
        assert_eq!(l.backoff(0), Duration::from_secs(10));
        assert_eq!(l.backoff(1), Duration::from_secs(20));
        assert_eq!(l.backoff(2), Duration::from_secs(35));
        assert_eq!(l.backoff(40), Duration::from_secs(35));
        let k = [user("kim")];
        l.failure(&k).unwrap();
        assert_eq!(l.failure(&k), Err(10));
        // Pretend the lock ran out: one more failure locks again, longer.
        let h = l.hash(&k[0]);
        l.entries.get_mut(&h).unwrap().locked_until = Some(Instant::now());
        assert_eq!(l.check(&k), Ok(()));
        assert_eq!(l.failure(&k), Err(20));
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let l = lockout(2, 3, 30, 900);
        l.failure(&[user("kim"), addr("a")]).unwrap();
        l.success(&user("kim"));
        l.success(&addr("a"));
        assert_eq!(l.failure(&[user("kim"), addr("a")]), Ok(()));
        // The address has two failures now; the third locks it.
        assert_eq!(l.failure(&[user("lee"), addr("a")]), Err(30));
    }

    #[test]
    fn realms_and_scopes_count_apart() {
        let l = lockout(1, 100, 30, 900);
        let mut k = user("prov");
        k.realm = Realm::Provisioning;
        k.scope = "tpl-a";
        assert_eq!(l.failure(&[k]), Err(30));
        let mut other = k;
        other.scope = "tpl-b";
        assert_eq!(l.check(&[other]), Ok(()));
        assert_eq!(l.check(&[user("prov")]), Ok(()));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(client_address(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(
            client_address(ip("2001:db8:1:2:aaaa::1")),
            client_address(ip("2001:db8:1:2:ffff:1:2:3"))
        );
        assert_ne!(
            client_address(ip("2001:db8:1:2::1")),
            client_address(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn sweep_and_hard_cap_bound_memory() {
        let mut l = lockout(5, 5, 30, 900);
        l.hard_cap = 2;
        l.failure(&[user("a")]).unwrap();
        l.failure(&[user("b")]).unwrap();
        l.failure(&[user("c")]).unwrap();
        assert_eq!(l.len(), 2, "no entry past the cap");
        l.sweep(Instant::now() + Duration::from_secs(901));
        assert!(l.is_empty());
    }
}
