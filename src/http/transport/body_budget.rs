//! How many bytes of request bodies may sit in memory at once: one budget
//! per connection (HTTP/2 streams share it) and one for the process. A body
//! reserves its bytes in both before it keeps them, so a client holding
//! many unfinished bodies is refused instead of growing the heap.
//! Reservations are never waited for: over budget is an immediate answer.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pool of bytes (a semaphore counting bytes).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    size: usize,
    scope: BudgetScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    Connection,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request bodies buffered per {scope:?} would exceed {size} bytes")]
pub struct OverBudget {
    pub scope: BudgetScope,
    pub size: usize,
}

impl BodyBudget {
    pub fn new(size: usize, scope: BudgetScope) -> BodyBudget {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(size.min(Semaphore::MAX_PERMITS))),
            size,
            scope,
        }
    }

    /// Bytes currently reserved.
    pub fn in_use(&self) -> usize {
        self.size.saturating_sub(self.bytes.available_permits())
    }
}

/// Bytes one request body holds in a connection's and the process's
/// budget; given back when dropped.
pub struct Reservation {
    budgets: [BodyBudget; 2],
    held: [Option<OwnedSemaphorePermit>; 2],
    bytes: usize,
}

impl Reservation {
    pub fn new(connection: &BodyBudget, process: &BodyBudget) -> Reservation {
        Reservation {
            budgets: [connection.clone(), process.clone()],
            held: [None, None],
            bytes: 0,
        }
    }

    /// Grows the reservation to `total` bytes (no-op when it already holds
    /// that many). On refusal nothing more is held than before.
    pub fn ensure(&mut self, total: usize) -> Result<(), OverBudget> {
        let Some(more) = total.checked_sub(self.bytes).filter(|n| *n > 0) else {
            return Ok(());
        };
        let refused = |b: &BodyBudget| OverBudget {
            scope: b.scope,
            size: b.size,
        };
        let Ok(more_u32) = u32::try_from(more) else {
            return Err(refused(&self.budgets[0]));
        };
        let mut taken: [Option<OwnedSemaphorePermit>; 2] = [None, None];
        for (i, budget) in self.budgets.iter().enumerate() {
            match budget.bytes.clone().try_acquire_many_owned(more_u32) {
                Ok(permit) => taken[i] = Some(permit),
                // `taken` is dropped: what the first budget gave goes back.
                Err(_) => return Err(refused(budget)),
            }
        }
        for (held, new) in self.held.iter_mut().zip(taken) {
            match (held.as_mut(), new) {
                (Some(h), Some(n)) => h.merge(n),
                (None, n) => *held = n,
                (Some(_), None) => {}
            }
        }
        self.bytes = total;
        ::metrics::gauge!("bwgate_buffered_body_bytes").set(self.budgets[1].in_use() as f64);
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.held = [None, None];
            ::metrics::gauge!("bwgate_buffered_body_bytes").set(self.budgets[1].in_use() as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_then_process_budget_refuse_and_give_back() {
        let process = BodyBudget::new(100, BudgetScope::Process);
        let conn_a = BodyBudget::new(60, BudgetScope::Connection);
        let conn_b = BodyBudget::new(60, BudgetScope::Connection);
        let mut a1 = Reservation::new(&conn_a, &process);
        a1.ensure(40).unwrap();
        a1.ensure(50).unwrap();
        assert_eq!((conn_a.in_use(), process.in_use()), (50, 50));
        let mut a2 = Reservation::new(&conn_a, &process);
        assert_eq!(
            a2.ensure(20).unwrap_err().scope,
            BudgetScope::Connection,
            "60 per connection"
        );
        let mut b1 = Reservation::new(&conn_b, &process);
        b1.ensure(50).unwrap();
        let mut b2 = Reservation::new(&conn_b, &process);
        assert_eq!(b2.ensure(5).unwrap_err().scope, BudgetScope::Process);
        // A refusal holds nothing, in either budget.
        assert_eq!((conn_b.in_use(), process.in_use()), (50, 100));
        drop(a1);
        assert_eq!((conn_a.in_use(), process.in_use()), (0, 50));
        b2.ensure(5).unwrap();
        drop(b1);
        drop(b2);
        assert_eq!(process.in_use(), 0);
    }
}
