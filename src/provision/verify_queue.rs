//! Fair admission to argon2 verification, shared by provisioning Basic
//! auth and partner admin tokens. argon2 costs ~20 ms of CPU and 19 MiB
//! by design, so at most `concurrency` run at once; the queue in front is
//! per tenant (a provisioningId, or a client address where no tenant is
//! known): each tenant has at most one verification waiting for, or
//! holding, a global slot, and at most `per_tenant` waiting behind it.
//! The global slots are granted first come first served, so a tenant with
//! a flood waits behind its own requests while another tenant's waits for
//! at most one verification per busy tenant. A tenant whose queue is full
//! is shed at once (`Busy`), never left to wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The tenant's queue is full: retry later (the answer is 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("credential verification is busy for this caller; retry later")]
pub struct Busy;

/// Seconds a shed caller is asked to wait.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

struct Tenant {
    /// One permit: the tenant's single place in the global queue.
    turn: Arc<Semaphore>,
    /// Requests holding or waiting for `turn`.
    queued: usize,
}

pub struct VerifyQueue {
    global: Arc<Semaphore>,
    per_tenant: usize,
    tenants: Arc<DashMap<String, Tenant>>,
    shed: AtomicU64,
}

/// Held while verifying; frees the tenant's turn and the global slot.
pub struct VerifyPermit {
    _global: OwnedSemaphorePermit,
    _turn: OwnedSemaphorePermit,
    _place: Place,
}

/// A request's place in its tenant's queue, given back on drop (also when
/// the waiting future is cancelled).
struct Place {
    tenants: Arc<DashMap<String, Tenant>>,
    tenant: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(mut t) = self.tenants.get_mut(&self.tenant) {
            t.queued = t.queued.saturating_sub(1);
        }
        self.tenants.remove_if(&self.tenant, |_, t| t.queued == 0);
    }
}

impl VerifyQueue {
    pub fn new(concurrency: usize, per_tenant: usize) -> VerifyQueue {
        VerifyQueue {
            global: Arc::new(Semaphore::new(concurrency.max(1))),
            per_tenant: per_tenant.max(1),
            tenants: Arc::new(DashMap::new()),
            shed: AtomicU64::new(0),
        }
    }

    /// Waits for a verification slot for `tenant`, or `Busy` at once when
    /// the tenant already has `per_tenant` requests queued.
    pub async fn enter(&self, tenant: &str) -> Result<VerifyPermit, Busy> {
        let turn = {
            let mut t = self.tenants.entry(tenant.to_string()).or_insert(Tenant {
                turn: Arc::new(Semaphore::new(1)),
                queued: 0,
            });
            if t.queued >= self.per_tenant {
                self.shed.fetch_add(1, Ordering::Relaxed);
                ::metrics::counter!("bwgate_credential_verifications_shed_total").increment(1);
                return Err(Busy);
            }
            t.queued += 1;
            t.turn.clone()
        };
        let place = Place {
            tenants: self.tenants.clone(),
            tenant: tenant.to_string(),
        };
        let turn = turn.acquire_owned().await.map_err(|_| Busy)?;
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        Ok(VerifyPermit {
            _global: global,
            _turn: turn,
            _place: place,
        })
    }

    /// Requests shed so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Tenants with requests queued (for tests).
    pub fn tenants(&self) -> usize {
        self.tenants.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_tenant_is_shed_while_others_get_in() {
        let q = VerifyQueue::new(1, 2);
        let a1 = q.enter("a").await.expect("first");
        // a1 holds a's turn and the one global slot; a2 waits.
        let q = Arc::new(q);
        let waiting = {
            let q = q.clone();
            tokio::spawn(async move { q.enter("a").await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.enter("a").await.err(), Some(Busy), "queue of 2 is full");
        assert_eq!(q.shed(), 1);
        drop(a1);
        waiting.await.unwrap().expect("second");
        assert_eq!(q.tenants(), 0, "empty tenants are dropped");
    }

    #[tokio::test]
    async fn another_tenant_waits_for_one_verification_not_the_flood() {
        let q = Arc::new(VerifyQueue::new(1, 1000));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = q.enter("flood").await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (q, order) = (q.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = q.enter("flood").await.unwrap();
                order.lock().unwrap().push(format!("flood{i}"));
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (q2, order2) = (q.clone(), order.clone());
        let other = tokio::spawn(async move {
            let _p = q2.enter("quiet").await.unwrap();
            order2.lock().unwrap().push("quiet".to_string());
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        other.await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        let pos = order.iter().position(|s| s == "quiet").unwrap();
        assert!(pos <= 1, "quiet tenant served at {pos}: {order:?}");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_gives_its_place_back() {
        let q = Arc::new(VerifyQueue::new(1, 1));
        let held = q.enter("a").await.unwrap();
        // Full now (1 queued); a second times out while waiting elsewhere.
        assert_eq!(q.enter("a").await.err(), Some(Busy));
        let q2 = q.clone();
        let t = tokio::spawn(async move { q2.enter("b").await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        t.abort();
        let _ = t.await;
        drop(held);
        assert_eq!(q.tenants(), 0);
        assert!(q.enter("b").await.is_ok());
    }
}
